"""Running an export the way TensorFlow Serving does: the TF1 session loader.

:class:`SessionModel` loads ``saved_model.pb`` with ``tf.compat.v1.saved_model.loader.load``
(the loader TF Serving and ``saved_model_cli run`` use) into a graph of its own and runs a
signature by its SignatureDef: the request's named tensors are fed to the signature's input
tensors, its output tensors fetched. Before running, the inputs are checked as TF Serving's
``PreProcessPrediction`` checks them (same set of names, same message) and, beyond TF
Serving, against the signature's shapes (:func:`check_shapes`): each input has its rank and
fixed sizes, every input one entry per row (``k`` also one value for all rows), and ``k`` is
at least 1. So a mistake is answered with the input and the shape it must have, not with
the message of whichever graph op tripped over it (``Invalid reduction dimension``, ``In[0]
is not a matrix``), and a nested list of another rank is refused rather than reshaped.
Errors the graph still raises keep TensorFlow's status code (:data:`HTTP_STATUS` maps it as
TF Serving's REST server does) and message, without the names of graph functions and nodes
(:func:`plain_message`).

Calls are thread-safe (``Session`` releases the GIL while it runs) and cheap: one
``CallableOptions`` callable per signature, built once.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

import numpy as np

# TensorFlow status code -> HTTP status, as TF Serving's http_server.cc ToHTTPStatusCode.
HTTP_STATUS = {
    1: 499,  # CANCELLED
    2: 500,  # UNKNOWN
    3: 400,  # INVALID_ARGUMENT
    4: 504,  # DEADLINE_EXCEEDED
    5: 404,  # NOT_FOUND
    6: 409,  # ALREADY_EXISTS
    7: 403,  # PERMISSION_DENIED
    8: 429,  # RESOURCE_EXHAUSTED
    9: 400,  # FAILED_PRECONDITION
    10: 409,  # ABORTED
    11: 400,  # OUT_OF_RANGE
    12: 501,  # UNIMPLEMENTED
    13: 500,  # INTERNAL
    14: 503,  # UNAVAILABLE
    15: 500,  # DATA_LOSS
    16: 401,  # UNAUTHENTICATED
}


class ServingError(Exception):
    """A failed request: HTTP status and the message for ``{"error": ...}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class SessionModel:
    """A SavedModel loaded with the TF1 session loader. Args: path: the version folder."""

    def __init__(self, path: str | Path) -> None:
        import tensorflow as tf

        self.path = Path(path)
        graph = tf.Graph()
        self.session = tf.compat.v1.Session(graph=graph)
        logger, level = tf.get_logger(), tf.get_logger().level
        logger.setLevel("ERROR")  # the TF1 loader's deprecation notice and "Restoring ..."
        try:
            with graph.as_default():
                meta = tf.compat.v1.saved_model.loader.load(self.session, ["serve"], str(path))
        finally:
            logger.setLevel(level)
        self.meta_signature_defs = dict(meta.signature_def)  # all, as GetModelMetadata lists them
        self.signature_defs = {
            name: sig for name, sig in meta.signature_def.items() if not name.startswith("__")
        }
        self._callables: dict[str, tuple[list[str], list[str], Any]] = {}
        self._lock = threading.Lock()

    def inputs(self, name: str) -> dict[str, np.dtype]:
        """Input name -> numpy dtype of signature ``name`` (which must exist)."""
        from tensorflow import as_dtype

        sig = self.signature_defs[name]
        return {key: as_dtype(info.dtype).as_numpy_dtype for key, info in sig.inputs.items()}

    def run(self, name: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Outputs of signature ``name`` for the named ``feeds``; :class:`ServingError` on failure."""
        import tensorflow as tf

        inputs, outputs, call = self._callable(name)
        check_input_names(set(feeds), set(inputs))
        check_shapes(feeds, self.shapes(name))
        try:
            values = call(*[feeds[key] for key in inputs])
        except tf.errors.OpError as exc:
            status = HTTP_STATUS.get(exc.error_code, 500)
            raise ServingError(status, plain_message(exc.message)) from None
        return dict(zip(outputs, values, strict=True))

    def shapes(self, name: str) -> dict[str, list[int]]:
        """Input name -> shape of signature ``name`` (-1: any size)."""
        sig = self.signature_defs[name]
        return {key: [d.size for d in info.tensor_shape.dim] for key, info in sig.inputs.items()}

    def _callable(self, name: str) -> tuple[list[str], list[str], Any]:
        found = self._callables.get(name)
        if found is None:
            from tensorflow.core.protobuf import config_pb2

            sig = self.signature_defs[name]
            inputs, outputs = sorted(sig.inputs), sorted(sig.outputs)
            options = config_pb2.CallableOptions()
            options.feed.extend(sig.inputs[key].name for key in inputs)
            options.fetch.extend(sig.outputs[key].name for key in outputs)
            with self._lock:
                call = self.session._make_callable_from_options(options)
            found = self._callables[name] = (inputs, outputs, call)
        return found

    def warm_up(self) -> None:
        """Run every signature once (on unknown ids), so the first request is not slow."""
        for name, sig in self.signature_defs.items():
            feeds = {}
            for key, dtype in self.inputs(name).items():
                dims = [d.size for d in sig.inputs[key].tensor_shape.dim]  # -1: any
                shape = [d if d > 0 else 1 for d in dims] or [
                    1
                ]  # histories [1, 1], features [1, F]
                feeds[key] = (
                    np.full(shape, b"", dtype=object)
                    if np.dtype(dtype).kind == "O"
                    else np.ones(shape, dtype)
                )
            self.run(name, feeds)

    def close(self) -> None:
        self.session.close()


def check_input_names(given: set[str], wanted: set[str]) -> None:
    """TF Serving's check of a request's input names against the signature's."""
    if len(given) != len(wanted):
        raise ServingError(
            400,
            f"input size does not match signature: {len(given)}!={len(wanted)} "
            f"len({{{','.join(sorted(given))}}}) != len({{{','.join(sorted(wanted))}}}). "
            f"Sent extra: {{{','.join(sorted(given - wanted))}}}. "
            f"Missing but required: {{{','.join(sorted(wanted - given))}}}.",
        )
    extra = sorted(given - wanted)
    if extra:
        raise ServingError(
            400,
            f"input tensor alias not found in signature: {extra[0]}. "
            f"Inputs expected to be in the set {{{','.join(sorted(wanted))}}}.",
        )


def check_shapes(feeds: dict[str, np.ndarray], shapes: dict[str, list[int]]) -> None:
    """Refuse feeds that do not fit the signature's input ``shapes`` (module docstring)."""
    for key, want in shapes.items():
        got = list(feeds[key].shape)
        if len(got) != len(want) or any(w not in (-1, g) for g, w in zip(got, want, strict=True)):
            shown = _shape_text(got) if got else "a single value"
            hint = f' (write "{key}": [{_scalar_text(feeds[key])}])' if not got else ""
            raise ServingError(
                400, f"input {key} must have shape {_shape_text(want, key)}, got {shown}{hint}"
            )
    rows = {key: feeds[key].shape[0] for key in shapes if key != "k"}
    if len(set(rows.values())) > 1:
        listing = ", ".join(f"{key} {n}" for key, n in sorted(rows.items()))
        raise ServingError(
            400, f"the inputs must have one entry per row, as many each; got {listing} rows"
        )
    k = feeds.get("k")
    if k is not None and "k" in shapes:
        batch = next(iter(rows.values()), k.size)
        if k.size not in (1, batch):
            raise ServingError(
                400, f"k must hold one value per row ({batch}) or one for all rows; got {k.size}"
            )
        if k.size and int(k.min()) < 1:
            raise ServingError(400, f"k must be at least 1; got {int(k.min())}")


def _shape_text(dims: list[int], key: str = "") -> str:
    names = iter(["B", "H" if key == "history" else "N", "M"])
    return "[" + ", ".join(str(d) if d >= 0 else next(names) for d in dims) + "]"


def _scalar_text(value: np.ndarray) -> str:
    item = value.item()
    text = item.decode("utf-8", "replace") if isinstance(item, bytes) else item
    return json.dumps(text)[:40]


def plain_message(message: str) -> str:
    """A TensorFlow error message without graph function and node names: ``{{function_node
    __inference_recommend_4006...}} assertion failed: [k must be at least 1]\\n\\t [[{{node
    ...}}]]`` -> ``assertion failed: [k must be at least 1]``."""
    text = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", message)
    text = re.sub(r"\s*\[\[\{\{node [^\]]*\]\]", "", text)
    text = re.sub(r"\s*\[Op:\w+\]", "", text)
    return " ".join(text.split()) or "the model could not run this request"

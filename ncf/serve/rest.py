"""TensorFlow Serving's JSON rules for ``:predict``, ported from its ``json_tensor.cc``.

A request body becomes named tensors exactly as TF Serving builds them, and outputs become
JSON as TF Serving writes them, so a client written against ``ncf serve`` works against TF
Serving and the other way round:

- the body must be a JSON object with an optional string ``signature_name`` (default
  ``serving_default``) and exactly one of ``instances`` (row format) or ``inputs`` (columnar);
- row format: a non-empty list; with one named input its items are that input's values,
  with several each item is an object with exactly the signature's input names. Every input
  is batched: a row's ``"k": 5`` becomes ``k`` of shape ``[rows]``. Rows must agree in shape;
- columnar format: an object holding every input (names not in the signature are ignored),
  or, for a one-input signature, the value itself. Each value's shape is its JSON nesting:
  ``"k": 5`` is a scalar, ``"k": [5]`` a vector;
- values must have the JSON type of the input's dtype: strings (or ``{"b64": ...}``) for
  DT_STRING, whole numbers within range for integers, numbers for floats, true/false for
  DT_BOOL; ``NaN`` and ``Infinity`` are accepted;
- row requests answer ``{"predictions": [...]}`` (a list of objects, or of bare values for
  a one-output signature), columnar ones ``{"outputs": ...}`` likewise.

Failures raise :class:`~ncf.serve.session.ServingError` (400) with TF Serving's wording;
the JSON echoed inside a message is cut (:mod:`ncf.serve.json_tensor` turns one value into a
tensor). Beyond TF Serving, deep nesting is refused (its parser has no such guard).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ncf.serve.json_tensor import bad, echo, is_b64, scalar, to_tensor
from ncf.serve.session import ServingError


@dataclass(frozen=True)
class PredictRequest:
    """A parsed ``:predict`` body: the signature, the format and the named tensors."""

    signature: str
    row: bool
    feeds: dict[str, np.ndarray]


def parse_json(body: bytes) -> Any:
    if not body:
        raise bad("JSON Parse error: The document is empty")
    try:
        return json.loads(body)
    except RecursionError:
        raise bad("JSON Parse error: the document is nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise bad(f"JSON Parse error: {exc}") from None


def parse_predict(body: bytes, inputs_of: Callable[[str], dict[str, np.dtype]]) -> PredictRequest:
    """``body`` as TF Serving's ``FillPredictRequestFromJson`` reads it.

    ``inputs_of(signature)`` gives the input names and dtypes of a signature, or raises the
    :class:`ServingError` for an unknown one.
    """
    doc = parse_json(body)
    if not isinstance(doc, dict):
        raise bad(f"JSON Value: {echo(doc)} Is not object")
    name = doc.get("signature_name", "")
    if not isinstance(name, str):
        raise bad(
            f"JSON Value: {echo(doc)} not formatted correctly. "
            "'signature_name' key must be a string value."
        )
    name = name or "serving_default"
    specs = inputs_of(name)
    if "instances" in doc:
        if "inputs" in doc:
            raise bad(
                f"JSON Value: {echo(doc)} Not formatted correctly expecting only one of "
                "'inputs' or 'instances' keys to exist "
            )
        instances = doc["instances"]
        if not isinstance(instances, list):
            raise bad(f"JSON Value: {echo(doc)} Excepting 'instances' to be an list/array")
        if not instances:
            raise bad(f"JSON Value: {echo(doc)} No values in 'instances' array")
        return PredictRequest(name, True, _from_instances(instances, specs))
    if "inputs" in doc:
        return PredictRequest(name, False, _from_inputs(doc["inputs"], specs))
    raise bad("Missing 'inputs' or 'instances' key")


def _is_object(value: Any) -> bool:
    return isinstance(value, dict) and not is_b64(value)


def _from_instances(instances: list, specs: dict[str, np.dtype]) -> dict[str, np.ndarray]:
    if not isinstance(instances[0], dict) and len(specs) > 1:
        raise bad(
            "instances is a plain list, but expecting list of objects as multiple input "
            "tensors required as per tensorinfo_map"
        )
    objects = _is_object(instances[0])
    names = sorted(specs)
    rows: dict[str, list] = {}
    for index, item in enumerate(instances):
        if objects:
            if not _is_object(item):
                raise bad(f"Expecting object but got list at item {index} of input list")
            for key, value in item.items():
                try:
                    _add_row(rows, key, value, specs)
                except ServingError as exc:
                    raise bad(
                        f"Failed to process element: {index} key: {key} of 'instances' list. "
                        f"Error: INVALID_ARGUMENT: {exc.message}"
                    ) from None
            if sorted(item) != names:
                raise bad(
                    f"Failed to process element: {index} of 'instances' list. JSON object: "
                    f"{echo(item)} keys must be equal to: {','.join(names)}"
                )
        else:
            if _is_object(item):
                raise bad(f"Expecting value/list but got object at item {index} of input list")
            try:
                _add_row(rows, names[0], item, specs)
            except ServingError as exc:
                raise bad(
                    f"Failed to process element: {index} of 'instances' list. "
                    f"Error: INVALID_ARGUMENT: {exc.message}"
                ) from None
    feeds = {}
    for key, (shape, flat) in rows.items():
        tensor = np.empty(len(flat), dtype=specs[key])
        tensor[:] = flat
        feeds[key] = tensor.reshape((len(instances), *shape))
    return feeds


def _add_row(rows: dict[str, list], key: str, value: Any, specs: dict[str, np.dtype]) -> None:
    """Append one row's value of input ``key``: ``rows[key]`` is ``[shape, flat values]``."""
    if key not in specs:
        raise bad(f"JSON object: does not have named input: {key}")
    if isinstance(value, list):
        tensor = to_tensor(value, specs[key])
        shape, flat = tensor.shape, tensor.reshape(-1).tolist()
    else:
        shape, flat = (), [scalar(value, np.dtype(specs[key]))]
    if key not in rows:
        rows[key] = [shape, flat]
        return
    first, values = rows[key]
    size = int(np.prod(first))
    if size != len(flat):
        raise bad(f"Expecting tensor size: {size} but got: {len(flat)}")
    if first != shape:
        raise bad(f"Expecting shape {_shape_text(first)} but got: {_shape_text(shape)}")
    values.extend(flat)


def _shape_text(shape: tuple[int, ...]) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


def _from_inputs(value: Any, specs: dict[str, np.dtype]) -> dict[str, np.ndarray]:
    if not isinstance(value, dict) or is_b64(value):
        if len(specs) > 1:
            raise bad(
                "inputs is a plain value/list, but expecting an object as multiple input "
                "tensors required as per tensorinfo_map"
            )
        name = next(iter(specs))
        return {name: to_tensor(value, specs[name])}
    feeds = {}
    for name in sorted(specs):
        if name not in value:
            raise bad(f"Missing named input: {name} in 'inputs' object.")
        feeds[name] = to_tensor(value[name], specs[name])
    return feeds


def predict_response(outputs: dict[str, np.ndarray], row: bool) -> dict[str, Any]:
    """Outputs as TF Serving writes them: ``predictions`` (row) or ``outputs`` (columnar)."""
    names = sorted(outputs)
    if row:
        batch = -1
        for name in names:
            tensor = outputs[name]
            if tensor.ndim == 0:
                raise bad(f"Tensor name: {name} has no shape information ")
            if batch >= 0 and tensor.shape[0] != batch:
                raise bad(
                    f"Tensor name: {name} has inconsistent batch size: {tensor.shape[0]} "
                    f"expecting: {batch}"
                )
            batch = tensor.shape[0]
        columns = {name: to_json_values(name, outputs[name]) for name in names}
        if len(names) == 1:
            return {"predictions": columns[names[0]]}
        return {"predictions": [{n: columns[n][i] for n in names} for i in range(batch)]}
    values = {name: to_json_values(name, outputs[name]) for name in names}
    return {"outputs": values[names[0]] if len(names) == 1 else values}


def to_json_values(name: str, tensor: np.ndarray) -> Any:
    """A tensor as nested lists; strings decoded (``*_bytes`` outputs as ``{"b64": ...}``)."""
    if tensor.dtype.kind != "O":
        return tensor.tolist()
    if name.endswith("_bytes"):
        convert: Callable[[bytes], Any] = lambda b: {"b64": base64.b64encode(b).decode("ascii")}  # noqa: E731
    else:
        convert = lambda b: b.decode("utf-8", errors="replace")  # noqa: E731
    flat = [convert(b) for b in tensor.reshape(-1).tolist()]
    if tensor.ndim == 0:
        return flat[0]
    return np.array(flat, dtype=object).reshape(tensor.shape).tolist()

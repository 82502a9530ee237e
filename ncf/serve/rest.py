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
the JSON echoed inside a message is cut to :data:`ECHO_CHARS` characters. Beyond TF Serving,
nesting deeper than :data:`MAX_RANK` lists is refused (its parser has no such guard).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ncf.serve.session import ServingError

ECHO_CHARS = 256
MAX_RANK = 16
INT_RANGES = {
    np.dtype(np.int8): (-(2**7), 2**7 - 1),
    np.dtype(np.uint8): (0, 2**8 - 1),
    np.dtype(np.int16): (-(2**15), 2**15 - 1),
    np.dtype(np.int32): (-(2**31), 2**31 - 1),
    np.dtype(np.int64): (-(2**63), 2**63 - 1),
}
TYPE_NAMES = {
    np.dtype(np.int8): "int8",
    np.dtype(np.uint8): "uint8",
    np.dtype(np.int16): "int16",
    np.dtype(np.int32): "int32",
    np.dtype(np.int64): "int64",
    np.dtype(np.float32): "float",
    np.dtype(np.float64): "double",
    np.dtype(np.bool_): "bool",
    np.dtype(object): "string",
}
FLOAT_INT_MAX = {np.dtype(np.float32): 2**24 - 1, np.dtype(np.float64): 2**53 - 1}


@dataclass(frozen=True)
class PredictRequest:
    """A parsed ``:predict`` body: the signature, the format and the named tensors."""

    signature: str
    row: bool
    feeds: dict[str, np.ndarray]


def bad(message: str) -> ServingError:
    return ServingError(400, message)


def echo(value: Any) -> str:
    """TF Serving's ``JsonValueToString`` (pretty JSON), cut to :data:`ECHO_CHARS`."""
    text = json.dumps(value, indent=4, ensure_ascii=False)
    return text if len(text) <= ECHO_CHARS else text[:ECHO_CHARS] + "..."


def json_type(value: Any) -> str:
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    return "String" if isinstance(value, str) else "Number"


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


def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _is_object(value: Any) -> bool:
    return isinstance(value, dict) and not _is_b64(value)


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
        shape, flat = (), [_scalar(value, np.dtype(specs[key]))]
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
    if not isinstance(value, dict) or _is_b64(value):
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


def to_tensor(value: Any, dtype: np.dtype) -> np.ndarray:
    """One JSON value as a tensor of ``dtype``: shape from nesting, values type-checked."""
    shape = []
    probe = value
    while isinstance(probe, list):
        shape.append(len(probe))
        if len(shape) > MAX_RANK:
            raise bad(f"JSON value nested deeper than {MAX_RANK} lists")
        if not probe:
            break
        probe = probe[0]
    dtype = np.dtype(dtype)
    if len(shape) == 1 and _plain_vector(value, dtype):  # the common case, checked quickly
        flat = value if dtype.kind != "O" else [v.encode("utf-8") for v in value]
    else:
        flat = []
        _fill(value, 0, shape, dtype, flat)
    out = np.empty(len(flat), dtype=dtype)
    out[:] = flat
    return out.reshape(shape)


def _plain_vector(value: list, dtype: np.dtype) -> bool:
    if dtype.kind == "O":
        return all(type(v) is str for v in value)
    if dtype in INT_RANGES:
        low, high = INT_RANGES[dtype]
        return all(type(v) is int and low <= v <= high for v in value)
    return False


def _fill(value: Any, level: int, shape: list[int], dtype: np.dtype, out: list) -> None:
    rank = len(shape)
    if not isinstance(value, list):
        if level != rank:
            raise bad(
                f"JSON Value: {echo(value)} found at incorrect level: {level + 1} in the "
                f"JSON DOM. Expected at level: {rank}"
            )
        out.append(_scalar(value, dtype))
        return
    if level >= rank:
        raise bad(f"Encountered list at unexpected level: {level} expected < {rank}")
    if len(value) != shape[level]:
        raise bad(
            f"Encountered list at unexpected size: {len(value)} at level: {level} "
            f"expected size: {shape[level]}"
        )
    for item in value:
        _fill(item, level + 1, shape, dtype, out)


def _scalar(value: Any, dtype: np.dtype) -> Any:
    name = TYPE_NAMES.get(dtype)
    if name is None:
        raise ServingError(501, f"Conversion of JSON Value: {echo(value)} to type: {dtype}")
    mismatch = bad(
        f"JSON Value: {echo(value)} Type: {json_type(value)} is not of expected type: {name}"
    )
    if dtype.kind == "O":
        if isinstance(value, dict):
            if not _is_b64(value):
                raise bad(f"JSON Value: {echo(value)} not formatted correctly for base64 data")
            try:
                return base64.b64decode(value["b64"], validate=True)
            except (binascii.Error, ValueError):
                raise bad("Unable to base64 decode") from None
        if not isinstance(value, str):
            raise mismatch
        return value.encode("utf-8")
    if dtype == np.bool_:
        if not isinstance(value, bool):
            raise mismatch
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise mismatch
    if dtype in INT_RANGES:
        low, high = INT_RANGES[dtype]
        if not isinstance(value, int) or not low <= value <= high:
            raise mismatch
        return value
    limit = FLOAT_INT_MAX[dtype]
    lossy = abs(value) > limit if isinstance(value, int) else _out_of_float_range(value, dtype)
    if lossy:
        raise bad(f"Cannot convert JSON value: {echo(value)} to {name} without loss of precision.")
    return value


def _out_of_float_range(value: float, dtype: np.dtype) -> bool:
    if value != value or value in (float("inf"), float("-inf")):
        return False
    return abs(value) > float(np.finfo(dtype).max)


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

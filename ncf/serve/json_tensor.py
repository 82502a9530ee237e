"""One JSON value as a tensor, by TF Serving's rules (``json_tensor.cc``): the shape is the
JSON nesting (every list at one level the same length), the values must have the JSON type
of the tensor's dtype (strings or ``{"b64": ...}`` for DT_STRING, whole numbers within range
for integers, numbers that fit for floats, true/false for DT_BOOL). Errors are 400
:class:`~ncf.serve.session.ServingError` s with TF Serving's wording (a string holding a lone
surrogate, which JSON can escape but UTF-8 cannot hold, is one too); echoed JSON is cut to
:data:`ECHO_CHARS` characters, and nesting deeper than :data:`MAX_RANK` is refused.
"""

from __future__ import annotations

import base64
import binascii
import json
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


def is_b64(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


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
        flat = value if dtype.kind != "O" else [utf8(v) for v in value]
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
        out.append(scalar(value, dtype))
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


def scalar(value: Any, dtype: np.dtype) -> Any:
    """One JSON scalar as a value of ``dtype`` (bytes for strings); type-checked."""
    if dtype.kind == "O":
        if type(value) is str:  # the common case first
            return utf8(value)
        if isinstance(value, dict):
            if not is_b64(value):
                raise bad(f"JSON Value: {echo(value)} not formatted correctly for base64 data")
            try:
                return base64.b64decode(value["b64"], validate=True)
            except (binascii.Error, ValueError):
                raise bad("Unable to base64 decode") from None
        raise _mismatch(value, dtype)
    if dtype == np.bool_:
        if not isinstance(value, bool):
            raise _mismatch(value, dtype)
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _mismatch(value, dtype)
    if dtype in INT_RANGES:
        low, high = INT_RANGES[dtype]
        if not isinstance(value, int) or not low <= value <= high:
            raise _mismatch(value, dtype)
        return value
    if dtype not in FLOAT_INT_MAX:
        raise ServingError(501, f"Conversion of JSON Value: {echo(value)} to type: {dtype}")
    limit = FLOAT_INT_MAX[dtype]
    lossy = abs(value) > limit if isinstance(value, int) else _out_of_float_range(value, dtype)
    if lossy:
        name = TYPE_NAMES[dtype]
        raise bad(f"Cannot convert JSON value: {echo(value)} to {name} without loss of precision.")
    return value


def utf8(text: str) -> bytes:
    """``text`` as UTF-8; a lone surrogate (JSON's ``"\\udfff"`` escape, which has no UTF-8
    form) is the client's mistake: a 400 naming it."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = f"\\u{ord(text[exc.start]):04x}"
        raise bad(
            f"JSON Value: {echo(text)} is not valid Unicode text: it holds a lone surrogate "
            f"({code}), which has no UTF-8 form; send UTF-8 text, or the bytes as "
            '{"b64": "..."}'
        ) from None


def _mismatch(value: Any, dtype: np.dtype) -> ServingError:
    name = TYPE_NAMES.get(dtype, str(dtype))
    return bad(
        f"JSON Value: {echo(value)} Type: {json_type(value)} is not of expected type: {name}"
    )


def _out_of_float_range(value: float, dtype: np.dtype) -> bool:
    if value != value or value in (float("inf"), float("-inf")):
        return False
    return abs(value) > float(np.finfo(dtype).max)

"""Typed columns of an interaction table: finite numbers and timestamps in unix seconds.

Each function takes a raw column and ``where``, which turns a 0-based row into the place a
message names (``"<file> line 12"``, ``"<file> row 3"``), and raises a
:class:`~ncf.errors.DataError` naming the first bad value.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from ncf.errors import DataError, shown

MAX_TIMESTAMP = 2**53  # float64 holds every integer up to here exactly


def numbers(column: pd.Series, key: str, where: Callable[[int], str]) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        values = column.to_numpy(np.float64, na_value=np.nan)
    else:
        values = pd.to_numeric(column, errors="coerce").to_numpy(np.float64, na_value=np.nan)
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(f"{where(row)}: {key} {shown(column.iloc[row])} is not a number")
    return values


def timestamps(column: pd.Series, where: Callable[[int], str]) -> np.ndarray:
    """Unix seconds (int64) from numbers, datetimes or ISO 8601 datetime strings."""
    if pd.api.types.is_datetime64_any_dtype(column):
        return _unix_seconds(column, where)
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        return _in_range(numbers(column, "timestamp", where), column, where)
    parsed = pd.to_numeric(column, errors="coerce").to_numpy(np.float64, na_value=np.nan)
    if np.isfinite(parsed).all():
        return _in_range(parsed, column, where)
    dates = pd.to_datetime(column, format="ISO8601", utc=True, errors="coerce")
    if np.isfinite(parsed[0]) or dates.isna().all():
        row = int(np.argmax(~np.isfinite(parsed) if np.isfinite(parsed[0]) else dates.isna()))
        raise DataError(
            f"{where(row)}: timestamp {shown(column.iloc[row])} is not a number "
            f"(unix seconds) or an ISO 8601 datetime"
        )
    return _unix_seconds(dates, where)


def _in_range(values: np.ndarray, column: pd.Series, where: Callable[[int], str]) -> np.ndarray:
    """Finite timestamps as int64, or a DataError naming the first one beyond ±2**53."""
    outside = np.abs(values) > MAX_TIMESTAMP
    if outside.any():
        row = int(np.argmax(outside))
        raise DataError(
            f"{where(row)}: timestamp {shown(column.iloc[row])} is out of range: use unix seconds "
            "(milliseconds or microseconds work too; the limit is ±2**53)"
        )
    return values.astype(np.int64)


def _unix_seconds(dates: pd.Series, where: Callable[[int], str]) -> np.ndarray:
    if dates.dt.tz is None:
        dates = dates.dt.tz_localize("UTC")
    missing = dates.isna().to_numpy()
    if missing.any():
        row = int(np.argmax(missing))
        raise DataError(f"{where(row)}: timestamp is missing or not an ISO 8601 datetime")
    seconds = (dates - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
    return seconds.to_numpy(np.int64)

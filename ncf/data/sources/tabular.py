"""CSV and Parquet interaction files (``data.source: csv`` / ``parquet``), and the fast
delimited-file reader that the MovieLens and NCF sources share.

Format: one interaction per row. ``data.columns`` says which column holds the user id, the
item id and, optionally, the rating and the timestamp: column names when the file has a
header row (``data.header: true``), or 0-based positions when it has none. CSV fields are
separated by ``data.separator`` (the two characters ``\\t`` mean a tab; a separator of
several characters, such as MovieLens' ``::``, is supported too). The file is UTF-8, with or
without a byte-order mark, and may have Windows (CRLF) line endings.

Ids are kept as text, exactly as written (``"007"`` and ``"7"`` are different users, and so
are ``" 7"`` and ``"7"``: nothing is stripped; for a file written as ``1, 2, 5`` set
``data.separator: ", "``). An id that is empty or only spaces is an error. Every row must
have as many fields as the header (or the first line): a row with extra or missing fields is
an error naming its line (:mod:`ncf.data.sources.fields`). Ratings must be finite numbers.
Timestamps are numbers (unix seconds, or any sortable integer, within ±2**53 so that they are
exact: seconds, milliseconds or microseconds) or ISO 8601 datetimes such as ``2021-03-04`` or
``2021-03-04T10:00:00+01:00``, which are converted to unix seconds (UTC; a datetime without a
zone is read as UTC). A value that is not a number is an error naming the file, the 1-based
line (the header counts) and the column; Parquet errors name the 1-based row instead.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ncf.config import DataConfig
from ncf.data.interactions import RawData
from ncf.data.sources.fields import check_field_counts, check_width
from ncf.data.sources.values import MAX_TIMESTAMP, numbers, timestamps
from ncf.errors import DataError, shown

KEYS = ("user", "item", "rating", "timestamp")
_UNIT_SEP = "\x1f"  # stands in for multi-character separators, so pandas' C engine can read them

Columns = Mapping[str, "str | int | None"]


def read_csv_source(config: DataConfig) -> RawData:
    """``data.source: csv``: the file at ``data.path`` read with ``data.columns``."""
    path = require_file(config.path, "a CSV file of interactions")
    frame = read_delimited(
        path, sep=config.separator, header=config.header, columns=config.columns.model_dump()
    )
    return RawData(frame=frame, description=f"{path} (csv)")


def read_parquet_source(config: DataConfig) -> RawData:
    """``data.source: parquet``: the file at ``data.path`` read with ``data.columns``."""
    import pyarrow.parquet as pq

    path = require_file(config.path, "a Parquet file of interactions")
    try:
        schema = pq.read_schema(path)
        names: list[str | int] = list(schema.names)
        labels = _resolve_columns(config.columns.model_dump(), names, path, header=True)
        _check_flat(schema, labels, path)
        raw = pd.read_parquet(path, columns=list(dict.fromkeys(str(v) for v in labels.values())))
    except (OSError, pa.ArrowException) as exc:
        raise DataError(
            f"{path}: cannot read it as Parquet ({exc}); is data.source right?"
        ) from None
    table = {key: raw[label] for key, label in labels.items()}
    frame = _normalise(table, path, lambda row: f"{path} row {row + 1}")
    return RawData(frame=frame, description=f"{path} (parquet)")


def _check_flat(schema: pa.Schema, labels: dict[str, str | int], path: Path) -> None:
    """Refuse a configured Parquet column of lists, structs or maps: one value per row only."""
    wanted = {
        "user": "user id (text or a whole number)",
        "item": "item id (text or a whole number)",
        "rating": "rating (a number)",
        "timestamp": "timestamp (a number or a datetime)",
    }
    for key, label in labels.items():
        kind = schema.field(str(label)).type
        if pa.types.is_nested(kind):
            raise DataError(
                f"{path}: column {label!r} (data.columns.{key}) holds {kind} values, but each "
                f"row needs one {wanted[key]}; point data.columns.{key} at such a column"
            )


def require_file(path: str | Path | None, what: str) -> Path:
    """``data.path`` as an existing file, or a DataError saying what to point it at."""
    if path is None:
        raise DataError(f"data.path is not set: point it at {what}")
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: is a folder, but data.path must be {what}")
    if not path.is_file():
        raise DataError(f"{path}: file not found; check data.path (it should be {what})")
    return path


def read_delimited(
    path: Path,
    *,
    sep: str,
    header: bool,
    columns: Columns,
    encoding: str = "utf-8-sig",
    integer_ids: bool = False,
    quoting: int = csv.QUOTE_MINIMAL,
    hint: str = "set data.columns.{key} to one of them",
) -> pd.DataFrame:
    """Read a delimited interaction file into the RawData frame (see the module docstring).

    ``columns`` maps user/item/rating/timestamp to a column name or 0-based position (None
    skips it). ``integer_ids`` reads ids as integers first (several times faster on large
    files; for files whose ids are known to be integers). ``hint`` ends the message about a
    missing column; ``{key}`` is replaced by the key.
    """
    sep = "\t" if sep == "\\t" else sep
    if not sep:
        raise DataError(f"{path}: data.separator is empty; use ',' or '\\t'")
    check_width(path, sep)  # before pandas parses the header: millions of columns take minutes
    names = _header_names(path, sep, header, encoding)
    labels = _resolve_columns(columns, names, path, header, hint)
    check_field_counts(path, sep, header, encoding, quoting)
    try:
        table = _read_fast(path, sep, header, labels, encoding, integer_ids, quoting)
    except (ValueError, OverflowError):
        table = None  # a malformed value: the slow path below finds and names it
    if table is not None and _is_clean(table):  # an id can still hold a NUL: name its line
        return _normalise(table, path, _line_locator(path, header))
    raw = _read(path, sep, header, dict.fromkeys(labels.values(), str), encoding, quoting)
    table = {key: raw[label] for key, label in labels.items()}
    return _normalise(table, path, _line_locator(path, header))


def _read(
    path: Path, sep: str, header: bool, dtypes: dict, encoding: str, quoting: int
) -> pd.DataFrame:
    return read_table(
        path,
        sep,
        encoding,
        header=0 if header else None,
        usecols=list(dtypes),
        dtype=dtypes,
        quoting=quoting,
    )


def _header_names(path: Path, sep: str, header: bool, encoding: str) -> list[str | int]:
    rows = 0 if header else 1
    head = read_table(path, sep, encoding, header=0 if header else None, nrows=rows, head=True)
    return [str(c) for c in head.columns] if header else list(range(head.shape[1]))


def read_table(path: Path, sep: str, encoding: str, head: bool = False, **kwargs) -> pd.DataFrame:
    """``pd.read_csv`` (C engine, no NA guessing), every failure a DataError naming ``path``.

    A separator of several characters is replaced by one control character first, so the C
    engine reads it (the python engine is far slower); ``head`` reads only the first 1 MiB.
    """
    source: Path | io.BytesIO = path
    if len(sep) > 1:
        with path.open("rb") as fh:
            data = fh.read(1 << 20) if head else fh.read()
        plain = encoding.removesuffix("-sig")
        source = io.BytesIO(data.replace(sep.encode(plain), _UNIT_SEP.encode(plain)))
        sep = _UNIT_SEP
    options: dict[str, Any] = {"keep_default_na": False, "skipinitialspace": False, "engine": "c"}
    options |= kwargs
    try:
        return pd.read_csv(source, sep=sep, encoding=encoding, **options)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty; expected one interaction per line") from None
    except pd.errors.ParserError as exc:
        detail = str(exc).replace("Error tokenizing data. C error: ", "").strip()
        raise DataError(f"{path}: malformed file ({detail}); check data.separator") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: the file is not {encoding} text; convert it to UTF-8") from None


def _read_fast(
    path: Path,
    sep: str,
    header: bool,
    labels: dict[str, str | int],
    encoding: str,
    integer_ids: bool,
    quoting: int,
) -> dict[str, pd.Series]:
    id_type = np.int64 if integer_ids else str
    kinds = {"user": id_type, "item": id_type, "rating": np.float64, "timestamp": np.float64}
    dtypes = {label: kinds[key] for key, label in labels.items()}
    raw = _read(path, sep, header, dtypes, encoding, quoting)
    return {key: raw[label] for key, label in labels.items()}


def _is_clean(table: dict[str, pd.Series]) -> bool:
    """Whether the fast read has no empty id, no missing or infinite number and no timestamp
    out of range (the slow path names the line of the first one)."""
    for key, column in table.items():
        if key in ("rating", "timestamp"):
            values = column.to_numpy(np.float64)
            if not np.isfinite(values).all():
                return False
            if key == "timestamp" and (np.abs(values) > MAX_TIMESTAMP).any():
                return False
        elif not pd.api.types.is_integer_dtype(column) and (column.str.strip() == "").any():
            return False
    return True


def _resolve_columns(
    columns: Columns, names: list[str | int], path: Path, header: bool, hint: str = ""
) -> dict[str, str | int]:
    """The file's column label for each configured key (user, item, rating?, timestamp?)."""
    labels: dict[str, str | int] = {}
    for key in KEYS:
        col = columns.get(key)
        if col is None:
            continue
        if isinstance(col, int):
            if not 0 <= col < len(names):
                raise DataError(
                    f"{path}: data.columns.{key} is position {col}, but the file has "
                    f"{len(names)} columns (0-based positions 0 to {len(names) - 1})"
                )
            labels[key] = names[col]
        elif not header:
            raise DataError(
                f"{path}: data.columns.{key} is the name {col!r}, but data.header is false; "
                f"give a 0-based position (data.columns.{key}: 0) or set data.header: true"
            )
        elif col not in names:
            shown = ", ".join(repr(n) for n in names[:20]) + (", ..." if len(names) > 20 else "")
            advice = (hint or "set data.columns.{key} to one of them").format(key=key)
            raise DataError(
                f"{path}: no column {col!r} for the {key} (data.columns.{key}); "
                f"the file has columns {shown}; {advice}"
            )
        else:
            labels[key] = col
    return labels


def _normalise(
    table: dict[str, pd.Series], path: Path, where: Callable[[int], str]
) -> pd.DataFrame:
    """Typed RawData columns from raw ones; the first bad value raises, located by ``where``."""
    if len(table["user"]) == 0:
        raise DataError(f"{path}: no interactions in the file (only a header?)")
    out: dict[str, object] = {key: _ids(table[key], key, where) for key in ("user", "item")}
    if "rating" in table:
        out["rating"] = numbers(table["rating"], "rating", where)
    if "timestamp" in table:
        out["timestamp"] = timestamps(table["timestamp"], where)
    return pd.DataFrame(out)


def _ids(column: pd.Series, key: str, where: Callable[[int], str]) -> pd.Series:
    if pd.api.types.is_integer_dtype(column):
        return integers_to_strings(column.to_numpy(np.int64))
    if pd.api.types.is_float_dtype(column):  # Parquet ids stored as floats: 12.0 -> "12"
        values = column.to_numpy(np.float64, na_value=np.nan)
        if np.isfinite(values).all() and (values == np.round(values)).all():
            return integers_to_strings(values.astype(np.int64))
    text = (column.fillna("") if column.hasnans else column).astype(str)
    empty = (text.str.strip().str.len() == 0).to_numpy()
    if empty.any():
        row = int(np.argmax(empty))
        raise DataError(f"{where(row)}: the {key} id is empty; every row needs a {key}")
    text = text.reset_index(drop=True)
    for value in pd.unique(text):  # distinct ids only: far fewer than rows
        if "\x00" in value or "\n" in value or "\r" in value:
            what = "a NUL character" if "\x00" in value else "a line break"
            row = int(np.flatnonzero((text == value).to_numpy())[0])
            raise DataError(
                f"{where(row)}: the {key} id {shown(value)} holds {what}; an id is one line of "
                "text without NUL characters (the run keeps its ids one per line)"
            )
    return text


def _line_locator(path: Path, header: bool) -> Callable[[int], str]:
    """``row -> "<path> line <n>"``: the 1-based line of a data row (header and blank lines count)."""

    def where(row: int) -> str:
        data_row = -1 if header else 0
        with path.open("rb") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip(b"\r\n"):
                    continue
                if data_row == row:
                    return f"{path} line {number}"
                data_row += 1
        return f"{path} line {row + 1 + int(header)}"

    return where


def integers_to_strings(values: np.ndarray) -> pd.Series:
    """Integer ids as a string column (factorise, then format each distinct id once)."""
    codes, uniques = pd.factorize(np.asarray(values))
    return strings_from_codes(codes, np.asarray(uniques).astype(str))


def strings_from_codes(codes: np.ndarray, labels: np.ndarray) -> pd.Series:
    """``labels[codes]`` as a pandas string column, built in Arrow (fast for millions of rows)."""
    table = pa.array(np.asarray(labels, dtype=object), type=pa.string())
    return pd.Series(table.take(pa.array(np.asarray(codes, dtype=np.int64))).to_pandas())

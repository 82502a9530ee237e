"""Every row of a delimited file has as many fields as its first line (the header, if any).

pandas reads only the columns a config asks for and silently drops fields beyond them, so
a row with an extra separator would be read as one interaction without a word. This check
reads the file once more, in 8 MiB blocks, and raises a :class:`~ncf.errors.DataError`
naming the first line (1-based, blank lines counted) whose field count differs. Blank lines
are skipped, as pandas skips them. Unquoted files are counted with numpy (about 0.25 s for a 24 MB file of 1 M rows);
a file with quote characters goes through Python's :mod:`csv` module, which knows that a
quoted separator or line break is part of a field.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ncf.errors import DataError

BLOCK = 8 << 20
_UNIT_SEP = "\x1f"


def check_field_counts(
    path: Path, sep: str, header: bool, encoding: str = "utf-8-sig", quoting: int = 0
) -> None:
    """Raise DataError unless every non-blank line of ``path`` has the first line's field count.

    Args:
        path: the file.
        sep: the field separator (one or several characters).
        header: whether the first line is a header (only used in the message).
        encoding: the file's text encoding.
        quoting: a :mod:`csv` quoting constant; ``csv.QUOTE_NONE`` means quotes are data.
    """
    quoted = quoting != csv.QUOTE_NONE and _contains(path, b'"')
    counts = _csv_counts(path, sep, encoding, quoting) if quoted else _fast_counts(path, sep)
    expected = None
    for line, fields in counts:
        if expected is None:
            expected = fields
        elif fields != expected:
            first = "the header" if header else "the first line"
            raise DataError(
                f"{path} line {line}: {_fields(fields)}, but {first} has {_fields(expected)}; every row "
                f"needs the same fields (data.separator is {sep!r}; quote a field that holds it)"
            )


def _fields(n: int) -> str:
    return f"{n} field" if n == 1 else f"{n} fields"


def _contains(path: Path, needle: bytes) -> bool:
    with path.open("rb") as fh:
        return any(needle in block for block in iter(lambda: fh.read(BLOCK), b""))


def _blocks(path: Path) -> Iterator[bytes]:
    """The file in pieces of about ``BLOCK`` bytes, each ending with a line break."""
    carry = b""
    with path.open("rb") as fh:
        while block := fh.read(BLOCK):
            data = carry + block
            cut = data.rfind(b"\n") + 1
            if cut:
                yield data[:cut]
            carry = data[cut:]
    if carry:
        yield carry + b"\n"


def _fast_counts(path: Path, sep: str) -> Iterator[tuple[int, int]]:
    """``(line number, field count)`` of each non-blank line, counting separators with numpy."""
    sep_bytes = sep.encode()
    byte = sep_bytes[0] if len(sep_bytes) == 1 else ord(_UNIT_SEP)
    lines_before = 0
    for block in _blocks(path):
        if len(sep_bytes) > 1:
            block = block.replace(sep_bytes, _UNIT_SEP.encode())
        data = np.frombuffer(block, dtype=np.uint8)
        ends = np.flatnonzero(data == ord("\n"))
        starts = np.r_[0, ends[:-1] + 1]
        seps = np.flatnonzero(data == byte)  # sorted, like starts and ends
        fields = np.searchsorted(seps, ends) - np.searchsorted(seps, starts) + 1
        length = ends - starts - (data[np.maximum(ends - 1, 0)] == ord("\r"))
        numbers = lines_before + 1 + np.flatnonzero(length > 0)
        kept = fields[length > 0]
        first_odd = np.flatnonzero(kept != kept[0]) if len(kept) else kept
        # only the first line of the block and the first line that differs from it matter
        picks = [0, int(first_odd[0])] if len(first_odd) else [0] if len(kept) else []
        for i in picks:
            yield int(numbers[i]), int(kept[i])
        lines_before += len(ends)


def _csv_counts(path: Path, sep: str, encoding: str, quoting: int) -> Iterator[tuple[int, int]]:
    """``(line number, field count)`` of each record, parsed by the csv module."""
    text = path.read_text(encoding=encoding, errors="replace")
    if len(sep) > 1:
        text, sep = text.replace(sep, _UNIT_SEP), _UNIT_SEP
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep, quoting=quoting)  # type: ignore[arg-type]
    try:
        for row in reader:
            if row:
                yield reader.line_num, len(row)
    except csv.Error as exc:
        raise DataError(f"{path} line {reader.line_num}: malformed CSV ({exc})") from None

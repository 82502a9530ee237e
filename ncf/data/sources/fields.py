"""Every row of a delimited file has as many fields as its first line (the header, if any).

pandas reads only the columns a config asks for and silently drops fields beyond them, so
a row with an extra separator would be read as one interaction without a word. This check
reads the file once more, in 8 MiB blocks, and raises a :class:`~ncf.errors.DataError`
naming the first line (1-based, blank lines counted) whose field count differs. Blank lines
are skipped, as pandas skips them. A record that spans lines because a quote is never
closed is reported at the line where the quote opened. :func:`check_width` refuses a first
line of more than :data:`MAX_FIELDS` fields, to be called before anything parses it. Unquoted files are counted with numpy (about 0.25 s for a 24 MB file of 1 M rows);
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
MAX_FIELDS = 1000  # fields a line of an interaction file may have
_UNIT_SEP = "\x1f"


def check_field_counts(
    path: Path,
    sep: str,
    header: bool,
    encoding: str = "utf-8-sig",
    quoting: int = 0,
    advice: str | None = None,
) -> None:
    """Raise DataError unless every non-blank line of ``path`` has the first line's field count.

    Args:
        path: the file.
        sep: the field separator (one or several characters).
        header: whether the first line is a header (only used in the message).
        encoding: the file's text encoding.
        quoting: a :mod:`csv` quoting constant; ``csv.QUOTE_NONE`` means quotes are data.
        advice: how to fix it, ending the message (default: about data.separator).
    """
    quoted = quoting != csv.QUOTE_NONE and _contains(path, b'"')
    counts = _csv_counts(path, sep, encoding, quoting) if quoted else _fast_counts(path, sep)
    advice = advice or f"data.separator is {sep!r}; quote a field that holds it"
    expected = None
    for line, fields, last in counts:
        if expected is None:
            expected = fields
        elif fields != expected:
            first = "the header" if header else "the first line"
            found = f"{path} line {line}: {_fields(fields)}, but {first} has {_fields(expected)}"
            if last > line:  # a quote opened on this line was closed only on line `last`
                raise DataError(
                    f"{found}: a quoted field starts on this line and runs to line {last}; "
                    'is a closing quote (") missing? Double a quote that is part of a field ("")'
                )
            raise DataError(f"{found}; every row needs the same fields ({advice})")


def check_width(path: Path, sep: str) -> None:
    """Refuse, reading no further than needed, a first line with more than :data:`MAX_FIELDS`
    fields (parsing a header of millions of columns would take minutes)."""
    needle, found = sep.encode(), 0
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            line, newline, _ = block.partition(b"\n")
            found += line.count(needle)
            if found >= MAX_FIELDS or newline:
                break
    if found >= MAX_FIELDS:
        raise DataError(
            f"{path} line 1: more than {MAX_FIELDS} fields (data.separator is {sep!r}); an "
            "interaction file has a user, an item and a few more columns: check "
            "data.separator, or keep only the columns needed"
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


def _fast_counts(path: Path, sep: str) -> Iterator[tuple[int, int, int]]:
    """``(line number, field count, line number)`` of each non-blank line (the first, and the
    first that differs, of each block), counting separators with numpy."""
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
            yield int(numbers[i]), int(kept[i]), int(numbers[i])
        lines_before += len(ends)


def _csv_counts(
    path: Path, sep: str, encoding: str, quoting: int
) -> Iterator[tuple[int, int, int]]:
    """``(first line, field count, last line)`` of each record, parsed by the csv module (a
    record spans several lines when a quoted field holds line breaks, or lacks its closing
    quote)."""
    text = path.read_text(encoding=encoding, errors="replace")
    if len(sep) > 1:
        text, sep = text.replace(sep, _UNIT_SEP), _UNIT_SEP
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep, quoting=quoting)  # type: ignore[arg-type]
    start = 1
    try:
        for row in reader:
            if row:
                yield start, len(row), reader.line_num
            start = reader.line_num + 1
    except csv.Error as exc:
        raise DataError(f"{path} line {start}: malformed CSV ({exc})") from None

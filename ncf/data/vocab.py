"""Vocabulary: raw string ids <-> contiguous int32 indices.

Raw ids are strings at every edge (files, exports, CLI); inside, users and items are
indices ``0..n-1``. The order is deterministic: ids that all look like integers sort
numerically ("2" before "10"), anything else sorts as text. A vocabulary is saved as a
plain text file, one id per line, index = line number, which TensorFlow lookup tables read
directly at export time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ncf.errors import DataError, NcfError, shown
from ncf.io import atomic_write_text

_CONTROL = re.compile("[\n\r\x00]")  # an id is one line of a text file, and NUL-free


@dataclass(frozen=True)
class Vocabulary:
    """An ordered list of unique raw ids; ``index_of`` maps them back."""

    ids: np.ndarray  # [n] of str (object dtype)
    _index: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self._index:
            self._index.update({raw: i for i, raw in enumerate(self.ids.tolist())})
        if len(self._index) != len(self.ids):
            raise DataError(
                "vocabulary ids must be unique (numpy reads an id ending in NUL characters as "
                "the same id without them)"
            )

    @classmethod
    def from_values(cls, values: np.ndarray) -> tuple[Vocabulary, np.ndarray]:
        """Build from raw id values; returns the vocabulary and the int32 index of each value."""
        codes, uniques = pd.factorize(pd.Series(np.asarray(values)).astype(str))
        return cls.from_codes(np.asarray(uniques), codes)

    @classmethod
    def from_codes(cls, uniques: np.ndarray, codes: np.ndarray) -> tuple[Vocabulary, np.ndarray]:
        """From factorised ids: ``uniques[codes]`` are the raw values; only used codes are kept.

        Returns the vocabulary (natural order) and the int32 index of each entry of ``codes``.
        """
        used = np.flatnonzero(np.bincount(codes, minlength=len(uniques)))
        strings = np.asarray(uniques[used]).astype(str)
        order = np.lexsort([strings]) if len(strings) else np.arange(0)
        order = order[_natural_order(strings[order])]
        remap = np.full(len(uniques), -1, dtype=np.int64)
        remap[used[order]] = np.arange(len(order))
        return cls._checked(strings[order]), remap[codes].astype(np.int32)

    @classmethod
    def _checked(cls, ids: np.ndarray) -> Vocabulary:
        bad = [u for u in ids[: min(len(ids), 100_000)] if _CONTROL.search(u)]
        if bad:
            raise DataError(
                f"id {shown(bad[0])} contains a line break or a NUL character; ids must be "
                "single-line text"
            )
        return cls(ids.astype(object))

    def __len__(self) -> int:
        return len(self.ids)

    def index_of(self, raw: str, kind: str = "id") -> int:
        """The index of one raw id; an unknown id is a user mistake."""
        try:
            return self._index[str(raw)]
        except KeyError:
            raise NcfError(f"unknown {kind} {raw!r}: it is not in the training data") from None

    def lookup(self, raws: np.ndarray, default: int = -1) -> np.ndarray:
        """Indices of many raw ids, ``default`` where unknown."""
        get = self._index.get
        return np.fromiter((get(str(r), default) for r in raws), dtype=np.int32, count=len(raws))

    def save(self, path: str | Path) -> None:
        atomic_write_text(Path(path), "".join(f"{raw}\n" for raw in self.ids.tolist()))

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise NcfError(
                f"{path}: vocabulary file not found; is this a complete run directory?"
            ) from None
        return cls(np.array(text.splitlines(), dtype=object))


def _natural_order(unique: np.ndarray) -> np.ndarray:
    """Positions of ``unique`` (sorted strings) in numeric order when every id is an integer."""
    if len(unique) == 0:
        return np.arange(0)
    try:
        as_int = unique.astype(np.int64)
    except (ValueError, OverflowError):
        return np.arange(len(unique))
    if not np.array_equal(as_int.astype(str), unique):  # "007" and "7" must stay distinct
        return np.arange(len(unique))
    return np.argsort(as_int, kind="stable")

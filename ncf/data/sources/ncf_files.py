"""The NCF paper's data files (He et al. 2017; ``data.source: ncf``).

In the folder ``data.path``, with the file prefix ``data.name`` (e.g. ``ml-1m`` or
``pinterest-20``), or without a prefix (plain ``train.rating``, ``test.rating``,
``test.negative``, a common layout). Without ``data.name`` the prefix is found when the
folder holds exactly one set of files, prefixed or plain:

- ``<name>.train.rating``: ``user \\t item \\t rating \\t timestamp``, no header, the
  training interactions; a file of three fields (no timestamp) or two (no rating either)
  is accepted too, and its interactions are unordered in time (validation cases are then
  drawn at random from the seed);
- ``<name>.test.rating``: the same format, one held-out interaction per test user;
- ``<name>.test.negative``: one line per line of ``.test.rating``,
  ``(user,item) \\t neg1 \\t neg2 ...``: the items ranked against that held-out item.

The frame holds the training rows followed by the test rows; ``fixed_split`` holds the test
pairs and their negatives, so the evaluation uses exactly the paper's candidates. When
either rating file lacks timestamps (or ratings), neither is used.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from ncf.config import DataConfig
from ncf.data.interactions import FixedSplit, RawData
from ncf.data.sources.tabular import read_delimited
from ncf.errors import DataError

_POSITIONS = {"user": 0, "item": 1, "rating": 2, "timestamp": 3}


def read_ncf(config: DataConfig) -> RawData:
    """Read ``<name>.train.rating``, ``.test.rating`` and ``.test.negative`` (module docstring)."""
    folder, name = _locate(config)
    train = _ratings(_file(folder, name, "train.rating"))
    test = _ratings(_file(folder, name, "test.rating"))
    negatives = _negatives(_file(folder, name, "test.negative"), test)
    shared = [c for c in train.columns if c in test.columns]
    frame = pd.concat([train[shared], test[shared]], ignore_index=True)
    split = FixedSplit(test=test[["user", "item"]].reset_index(drop=True), negatives=negatives)
    files = _file(folder, name, "{train,test}.rating")
    return RawData(frame=frame, description=f"NCF files {files}", fixed_split=split)


def _file(folder: Path, name: str, suffix: str) -> Path:
    """``folder/<name>.<suffix>``, or ``folder/<suffix>`` for the plain layout (name "")."""
    return folder / (f"{name}.{suffix}" if name else suffix)


def _locate(config: DataConfig) -> tuple[Path, str]:
    if config.path is None:
        raise DataError("data.path is not set: point it at the folder holding <name>.train.rating")
    folder = Path(config.path)
    if not folder.is_dir():
        raise DataError(
            f"{folder}: folder not found; data.path must be the folder holding the NCF files "
            f"(<name>.train.rating, <name>.test.rating, <name>.test.negative)"
        )
    if config.name is not None:
        return folder, config.name
    prefixes = sorted(p.name.removesuffix(".train.rating") for p in folder.glob("*.train.rating"))
    if (folder / "train.rating").is_file():
        prefixes.insert(0, "")
    if len(prefixes) != 1:
        found = ", ".join(f"{p}.train.rating" if p else "train.rating" for p in prefixes)
        raise DataError(
            f"{folder}: set data.name to the file prefix (e.g. ml-1m for ml-1m.train.rating; "
            f"'' for plain train.rating); found: {found or 'no *train.rating file'}"
        )
    return folder, prefixes[0]


def _ratings(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"{path}: file not found; check data.path and data.name (the prefix)")
    fields = _field_count(path)
    if fields < 2:
        raise DataError(
            f"{path}: the first line has {fields} field; expected user, item[, rating[, "
            "timestamp]] separated by tabs"
        )
    return read_delimited(
        path,
        sep="\t",
        header=False,
        columns={key: pos for key, pos in _POSITIONS.items() if pos < fields},
        quoting=csv.QUOTE_NONE,
        hint="expected user, item[, rating[, timestamp]] separated by tabs",
    )


def _field_count(path: Path) -> int:
    """Tab-separated fields on the first non-empty line."""
    with path.open(encoding="utf-8-sig", errors="replace") as fh:
        for line in fh:
            if line.strip():
                return len(line.rstrip("\r\n").split("\t"))
    raise DataError(f"{path}: the file is empty; expected one interaction per line")


def _negatives(path: Path, test: pd.DataFrame) -> list[list[str]]:
    """Parse ``.test.negative``, checking each ``(user,item)`` against ``.test.rating``."""
    if not path.is_file():
        raise DataError(f"{path}: file not found; check data.path and data.name (the prefix)")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(
            f"{path}: the file is not UTF-8 text; is it an NCF .test.negative file?"
        ) from None
    lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if len(lines) != len(test):
        raise DataError(
            f"{path}: {len(lines)} lines, but the .test.rating file has {len(test)}; "
            f"they must match line by line"
        )
    users, items = test["user"].tolist(), test["item"].tolist()
    negatives = []
    for row, (number, line) in enumerate(lines):
        head, *rest = line.split("\t")
        pair = head.strip().removeprefix("(").removesuffix(")").split(",")
        if len(pair) != 2:
            raise DataError(f"{path} line {number}: expected '(user,item)' first, got {head!r}")
        user, item = pair[0].strip(), pair[1].strip()
        if (user, item) != (users[row], items[row]):
            raise DataError(
                f"{path} line {number}: ({user},{item}) does not match test case {row + 1} "
                f"of the .test.rating file ({users[row]},{items[row]})"
            )
        negatives.append([token.strip() for token in rest if token.strip()])
    return negatives

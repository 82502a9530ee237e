"""Top-k for many users at once: ``ncf recommend EXPORT --all|--users FILE --k K --out FILE``.

Users go through the export's ``recommend`` signature ``batch_size`` at a time (every model
type, as served), and the lists are appended to the output as they come, so memory holds
one batch, not the catalogue times the users. The output is long format, one row per
recommendation, best first within each user::

    user_id: string   rank: int32 (1 = best)   item_id: string   score: float32
    known_user: bool  (false: an unknown user, given the most popular items)
    title: string     (when the export has item titles)

Parquet (``.parquet``/``.pq``, one row group per batch) or CSV (``.csv``) by the file's
suffix. The file is written under a temporary name and renamed when complete, so an
interrupted run leaves no partial file. Padding slots (fewer than ``k`` items left after
removing the seen ones) are dropped.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ncf.errors import NcfError
from ncf.io import atomic_path
from ncf.serve.client import Export

FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}


@dataclass(frozen=True)
class BatchResult:
    """What was written: rows, users (of which unknown), seconds."""

    path: Path
    rows: int
    users: int
    unknown_users: int
    seconds: float


def read_users(path: str | Path) -> list[str]:
    """Raw user ids, one per line (blank lines skipped)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise NcfError(f"--users {path}: cannot read it ({exc.strerror or exc})") from None
    users = [line.strip() for line in text.splitlines() if line.strip()]
    if not users:
        raise NcfError(f"--users {path}: no user ids in the file (one per line)")
    return users


def output_format(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise NcfError(f"--out {path}: use a .parquet or .csv file name")
    return FORMATS[suffix]


def recommend_batch(
    export: Export,
    users: list[str],
    k: int | None,
    out: str | Path,
    batch_size: int = 1024,
    progress: bool | None = None,
) -> BatchResult:
    """Write the top-``k`` of every user in ``users`` to ``out`` (see the module docstring)."""
    from tqdm import tqdm

    kind, k = output_format(out), export.check_k(k)
    if batch_size < 1:
        raise NcfError(f"--batch-size {batch_size}: must be at least 1")
    start, rows, unknown = time.perf_counter(), 0, 0
    out = Path(out)
    disable = None if progress is None else not progress  # None: only on a terminal
    bar = tqdm(total=len(users), unit="user", disable=disable, leave=False)
    with atomic_path(out) as tmp, bar:
        writer = _writer(kind, tmp, _schema(export))
        try:
            for table, done, strangers in _tables(export, users, k, batch_size):
                writer.write_table(table)
                rows, unknown = rows + table.num_rows, unknown + strangers
                bar.update(done)
        finally:
            writer.close()
    seconds = time.perf_counter() - start
    return BatchResult(out, rows, len(users), unknown, seconds)


def _schema(export: Export) -> Any:
    import pyarrow as pa

    fields = [
        ("user_id", pa.string()),
        ("rank", pa.int32()),
        ("item_id", pa.string()),
        ("score", pa.float32()),
        ("known_user", pa.bool_()),
    ]
    if export.titles is not None:
        fields.append(("title", pa.string()))
    return pa.schema(fields)


def _tables(
    export: Export, users: list[str], k: int, batch_size: int
) -> Iterator[tuple[Any, int, int]]:
    """(table of one batch, users in it, unknown users in it) per batch of users."""
    import pyarrow as pa

    schema = _schema(export)
    for lo in range(0, len(users), batch_size):
        chunk = users[lo : lo + batch_size]
        out = export.call("recommend", user_id=chunk, k=[k])
        ids, scores, known = out["item_ids"], out["scores"], out["known_user"]  # [B, W]
        keep = ids != b""
        row, col = np.nonzero(keep)
        items = ids[keep]
        columns: dict[str, Any] = {
            "user_id": pa.array(np.asarray(chunk, dtype=object)[row], pa.string()),
            "rank": pa.array((col + 1).astype(np.int32)),
            "item_id": pa.array(items, pa.binary()).cast(pa.string()),
            "score": pa.array(scores[keep].astype(np.float32)),
            "known_user": pa.array(known[row]),
        }
        if export.titles is not None:
            titles = export.titles
            columns["title"] = pa.array([titles.get(i.decode(), "") for i in items], pa.string())
        yield pa.table(columns, schema=schema), len(chunk), int((~known).sum())


def _writer(kind: str, path: Path, schema: Any) -> Any:
    if kind == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetWriter(str(path), schema)
    import pyarrow.csv as pacsv

    return pacsv.CSVWriter(str(path), schema)

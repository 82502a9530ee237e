"""Model calls for ``ncf serve``: a bounded pool of worker threads and request batching.

Requests wait in one queue (at most ``max_queue``; beyond it :meth:`Batcher.submit` raises
a 503 :class:`~ncf.serve.session.ServingError`). Whenever a worker is free it takes the
oldest request and, if its signature is row-wise (:data:`ROW_WISE`), every other waiting
request of the same signature, up to ``max_rows`` rows in all, and runs them as one call:
inputs concatenated along the batch dimension, outputs split back by rows. No request waits
for a batch to fill: under light load each runs alone; under heavy load the batches grow and
the per-call cost is shared (TF Serving's ``--enable_batching`` does the same). Histories
(``recommend_from_history``) of different lengths are padded with ``""`` to be merged.

Merging is invisible to a request (scores may differ in the last bit: a matrix product of
another batch size may sum in another order): the signatures of :data:`ROW_WISE` compute
each row from that row alone; a ``k`` given once for all rows is spread to every row first, and outputs of
rank 2 are cut back to the width the request alone would get (``min(max(k), num_items)``).
If a merged call fails (say one request asked for ``k=0``), each request is run alone, so
only the faulty one gets the error.
"""

from __future__ import annotations

import asyncio
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from ncf.serve.session import ServingError, SessionModel

# Signatures whose output row b depends only on input row b (safe to merge requests).
ROW_WISE = frozenset(
    {
        "serving_default",
        "score",
        "recommend",
        "similar_items",
        "recommend_from_history",
        "explain",
        "score_items_by_features",
    }
)


@dataclass
class Job:
    signature: str
    feeds: dict[str, np.ndarray]
    rows: int  # 0: cannot be merged
    future: asyncio.Future


class Batcher:
    """Runs signatures of ``model`` on ``workers`` threads, merging waiting requests."""

    def __init__(
        self, model: SessionModel, num_items: int, workers: int, max_rows: int, max_queue: int
    ) -> None:
        self.model, self.num_items = model, num_items
        self.max_rows, self.max_queue = max_rows, max_queue
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="ncf-model")
        self.free = workers
        self.queue: deque[Job] = deque()

    @property
    def waiting(self) -> int:
        return len(self.queue)

    async def submit(self, signature: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The outputs of ``signature`` for ``feeds`` (raises :class:`ServingError`)."""
        if len(self.queue) >= self.max_queue:
            raise ServingError(503, f"server busy: {len(self.queue)} requests are waiting; retry")
        future = asyncio.get_running_loop().create_future()
        self.queue.append(Job(signature, feeds, _rows(signature, feeds), future))
        self._dispatch()
        return await future

    def _dispatch(self) -> None:
        loop = asyncio.get_running_loop()
        while self.free and self.queue:
            group = self._take()
            self.free -= 1
            done = loop.run_in_executor(self.pool, self._run, group)
            done.add_done_callback(self._finisher(group))

    def _take(self) -> list[Job]:
        first = self.queue.popleft()
        group, rows, rest = [first], first.rows, deque[Job]()
        while first.rows and self.queue:
            job = self.queue.popleft()
            if job.signature == first.signature and job.rows and rows + job.rows <= self.max_rows:
                group.append(job)
                rows += job.rows
            else:
                rest.append(job)
        self.queue = rest
        return group

    def _finisher(self, group: list[Job]) -> Any:
        return lambda done: self._finish(done, group)

    def _finish(self, done: asyncio.Future, group: list[Job]) -> None:
        self.free += 1
        results = done.result()  # _run never raises: errors come back per job
        for job, result in zip(group, results, strict=True):
            if job.future.done():
                continue  # the client went away
            if isinstance(result, Exception):
                job.future.set_exception(result)
            else:
                job.future.set_result(result)
        self._dispatch()

    def _run(self, group: list[Job]) -> list[Any]:
        """One model call for the group (per job on failure): outputs or the error per job."""
        if len(group) > 1:
            try:
                return self._merged(group)
            except Exception:  # noqa: BLE001 (find the faulty request: run each alone)
                pass
        results: list[Any] = []
        for job in group:
            try:
                results.append(self.model.run(job.signature, job.feeds))
            except Exception as exc:  # reported to that request alone
                results.append(exc)
        return results

    def _merged(self, group: list[Job]) -> list[dict[str, np.ndarray]]:
        names = group[0].feeds
        feeds = {name: concatenate_rows([_spread(j, name) for j in group]) for name in names}
        outputs = self.model.run(group[0].signature, feeds)
        results, start = [], 0
        for job in group:
            width = self._width(job)
            part = {}
            for name, value in outputs.items():
                rows = value[start : start + job.rows]
                part[name] = rows[:, :width] if rows.ndim >= 2 and width is not None else rows
            results.append(part)
            start += job.rows
        return results

    def _width(self, job: Job) -> int | None:
        k = job.feeds.get("k")
        return None if k is None else max(0, min(int(k.max()), self.num_items))

    def shutdown(self) -> None:
        self.pool.shutdown(wait=True)


def _rows(signature: str, feeds: dict[str, np.ndarray]) -> int:
    """Rows of a mergeable request (every input [rows, ...], or a one-value ``k``); else 0."""
    if signature not in ROW_WISE or not feeds:
        return 0
    sizes = {v.shape[0] if v.ndim else -1 for k, v in feeds.items() if not _one_k(k, v)}
    if len(sizes) != 1 or min(sizes) < 1:
        return 0
    rows = sizes.pop()
    k = feeds.get("k")
    if k is not None and (k.ndim != 1 or k.size < 1 or int(k.min()) < 1):
        return 0  # let it fail alone
    return rows


def concatenate_rows(parts: list[np.ndarray]) -> np.ndarray:
    """Rows of several requests as one input; string matrices of different widths (histories)
    are padded with ``b""``, which the signatures ignore."""
    if parts[0].ndim == 2 and parts[0].dtype == object:
        width = max(p.shape[1] for p in parts)
        parts = [np.pad(p, [(0, 0), (0, width - p.shape[1])], constant_values=b"") for p in parts]
    return np.concatenate(parts)


def _one_k(name: str, value: np.ndarray) -> bool:
    return name == "k" and value.ndim == 1 and value.size == 1


def _spread(job: Job, name: str) -> np.ndarray:
    value = job.feeds[name]
    if _one_k(name, value) and job.rows > 1:
        return np.repeat(value, job.rows)
    return value

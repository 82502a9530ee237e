"""Each user's items in time order, cut into next-item training windows (the sequence tower).

A user's sequence is their fit-on interactions in ``(timestamp, item)`` order, as
:class:`~ncf.data.histories.Histories` sorts them (the leave-one-out test item is the one
after the whole sequence). A *window* ending at sorted position ``e`` holds ``L`` input slots
and ``L`` targets, right-aligned (the latest input in the last slot, padding ``N`` on the
left)::

    window  x_k = item[e - L + k]              k = 0 .. L-1  (padding N before the user's start)
    target  y_k = item[e - L + k + 1]                        (-1 where x_k is padding)

so slot ``k`` reads the items up to ``x_k`` (causal attention) and predicts ``y_k``. A user
with ``n`` items has windows ending at ``last, last - L, last - 2L, ...``, ``ceil((n - 1) /
L)`` of them: every interaction but a user's first is a target exactly once an epoch, so a
long history is not cut at ``L``.

Each epoch the windows are put in a fresh order (a stateless shuffle from ``(run.seed,
epoch)``, so a resumed run sees what an uninterrupted one would) and batched by
``train.batch_size``; the last batch is filled with empty windows (no targets), so every
batch has one static shape. Data parallelism takes columns of each global batch, as
:class:`~ncf.data.pipeline.TrainingStream` does. Memory: ``2 L`` int32 per window.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from ncf.config import TrainConfig
from ncf.data.histories import Histories
from ncf.data.pipeline import batched_epoch
from ncf.errors import DataError
from ncf.rng import rng_for


def windows(histories: Histories, length: int) -> tuple[np.ndarray, np.ndarray]:
    """``window, target`` ``[W, L]`` int32: every training window (module docstring)."""
    counts = histories.last - histories.start + 1
    users = np.flatnonzero(counts >= 2)
    per_user = -(-(counts[users] - 1) // length)
    owner = np.repeat(users, per_user)
    first = np.cumsum(per_user) - per_user
    back = np.arange(len(owner)) - np.repeat(first, per_user)
    ends = histories.last[owner].astype(np.int64) - back * length  # each window's last target
    target_at = ends[:, None] - (length - 1) + np.arange(length)[None, :]  # [W, L]
    input_at = target_at - 1
    inside = input_at >= histories.start[owner][:, None]
    window = np.where(inside, histories.item[np.clip(input_at, 0, None)], histories.num_items)
    target = np.where(inside, histories.item[np.clip(target_at, 0, None)], -1)
    return window.astype(np.int32), target.astype(np.int32)


class SequenceStream:
    """The epochs of one training phase of the sequence tower, as ``tf.data`` datasets.

    Args:
        histories: the fit-on interactions in time order.
        length: ``L``, the window.
        config: the batch size.
        seed: the run's seed.
    """

    def __init__(self, histories: Histories, length: int, config: TrainConfig, seed: int) -> None:
        self.window, self.target = windows(histories, length)
        if not len(self.window):
            raise DataError("no user has two train interactions: there is no next item to learn")
        self.config, self.seed, self.length = config, int(seed), int(length)
        self.num_items = histories.num_items

    @property
    def examples_per_epoch(self) -> int:
        """Targets per epoch: every fit-on interaction but each user's first."""
        return int(np.count_nonzero(self.target >= 0))

    @property
    def steps_per_epoch(self) -> int:
        return -(-len(self.window) // self.config.batch_size)

    def dataset(self, epoch: int, shard: int = 0, shards: int = 1) -> tf.data.Dataset:
        """The ``steps_per_epoch`` batches ``({"window", "target"}, zeros)`` of ``epoch``."""
        batch = self.config.batch_size
        order = rng_for(self.seed, "windows", int(epoch)).permutation(len(self.window))
        filler = self.steps_per_epoch * batch - len(order)
        window = np.concatenate(
            [self.window[order], np.full((filler, self.length), self.num_items, np.int32)]
        )
        target = np.concatenate([self.target[order], np.full((filler, self.length), -1, np.int32)])
        return batched_epoch({"window": window, "target": target}, batch, shard, shards)

"""Batches of users for the models that read a user's whole item set (the ``vae`` family).

A training example is a user: the model reads their fit-on items from its own table (filled
by the family's ``prepare``) and learns to give all of them back. Each epoch the users with
at least one fit-on item are put in a fresh order (a stateless shuffle from ``(run.seed,
epoch)``, so a resumed run sees what an uninterrupted one would) and batched by
``train.batch_size``; the last batch is filled with ``-1`` (no user), so every batch has one
static shape. Data parallelism takes columns of each global batch, as
:class:`~ncf.data.pipeline.TrainingStream` does.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from ncf.config import TrainConfig
from ncf.data.pipeline import batched_epoch
from ncf.errors import DataError
from ncf.rng import rng_for


class UserStream:
    """The epochs of one training phase of an item-set model, as ``tf.data`` datasets.

    Args:
        counts: ``[num_users]`` fit-on items of each user.
        config: the batch size.
        seed: the run's seed.
    """

    def __init__(self, counts: np.ndarray, config: TrainConfig, seed: int) -> None:
        counts = np.asarray(counts, np.int64)
        self.users = np.flatnonzero(counts > 0).astype(np.int32)
        if not len(self.users):
            raise DataError("no user has a train interaction: there is nothing to learn")
        self.interactions = int(counts.sum())
        self.config, self.seed = config, int(seed)

    @property
    def examples_per_epoch(self) -> int:
        """Targets per epoch: every fit-on interaction, each once."""
        return self.interactions

    @property
    def steps_per_epoch(self) -> int:
        return -(-len(self.users) // self.config.batch_size)

    def dataset(self, epoch: int, shard: int = 0, shards: int = 1) -> tf.data.Dataset:
        """The ``steps_per_epoch`` batches ``({"members": [B] user ids}, zeros)`` of ``epoch``."""
        batch = self.config.batch_size
        order = rng_for(self.seed, "item-set users", int(epoch)).permutation(len(self.users))
        filler = np.full(self.steps_per_epoch * batch - len(order), -1, np.int32)
        members = np.concatenate([self.users[order], filler])
        return batched_epoch({"members": members}, batch, shard, shards)

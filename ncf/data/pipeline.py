"""The training input pipeline: fresh negatives every epoch, streamed as ``tf.data`` batches.

For each epoch the train positives are shuffled and cut into chunks; each chunk gets its
negatives (``train.num_negatives`` per positive, excluding the user's train positives) in
one vectorised call, is shuffled, and is yielded batch by batch as views of the chunk. So
an epoch never exists in memory whole, and the draws depend only on ``(seed, epoch)``: a
resumed run sees exactly the negatives an uninterrupted one would.

Batch layout:
- ``bce`` (pointwise): ``({"user", "item"}, label)``; label 1 for positives, 0 for negatives.
- ``bpr`` (pairwise): ``({"user", "item", "negative_item"}, 0)``; each positive is repeated
  ``num_negatives`` times, each time with its own negative.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np

from ncf.config import TrainConfig
from ncf.data.negatives import PositiveSet, item_sampler, sample_negatives
from ncf.data.split import Split
from ncf.rng import rng_for

CHUNK_BATCHES = 64


class TrainingStream:
    """Yields one epoch of training batches as dicts of numpy arrays."""

    def __init__(self, split: Split, config: TrainConfig, seed: int) -> None:
        self.split = split
        self.config = config
        self.seed = seed
        self.positives = PositiveSet(
            split.train_user, split.train_item, split.num_users, split.num_items
        )
        counts = None
        if config.negative_sampling == "popularity":
            counts = np.bincount(split.train_item, minlength=split.num_items)
        self.draw = item_sampler(split.num_items, counts, config.popularity_power)
        self.per_positive = (
            1 + config.num_negatives if config.loss == "bce" else config.num_negatives
        )
        self.chunk = CHUNK_BATCHES * config.batch_size  # positives per chunk
        self._sampling_seconds = 0.0

    @property
    def examples_per_epoch(self) -> int:
        return self.split.num_train * self.per_positive

    @property
    def steps_per_epoch(self) -> int:
        full, rest = divmod(self.split.num_train, self.chunk)
        return full * CHUNK_BATCHES * self.per_positive + -(
            -rest * self.per_positive // self.config.batch_size
        )

    def take_sampling_seconds(self) -> float:
        """Seconds spent drawing negatives and shuffling since the last call."""
        seconds, self._sampling_seconds = self._sampling_seconds, 0.0
        return seconds

    def epoch(self, epoch: int) -> Iterator[tuple[dict[str, np.ndarray], np.ndarray]]:
        """All batches of epoch ``epoch`` (0-based); deterministic in ``(seed, epoch)``."""
        rng = rng_for(self.seed, "negatives", int(epoch))
        order = rng.permutation(self.split.num_train)
        size = self.config.batch_size
        for start in range(0, len(order), self.chunk):
            tic = time.perf_counter()
            arrays = self._chunk(order[start : start + self.chunk], rng)
            self._sampling_seconds += time.perf_counter() - tic
            label = arrays.pop("label")
            for b in range(0, len(label), size):
                yield {k: v[b : b + size] for k, v in arrays.items()}, label[b : b + size]

    def _chunk(self, rows: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        user = self.split.train_user[rows]
        item = self.split.train_item[rows]
        k = self.config.num_negatives
        neg_users = np.repeat(user, k)
        negatives = sample_negatives(self.positives, neg_users, rng, self.draw)
        if self.config.loss == "bpr":
            shuffle = rng.permutation(len(neg_users))
            return {
                "user": neg_users[shuffle],
                "item": np.repeat(item, k)[shuffle],
                "negative_item": negatives[shuffle],
                "label": np.zeros(len(neg_users), dtype=np.float32),
            }
        all_users = np.concatenate([user, neg_users])
        all_items = np.concatenate([item, negatives])
        labels = np.concatenate(
            [np.ones(len(user), np.float32), np.zeros(len(neg_users), np.float32)]
        )
        shuffle = rng.permutation(len(all_users))
        return {"user": all_users[shuffle], "item": all_items[shuffle], "label": labels[shuffle]}

    def dataset(self, epoch: int):
        """A ``tf.data.Dataset`` of the batches of one epoch."""
        import tensorflow as tf

        features = {
            "user": tf.TensorSpec([None], tf.int32),
            "item": tf.TensorSpec([None], tf.int32),
        }
        if self.config.loss == "bpr":
            features["negative_item"] = tf.TensorSpec([None], tf.int32)
        signature = (features, tf.TensorSpec([None], tf.float32))
        dataset = tf.data.Dataset.from_generator(
            lambda: self.epoch(epoch), output_signature=signature
        )
        return dataset.prefetch(8)

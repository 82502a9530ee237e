"""The training input pipeline: each epoch's batches computed in the TensorFlow graph.

With ``n`` train positives, ``k = train.num_negatives`` and batch size ``B``, an epoch is
``E = n * m`` example slots, ``m = 1 + k`` (``bce``) or ``m = k`` (``bpr``):

1. the positives are put in a fresh order ``P_e`` (a stateless shuffle);
2. slot ``s`` belongs to positive ``P_e[s // m]``. ``bce``: slot ``s % m == 0`` is the
   positive itself (label 1), the others pair its user with a fresh negative (label 0).
   ``bpr``: every slot is (user, positive, fresh negative), label 0 (unused);
3. slots are taken in blocks of ``CHUNK_BATCHES * B``; each block is shuffled and its
   negatives drawn (:class:`~ncf.data.graph_negatives.GraphNegatives`), in ``tf.data``
   threads that overlap training;
4. the last block is padded with the epoch's first slots so that every batch holds exactly
   ``B`` examples: ``ceil(E / B)`` steps, at most ``B - 1`` examples seen twice per epoch, and
   one static batch shape, so the train step compiles once for the selection and the refit.

Every random choice uses a stateless seed folded from ``(run.seed, epoch)``, the block and
the round: batch ``b`` of epoch ``e`` is a function of ``(seed, e, b)`` alone, so a resumed run
draws what an uninterrupted one would.

Data parallelism (:mod:`ncf.train.distribute`): with ``R`` replicas, replica ``r`` trains on
columns ``[r B/R, (r+1) B/R)`` of each global batch (:meth:`TrainingStream.dataset` with
``shard``). The global batches are the one-process ones, so an epoch covers every
interaction once whatever ``R`` is, and a run can resume on a different number of workers.
Every worker draws the whole block and keeps its columns: the draw is a small part of a
step (the positives are shuffled and the negatives drawn per block of 64 batches).

``softmax`` and ``sampled_softmax`` (the history model) draw no negatives here (``m = 1``):
each slot is a positive with its own history, ``[B, L]`` items of the user up to the
positive's time (:mod:`ncf.data.histories`), cut in the graph from the positive's row.

Batch layout:
- ``bce``: ``({"user": [B] int32, "item": [B] int32}, label [B] float32)``;
- ``bpr``: ``({"user", "item", "negative_item"}, zeros [B])``;
- softmax losses: ``({"user", "item", "history": [B, L]}, zeros [B])``.

Memory, for ``n`` positives: the positives (8 bytes each), the epoch's order (8, plus 4
while it is drawn), the membership test (at most ``max(64 MiB, 32 n)`` bytes, see
:mod:`ncf.data.graph_negatives`) and the blocks in flight (a few MB each): at most
``52 n`` bytes plus a constant, whatever the catalogue.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from ncf.config import TrainConfig
from ncf.data.graph_negatives import GraphNegatives, GraphPositives
from ncf.data.histories import Histories
from ncf.data.split import Split
from ncf.errors import DataError
from ncf.rng import rng_for

CHUNK_BATCHES = 64
# Blocks drawn at once (in tf.data's threads): while the train step uses one block's 64
# batches, the next is drawn. Two batches are buffered ahead of the step.
PARALLEL_BLOCKS = 2
PREFETCH_BATCHES = 2

Batch = tuple[dict[str, tf.Tensor], tf.Tensor]


def fold(seed: tf.Tensor, data: tf.Tensor | int) -> tf.Tensor:
    return tf.random.experimental.stateless_fold_in(seed, data)


def shard_batch(batch: Batch, shard: int, width: int) -> Batch:
    """Columns ``[shard * width, (shard + 1) * width)`` of every tensor of a global batch."""
    start = shard * width
    return tf.nest.map_structure(lambda t: t[start : start + width], batch)


def without_autotune(data: tf.data.Dataset) -> tf.data.Dataset:
    """``data`` with tf.data's autotuner off (the parallelism and buffers set by the caller).

    An autotuned iterator runs a model thread that its destructor joins, and Keras frees an
    epoch's iterator late, in Python's cycle collector. Under load that join waited up to a
    minute per iterator with no CPU used: the test suite lost 665 s of its 2,023 s of worker
    time to it (py-spy and gdb on the stalled workers: ``~RootDataset::Iterator`` waiting in
    ``~LogicalThreadWrapper`` while ``Model::OptimizeLoop`` slept in its timed wait). The
    pipeline's shape is fixed, so there is nothing for the tuner to find.
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return data.with_options(options)


def batched_epoch(
    features: dict[str, np.ndarray], batch: int, shard: int = 0, shards: int = 1
) -> tf.data.Dataset:
    """``(features, zeros)`` in batches of ``batch`` rows (the rows already in the epoch's
    order, a whole number of batches), each replica's columns where ``shards > 1``."""
    rows = len(next(iter(features.values())))
    data = tf.data.Dataset.from_tensor_slices((features, np.zeros(rows, np.float32))).batch(batch)
    if shards > 1:
        width = batch // shards
        if width * shards != batch:
            raise ValueError(f"batch size {batch} is not a multiple of {shards}")
        data = data.map(lambda x, y: shard_batch((x, y), shard, width))
    return without_autotune(data.prefetch(PREFETCH_BATCHES))


class TrainingStream:
    """The epochs of one training phase as ``tf.data`` datasets of fixed-size batches.

    Args:
        split: its ``train_*`` arrays are the positives.
        config: batch size, loss, negatives and their distribution.
        seed: the run's seed.
        histories: the softmax losses: ``split``'s train rows in history order, and
            ``history_length`` the ``L`` of each example's history.
    """

    def __init__(
        self,
        split: Split,
        config: TrainConfig,
        seed: int,
        histories: Histories | None = None,
        history_length: int = 0,
    ) -> None:
        if split.num_train == 0:
            raise DataError("the train split is empty: there is nothing to train on")
        self.split, self.config, self.seed = split, config, int(seed)
        self.softmax = config.loss in ("softmax", "sampled_softmax")
        if self.softmax and (histories is None or history_length <= 0):
            raise ValueError(f"train.loss {config.loss} needs the train rows' histories")
        self.histories, self.history_length = histories, int(history_length)
        self._history_tensors: dict[str, tf.Tensor] | None = None
        self.per_positive = {"bce": 1 + config.num_negatives, "bpr": config.num_negatives}.get(
            config.loss, 1
        )
        self.block = CHUNK_BATCHES * config.batch_size  # example slots per block
        self._tensors: tuple[tf.Tensor, tf.Tensor, GraphNegatives | None] | None = None
        # Traced once per stream, not once per epoch's dataset (that cost ~0.3 s an epoch).
        self._block_fn = tf.function(
            self._block,
            input_signature=[
                tf.TensorSpec([], tf.int64),
                tf.TensorSpec([2], tf.int64),
                tf.TensorSpec([None], tf.int32),
                tf.TensorSpec([None], tf.int32),
                tf.TensorSpec([None], tf.int32),
            ],
        )

    @property
    def examples_per_epoch(self) -> int:
        """Distinct example slots per epoch (the last batch repeats a few of them)."""
        return self.split.num_train * self.per_positive

    @property
    def steps_per_epoch(self) -> int:
        return -(-self.examples_per_epoch // self.config.batch_size)

    def tensors(self) -> tuple[tf.Tensor, tf.Tensor, GraphNegatives | None]:
        """Train users, train items and the negative sampler (built on first use; None for
        the softmax losses, which draw no negatives here)."""
        if self._tensors is None:
            split = self.split
            self._tensors = (
                tf.constant(split.train_user, tf.int32),
                tf.constant(split.train_item, tf.int32),
                None if self.softmax else self._sampler(),
            )
        return self._tensors

    def _sampler(self) -> GraphNegatives:
        split = self.split
        positives = GraphPositives(
            split.train_user, split.train_item, split.num_users, split.num_items
        )
        counts: np.ndarray | None = None
        power = self.config.popularity_power
        if self.config.negative_sampling == "popularity":
            counts = np.bincount(split.train_item, minlength=split.num_items)
        if split.cold_items.size:  # a cold item is never a negative (ncf.data.cold)
            weights = np.ones(split.num_items) if counts is None else counts**power
            weights[split.cold_items] = 0.0
            counts, power = weights, 1.0
        return GraphNegatives(positives, counts, power)

    def epoch_seed(self, epoch: int) -> tf.Tensor:
        """The stateless seed of epoch ``epoch`` (0-based), from the run's seed."""
        pair = rng_for(self.seed, "negatives", int(epoch)).integers(0, 2**31 - 1, size=2)
        return tf.constant(pair, tf.int64)

    def dataset(self, epoch: int, shard: int = 0, shards: int = 1) -> tf.data.Dataset:
        """The ``steps_per_epoch`` batches of epoch ``epoch`` (0-based).

        With ``shards > 1`` each batch is replica ``shard``'s share of the global batch: its
        columns ``[shard * b, (shard + 1) * b)``, ``b = B / shards``. The global batch is the
        one-process batch, so the shards of a step together hold exactly the examples a
        one-process run trains on in that step (see :func:`shard_batch`).
        """
        dataset = self._global(epoch)
        if shards == 1:
            return dataset
        width = self.config.batch_size // shards
        if width * shards != self.config.batch_size:
            raise ValueError(f"batch size {self.config.batch_size} is not a multiple of {shards}")
        return dataset.map(lambda x, y: shard_batch((x, y), shard, width))

    def _global(self, epoch: int) -> tf.data.Dataset:
        users, items, _ = self.tensors()
        seed = self.epoch_seed(epoch)
        order = tf.random.experimental.stateless_shuffle(
            tf.range(self.split.num_train), fold(seed, 0)
        )
        user_by_slot, item_by_slot = tf.gather(users, order), tf.gather(items, order)
        blocks = -(-self.examples_per_epoch // self.block)
        if self.softmax and self._history_tensors is None:
            assert self.histories is not None
            self._history_tensors = self.histories.graph()
        dataset = tf.data.Dataset.range(blocks).map(
            lambda c: self._block_fn(c, seed, user_by_slot, item_by_slot, order),
            num_parallel_calls=PARALLEL_BLOCKS,
            deterministic=True,
        )
        return without_autotune(dataset.unbatch().prefetch(PREFETCH_BATCHES))

    def _block(
        self,
        c: tf.Tensor,
        seed: tf.Tensor,
        user_by_slot: tf.Tensor,
        item_by_slot: tf.Tensor,
        row_by_slot: tf.Tensor,
    ) -> Batch:
        """Block ``c``'s batches, ``[batches, B]`` each: shuffled slots and fresh negatives;
        ``*_by_slot`` are the positives (and their train rows) in the epoch's order."""
        total, batch, block = self.examples_per_epoch, self.config.batch_size, self.block
        start = c * block
        count = tf.minimum(tf.constant(block, tf.int64), total - start)
        block_seed = fold(seed, c + 1)
        slots = start + tf.random.experimental.stateless_shuffle(
            tf.range(count, dtype=tf.int64), fold(block_seed, 0)
        )
        padding = -(-count // batch) * batch - count  # wrap to the epoch's first slots
        slots = tf.concat([slots, tf.range(padding, dtype=tf.int64) % total], axis=0)
        positive, kind = slots // self.per_positive, slots % self.per_positive
        user, item = tf.gather(user_by_slot, positive), tf.gather(item_by_slot, positive)
        negative_seed = fold(block_seed, 1)
        if self.softmax:
            assert self.histories is not None and self._history_tensors is not None
            rows = tf.gather(row_by_slot, positive)
            history = self.histories.window(self._history_tensors, rows, user, self.history_length)
            features = {
                "user": tf.reshape(user, [-1, batch]),
                "item": tf.reshape(item, [-1, batch]),
                "history": tf.reshape(history, [-1, batch, self.history_length]),
            }
            return features, tf.zeros(tf.shape(features["user"]), tf.float32)
        negatives = self.tensors()[2]
        assert negatives is not None
        if self.config.loss == "bpr":
            features = {
                "user": user,
                "item": item,
                "negative_item": negatives.sample(user, negative_seed),
            }
            label = tf.zeros(tf.shape(user), tf.float32)
        else:
            wanted = tf.where(kind > 0)[:, 0]
            drawn = negatives.sample(tf.gather(user, wanted), negative_seed)
            item = tf.tensor_scatter_nd_update(item, wanted[:, None], drawn)
            features, label = {"user": user, "item": item}, tf.cast(kind == 0, tf.float32)
        return {k: tf.reshape(v, [-1, batch]) for k, v in features.items()}, tf.reshape(
            label, [-1, batch]
        )

"""Training negatives drawn in the TensorFlow graph, from stateless seeds.

A negative for user ``u`` is an item ``u`` has no train interaction with. Items are drawn
uniformly, or proportionally to ``count(i) ** power`` with Walker's alias table (one uniform
slot and one uniform coin per draw), and a draw that hits one of ``u``'s positives is
redrawn until none does (rejection sampling: the result is the chosen distribution restricted
to ``u``'s non-positives, as :func:`ncf.data.negatives.sample_negatives` draws in numpy).
Popularity draws fall back to uniform ones after ``POPULARITY_ROUNDS`` rounds, so a user
whose non-positives all have zero weight still gets a negative (the numpy sampler does the
same for its stragglers). Every user must have at least one non-positive item
(:meth:`GraphPositives.check_has_negatives`).

Round ``r`` draws with the seed ``fold_in(seed, r)`` (``tf.random.stateless_*``), so the
result depends on the seed and the users alone: never on threads, on what was drawn before,
or on which worker draws it.

Membership of ``(u, i)`` in the train positives is one lookup in a bitset of
``users x items`` bits when that takes at most ``max(BITSET_FLOOR, BITSET_BYTES_PER_POSITIVE
* n)`` bytes for ``n`` positives (MovieLens-20M: 463 MB, 23 bytes per positive), otherwise a
binary search in the sorted ``u * items + i`` keys (8 bytes per positive). Either way its
memory is at most a fixed multiple of the number of train interactions (plus the floor).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from ncf.data.negatives import alias_table
from ncf.data.pairs import pair_keys
from ncf.errors import DataError

BITSET_BYTES_PER_POSITIVE = 32
BITSET_FLOOR = 1 << 26  # 64 MiB: small catalogues always get the bitset
POPULARITY_ROUNDS = 64
COIN = 1 << 30  # folded into a round's seed for the alias coin


class GraphPositives:
    """The train positives as a tensor membership test.

    Args:
        user, item: int arrays ``[n]``: the train interactions.
        num_users, num_items: sizes of the id spaces.
    """

    def __init__(self, user: np.ndarray, item: np.ndarray, num_users: int, num_items: int) -> None:
        self.num_users, self.num_items = int(num_users), int(num_items)
        self.counts = np.bincount(user, minlength=num_users)
        keys = pair_keys(user, item, num_items)
        bits = self.num_users * self.num_items
        self.bitset: tf.Tensor | None = None
        self.keys: tf.Tensor | None = None
        if bits // 8 + 1 <= max(BITSET_FLOOR, BITSET_BYTES_PER_POSITIVE * len(keys)):
            packed = np.zeros(bits // 8 + 1, dtype=np.uint8)
            np.bitwise_or.at(packed, keys >> 3, np.left_shift(1, keys & 7).astype(np.uint8))
            self.bitset = tf.constant(packed)
        else:
            self.keys = tf.constant(np.unique(keys))

    @property
    def nbytes(self) -> int:
        tensor = self.bitset if self.bitset is not None else self.keys
        assert tensor is not None
        return int(tensor.shape[0]) * tensor.dtype.size

    def check_has_negatives(self) -> None:
        """Raise DataError if a user interacted with every item (no negative exists)."""
        full = np.flatnonzero(self.counts >= self.num_items)
        if len(full):
            raise DataError(
                f"user index {int(full[0])} interacted with every item: no negative exists"
            )

    def contains(self, users: tf.Tensor, items: tf.Tensor) -> tf.Tensor:
        """Bool tensor: is ``(users[j], items[j])`` a train positive?"""
        keys = tf.cast(users, tf.int64) * self.num_items + tf.cast(items, tf.int64)
        if self.bitset is not None:
            byte = tf.gather(self.bitset, keys // 8)
            return (
                tf.bitwise.bitwise_and(tf.bitwise.right_shift(byte, tf.cast(keys % 8, tf.uint8)), 1)
                > 0
            )
        assert self.keys is not None
        pos = tf.minimum(
            tf.searchsorted(self.keys, keys, out_type=tf.int64), tf.size(self.keys, tf.int64) - 1
        )
        return tf.gather(self.keys, pos) == keys


class GraphNegatives:
    """Draws negatives in the graph: ``sample(users, seed) -> items`` (int32, same shape).

    Args:
        positives: the train positives.
        counts: optional ``[num_items]`` train counts: popularity-weighted draws
            ``∝ counts ** power``; None draws uniformly.
        power: the popularity exponent.
    """

    def __init__(
        self, positives: GraphPositives, counts: np.ndarray | None = None, power: float = 0.75
    ) -> None:
        positives.check_has_negatives()
        self.positives = positives
        self.alias: tuple[tf.Tensor, tf.Tensor] | None = None
        if counts is not None:
            weights = np.asarray(counts, dtype=np.float64) ** power
            if weights.sum() <= 0:
                raise DataError(
                    "popularity sampling needs at least one item with a training interaction"
                )
            accept, alias = alias_table(weights)
            self.alias = (tf.constant(accept, tf.float32), tf.constant(alias, tf.int32))

    def draw(self, shape: Any, seed: tf.Tensor, uniform: Any = False) -> tf.Tensor:
        """Items drawn without looking at users (uniform when ``uniform`` is true)."""
        num_items = self.positives.num_items
        slots = tf.random.stateless_uniform(shape, seed, 0, num_items, dtype=tf.int32)
        if self.alias is None:
            return slots
        accept, alias = self.alias
        coin_seed = tf.random.experimental.stateless_fold_in(seed, COIN)
        coin = tf.random.stateless_uniform(shape, coin_seed)
        weighted = tf.where(coin < tf.gather(accept, slots), slots, tf.gather(alias, slots))
        return tf.where(tf.convert_to_tensor(uniform), slots, weighted)

    def sample(self, users: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        """One negative per entry of ``users [K]``; deterministic in ``(users, seed)``."""
        users = tf.reshape(users, [-1])
        items = self.draw(tf.shape(users), tf.random.experimental.stateless_fold_in(seed, 0))
        rejected = tf.where(self.positives.contains(users, items))[:, 0]

        def redraw(round_: tf.Tensor, items: tf.Tensor, rejected: tf.Tensor) -> tuple:
            round_seed = tf.random.experimental.stateless_fold_in(seed, round_)
            fresh = self.draw(tf.shape(rejected), round_seed, round_ > POPULARITY_ROUNDS)
            items = tf.tensor_scatter_nd_update(items, rejected[:, None], fresh)
            still = self.positives.contains(tf.gather(users, rejected), fresh)
            return round_ + 1, items, tf.boolean_mask(rejected, still)

        _, items, _ = tf.while_loop(
            lambda r, i, rejected: tf.size(rejected) > 0,
            redraw,
            (tf.constant(1, tf.int32), items, rejected),
            shape_invariants=(tf.TensorShape([]), items.shape, tf.TensorShape([None])),
        )
        return items

"""Each user's history: the items a history-pooled user tower reads.

The fit-on interactions (train, or train + validation in a refit) are put in order
``(user, timestamp, item)``; without timestamps every item of a user counts as simultaneous.
A *tie group* is a run of one user's interactions with the same timestamp.

- **At serving and evaluation time** a user's history is their ``L`` latest items, most
  recent first (:meth:`Histories.table`: ``[users, L]``, padded with ``num_items``).
- **For a training example** ``(u, i)`` the history is the ``L`` latest of ``u``'s items
  with a timestamp no later than ``i``'s, ``i`` itself excluded
  (:meth:`Histories.window`, in the ``tf.data`` graph). Items of the same timestamp are
  included: the split's held-out case is the user's latest interaction and the model sees
  every earlier (and simultaneous) item when it ranks it, so training asks the same question.
  Without timestamps (or with ``causal=False``) the history is every other item of the
  user, as at evaluation time.

In the sorted order, example ``p`` of user ``u`` reads the positions ``end(p), end(p) - 1, ...``
down to ``start(u)``, skipping ``p``: ``idx_k = end(p) - k - [k >= end(p) - p]`` for
``k = 0 .. L-1``, where ``end(p)`` is the last position of ``p``'s tie group. Memory: three
int32 arrays of the interaction count and one of the user count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ncf.data.pairs import pair_keys


def timestamps_of(
    user: np.ndarray,
    item: np.ndarray,
    known_user: np.ndarray,
    known_item: np.ndarray,
    known_time: np.ndarray | None,
    num_items: int,
) -> np.ndarray | None:
    """The timestamp of each pair ``(user[j], item[j])``, looked up among the distinct pairs
    ``known_*`` (the data's interactions); None where the data has no timestamps."""
    if known_time is None:
        return None
    keys = pair_keys(known_user, known_item, num_items)
    order = np.argsort(keys, kind="stable")
    wanted = pair_keys(user, item, num_items)
    at = np.searchsorted(keys[order], wanted)
    at = np.minimum(at, len(keys) - 1)
    if len(wanted) and not np.array_equal(keys[order][at], wanted):
        raise ValueError("timestamps_of: some pairs are not among the known interactions")
    return np.asarray(known_time)[order][at]


@dataclass(frozen=True)
class Histories:
    """The fit-on interactions in history order (see the module docstring).

    Attributes:
        num_users, num_items: id-space sizes (``num_items`` is the padding id).
        item: ``[n]`` items in ``(user, timestamp, item)`` order.
        position: ``[n]`` the sorted position of each input row.
        end: ``[n]`` per sorted position, the last position of its tie group.
        start: ``[users]`` each user's first sorted position; ``last``: their last (``-1``
            for a user without interactions, so that the window is empty).
    """

    num_users: int
    num_items: int
    item: np.ndarray
    position: np.ndarray
    end: np.ndarray
    start: np.ndarray
    last: np.ndarray

    @classmethod
    def build(
        cls,
        user: np.ndarray,
        item: np.ndarray,
        timestamp: np.ndarray | None,
        num_users: int,
        num_items: int,
        causal: bool = True,
    ) -> Histories:
        user = np.asarray(user, np.int64)
        item = np.asarray(item, np.int64)
        n = len(user)
        time = np.zeros(n, np.int64) if timestamp is None or not causal else timestamp
        order = np.lexsort((item, time, user))
        u, t = user[order], np.asarray(time)[order]
        position = np.empty(n, np.int64)
        position[order] = np.arange(n)
        # a tie group ends where the next row has another user or another time
        group_ends = np.flatnonzero(np.r_[(u[1:] != u[:-1]) | (t[1:] != t[:-1]), True])
        group_of = np.repeat(np.arange(len(group_ends)), np.diff(np.r_[-1, group_ends]))
        counts = np.bincount(u, minlength=num_users)
        start = np.cumsum(counts) - counts
        return cls(
            num_users=int(num_users),
            num_items=int(num_items),
            item=item[order].astype(np.int32),
            position=position.astype(np.int32),
            end=group_ends[group_of].astype(np.int32),
            start=start.astype(np.int32),
            last=(start + counts - 1).astype(np.int32),
        )

    @classmethod
    def of_split(cls, split: Any, interactions: Any, causal: bool = True) -> Histories:
        """The histories of ``split``'s train rows (timestamps from ``interactions``)."""
        timestamp = timestamps_of(
            split.train_user,
            split.train_item,
            interactions.user,
            interactions.item,
            interactions.timestamp,
            split.num_items,
        )
        return cls.build(
            split.train_user, split.train_item, timestamp, split.num_users, split.num_items, causal
        )

    def table(self, length: int) -> np.ndarray:
        """``[users, length]`` int32: each user's ``length`` latest items, most recent first,
        padded with ``num_items``."""
        k = np.arange(length)
        idx = self.last[:, None] - k[None, :]  # [U, L]
        valid = idx >= self.start[:, None]
        return np.where(valid, self.item[np.clip(idx, 0, None)], self.num_items).astype(np.int32)

    def graph(self) -> dict[str, Any]:
        """The arrays :meth:`window` reads, as tensors (build once, reuse every epoch)."""
        import tensorflow as tf

        return {
            name: tf.constant(getattr(self, name), tf.int32)
            for name in ("item", "position", "end", "start")
        }

    def window(self, tensors: dict[str, Any], rows: Any, users: Any, length: int) -> Any:
        """In the graph: ``[B, length]`` histories of the training examples at input ``rows``
        ``[B]`` (their users ``[B]``), target excluded, padded with ``num_items``."""
        import tensorflow as tf

        p = tf.gather(tensors["position"], rows)[:, None]  # [B, 1]
        end = tf.gather(tensors["end"], p[:, 0])[:, None]
        start = tf.gather(tensors["start"], users)[:, None]
        k = tf.range(length, dtype=tf.int32)[None, :]  # [1, L]
        idx = end - k - tf.cast(k >= end - p, tf.int32)  # skip the target's own position
        valid = idx >= start
        items = tf.gather(tensors["item"], tf.maximum(idx, 0))
        return tf.where(valid, items, self.num_items)

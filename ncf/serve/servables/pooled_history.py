"""The servable of a model that reads a user from their latest items (``HistoryModel``,
``SequenceModel``: :class:`~ncf.scorer.PooledHistory`)."""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from ncf.scorer import PooledHistory
from ncf.serve.graph_ops import unit_rows, variable
from ncf.serve.servables.base import Servable


class PooledHistoryServable(Servable):
    """A model that reads users from their latest items (:class:`~ncf.scorer.PooledHistory`):
    a known user is their row of the model's history table; ``recommend_from_history`` reads
    the given items the same way (natively: no fold-in), the list read oldest first, so its last ``L`` items
    are the history, the last one the most recent. Similarity and explanations are cosines
    of the item output embeddings."""

    has_similar = True

    def __init__(self, form: PooledHistory, **common: Any) -> None:
        super().__init__(**common)
        self.model = form.model
        self.unit_items = variable(unit_rows(self.model.item_embeddings()), tf.float32)  # [N, d]
        self.has_explain = self.seen is not None

    def _rows(self, users: tf.Tensor) -> tf.Tensor:
        return self.model.score_all(users)

    def _pairs(self, users: tf.Tensor, items: tf.Tensor) -> tf.Tensor:
        return self.model({"user": users, "item": items}, training=False)

    def _similar(self, items: tf.Tensor) -> tf.Tensor:
        return tf.matmul(tf.gather(self.unit_items, items), self.unit_items, transpose_b=True)

    def _history_rows(self, owner: tf.Tensor, items: tf.Tensor, batch: tf.Tensor) -> tf.Tensor:
        length = self.model.history_length
        # entries come row by row in the request's order: the m-th of a row with c entries
        # is (c - 1 - m) steps from the latest; keep the latest L, most recent first
        counts = tf.math.bincount(owner, minlength=batch, maxlength=batch, dtype=tf.int32)
        first = tf.cumsum(counts, exclusive=True)
        position = tf.range(tf.size(owner), dtype=tf.int32) - tf.gather(first, owner)
        back = tf.gather(counts, owner) - 1 - position
        keep = back < length
        where = tf.stack([tf.boolean_mask(owner, keep), tf.boolean_mask(back, keep)], axis=1)
        history = tf.tensor_scatter_nd_update(
            tf.fill(tf.stack([batch, length]), self.num_items), where, tf.boolean_mask(items, keep)
        )
        return self.model.score_histories(history)

    def _contributions(self, items: tf.Tensor, values: tf.Tensor) -> tf.Tensor:
        return tf.matmul(tf.gather(self.unit_items, items), self.unit_items, transpose_b=True)

"""The servable of ``X[u] @ W`` (:class:`~ncf.scorer.ItemToItem`: item-kNN, EASE, content)."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import tensorflow as tf

from ncf.scorer import ItemToItem
from ncf.serve import history as fold
from ncf.serve.graph_ops import (
    csr_variables,
    dense_rows,
    expand_rows,
    sparse_product_pairs,
    sparse_product_rows,
    unit_rows,
    variable,
)
from ncf.serve.servables.base import NEG_INF, Servable


class ItemToItemServable(Servable):
    """``X[u] @ W`` (:class:`~ncf.scorer.ItemToItem`): item-kNN (W = S^T, sparse) or EASE
    (W = B, dense). ``similar_items`` reads rows of the form's ``similarity`` (sparse: entries
    not stored are padding)."""

    has_explain = True

    def __init__(self, form: ItemToItem, **common: Any) -> None:
        super().__init__(**common)
        self.interactions = csr_variables(sp.csr_matrix(form.interactions))  # X [users, items]
        self.sparse = sp.issparse(form.weights)
        if self.sparse:
            self.weights: Any = csr_variables(sp.csr_matrix(form.weights))
        else:
            self.weights = variable(np.asarray(form.weights, np.float32), tf.float32)  # [N, N]
        self.has_similar = form.similarity is not None
        if sp.issparse(form.similarity):
            self.similarity: Any = csr_variables(sp.csr_matrix(form.similarity))
        elif self.has_similar:
            self.similarity = variable(np.asarray(form.similarity, np.float32), tf.float32)
        if form.item_features is not None:
            self.num_features = int(form.item_features.shape[1])
            self.unit_features = variable(unit_rows(form.item_features), tf.float32)  # [N, F]

    def _feature_pairs(self, users: tf.Tensor, features: tf.Tensor) -> tf.Tensor:
        unit = tf.math.l2_normalize(features, axis=1)  # [B, F]
        owner, cols, vals = expand_rows(self.interactions, users)  # the users' items
        cosines = tf.reduce_sum(tf.gather(self.unit_features, cols) * tf.gather(unit, owner), 1)
        return tf.math.unsorted_segment_sum(vals * cosines, owner, tf.size(users))

    def _rows(self, users: tf.Tensor) -> tf.Tensor:
        if self.sparse:
            return sparse_product_rows(self.interactions, self.weights, users, self.num_items)
        return tf.matmul(dense_rows(self.interactions, users, self.num_items), self.weights)

    def _pairs(self, users: tf.Tensor, items: tf.Tensor) -> tf.Tensor:
        if self.sparse:
            return sparse_product_pairs(self.interactions, self.weights, users, items)
        owner, cols, vals = expand_rows(self.interactions, users)  # x_uj for the pair's user
        weights = tf.gather_nd(self.weights, tf.stack([cols, tf.gather(items, owner)], axis=1))
        return tf.math.unsorted_segment_sum(vals * weights, owner, tf.size(users))

    def _similar(self, items: tf.Tensor) -> tf.Tensor:
        if isinstance(self.similarity, tuple):
            return dense_rows(self.similarity, items, self.num_items, NEG_INF)
        return tf.gather(self.similarity, items)

    def _weight_rows(self, items: tf.Tensor) -> tf.Tensor:
        """Rows ``W[items]`` ``[M, N]``."""
        if self.sparse:
            return dense_rows(self.weights, items, self.num_items)
        return tf.gather(self.weights, items)

    def _history_rows(self, owner: tf.Tensor, items: tf.Tensor, batch: tf.Tensor) -> tf.Tensor:
        if self.sparse:  # sum of the history items' rows of W, from their non-zeros only
            entry, cols, vals = expand_rows(self.weights, items)
            where = tf.stack([tf.gather(owner, entry), cols], axis=1)
            return tf.scatter_nd(where, vals, tf.stack([batch, self.num_items]))
        return tf.matmul(fold.indicator(owner, items, batch, self.num_items), self.weights)

    def _user_items(self, users: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        return expand_rows(self.interactions, users)  # the X the scores are computed from

    def _contributions(self, items: tf.Tensor, values: tf.Tensor) -> tf.Tensor:
        parts = values[:, None] * self._weight_rows(items)  # x_uj W[j, :]: parts of the score
        return tf.where(parts > 0, parts, NEG_INF)  # an item that did not raise it: not a reason

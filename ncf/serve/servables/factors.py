"""The servable of ``P[u] . Q[i] + b[i]`` (:class:`~ncf.scorer.Factors`: iALS and other
factorisations)."""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from ncf.scorer import Factors
from ncf.serve import history as fold
from ncf.serve.graph_ops import unit_rows, variable
from ncf.serve.servables.base import Servable


class FactorsServable(Servable):
    """``P[u] . Q[i] + b[i]`` (:class:`~ncf.scorer.Factors`, iALS and other factorisations);
    similar items are the nearest item factors (cosine)."""

    has_similar = True

    def __init__(self, form: Factors, **common: Any) -> None:
        super().__init__(**common)
        self.user_factors = variable(np.asarray(form.user, np.float32), tf.float32)  # [U, d]
        self.item_factors = variable(np.asarray(form.item, np.float32), tf.float32)  # [N, d]
        bias = np.zeros(len(form.item)) if form.item_bias is None else form.item_bias
        self.item_bias = variable(np.asarray(bias, np.float32), tf.float32)  # [N]
        self.unit_items = variable(unit_rows(form.item), tf.float32)
        self.fold_in = (float(form.l2), float(form.alpha))
        self.has_explain = self.seen is not None

    def _rows(self, users: tf.Tensor) -> tf.Tensor:
        users = tf.gather(self.user_factors, users)
        return tf.matmul(users, self.item_factors, transpose_b=True) + self.item_bias[None, :]

    def _pairs(self, users: tf.Tensor, items: tf.Tensor) -> tf.Tensor:
        p, q = tf.gather(self.user_factors, users), tf.gather(self.item_factors, items)
        return tf.reduce_sum(p * q, axis=1) + tf.gather(self.item_bias, items)

    def _similar(self, items: tf.Tensor) -> tf.Tensor:
        return tf.matmul(tf.gather(self.unit_items, items), self.unit_items, transpose_b=True)

    def _history_rows(self, owner: tf.Tensor, items: tf.Tensor, batch: tf.Tensor) -> tf.Tensor:
        x = fold.indicator(owner, items, batch, self.num_items)
        users = fold.ridge_fold_in(self.item_factors, x, *self.fold_in)  # [B, d]
        return tf.matmul(users, self.item_factors, transpose_b=True) + self.item_bias[None, :]

    def _contributions(self, items: tf.Tensor, values: tf.Tensor) -> tf.Tensor:
        return tf.matmul(tf.gather(self.unit_items, items), self.unit_items, transpose_b=True)

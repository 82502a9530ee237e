"""The servable of ``S[u] @ X`` (:class:`~ncf.scorer.UserToUser`: user-kNN)."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import tensorflow as tf

from ncf.scorer import UserToUser
from ncf.serve.graph_ops import (
    csr_variables,
    expand_rows,
    sparse_product_pairs,
    sparse_product_rows,
    variable,
)
from ncf.serve.servables.base import NEG_INF, Servable


class UserToUserServable(Servable):
    """``S[u] @ X`` (:class:`~ncf.scorer.UserToUser`, user-kNN); no item similarity."""

    def __init__(self, form: UserToUser, **common: Any) -> None:
        super().__init__(**common)
        x = sp.csr_matrix(form.interactions, dtype=np.float32)
        self.similarity = csr_variables(sp.csr_matrix(form.similarity))
        self.interactions = csr_variables(x)
        self.by_item = csr_variables(x.T.tocsr())  # X^T [items, users]
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
        self.user_norms = variable(norms, tf.float32)  # [U]
        self.neighbours = min(int(form.neighbours), x.shape[0])
        self.shrinkage = float(form.shrinkage)

    def _rows(self, users: tf.Tensor) -> tf.Tensor:
        return sparse_product_rows(self.similarity, self.interactions, users, self.num_items)

    def _history_rows(self, owner: tf.Tensor, items: tf.Tensor, batch: tf.Tensor) -> tf.Tensor:
        num_users = tf.size(self.user_norms)
        entry, users, vals = expand_rows(self.by_item, items)  # who else has each item
        dots = tf.scatter_nd(  # <x_h, x_v> [B, U]
            tf.stack([tf.gather(owner, entry), users], axis=1), vals, tf.stack([batch, num_users])
        )
        count = tf.math.unsorted_segment_sum(tf.ones_like(items, tf.float32), owner, batch)
        denom = tf.sqrt(count)[:, None] * self.user_norms[None, :] + self.shrinkage
        sims = tf.math.divide_no_nan(dots, denom)
        sims = tf.where(sims > 0, sims, NEG_INF)
        top, who = tf.math.top_k(sims, self.neighbours)  # [B, n]
        top = tf.where(top > NEG_INF, top, 0.0)
        entry, cols, vals = expand_rows(self.interactions, tf.reshape(who, [-1]))
        row = entry // self.neighbours
        weight = tf.gather(tf.reshape(top, [-1]), entry) * vals
        return tf.scatter_nd(
            tf.stack([row, cols], axis=1), weight, tf.stack([batch, self.num_items])
        )

    def _pairs(self, users: tf.Tensor, items: tf.Tensor) -> tf.Tensor:
        return sparse_product_pairs(self.similarity, self.interactions, users, items)

"""The servable of one item score for everyone (:class:`~ncf.scorer.ItemPrior`: popularity)."""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from ncf.scorer import ItemPrior
from ncf.serve.graph_ops import variable
from ncf.serve.servables.base import Servable


class ItemPriorServable(Servable):
    """The same item scores for everyone (:class:`~ncf.scorer.ItemPrior`, popularity)."""

    def __init__(self, form: ItemPrior, **common: Any) -> None:
        super().__init__(**common)
        self.prior = variable(np.asarray(form.scores, np.float32), tf.float32)

    def _rows(self, users: tf.Tensor) -> tf.Tensor:
        return tf.tile(self.prior[None, :], tf.stack([tf.size(users), 1]))

    def _pairs(self, users: tf.Tensor, items: tf.Tensor) -> tf.Tensor:
        return tf.gather(self.prior, items)

    def _history_rows(self, owner: tf.Tensor, items: tf.Tensor, batch: tf.Tensor) -> tf.Tensor:
        return tf.tile(self.prior[None, :], tf.stack([batch, 1]))

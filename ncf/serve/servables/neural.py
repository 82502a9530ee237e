"""The servable of a Keras ``NCFModel`` (:class:`~ncf.scorer.KerasModel`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from ncf.scorer import KerasModel
from ncf.serve import history as fold
from ncf.serve.graph_ops import unit_rows, variable
from ncf.serve.servables.base import Servable


class NeuralServable(Servable):
    """A Keras ``NCFModel`` (:class:`~ncf.scorer.KerasModel`); similarity is cosine over
    ``item_embeddings()``."""

    has_similar = True

    def __init__(self, form: KerasModel, **common: Any) -> None:
        super().__init__(**common)
        self.model = form.model
        self.unit_items = variable(unit_rows(self.model.item_embeddings()), tf.float32)  # [N, d]
        everyone = np.arange(self.model.num_users, dtype=np.int32)
        self.mean_user = [  # the fold-in's start: the mean training user's tower outputs
            variable(np.mean(np.asarray(part), axis=0), tf.float32)
            for part in self.model.user_parts(everyone)
        ]
        self.has_explain = self.seen is not None
        self.num_features = int(self.model.num_item_features)

    def _feature_pairs(self, users: tf.Tensor, features: tf.Tensor) -> tf.Tensor:
        return self.model.score_by_features(users, features)

    def _rows(self, users: tf.Tensor) -> tf.Tensor:
        # score_all sizes its item chunks for an unknown batch as if it were 1024 users; one
        # user (the latency-critical case) gets a static batch of 1 and a single block.
        return tf.cond(
            tf.size(users) == 1,
            lambda: self.model.score_all(tf.reshape(users, [1])),
            lambda: self.model.score_all(users),
        )

    def _pairs(self, users: tf.Tensor, items: tf.Tensor) -> tf.Tensor:
        return self.model({"user": users, "item": items}, training=False)

    def _similar(self, items: tf.Tensor) -> tf.Tensor:
        return tf.matmul(tf.gather(self.unit_items, items), self.unit_items, transpose_b=True)

    def _history_rows(self, owner: tf.Tensor, items: tf.Tensor, batch: tf.Tensor) -> tf.Tensor:
        model = self.model
        item_parts = model.item_parts(tf.range(self.num_items, dtype=tf.int32))

        def score(parts: list[tf.Tensor]) -> tf.Tensor:  # [B, N]
            return model.score_parts(parts, item_parts)

        start = [
            tf.tile(m[None], tf.concat([[batch], tf.ones(tf.rank(m), tf.int32)], 0))
            for m in self.mean_user
        ]
        positives = fold.indicator(owner, items, batch, self.num_items)
        return score(fold.fold_in_parts(score, start, positives))

    def _contributions(self, items: tf.Tensor, values: tf.Tensor) -> tf.Tensor:
        return tf.matmul(tf.gather(self.unit_items, items), self.unit_items, transpose_b=True)

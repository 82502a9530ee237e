"""The evaluator's view of a trained :class:`~ncf.models.model.NCFModel` (see :mod:`ncf.scorer`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ncf.scorer import KerasModel, PooledHistory


class NeuralScorer:
    """Numpy in, numpy out, through compiled ``score_items`` / ``score_all`` functions.

    Args:
        model: a built ``NCFModel``.
    """

    def __init__(self, model: Any) -> None:
        import tensorflow as tf

        self.model = model
        self.num_items = int(model.num_items)
        spec_u = tf.TensorSpec([None], tf.int32)
        self._items = tf.function(
            model.score_items, input_signature=[spec_u, tf.TensorSpec([None, None], tf.int32)]
        )
        self._all = tf.function(model.score_all, input_signature=[spec_u])

    def score_items(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self._items(np.asarray(users, np.int32), np.asarray(items, np.int32)).numpy()

    def score_all(self, users: np.ndarray) -> np.ndarray:
        return self._all(np.asarray(users, np.int32)).numpy()

    def serving_form(self) -> KerasModel | PooledHistory:
        if hasattr(self.model, "score_histories"):
            return PooledHistory(self.model)
        return KerasModel(self.model)


def load_keras_model(path: Any) -> Any:
    """A saved ``model.keras`` (any ncf version); the ncf layers are registered on import."""
    import keras

    import ncf.models  # noqa: F401  (registers NCFModel and its layers with Keras)

    return keras.models.load_model(path)

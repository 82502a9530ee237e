"""The user and item towers: an id embedding, optional side features, optional dense layers.

For an id ``u`` with optional side-feature row ``f_u`` (a fixed float matrix, e.g. genre
multi-hot), the tower computes

    e_u = E[u]                                   # id embedding, E ~ N(0, 0.01^2) (He et al. 2017)
    x_u = e_u                                    # without side features
    x_u = [e_u ; W_f f_u + b_f]                  # with side features: projection, then concat
    t_u = D_L(... D_1(x_u))                      # tower_layers: Dense + ReLU + dropout each

When side features are given but no tower layers, a linear ``Dense(embedding_dim)`` maps
``x_u`` back to ``embedding_dim`` so that a tower's output size never depends on whether the
data has side features (the dot/GMF heads need equal user and item sizes).

The side-feature matrix is stored as a non-trainable weight, not in the layer config, so it
survives ``model.save`` / ``keras.models.load_model`` without bloating the config JSON.

``l2_dense`` on dense kernels is a Keras weight regularizer (it appears in ``model.losses``).
``l2_embedding`` is per example, on the looked-up rows only (``penalty(rows) = λ ||E[id]||²``
per looked-up row, which the model adds to each example's loss): a penalty on the whole table would
give every row a gradient at every step, so a step would cost time proportional to the table.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops


def l2_or_none(strength: float) -> keras.regularizers.Regularizer | None:
    """An L2 weight regularizer, or ``None`` for a zero strength."""
    return keras.regularizers.L2(strength) if strength > 0 else None


@keras.saving.register_keras_serializable(package="ncf")
class Tower(keras.layers.Layer):
    """Maps int ids ``[B]`` to float vectors ``[B, output_dim]``.

    Args:
        num_ids: int. Number of ids (vocabulary size); ids are ``0 .. num_ids - 1``.
        embedding_dim: int. Size of the id embedding.
        hidden_layers: list of int. Sizes of the dense ReLU layers after the embedding.
        dropout: float. Dropout rate after each dense layer (training only).
        l2_embedding: float. Per-example L2 penalty on looked-up rows (see ``penalty``).
        l2_dense: float. L2 penalty on dense kernels.
        num_features: int. Width ``F`` of the side-feature matrix (0: none).
        features: optional float32 array ``[num_ids, F]``: the side-feature matrix. Only its
            shape goes into the config; its values are a non-trainable weight.
        **kwargs: base layer arguments (``name``, ``dtype``...).

    Example:

    ```python
    tower = Tower(num_ids=100, embedding_dim=8, hidden_layers=[16])
    vectors = tower(np.array([0, 5, 7], dtype="int32"))  # [3, 16]
    ```
    """

    def __init__(
        self,
        num_ids: int,
        embedding_dim: int,
        hidden_layers: list[int] | tuple[int, ...] = (),
        dropout: float = 0.0,
        l2_embedding: float = 0.0,
        l2_dense: float = 0.0,
        num_features: int = 0,
        features: np.ndarray | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if features is not None:
            features = np.asarray(features, dtype="float32")
            if features.ndim != 2 or features.shape[0] != num_ids:
                raise ValueError(
                    f"side features must have shape [num_ids={num_ids}, F], got {features.shape}"
                )
            num_features = features.shape[1]
        self.num_ids = int(num_ids)
        self.embedding_dim = int(embedding_dim)
        self.hidden_layers = [int(n) for n in hidden_layers]
        self.dropout = float(dropout)
        self.l2_embedding = float(l2_embedding)
        self.l2_dense = float(l2_dense)
        self.num_features = int(num_features)
        self._initial_features = features

        self.embedding = keras.layers.Embedding(
            self.num_ids,
            self.embedding_dim,
            embeddings_initializer=keras.initializers.RandomNormal(stddev=0.01),
            name="embedding",
        )
        dense_kwargs = {"kernel_regularizer": l2_or_none(self.l2_dense)}
        self.feature_projection: keras.layers.Dense | None = None
        self.feature_mix: keras.layers.Dense | None = None
        if self.num_features:
            self.feature_projection = keras.layers.Dense(
                self.embedding_dim, name="feature_projection", **dense_kwargs
            )
            if not self.hidden_layers:
                self.feature_mix = keras.layers.Dense(
                    self.embedding_dim, name="feature_mix", **dense_kwargs
                )
        self.dense_layers = [
            keras.layers.Dense(units, activation="relu", name=f"dense_{i}", **dense_kwargs)
            for i, units in enumerate(self.hidden_layers)
        ]
        self.dropout_layer = keras.layers.Dropout(self.dropout) if self.dropout else None

    @property
    def output_dim(self) -> int:
        """Size of the vectors this tower returns."""
        return self.hidden_layers[-1] if self.hidden_layers else self.embedding_dim

    def build(self, input_shape: tuple[int | None, ...] = (None,)) -> None:
        if len(input_shape) != 1:
            raise ValueError(f"Tower expects ids of shape [batch], got shape {tuple(input_shape)}")
        self.embedding.build(input_shape)
        width = self.embedding_dim
        if self.feature_projection is not None:
            self.side_features = self.add_weight(
                shape=(self.num_ids, self.num_features),
                initializer="zeros",
                trainable=False,
                name="side_features",
            )
            if self._initial_features is not None:
                self.side_features.assign(self._initial_features)
                self._initial_features = None
            self.feature_projection.build((None, self.num_features))
            width += self.embedding_dim
        if self.feature_mix is not None:
            self.feature_mix.build((None, width))
        for layer in self.dense_layers:
            layer.build((None, width))
            width = layer.units

    def call(self, ids: Any, training: bool | None = None) -> Any:
        return self.embed(ids, training)[0]

    def embed(self, ids: Any, training: bool | None = None) -> tuple[Any, Any]:
        """``(t_u [B, output_dim], e_u [B, embedding_dim])``: the tower's output and the id
        embedding rows it looked up (for the per-example penalty, without a second lookup)."""
        x = rows = self.embedding(ids)  # [B, embedding_dim]
        features = None
        if self.feature_projection is not None:
            features = ops.take(self.side_features, ops.cast(ids, "int32"), axis=0)  # [B, F]
        return self._top(x, features, training), rows

    def from_features(self, features: Any) -> Any:
        """The output ``[B, output_dim]`` for ids unseen in training, from their side-feature
        rows ``[B, F]`` alone: the id embedding is zero (as an id that was never looked up
        would have, had it started at zero)."""
        if self.feature_projection is None:
            raise ValueError(f"{self.name} has no side features")
        features = ops.convert_to_tensor(features, dtype="float32")
        zeros = ops.zeros((ops.shape(features)[0], self.embedding_dim), dtype="float32")
        return self._top(zeros, features, False)

    def _top(self, x: Any, features: Any, training: bool | None) -> Any:
        if features is not None and self.feature_projection is not None:
            x = ops.concatenate([x, self.feature_projection(features)], axis=-1)  # [B, 2 d]
        if self.feature_mix is not None:
            x = self.feature_mix(x)  # [B, d]
        for layer in self.dense_layers:
            x = layer(x)
            if self.dropout_layer is not None:
                x = self.dropout_layer(x, training=training)
        return x

    def penalty(self, rows: Any) -> Any:
        """``l2_embedding · ||e||²`` for each looked-up row ``[B, embedding_dim]`` (from
        :meth:`embed`): ``[B]``, or None when ``l2_embedding`` is zero."""
        if not self.l2_embedding:
            return None
        return self.l2_embedding * ops.sum(ops.square(rows), axis=-1)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (input_shape[0], self.output_dim)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "num_ids": self.num_ids,
                "embedding_dim": self.embedding_dim,
                "hidden_layers": self.hidden_layers,
                "dropout": self.dropout,
                "l2_embedding": self.l2_embedding,
                "l2_dense": self.l2_dense,
                "num_features": self.num_features,
            }
        )
        return config

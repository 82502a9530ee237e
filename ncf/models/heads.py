"""Interaction heads: the score (a logit) of an item vector for a user vector.

With user vectors ``p_u`` and item vectors ``q_i`` from the towers:

- ``mf``    (Rendle et al. 2020, "Neural Collaborative Filtering vs. Matrix Factorization
  Revisited"): ``s = <p_u, q_i> + b_u + b_i + g``.
- ``gmf``   (He et al. 2017, "Neural Collaborative Filtering", eq. 9):
  ``s = h^T (p_u ⊙ q_i) + b``.
- ``mlp``   (He et al. 2017, eq. 10): ``z_1 = [p_u ; q_i]``,
  ``z_l = ReLU(W_l z_{l-1} + b_l)``, ``s = h^T z_L + b``.
- ``neumf`` (He et al. 2017, eq. 11-12), separate GMF vectors ``p^G, q^G`` and MLP vectors
  ``p^M, q^M``: ``s = h^T [p^G_u ⊙ q^G_i ; z_L(p^M_u, q^M_i)] + b``.

Every head takes a flat list of tensors, user and item interleaved:
``[p_u, q_i]`` (gmf, mlp), ``[p_u, q_i, b_u, b_i]`` (mf), ``[p^G_u, q^G_i, p^M_u, q^M_i]``
(neumf), and ``call`` scores aligned pairs (``[B, d]`` each) as logits ``[B]``.
``score_matrix`` takes the same list with ``B`` users and ``N`` items and returns all
``[B, N]`` scores without materialising the pairs where the algebra allows: a matmul for
mf/gmf; for mlp/neumf the first MLP layer splits as ``W [p ; q] = W_p p + W_q q``, so it is
computed once per user and once per item and only the later (small) layers see the pairs.
It runs in two stages that the model's ``score_all`` calls separately, so the per-item work
is done once for a whole catalogue that is then scored in chunks: ``factors(user_parts,
item_parts) -> (user_factors, item_factors)`` (lists of ``[B, ...]`` and ``[N, ...]`` tensors)
and ``from_factors(user_factors, item_factors) -> [B, N]``.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from ncf.models.towers import l2_or_none

Shape = tuple[int | None, ...]


def _check_pairs(name: str, input_shape: list[Shape], count: int, same_width: bool) -> None:
    """Raise ``ValueError`` unless ``input_shape`` is ``count`` rank-2 shapes (pairwise equal widths)."""
    if not isinstance(input_shape, list | tuple) or len(input_shape) != count:
        raise ValueError(f"{name} expects a list of {count} tensors, got {input_shape}")
    for shape in input_shape:
        if len(shape) != 2:
            raise ValueError(f"{name} expects tensors of shape [batch, dim], got {tuple(shape)}")
    if same_width and input_shape[0][-1] != input_shape[1][-1]:
        raise ValueError(
            f"{name} needs user and item vectors of one size, got {input_shape[0][-1]} "
            f"and {input_shape[1][-1]}"
        )


def _dim(shape: Shape) -> int:
    """The (known) last dimension of ``shape``."""
    if shape[-1] is None:
        raise ValueError(f"the last dimension must be known, got shape {tuple(shape)}")
    return int(shape[-1])


def _output_layer(l2_dense: float) -> keras.layers.Dense:
    return keras.layers.Dense(1, kernel_regularizer=l2_or_none(l2_dense), name="output")


class _Factored:
    """``score_matrix`` in two stages (see the module docstring); the default factors are the
    parts themselves, split into the user and the item side."""

    def factors(self, parts: list[Any]) -> tuple[list[Any], list[Any]]:
        return list(parts[0::2]), list(parts[1::2])

    def from_factors(self, users: list[Any], items: list[Any]) -> Any:
        return self.score_matrix([t for pair in zip(users, items, strict=True) for t in pair])

    def score_matrix(self, inputs: list[Any]) -> Any:
        raise NotImplementedError


@keras.saving.register_keras_serializable(package="ncf")
class DotHead(_Factored, keras.layers.Layer):
    """``mf``: dot product plus user, item and global biases (Rendle et al. 2020).

    Args:
        **kwargs: base layer arguments.

    Example:

    ```python
    head = DotHead()
    logits = head([p, q, b_user, b_item])  # p, q: [B, d]; biases: [B] -> [B]
    ```
    """

    def build(self, input_shape: list[Shape]) -> None:
        _check_pairs("DotHead", input_shape[:2], 2, same_width=True)
        if len(input_shape) != 4:
            raise ValueError(
                f"DotHead expects [p_u, q_i, b_u, b_i], got {len(input_shape)} tensors"
            )
        self.global_bias = self.add_weight(shape=(), initializer="zeros", name="global_bias")

    def call(self, inputs: list[Any]) -> Any:
        user, item, user_bias, item_bias = inputs
        return ops.sum(user * item, axis=-1) + user_bias + item_bias + self.global_bias

    def score_matrix(self, inputs: list[Any]) -> Any:
        user, item, user_bias, item_bias = inputs  # [B, d], [N, d], [B], [N]
        scores = ops.matmul(user, ops.transpose(item))  # [B, N]
        return scores + user_bias[:, None] + item_bias[None, :] + self.global_bias


@keras.saving.register_keras_serializable(package="ncf")
class GMFHead(_Factored, keras.layers.Layer):
    """``gmf``: ``h^T (p_u ⊙ q_i) + b`` (He et al. 2017, eq. 9).

    Args:
        l2_dense: float. L2 penalty on ``h``.
        **kwargs: base layer arguments.

    Example:

    ```python
    logits = GMFHead()([p, q])  # [B, d], [B, d] -> [B]
    ```
    """

    def __init__(self, l2_dense: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.l2_dense = float(l2_dense)
        self.output_layer = _output_layer(self.l2_dense)

    def build(self, input_shape: list[Shape]) -> None:
        _check_pairs("GMFHead", input_shape, 2, same_width=True)
        self.output_layer.build(input_shape[0])

    def call(self, inputs: list[Any]) -> Any:
        user, item = inputs
        return ops.squeeze(self.output_layer(user * item), axis=-1)

    def score_matrix(self, inputs: list[Any]) -> Any:
        user, item = inputs  # [B, d], [N, d]
        h = self.output_layer.kernel[:, 0]  # [d]
        return ops.matmul(user * h, ops.transpose(item)) + self.output_layer.bias[0]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "l2_dense": self.l2_dense}


@keras.saving.register_keras_serializable(package="ncf")
class MLPBlock(keras.layers.Layer):
    """The MLP tower of NCF: ``z_l = ReLU(W_l z_{l-1} + b_l)`` over ``z_1 = [p_u ; q_i]``.

    Args:
        layers: list of int. Sizes of the ReLU layers (``mlp_layers[1:]``; may be empty).
        dropout: float. Dropout rate after each layer (training only).
        l2_dense: float. L2 penalty on the kernels.
        **kwargs: base layer arguments.

    Example:

    ```python
    z = MLPBlock([32, 16, 8])([p, q])  # [B, 32], [B, 32] -> [B, 8]
    ```
    """

    def __init__(
        self,
        layers: list[int] | tuple[int, ...] = (),
        dropout: float = 0.0,
        l2_dense: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.layer_sizes = [int(n) for n in layers]
        self.dropout = float(dropout)
        self.l2_dense = float(l2_dense)
        self.dense_layers = [
            keras.layers.Dense(
                n,
                activation="relu",
                kernel_regularizer=l2_or_none(self.l2_dense),
                name=f"dense_{i}",
            )
            for i, n in enumerate(self.layer_sizes)
        ]
        self.dropout_layer = keras.layers.Dropout(self.dropout) if self.dropout else None

    def build(self, input_shape: list[Shape]) -> None:
        _check_pairs("MLPBlock", input_shape, 2, same_width=False)
        self.user_dim = _dim(input_shape[0])
        width = self.user_dim + _dim(input_shape[1])
        for layer in self.dense_layers:
            layer.build((None, width))
            width = layer.units
        self.output_dim = width

    def call(self, inputs: list[Any], training: bool | None = None) -> Any:
        x = ops.concatenate(inputs, axis=-1)  # [B, du + di]
        for layer in self.dense_layers:
            x = layer(x)
            if self.dropout_layer is not None:
                x = self.dropout_layer(x, training=training)
        return x

    def score_matrix(self, inputs: list[Any]) -> Any:
        """All pairs: users ``[B, du]``, items ``[N, di]`` -> ``[B, N, output_dim]``."""
        return self.from_factors(*self.factors(inputs))

    def factors(self, inputs: list[Any]) -> tuple[Any, Any]:
        """The first layer split: ``W_p p + b`` per user ``[B, h1]``, ``W_q q`` per item ``[N, h1]``."""
        user, item = inputs
        if not self.dense_layers:
            return user, item
        first = self.dense_layers[0]
        user_part = ops.matmul(user, first.kernel[: self.user_dim]) + first.bias
        return user_part, ops.matmul(item, first.kernel[self.user_dim :])

    def from_factors(self, user_part: Any, item_part: Any) -> Any:
        """``[B, h1]`` and ``[N, h1]`` factors -> the last layer of every pair ``[B, N, w]``."""
        if not self.dense_layers:
            b, n = ops.shape(user_part)[0], ops.shape(item_part)[0]
            u = ops.broadcast_to(user_part[:, None, :], (b, n, ops.shape(user_part)[1]))
            i = ops.broadcast_to(item_part[None, :, :], (b, n, ops.shape(item_part)[1]))
            return ops.concatenate([u, i], axis=-1)
        x = ops.relu(user_part[:, None, :] + item_part[None, :, :])  # [B, N, h1]
        for layer in self.dense_layers[1:]:
            x = layer(x)
        return x

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {"layers": self.layer_sizes, "dropout": self.dropout, "l2_dense": self.l2_dense}
        )
        return config


@keras.saving.register_keras_serializable(package="ncf")
class MLPHead(MLPBlock):
    """``mlp``: ``h^T z_L + b`` over the MLP tower (He et al. 2017, eq. 10).

    Args: as :class:`MLPBlock`.

    Example:

    ```python
    logits = MLPHead([32, 16, 8])([p, q])  # [B, 32], [B, 32] -> [B]
    ```
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.output_layer = _output_layer(self.l2_dense)

    def build(self, input_shape: list[Shape]) -> None:
        super().build(input_shape)
        self.output_layer.build((None, self.output_dim))

    def call(self, inputs: list[Any], training: bool | None = None) -> Any:
        z = super().call(inputs, training=training)
        return ops.squeeze(self.output_layer(z), axis=-1)

    def score_matrix(self, inputs: list[Any]) -> Any:
        return self.from_factors(*self.factors(inputs))

    def factors(self, inputs: list[Any]) -> tuple[Any, Any]:  # type: ignore[override]
        user, item = super().factors(inputs)
        return [user], [item]

    def from_factors(self, users: Any, items: Any) -> Any:  # type: ignore[override]
        z = super().from_factors(users[0], items[0])  # [B, N, w]
        return ops.squeeze(self.output_layer(z), axis=-1)


@keras.saving.register_keras_serializable(package="ncf")
class NeuMFHead(keras.layers.Layer):
    """``neumf``: ``h^T [p^G ⊙ q^G ; z_L(p^M, q^M)] + b`` (He et al. 2017, eq. 11-12).

    Args:
        layers: list of int. MLP layer sizes (``mlp_layers[1:]``).
        dropout: float. Dropout after each MLP layer.
        l2_dense: float. L2 penalty on dense kernels.
        **kwargs: base layer arguments.

    Example:

    ```python
    logits = NeuMFHead([32, 16, 8])([p_gmf, q_gmf, p_mlp, q_mlp])  # -> [B]
    ```
    """

    def __init__(
        self,
        layers: list[int] | tuple[int, ...] = (),
        dropout: float = 0.0,
        l2_dense: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.mlp = MLPBlock(layers, dropout, l2_dense, name="mlp")
        self.output_layer = _output_layer(l2_dense)

    def build(self, input_shape: list[Shape]) -> None:
        _check_pairs("NeuMFHead", input_shape[:2], 2, same_width=True)
        if len(input_shape) != 4:
            raise ValueError(
                f"NeuMFHead expects [p_gmf, q_gmf, p_mlp, q_mlp], got {len(input_shape)} tensors"
            )
        self.mlp.build(list(input_shape[2:]))
        self.gmf_dim = _dim(input_shape[0])
        self.output_layer.build((None, self.gmf_dim + self.mlp.output_dim))

    def call(self, inputs: list[Any], training: bool | None = None) -> Any:
        user_gmf, item_gmf, user_mlp, item_mlp = inputs
        z = self.mlp([user_mlp, item_mlp], training=training)
        x = ops.concatenate([user_gmf * item_gmf, z], axis=-1)
        return ops.squeeze(self.output_layer(x), axis=-1)

    def score_matrix(self, inputs: list[Any]) -> Any:
        return self.from_factors(*self.factors(inputs))

    def factors(self, inputs: list[Any]) -> tuple[list[Any], list[Any]]:
        """Users ``[h^G ⊙ p^G, W_p p^M + b]``, items ``[q^G, W_q q^M]``."""
        user_gmf, item_gmf, user_mlp, item_mlp = inputs
        h_gmf = self.output_layer.kernel[: self.gmf_dim, 0]
        user_part, item_part = self.mlp.factors([user_mlp, item_mlp])
        return [user_gmf * h_gmf, user_part], [item_gmf, item_part]

    def from_factors(self, users: list[Any], items: list[Any]) -> Any:
        h_mlp = self.output_layer.kernel[self.gmf_dim :, 0]  # [w]
        gmf = ops.matmul(users[0], ops.transpose(items[0]))  # [B, N]
        z = self.mlp.from_factors(users[1], items[1])  # [B, N, w]
        return gmf + ops.matmul(z, h_mlp) + self.output_layer.bias[0]

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "layers": self.mlp.layer_sizes,
                "dropout": self.mlp.dropout,
                "l2_dense": self.mlp.l2_dense,
            }
        )
        return config

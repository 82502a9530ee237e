"""Causal self-attention and the pre-norm transformer block of the sequence tower.

For slots ``z [B, L, d]`` and a mask ``allowed [B, L, L]`` (slot ``q`` may read slot ``k``),
with ``H`` heads of width ``e = d / H``::

    q, k, v = z W_q, z W_k, z W_v                               (one [d, 3d] layer)
    a[b, h, q, k] = softmax_k( <q_q, k_k> / sqrt(e)  (-1e9 where not allowed) )
    attention(z) = concat_h( Σ_k a[b, h, q, k] v_k ) W_o

    block(z) = z + Drop(attention(LN(z)));  block(z) + Drop(FFN(LN(block(z))))
    FFN(x) = W_2 gelu(W_1 x),  W_1 [d, f d], W_2 [f d, d]

(Vaswani et al. 2017; pre-norm as in GPT-2, Radford et al. 2019; for recommendations, SASRec,
Kang & McAuley 2018). A slot that may read nothing (a padding slot) attends uniformly; its
output is never used.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

NEG = -1e9


@keras.saving.register_keras_serializable(package="ncf")
class CausalSelfAttention(keras.layers.Layer):
    """Multi-head self-attention under a mask of allowed (query, key) slot pairs.

    Args:
        dim: int. ``d``, a multiple of ``heads``.
        heads: int. ``H``.
        dropout: float. Dropout on the attention weights (training only).
        seed: int. Seed of the dropout.
        **kwargs: base layer arguments (``name``).

    Example:

    ```python
    layer = CausalSelfAttention(dim=8, heads=2, dropout=0.0, seed=0)
    z = keras.random.normal((3, 5, 8))
    allowed = keras.ops.tril(keras.ops.ones((5, 5), "bool"))[None]  # causal
    out = layer(z, keras.ops.broadcast_to(allowed, (3, 5, 5)))     # [3, 5, 8]
    ```
    """

    def __init__(
        self, dim: int, heads: int = 1, dropout: float = 0.0, seed: int = 0, **kwargs: Any
    ):
        super().__init__(**kwargs)
        if dim <= 0 or heads <= 0 or dim % heads:
            raise ValueError(f"dim ({dim}) must be a positive multiple of heads ({heads})")
        self.dim, self.heads, self.dropout, self.seed = (
            int(dim),
            int(heads),
            float(dropout),
            int(seed),
        )
        self.projection = keras.layers.Dense(3 * self.dim, name="qkv")
        self.output_layer = keras.layers.Dense(self.dim, name="out")
        self.drop = keras.layers.Dropout(self.dropout, seed=self.seed)

    def build(self, input_shape: Any) -> None:
        self.projection.build(input_shape)
        self.output_layer.build(input_shape)
        self.built = True

    def call(self, z: Any, allowed: Any, training: bool | None = None) -> Any:
        batch, length = ops.shape(z)[0], ops.shape(z)[1]
        width = self.dim // self.heads
        qkv = ops.reshape(self.projection(z), (batch, length, 3, self.heads, width))
        query, key, value = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]  # [B, L, H, e]
        scores = ops.einsum("bqhe,bkhe->bhqk", query, key) / float(np.sqrt(width))
        scores = ops.where(allowed[:, None], scores, NEG)
        weights = self.drop(ops.softmax(scores, axis=-1), training=training)
        mixed = ops.einsum("bhqk,bkhe->bqhe", weights, value)
        return self.output_layer(ops.reshape(mixed, (batch, length, self.dim)))

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "dim": self.dim,
            "heads": self.heads,
            "dropout": self.dropout,
            "seed": self.seed,
        }


@keras.saving.register_keras_serializable(package="ncf")
class TransformerBlock(keras.layers.Layer):
    """Pre-norm attention and feed-forward sub-layers, each residual (module docstring).

    Args:
        dim: int. ``d``.
        heads: int. Attention heads.
        expansion: int. ``f``: the feed-forward layer's width is ``f d``.
        dropout: float. Dropout on the attention weights and each sub-layer's output.
        seed: int. Seed of the dropouts.
        **kwargs: base layer arguments (``name``).
    """

    def __init__(
        self, dim: int, heads: int = 1, expansion: int = 1, dropout: float = 0.0, seed: int = 0,
        **kwargs: Any,
    ) -> None:  # fmt: skip
        super().__init__(**kwargs)
        self.dim, self.heads, self.expansion = int(dim), int(heads), int(expansion)
        self.dropout, self.seed = float(dropout), int(seed)
        self.norm_attention = keras.layers.LayerNormalization(epsilon=1e-6, name="norm_attention")
        self.norm_forward = keras.layers.LayerNormalization(epsilon=1e-6, name="norm_forward")
        self.attention = CausalSelfAttention(dim, heads, dropout, seed, name="attention")
        self.expand = keras.layers.Dense(
            self.expansion * self.dim, activation="gelu", name="expand"
        )
        self.contract = keras.layers.Dense(self.dim, name="contract")
        self.drops = [keras.layers.Dropout(self.dropout, seed=self.seed + 1 + j) for j in range(3)]

    def build(self, input_shape: Any) -> None:
        for layer in (self.norm_attention, self.norm_forward, self.attention, self.expand):
            layer.build(input_shape)
        self.contract.build((*tuple(input_shape)[:-1], self.expansion * self.dim))
        self.built = True

    def call(self, z: Any, allowed: Any, training: bool | None = None) -> Any:
        attended = self.attention(self.norm_attention(z), allowed, training=training)
        z = z + self.drops[0](attended, training=training)
        inner = self.drops[1](self.expand(self.norm_forward(z)), training=training)
        return z + self.drops[2](self.contract(inner), training=training)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "dim": self.dim,
            "heads": self.heads,
            "expansion": self.expansion,
            "dropout": self.dropout,
            "seed": self.seed,
        }

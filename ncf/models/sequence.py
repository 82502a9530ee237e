"""A causal self-attention tower over the user's latest items, trained on every position.

``model.type: sequence`` (SASRec, Kang & McAuley 2018, trained with the full softmax as in
"SASRec+", Klenitskiy & Vasilev 2023, or a sampled softmax with the log-Q correction, as
gSASRec trains with many negatives, Petrov & Macdonald 2023). A window is ``L`` item slots in
time order, right-aligned (the latest in slot ``L - 1``, padding ``N = num_items`` on the
left)::

    z_k   = E[x_k] sqrt(d) + P_k                 (0 where x_k is padding), dropout
    z     = block_j(z)  for j = 1 .. blocks      (ncf.models.attention: slot k reads the
                                                  slots <= k that hold an item)
    h_k   = LN(z_k)
    s(k, i) = <h_k, E[i]> + b_i                  (one item table E for input and output)

Training (:meth:`compute_loss`): each window comes with its targets ``y_k``, the item after
slot ``k`` (-1 where there is none); the loss is the mean, over the slots with a target, of
the softmax cross-entropy of ``y_k`` given ``h_k``: every position of every window of the
batch in one ``[B L, d] x [d, N]`` product. Scoring a user: the last slot's ``h`` of their
``L`` latest items, dotted with ``E`` (:meth:`user_vectors`). Like the history tower, the
model holds ``histories`` ``[num_users, L]`` (each user's latest items, most recent first, as
:meth:`ncf.data.histories.Histories.table` gives them), which the training phase fills from
the data it fits on, and :meth:`score_histories` scores anyone given by their items.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from ncf.models.attention import TransformerBlock
from ncf.models.losses import (
    draw_items,
    per_replica_share,
    sampled_softmax_loss,
    softmax_loss,
)
from ncf.models.tables import assign_table

SOFTMAX_LOSSES = ("softmax", "sampled_softmax")
FULL_WHEN_SAMPLED = 3  # sampled_softmax computes the full softmax when S >= N / 3 (cheaper)


@keras.saving.register_keras_serializable(package="ncf")
class SequenceModel(keras.Model):
    """Scores ``s(u, i)`` from the user's latest items in order (see the module docstring).

    Args:
        num_users: int. Rows of the history table.
        num_items: int. ``N``; also the padding id.
        embedding_dim: int. ``d``.
        history_length: int. ``L``.
        blocks: int. Transformer blocks.
        heads: int. Attention heads (``d`` must be a multiple).
        expansion: int. Feed-forward width, in multiples of ``d``.
        dropout: float. Dropout on the input slots, the attention weights and each block's
            sub-layer outputs.
        loss: str. ``"softmax"`` or ``"sampled_softmax"``.
        sampled_items: int. ``S`` for ``sampled_softmax``.
        seed: int. Seed of the initial weights, the dropouts and the sampling generator.
        **kwargs: base model arguments (``name``).

    Example:

    ```python
    model = SequenceModel(num_users=943, num_items=1682, embedding_dim=64, history_length=50)
    model.set_histories(table)  # [943, 50] int32, most recent first, padded with 1682
    top = keras.ops.top_k(model.score_all(np.arange(10, dtype="int32")), k=10)
    ```
    """

    def __init__(
        self,
        num_users: int,
        num_items: int,
        embedding_dim: int = 64,
        history_length: int = 50,
        blocks: int = 2,
        heads: int = 1,
        expansion: int = 1,
        dropout: float = 0.2,
        loss: str = "softmax",
        sampled_items: int = 1024,
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if loss not in SOFTMAX_LOSSES:
            raise ValueError(f"loss must be one of {SOFTMAX_LOSSES}, got {loss!r}")
        self.num_users, self.num_items = int(num_users), int(num_items)
        self.embedding_dim, self.history_length = int(embedding_dim), int(history_length)
        self.num_blocks, self.heads, self.expansion = int(blocks), int(heads), int(expansion)
        self.dropout, self.loss_name = float(dropout), loss
        self.sampled_items, self.seed = int(sampled_items), int(seed)
        d, length = self.embedding_dim, self.history_length
        normal = keras.initializers.TruncatedNormal
        self.item_table = keras.layers.Embedding(
            self.num_items + 1, d, embeddings_initializer=normal(stddev=0.02, seed=seed),
            name="item_table",
        )  # fmt: skip
        self.positions = keras.layers.Embedding(
            length, d, embeddings_initializer=normal(stddev=0.02, seed=seed + 1), name="positions"
        )
        self.input_drop = keras.layers.Dropout(self.dropout, seed=seed + 2)
        self.blocks = [
            TransformerBlock(d, heads, expansion, dropout, seed + 10 * (j + 1), name=f"block_{j}")
            for j in range(self.num_blocks)
        ]
        self.final_norm = keras.layers.LayerNormalization(epsilon=1e-6, name="final_norm")
        self.item_table.build((None,))
        self.positions.build((None,))
        for layer in [*self.blocks, self.final_norm]:
            layer.build((None, length, d))
        self.item_bias = self.add_weight(shape=(self.num_items,), initializer="zeros", name="bias")
        self.histories = self.add_weight(
            shape=(self.num_users, length),
            initializer=keras.initializers.Constant(self.num_items),
            dtype="int32",
            trainable=False,
            name="histories",
        )
        self.log_proposal = self.add_weight(
            shape=(self.num_items,),
            initializer=keras.initializers.Constant(-float(np.log(self.num_items))),
            trainable=False,
            name="log_proposal",
        )
        self.generator = keras.random.SeedGenerator(seed + 3, name="generator")
        self.built = True

    # -- the data this model reads ---------------------------------------------------------------

    def set_histories(self, table: np.ndarray) -> None:
        """Serve users from ``table`` ``[num_users, L]`` (their latest items, most recent first)."""
        assign_table(self.histories, table, "history table")

    def set_proposal(self, weights: np.ndarray | None) -> None:
        """The sampled softmax's proposal ``q ∝ weights`` ``[num_items]`` (None: uniform)."""
        if weights is None:
            weights = np.ones(self.num_items)
        weights = np.asarray(weights, np.float64)
        if weights.shape != (self.num_items,) or weights.min() < 0 or weights.sum() <= 0:
            raise ValueError("proposal weights must be [num_items], non-negative, not all zero")
        q = np.maximum(weights / weights.sum(), 1e-12)
        self.log_proposal.assign(np.log(q).astype("float32"))

    # -- the tower -------------------------------------------------------------------------------

    def output_table(self) -> Any:
        """``E`` without the padding row: ``[N, d]``."""
        return self.item_table.embeddings[: self.num_items]

    def encode(self, window: Any, training: bool | None = None) -> Any:
        """``h`` ``[B, L, d]`` of windows ``[B, L]`` (time order, right-aligned)."""
        window = ops.cast(window, "int32")
        present = ops.less(window, self.num_items)  # [B, L]
        z = self.item_table(window) * float(np.sqrt(self.embedding_dim))
        z = (z + self.positions.embeddings[None]) * ops.cast(present, z.dtype)[..., None]
        z = self.input_drop(z, training=training)
        slots = ops.arange(self.history_length)
        causal = ops.greater_equal(slots[:, None], slots[None, :])  # [L, L]
        allowed = ops.logical_and(causal[None], present[:, None, :])  # [B, L, L]
        for block in self.blocks:
            z = block(z, allowed, training=training)
        return self.final_norm(z)

    def user_vectors(self, history: Any, training: bool = False) -> Any:
        """The last slot's ``h`` ``[B, d]`` for histories ``[B, L]`` (most recent first)."""
        return self.encode(ops.flip(ops.cast(history, "int32"), axis=1), training)[:, -1]

    def history_of(self, users: Any) -> Any:
        return ops.take(self.histories, ops.cast(users, "int32"), axis=0)  # [B, L]

    def all_logits(self, vectors: Any) -> Any:
        """``[B, N]`` scores of every item for vectors ``[B, d]``."""
        return ops.matmul(vectors, ops.transpose(self.output_table())) + self.item_bias

    # -- the evaluator's and the server's questions ---------------------------------------------

    def call(self, inputs: dict[str, Any], training: bool | None = None) -> Any:
        """Training batches ``{"window", "target"}``: ``h`` ``[B, L, d]``; otherwise the
        scores ``[B]`` of the pairs ``inputs["user"], inputs["item"]`` from the users' rows."""
        if not isinstance(inputs, dict):
            raise ValueError(
                'SequenceModel expects a dict: {"window", "target"} or {"user", "item"}'
            )
        if "window" in inputs:
            return self.encode(inputs["window"], training)
        if "user" not in inputs or "item" not in inputs:
            raise ValueError('SequenceModel expects a dict with keys "user" and "item"')
        vectors = self.user_vectors(self.history_of(inputs["user"]))
        items = ops.cast(inputs["item"], "int32")
        pairs = ops.sum(vectors * ops.take(self.output_table(), items, axis=0), axis=-1)
        return pairs + ops.take(self.item_bias, items)

    def score_items(self, users: Any, items: Any) -> Any:
        """Scores of candidate ``items [B, C]`` for ``users [B]``: ``[B, C]``."""
        items = ops.cast(items, "int32")
        vectors = self.user_vectors(self.history_of(users))
        scores = ops.einsum("bd,bcd->bc", vectors, ops.take(self.output_table(), items, axis=0))
        return scores + ops.take(self.item_bias, items)

    def score_all(self, users: Any) -> Any:
        """Scores of every item for ``users [B]``: ``[B, num_items]``."""
        return self.all_logits(self.user_vectors(self.history_of(users)))

    def score_histories(self, history: Any) -> Any:
        """Scores of every item for users given by their histories ``[B, L]`` (anyone)."""
        return self.all_logits(self.user_vectors(history))

    def item_embeddings(self) -> np.ndarray:
        """Item vectors ``[num_items, d]``: the item table (input and output)."""
        return ops.convert_to_numpy(self.output_table())

    # -- training --------------------------------------------------------------------------------

    def compute_loss(
        self,
        x: Any = None,
        y: Any = None,
        y_pred: Any = None,
        sample_weight: Any = None,
        training: bool = True,
    ) -> Any:
        """The mean softmax cross-entropy over the slots with a target (module docstring);
        ``y_pred`` is ``h`` from ``self(x, training=True)``."""
        if not isinstance(x, dict) or "target" not in x:
            raise ValueError('sequence training batches need a "target" input')
        target = ops.reshape(ops.cast(x["target"], "int32"), (-1,))  # [B L]
        hidden = ops.reshape(y_pred, (-1, self.embedding_dim))  # [B L, d]
        valid = ops.cast(ops.greater_equal(target, 0), "float32")
        safe = ops.maximum(target, 0)
        table = self.output_table()
        positive = ops.sum(hidden * ops.take(table, safe, axis=0), axis=-1)
        positive = positive + ops.take(self.item_bias, safe)  # [B L], from the targets' rows
        if self.loss_name == "softmax" or self.sampled_items * FULL_WHEN_SAMPLED >= self.num_items:
            per_slot = softmax_loss(self.all_logits(hidden), safe, positive)
        else:
            per_slot = self._sampled(hidden, safe, positive)
        loss = ops.sum(per_slot * valid) / ops.maximum(ops.sum(valid), 1.0)
        for term in self.losses:
            loss = loss + ops.sum(term)
        return per_replica_share(loss)

    def _sampled(self, hidden: Any, target: Any, positive: Any) -> Any:
        drawn = draw_items(self.log_proposal, self.sampled_items, self.generator)  # [S]
        table = self.output_table()
        others = ops.matmul(hidden, ops.transpose(ops.take(table, drawn, axis=0)))
        others = others + ops.take(self.item_bias, drawn)[None, :]
        log_q = ops.take(self.log_proposal, drawn) + float(np.log(self.sampled_items))
        return sampled_softmax_loss(
            positive, others, log_q, ops.equal(target[:, None], drawn[None])
        )

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "num_users": self.num_users,
            "num_items": self.num_items,
            "embedding_dim": self.embedding_dim,
            "history_length": self.history_length,
            "blocks": self.num_blocks,
            "heads": self.heads,
            "expansion": self.expansion,
            "dropout": self.dropout,
            "loss": self.loss_name,
            "sampled_items": self.sampled_items,
            "seed": self.seed,
        }

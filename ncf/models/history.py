"""A user tower built from the user's own history, scored against every item by a dot product.

``model.type: history``: the user is what they interacted with (FISM, Kabbur et al. 2013;
YouTube DNN, Covington et al. 2016), not an id, so the model needs no row per user, serves a
user from any list of items, and reads a user's latest items directly. For a history
``h_1..h_L`` (most recent first, padded with the id ``N = num_items``)::

    w_k   = m_k exp(r_k) / Σ_l m_l exp(r_l)        m_k = [h_k is an item] (x dropout mask)
    p_u   = Σ_k w_k E_in[h_k]                       learned recency weights r_1..r_L
    v_u   = W p_u + c                               one dense layer, d -> d
    s(u, i) = <v_u, E_out[i]> + b_i

``E_in`` (``[N + 1, d]``, the last row is padding and never read) and ``E_out`` (``[N, d]``)
are separate item tables. In training each history item is dropped with probability
``dropout`` (the weights renormalise over what is left). Trained with the full softmax over
the catalogue (``train.loss: softmax``) or a sampled softmax with the log-Q correction
(``sampled_softmax``; see :mod:`ncf.models.losses`), which computes the full softmax instead
when its ``S`` draws are at least a third of the catalogue (measured: S = 1024 of 1,682 items
cost 1.35 times the full softmax's step; 256 of them 0.65 times).

Each training example carries its own history (:mod:`ncf.data.histories`: the user's items up
to the target's time, target excluded); evaluation and serving read each user's latest
``L`` items from ``histories``, a non-trainable ``[num_users, L]`` table that the training
phase fills from the data it fits on and that is saved with the model.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from ncf.models.losses import (
    draw_items,
    per_replica_share,
    reduce_mean,
    sampled_softmax_loss,
    softmax_loss,
)
from ncf.models.philox import uniform
from ncf.models.tables import assign_table

SOFTMAX_LOSSES = ("softmax", "sampled_softmax")
FULL_WHEN_SAMPLED = 3  # sampled_softmax computes the full softmax when S >= N / 3 (cheaper)


@keras.saving.register_keras_serializable(package="ncf")
class HistoryModel(keras.Model):
    """Scores ``s(u, i)`` of items for users from their histories (see the module docstring).

    Args:
        num_users: int. Rows of the history table.
        num_items: int. ``N``; also the padding id of histories.
        embedding_dim: int. ``d``.
        history_length: int. ``L``.
        dropout: float. Probability that a history item is dropped in training.
        loss: str. ``"softmax"`` or ``"sampled_softmax"``.
        sampled_items: int. ``S`` for ``sampled_softmax``.
        seed: int. Seed of the dropout and sampling generator (its state is a model
            variable, so a resumed run continues the same random stream).
        **kwargs: base model arguments (``name``).

    Example:

    ```python
    model = HistoryModel(num_users=943, num_items=1682, embedding_dim=64)
    model.set_histories(table)  # [943, 50] int32, padded with 1682
    top = keras.ops.top_k(model.score_all(np.arange(10, dtype="int32")), k=10)
    ```
    """

    def __init__(
        self,
        num_users: int,
        num_items: int,
        embedding_dim: int = 64,
        history_length: int = 50,
        dropout: float = 0.3,
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
        self.dropout, self.loss_name = float(dropout), loss
        self.sampled_items, self.seed = int(sampled_items), int(seed)
        init = keras.initializers.RandomNormal(stddev=0.05, seed=self.seed)
        self.item_input = keras.layers.Embedding(
            self.num_items + 1, self.embedding_dim, embeddings_initializer=init, name="item_input"
        )
        self.item_output = keras.layers.Embedding(
            self.num_items,
            self.embedding_dim,
            embeddings_initializer=keras.initializers.RandomNormal(stddev=0.05, seed=self.seed + 1),
            name="item_output",
        )
        self.user_dense = keras.layers.Dense(self.embedding_dim, name="user_dense")
        self.item_input.build((None,))
        self.item_output.build((None,))
        self.user_dense.build((None, self.embedding_dim))
        self.item_bias = self.add_weight(shape=(self.num_items,), initializer="zeros", name="bias")
        self.recency = self.add_weight(
            shape=(self.history_length,), initializer="zeros", name="recency"
        )
        self.histories = self.add_weight(
            shape=(self.num_users, self.history_length),
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
        self.generator = keras.random.SeedGenerator(self.seed, name="generator")
        self.built = True

    # -- the data this model reads --------------------------------------------------------------

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

    # -- the towers ------------------------------------------------------------------------------

    def user_vectors(self, history: Any, training: bool = False) -> Any:
        """``v_u`` ``[B, d]`` from histories ``[B, L]`` (item ids, ``num_items`` = padding)."""
        history = ops.cast(history, "int32")
        mask = ops.cast(ops.less(history, self.num_items), "float32")  # [B, L]
        if training and self.dropout > 0:
            keep = uniform(ops.shape(mask), self.generator) >= self.dropout  # (XLA: Philox)
            mask = mask * ops.cast(keep, "float32")
        weights = mask * ops.exp(self.recency)[None, :]
        weights = weights / (ops.sum(weights, axis=1, keepdims=True) + 1e-9)
        pooled = ops.einsum("bl,bld->bd", weights, self.item_input(history))
        return self.user_dense(pooled)

    def history_of(self, users: Any) -> Any:
        return ops.take(self.histories, ops.cast(users, "int32"), axis=0)  # [B, L]

    def all_logits(self, vectors: Any) -> Any:
        """``[B, num_items]`` scores of every item for user vectors ``[B, d]``."""
        return ops.matmul(vectors, ops.transpose(self.item_output.embeddings)) + self.item_bias

    # -- the evaluator's and the server's questions ---------------------------------------------

    def call(self, inputs: dict[str, Any], training: bool | None = None) -> Any:
        """Scores ``[B]`` of the pairs ``inputs["user"], inputs["item"]``; the history comes
        from ``inputs["history"]`` where given (training), else from the user's row."""
        if not isinstance(inputs, dict) or "user" not in inputs or "item" not in inputs:
            raise ValueError('HistoryModel expects a dict with keys "user" and "item"')
        history = inputs.get("history")
        if history is None:
            history = self.history_of(inputs["user"])
        vectors = self.user_vectors(history, bool(training))
        items = ops.cast(inputs["item"], "int32")
        return ops.sum(vectors * self.item_output(items), axis=-1) + ops.take(self.item_bias, items)

    def score_items(self, users: Any, items: Any) -> Any:
        """Scores of candidate ``items [B, C]`` for ``users [B]``: ``[B, C]``."""
        items = ops.cast(items, "int32")
        vectors = self.user_vectors(self.history_of(users))
        scores = ops.einsum("bd,bcd->bc", vectors, self.item_output(items))
        return scores + ops.take(self.item_bias, items)

    def score_all(self, users: Any) -> Any:
        """Scores of every item for ``users [B]``: ``[B, num_items]``."""
        return self.all_logits(self.user_vectors(self.history_of(users)))

    def score_histories(self, history: Any) -> Any:
        """Scores of every item for users given by their histories ``[B, L]`` (anyone)."""
        return self.all_logits(self.user_vectors(history))

    def item_embeddings(self) -> np.ndarray:
        """Item vectors ``[num_items, d]``: the output table (what a user vector is matched to)."""
        return ops.convert_to_numpy(self.item_output.embeddings)

    # -- training --------------------------------------------------------------------------------

    def compute_loss(
        self,
        x: Any = None,
        y: Any = None,
        y_pred: Any = None,
        sample_weight: Any = None,
        training: bool = True,
    ) -> Any:
        """Softmax cross-entropy of each example's positive ``x["item"]`` given its history
        ``x["history"]`` (``y_pred`` is not used: the loss needs more than the pair's score)."""
        if not isinstance(x, dict) or "history" not in x:
            raise ValueError('history-model training batches need a "history" input')
        items = ops.cast(x["item"], "int32")
        vectors = self.user_vectors(x["history"], training)
        positive = ops.sum(vectors * self.item_output(items), axis=-1) + ops.take(
            self.item_bias, items
        )  # [B] s(u, i), from the positive's own row
        if self.loss_name == "softmax" or self.sampled_items * FULL_WHEN_SAMPLED >= self.num_items:
            # (sampled_items of at least a third of the catalogue cost more than all of it)
            per_example = softmax_loss(self.all_logits(vectors), items, positive)
        else:
            per_example = self._sampled(vectors, items, positive)
        loss = reduce_mean(per_example, sample_weight)
        for term in self.losses:
            loss = loss + ops.sum(term)
        return per_replica_share(loss)

    def _sampled(self, vectors: Any, items: Any, positive: Any) -> Any:
        sampled = draw_items(self.log_proposal, self.sampled_items, self.generator)  # [S]
        log_s = float(np.log(self.sampled_items))
        others = ops.matmul(vectors, ops.transpose(self.item_output(sampled)))
        others = others + ops.take(self.item_bias, sampled)[None, :]
        return sampled_softmax_loss(
            positive,
            others,
            ops.take(self.log_proposal, sampled) + log_s,
            ops.equal(items[:, None], sampled[None, :]),
        )

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "num_users": self.num_users,
            "num_items": self.num_items,
            "embedding_dim": self.embedding_dim,
            "history_length": self.history_length,
            "dropout": self.dropout,
            "loss": self.loss_name,
            "sampled_items": self.sampled_items,
            "seed": self.seed,
        }

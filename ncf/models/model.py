"""The assembled NCF model: user tower(s), item tower(s) and one interaction head.

``NCFModel({"user": [B], "item": [B]}) -> [B]`` logits ``s(u, i)``; the heads and their
equations are in :mod:`ncf.models.heads`, the towers in :mod:`ncf.models.towers`.

- ``mf``:    one tower pair of ``embedding_dim`` plus user and item bias embeddings
  (Rendle et al. 2020).
- ``gmf``:   one tower pair of ``embedding_dim`` (He et al. 2017, eq. 9).
- ``mlp``:   one tower pair of ``mlp_layers[0] // 2`` (He et al. 2017, eq. 10).
- ``neumf``: a GMF pair of ``embedding_dim`` and an MLP pair of ``mlp_layers[0] // 2``
  (He et al. 2017, eq. 11-12).

Training is plain ``fit()``; the loss is chosen at build time and applied by overriding
``compute_loss`` (see :mod:`ncf.models.losses`): ``bce`` batches are
``({"user", "item"}, label)``, ``bpr`` batches are ``({"user", "item", "negative_item"}, _)``.
Either way ``call`` on ``{"user", "item"}`` returns scores, so evaluation is identical.
The loss of a batch of ``B`` examples is

    L = 1/B Σ_b [ l_b + λ_e Σ_rows ||row||² ] + λ_d Σ ||W||²

where ``rows`` are the embedding rows example ``b`` looks up (every tower's ``E[u]`` and
``E[i]``, with ``mf`` the biases ``b_u``, ``b_i``; ``bpr`` also the negative item's), ``λ_e =
l2_embedding`` (per-example regularisation: the gradient stays on the looked-up rows, so the
step is row-sparse) and ``λ_d = l2_dense`` on dense kernels (Keras regularizers). The
penalty is computed from the rows the forward pass gathered (``add_loss`` in a training
``call``), so each table is looked up once and its gradient has one row per example; with
sample weights the data term is weighted and the penalty is not.

For evaluation ``score_items(users [B], items [B, C]) -> [B, C]`` and
``score_all(users [B]) -> [B, num_items]`` run each tower once per distinct id; ``score_all``
uses the heads' all-pairs algebra, chunked over items for mlp/neumf so that memory is bounded
by ``max_pair_elements`` floats per intermediate tensor.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from ncf.models.heads import DotHead, GMFHead, MLPHead, NeuMFHead
from ncf.models.losses import bce_loss, bpr_loss, per_replica_share, reduce_mean
from ncf.models.towers import Tower

HEADS = ("mf", "gmf", "mlp", "neumf")
# Keys of the ModelConfig dump that ncf 0.1.0 stored in ``get_config`` as "model_config".
_LEGACY_KEYS = (
    "embedding_dim",
    "mlp_layers",
    "tower_layers",
    "dropout",
    "l2_embedding",
    "l2_dense",
)


def _interleave(user_parts: list[Any], item_parts: list[Any]) -> list[Any]:
    return [t for pair in zip(user_parts, item_parts, strict=True) for t in pair]


PAIR_LOSSES = ("bce", "bpr")  # the softmax losses are the history model's


@keras.saving.register_keras_serializable(package="ncf")
class NCFModel(keras.Model):
    """Scores ``s(u, i)`` of items for users, as logits.

    Args:
        num_users: int. Number of users (ids ``0 .. num_users - 1``).
        num_items: int. Number of items.
        head: str. Interaction head: ``"mf"``, ``"gmf"``, ``"mlp"`` or ``"neumf"``.
        embedding_dim: int. Embedding size of mf/gmf and of NeuMF's GMF branch.
        mlp_layers: list of int. MLP sizes of mlp/neumf; each tower embeds ``mlp_layers[0] // 2``.
        tower_layers: list of int. Dense ReLU layers after each id embedding.
        dropout: float. Dropout after each dense layer (training only).
        l2_embedding: float. Per-example L2 penalty on the embedding rows each example looks up.
        l2_dense: float. L2 penalty on dense kernels.
        loss: str. ``"bce"`` (pointwise) or ``"bpr"`` (pairwise).
        user_features: optional float32 ``[num_users, F_u]`` side-feature matrix.
        item_features: optional float32 ``[num_items, F_i]`` side-feature matrix.
        num_user_features: int. ``F_u`` when ``user_features`` is not given (loading).
        num_item_features: int. ``F_i`` likewise.
        max_pair_elements: int. Memory bound of ``score_all`` for mlp/neumf (floats).
        **kwargs: base model arguments (``name``).

    Example:

    ```python
    model = NCFModel(num_users=943, num_items=1682, head="neumf", embedding_dim=16)
    model.compile(optimizer="adam")
    model.fit(dataset, epochs=1)  # dataset of ({"user": ..., "item": ...}, label)
    top = keras.ops.top_k(model.score_all(np.arange(10, dtype="int32")), k=10)
    ```
    """

    def __init__(
        self,
        num_users: int,
        num_items: int,
        head: str = "neumf",
        embedding_dim: int = 8,
        mlp_layers: list[int] | tuple[int, ...] = (64, 32, 16, 8),
        tower_layers: list[int] | tuple[int, ...] = (),
        dropout: float = 0.0,
        l2_embedding: float = 0.0,
        l2_dense: float = 0.0,
        loss: str = "bce",
        user_features: np.ndarray | None = None,
        item_features: np.ndarray | None = None,
        num_user_features: int = 0,
        num_item_features: int = 0,
        max_pair_elements: int = 1 << 22,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {head!r}")
        if loss not in PAIR_LOSSES:
            raise ValueError(f"loss must be one of {PAIR_LOSSES}, got {loss!r}")
        mlp_layers, tower_layers = [int(n) for n in mlp_layers], [int(n) for n in tower_layers]
        if head in ("mlp", "neumf") and (not mlp_layers or mlp_layers[0] % 2):
            raise ValueError(f"mlp_layers[0] must be even for {head} (got {mlp_layers})")
        self.head_type = head
        self.embedding_dim = int(embedding_dim)
        self.mlp_layers, self.tower_layers = mlp_layers, tower_layers
        self.dropout, self.l2_embedding, self.l2_dense = float(dropout), l2_embedding, l2_dense
        self.num_users, self.num_items = int(num_users), int(num_items)
        self.loss_name = loss
        self.max_pair_elements = int(max_pair_elements)
        gmf = ("gmf", self.embedding_dim)
        mlp = ("mlp", mlp_layers[0] // 2 if mlp_layers else 0)
        branches = {"mf": [("mf", self.embedding_dim)], "gmf": [gmf], "mlp": [mlp]}
        branches["neumf"] = [gmf, mlp]  # (name, embedding size) of each tower pair
        self.user_towers = [
            self._tower("user", b, d, self.num_users, user_features, num_user_features)
            for b, d in branches[head]
        ]
        self.item_towers = [
            self._tower("item", b, d, self.num_items, item_features, num_item_features)
            for b, d in branches[head]
        ]
        self.num_user_features = self.user_towers[0].num_features
        self.num_item_features = self.item_towers[0].num_features
        self.user_bias = self.item_bias = None
        if head == "mf":
            self.user_bias = self._bias_embedding(self.num_users, "user_bias")
            self.item_bias = self._bias_embedding(self.num_items, "item_bias")
        self.head = self._head()
        self.build()

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> NCFModel:
        config = dict(config)
        legacy = config.pop("model_config", None)  # files saved by ncf 0.1.0
        if legacy is not None:
            config["head"] = legacy["type"]
            for key in _LEGACY_KEYS:
                config[key] = legacy[key]
        return cls(**config)

    def _tower(
        self, side: str, branch: str, dim: int, num_ids: int, features: Any, num_features: int
    ) -> Tower:
        return Tower(
            num_ids,
            dim,
            hidden_layers=self.tower_layers,
            dropout=self.dropout,
            l2_embedding=self.l2_embedding,
            l2_dense=self.l2_dense,
            num_features=num_features,
            features=features,
            name=f"{side}_{branch}_tower",
        )

    def _bias_embedding(self, num_ids: int, name: str) -> keras.layers.Embedding:
        return keras.layers.Embedding(num_ids, 1, embeddings_initializer="zeros", name=name)

    def _head(self) -> keras.layers.Layer:
        if self.head_type == "mf":
            return DotHead(name="head")
        if self.head_type == "gmf":
            return GMFHead(l2_dense=self.l2_dense, name="head")
        cls = MLPHead if self.head_type == "mlp" else NeuMFHead
        return cls(self.mlp_layers[1:], dropout=self.dropout, l2_dense=self.l2_dense, name="head")

    def build(self, input_shape: Any = None) -> None:
        """Create every weight from the config alone (input shapes are always ``[batch]``)."""
        shapes: list[tuple[int | None, ...]] = []
        for user, item in zip(self.user_towers, self.item_towers, strict=True):
            user.build((None,))
            item.build((None,))
            shapes += [(None, user.output_dim), (None, item.output_dim)]
        if self.user_bias is not None and self.item_bias is not None:
            self.user_bias.build((None,))
            self.item_bias.build((None,))
            shapes += [(None,), (None,)]
        self.head.build(shapes)

    # -- scoring -------------------------------------------------------------------------------

    def _user_parts(self, users: Any, training: bool | None = None) -> list[Any]:
        parts = [tower(users, training=training) for tower in self.user_towers]
        if self.user_bias is not None:
            parts.append(ops.squeeze(self.user_bias(users), axis=-1))
        return parts

    def _item_parts(self, items: Any, training: bool | None = None) -> list[Any]:
        parts = [tower(items, training=training) for tower in self.item_towers]
        if self.item_bias is not None:
            parts.append(ops.squeeze(self.item_bias(items), axis=-1))
        return parts

    def _forward(
        self, users: Any, items: Any, training: bool | None = None, penalise_users: bool = True
    ) -> tuple[Any, Any]:
        """Scores ``[B]`` of the pairs and the per-example penalty ``λ_e Σ ||row||²`` ``[B]``
        over the rows looked up (user rows only when ``penalise_users``), or None."""
        user_out = [tower.embed(users, training) for tower in self.user_towers]
        item_out = [tower.embed(items, training) for tower in self.item_towers]
        user_parts, item_parts = [o for o, _ in user_out], [o for o, _ in item_out]
        squares = [t.penalty(r) for t, (_, r) in zip(self.item_towers, item_out, strict=True)]
        if penalise_users:
            squares += [t.penalty(r) for t, (_, r) in zip(self.user_towers, user_out, strict=True)]
        if self.user_bias is not None and self.item_bias is not None:
            user_bias, item_bias = self.user_bias(users), self.item_bias(items)  # [B, 1]
            user_parts.append(ops.squeeze(user_bias, axis=-1))
            item_parts.append(ops.squeeze(item_bias, axis=-1))
            if self.l2_embedding:
                biases = [item_bias, user_bias] if penalise_users else [item_bias]
                squares += [self.l2_embedding * ops.sum(ops.square(b), axis=-1) for b in biases]
        scores = self.head(_interleave(user_parts, item_parts), training=training)
        penalty = None
        for term in squares:
            if term is not None:
                penalty = term if penalty is None else penalty + term
        return scores, penalty

    def call(self, inputs: dict[str, Any], training: bool | None = None) -> Any:
        if not isinstance(inputs, dict) or "user" not in inputs or "item" not in inputs:
            raise ValueError('NCFModel expects a dict with keys "user" and "item" (int ids [B])')
        scores, penalty = self._forward(inputs["user"], inputs["item"], training)
        if training and penalty is not None:  # from the rows this pass looked up
            self.add_loss(ops.mean(penalty))
        return scores  # [B]

    def score_items(self, users: Any, items: Any) -> Any:
        """Scores of candidate ``items [B, C]`` for ``users [B]``: ``[B, C]`` logits."""
        users = ops.convert_to_tensor(users, dtype="int32")
        items = ops.convert_to_tensor(items, dtype="int32")
        if len(users.shape) != 1 or len(items.shape) != 2:
            raise ValueError(
                f"score_items expects users [B] and items [B, C], got {users.shape}, {items.shape}"
            )
        num_candidates = ops.shape(items)[1]
        user_parts = [ops.repeat(p, num_candidates, axis=0) for p in self._user_parts(users)]
        item_parts = self._item_parts(ops.reshape(items, (-1,)))
        scores = self.head(_interleave(user_parts, item_parts))  # [B * C]
        return ops.reshape(scores, ops.shape(items))

    def score_all(self, users: Any) -> Any:
        """Scores of every item for ``users [B]``: ``[B, num_items]`` logits.

        The towers and the head's per-user and per-item factors (for mlp/neumf the first MLP
        layer) are computed once per call; the pairs are then scored in item chunks of a
        fixed size inside one graph loop (``ops.map``), so memory stays within
        ``max_pair_elements`` floats per intermediate tensor and the graph does not grow
        with the catalogue.
        """
        users = ops.convert_to_tensor(users, dtype="int32")
        if len(users.shape) != 1:
            raise ValueError(f"score_all expects users [B], got shape {users.shape}")
        user_parts = self._user_parts(users)
        item_parts = self._item_parts(ops.arange(self.num_items, dtype="int32"))
        user_factors, item_factors = self.head.factors(_interleave(user_parts, item_parts))
        chunk = self._item_chunk(users.shape[0])
        if chunk >= self.num_items:
            return self.head.from_factors(user_factors, item_factors)
        chunks = -(-self.num_items // chunk)
        padding = chunks * chunk - self.num_items
        item_factors = [
            ops.pad(f, [(0, padding)] + [(0, 0)] * (len(f.shape) - 1)) for f in item_factors
        ]

        def block(i: Any) -> Any:  # [B, chunk]
            part = [
                ops.slice(f, [i * chunk] + [0] * (len(f.shape) - 1), [chunk, *f.shape[1:]])
                for f in item_factors
            ]
            return self.head.from_factors(user_factors, part)

        blocks = ops.map(block, ops.arange(chunks, dtype="int32"))  # [chunks, B, chunk]
        scores = ops.reshape(ops.transpose(blocks, (1, 0, 2)), (-1, chunks * chunk))
        return scores[:, : self.num_items]

    def user_parts(self, users: Any) -> list[Any]:
        """A user's representation as the head sees it: every user tower's output ``[B, d_t]``
        and, for mf, the user bias ``[B]`` (the fold-in of a new user optimises these)."""
        return self._user_parts(ops.convert_to_tensor(users, dtype="int32"))

    def item_parts(self, items: Any) -> list[Any]:
        """The items' side of the head: item tower outputs and, for mf, the item bias."""
        return self._item_parts(ops.convert_to_tensor(items, dtype="int32"))

    def score_by_features(self, users: Any, item_features: Any) -> Any:
        """Scores ``[B]`` of items described only by their side features ``[B, F]`` for
        ``users [B]`` (items unseen at training time; their bias, for mf, is zero)."""
        parts = [tower.from_features(item_features) for tower in self.item_towers]
        if self.item_bias is not None:
            parts.append(ops.zeros((ops.shape(parts[0])[0],), dtype="float32"))
        return self.head(_interleave(self.user_parts(users), parts))

    def score_parts(self, user_parts: list[Any], item_parts: list[Any] | None = None) -> Any:
        """Scores ``[B, N]`` of every item for users given by ``user_parts`` (unchunked)."""
        if item_parts is None:
            item_parts = self._item_parts(ops.arange(self.num_items, dtype="int32"))
        return self.head.from_factors(*self.head.factors(_interleave(user_parts, item_parts)))

    def _item_chunk(self, batch: int | None) -> int:
        """Items per block so that a ``[B, chunk, width]`` pair tensor stays within budget."""
        if self.head_type in ("mf", "gmf"):
            return self.num_items
        layers = self.mlp_layers
        width = max(layers[1:], default=layers[0]) if len(layers) > 1 else layers[0]
        return max(1, self.max_pair_elements // ((batch or 1024) * width))

    def item_embeddings(self) -> np.ndarray:
        """Item vectors ``[num_items, d]`` (neumf: GMF and MLP vectors concatenated)."""
        items = ops.arange(self.num_items, dtype="int32")
        vectors = [ops.convert_to_numpy(tower(items)) for tower in self.item_towers]
        return np.concatenate(vectors, axis=1)

    # -- training ------------------------------------------------------------------------------

    def compute_loss(
        self,
        x: Any = None,
        y: Any = None,
        y_pred: Any = None,
        sample_weight: Any = None,
        training: bool = True,
    ) -> Any:
        """The data loss of ``y_pred`` (from ``self(x, training=True)``, which also adds the
        batch's mean embedding penalty to ``self.losses``) plus ``self.losses``.

        Under a ``tf.distribute`` strategy with ``R`` replicas each replica returns its
        share, ``1/R`` of its batch's loss, as Keras' own ``compute_loss`` does: the optimizer
        sums the replicas' gradients, and Keras' train step multiplies the value it shows by
        ``R`` again (see :func:`per_replica_share`)."""
        loss_terms = []
        if self.loss_name == "bpr":
            if not isinstance(x, dict) or "negative_item" not in x:
                raise ValueError('bpr training batches need a "negative_item" input')
            negative, penalty = self._forward(x["user"], x["negative_item"], training, False)
            per_example = bpr_loss(y_pred, negative)
            if penalty is not None and training:  # the negative items' rows
                loss_terms.append(ops.mean(penalty))
        else:
            if y is None:
                raise ValueError("bce training batches need labels: ({'user', 'item'}, label)")
            per_example = bce_loss(y, y_pred)
        loss = reduce_mean(per_example, sample_weight)
        for term in loss_terms + self.losses:
            loss = loss + ops.sum(term)
        return per_replica_share(loss)

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "num_users": self.num_users,
            "num_items": self.num_items,
            "head": self.head_type,
            "embedding_dim": self.embedding_dim,
            "mlp_layers": self.mlp_layers,
            "tower_layers": self.tower_layers,
            "dropout": self.dropout,
            "l2_embedding": self.l2_embedding,
            "l2_dense": self.l2_dense,
            "loss": self.loss_name,
            "num_user_features": self.num_user_features,
            "num_item_features": self.num_item_features,
            "max_pair_elements": self.max_pair_elements,
        }

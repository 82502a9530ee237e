"""The serving graph: a ``tf.Module`` whose ``tf.function`` s become the SavedModel signatures.

All ids are raw strings; the vocabularies live inside the graph as ``tf.lookup`` tables.
``B`` is the batch size, ``N`` the catalogue size and ``k' = min(k, N)``.

- ``score`` (also ``serving_default``): ``user_id [B] string``, ``item_id [B] string`` ->
  ``score [B] float32``. A pair whose user or item is unknown scores ``-inf``.
- ``recommend``: ``user_id [B] string``, ``k [] int32`` -> ``item_ids [B, k'] string``,
  ``scores [B, k'] float32``, ``known_user [B] bool``. Best first (ties: lower item index).
  With ``exclude_seen`` the user's train and validation items are removed. An unknown user
  gets the most popular items (train counts as scores, ``known_user`` false). Slots left
  when fewer than ``k'`` items remain are padded with ``""`` and ``-inf``. ``k < 1`` is an
  ``InvalidArgumentError``.
- ``similar_items`` (neural models and item-kNN only): ``item_id [B] string``, ``k [] int32``
  -> ``item_ids [B, k']``, ``scores [B, k']``, ``known_item [B] bool``: cosine neighbours
  in the item embedding space (item-kNN: the stored similarity rows, non-neighbours are
  padding), never the item itself. An unknown item's row is all padding.

Seen items and kNN matrices are CSR arrays held in variables and expanded per batch with
``tf.ragged.range``; the score row is masked with one ``tensor_scatter_nd_update``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import tensorflow as tf

from ncf.scorer import ItemPrior, ItemToItem, KerasModel, UserToUser

IDS = tf.TensorSpec([None], tf.string)
K = tf.TensorSpec([], tf.int32)
NEG_INF = float("-inf")

Csr = tuple[tf.Variable, tf.Variable, tf.Variable]  # row splits, columns, values


def _var(value: Any, dtype: tf.DType) -> tf.Variable:
    return tf.Variable(tf.constant(value, dtype=dtype), trainable=False)


def csr_variables(matrix: Any) -> Csr:
    """Variables for a scipy CSR matrix, with one extra empty row at the end (unknown ids)."""
    splits = np.append(matrix.indptr, matrix.indptr[-1]).astype(np.int64)
    return _var(splits, tf.int64), _var(matrix.indices, tf.int32), _var(matrix.data, tf.float32)


def _table(ids: np.ndarray) -> tf.lookup.StaticHashTable:
    keys = tf.constant(np.asarray(ids, dtype=object).astype(str), tf.string)
    values = tf.range(len(ids), dtype=tf.int32)
    init = tf.lookup.KeyValueTensorInitializer(keys, values)
    return tf.lookup.StaticHashTable(init, default_value=-1)


def expand_rows(csr: Csr, rows: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Entries of ``rows [B]`` of a CSR matrix as (position in rows [M], column [M], value [M])."""
    splits, cols, vals = csr
    rows = tf.cast(rows, tf.int64)
    positions = tf.ragged.range(tf.gather(splits, rows), tf.gather(splits, rows + 1))
    flat = positions.flat_values
    return tf.cast(positions.value_rowids(), tf.int32), tf.gather(cols, flat), tf.gather(vals, flat)


def sparse_product_rows(a: Csr, b: Csr, rows: tf.Tensor, width: int) -> tf.Tensor:
    """``(A @ B)[rows]`` as a dense ``[B, width]`` block, touching only the non-zeros used."""
    owner, middle, weight = expand_rows(a, rows)  # [M]: row of the batch, column of A, value
    entry, cols, vals = expand_rows(b, middle)  # [P]: entry of M, column of B, value
    batch = tf.gather(owner, entry)
    updates = tf.gather(weight, entry) * vals
    shape = tf.stack([tf.size(rows), width])
    return tf.scatter_nd(tf.stack([batch, cols], axis=1), updates, shape)  # sums duplicates


def sparse_product_pairs(a: Csr, b: Csr, rows: tf.Tensor, cols: tf.Tensor) -> tf.Tensor:
    """``(A @ B)[rows[p], cols[p]]`` for each pair ``p``: ``[P]``, without a dense row."""
    owner, middle, weight = expand_rows(a, rows)
    entry, found, vals = expand_rows(b, middle)
    pair = tf.gather(owner, entry)
    hit = tf.equal(found, tf.gather(cols, pair))
    products = tf.boolean_mask(tf.gather(weight, entry) * vals, hit)
    return tf.math.unsorted_segment_sum(products, tf.boolean_mask(pair, hit), tf.size(rows))


class Servable(tf.Module):
    """Lookup tables, popularity and seen items, and the three signatures.

    Subclasses provide ``_rows(users [B] int32) -> [B, N]``, ``_pairs(users, items) -> [B]``
    and, where item similarity means something, ``_similar(items [B] int32) -> [B, N]`` and
    a call to ``_enable_similar()``.

    Args:
        users: [num_users] raw user ids (index = position).
        items: [N] raw item ids.
        popularity: [N] train interaction counts.
        seen: scipy CSR ``[num_users, N]`` of train and validation interactions.
        exclude_seen: whether ``recommend`` removes the seen items.
    """

    def __init__(
        self,
        users: np.ndarray,
        items: np.ndarray,
        popularity: np.ndarray,
        seen: Any,
        exclude_seen: bool,
    ) -> None:
        super().__init__()
        self.num_users, self.num_items = len(users), len(items)
        self.exclude_seen = bool(exclude_seen)
        self.user_table = _table(users)
        self.item_table = _table(items)
        self.item_vocab = _var(np.asarray(items, dtype=object).astype(str), tf.string)
        self.popularity = _var(popularity, tf.float32)
        self.seen = csr_variables(seen)

    def _rows(self, users: tf.Tensor) -> tf.Tensor:
        raise NotImplementedError

    def _pairs(self, users: tf.Tensor, items: tf.Tensor) -> tf.Tensor:
        return tf.gather(self._rows(users), items, axis=1, batch_dims=1)

    def _similar(self, items: tf.Tensor) -> tf.Tensor:
        raise NotImplementedError

    @tf.function(input_signature=[IDS, IDS])
    def score(self, user_id: tf.Tensor, item_id: tf.Tensor) -> dict[str, tf.Tensor]:
        tf.debugging.assert_equal(
            tf.size(user_id),
            tf.size(item_id),
            message="user_id and item_id must have the same length",
        )
        users, items = self.user_table.lookup(user_id), self.item_table.lookup(item_id)
        known = (users >= 0) & (items >= 0)
        scores = self._pairs(tf.maximum(users, 0), tf.maximum(items, 0))
        return {"score": tf.where(known, tf.cast(scores, tf.float32), NEG_INF)}

    @tf.function(input_signature=[IDS, K])
    def recommend(self, user_id: tf.Tensor, k: tf.Tensor) -> dict[str, tf.Tensor]:
        users = self.user_table.lookup(user_id)
        known = users >= 0
        rows = tf.cast(self._rows(tf.maximum(users, 0)), tf.float32)  # [B, N]
        rows = tf.where(known[:, None], rows, self.popularity[None, :])
        if self.exclude_seen:
            batch, cols, _ = expand_rows(self.seen, tf.where(known, users, self.num_users))
            fill = tf.fill(tf.shape(cols), NEG_INF)
            rows = tf.tensor_scatter_nd_update(rows, tf.stack([batch, cols], axis=1), fill)
        top = self._top_k(rows, k)
        return {**top, "known_user": known}

    def _enable_similar(self) -> None:
        """Attach the ``similar_items`` function (only models with an item similarity have it)."""
        self.similar_items = tf.function(self._similar_items, input_signature=[IDS, K])

    def _similar_items(self, item_id: tf.Tensor, k: tf.Tensor) -> dict[str, tf.Tensor]:
        items = self.item_table.lookup(item_id)
        known = items >= 0
        safe = tf.maximum(items, 0)
        rows = tf.cast(self._similar(safe), tf.float32)  # [B, N]
        itself = tf.stack([tf.range(tf.size(safe)), safe], axis=1)
        rows = tf.tensor_scatter_nd_update(rows, itself, tf.fill(tf.shape(safe), NEG_INF))
        rows = tf.where(known[:, None], rows, NEG_INF)
        return {**self._top_k(rows, k), "known_item": known}

    def _top_k(self, rows: tf.Tensor, k: tf.Tensor) -> dict[str, tf.Tensor]:
        tf.debugging.assert_positive(k, message="k must be at least 1")
        scores, index = tf.math.top_k(rows, tf.minimum(k, self.num_items))  # [B, k']
        ids = tf.where(scores > NEG_INF, tf.gather(self.item_vocab, index), "")
        return {"item_ids": ids, "scores": scores}

    def signatures(self) -> dict[str, Any]:
        score = self.score.get_concrete_function()
        found = {"serving_default": score, "score": score}
        found["recommend"] = self.recommend.get_concrete_function()
        if hasattr(self, "similar_items"):
            found["similar_items"] = self.similar_items.get_concrete_function()
        return found


class NeuralServable(Servable):
    """A Keras ``NCFModel`` (:class:`~ncf.scorer.KerasModel`); similarity is cosine over
    ``item_embeddings()``."""

    def __init__(self, form: KerasModel, **common: Any) -> None:
        super().__init__(**common)
        self.model = form.model
        vectors = np.asarray(self.model.item_embeddings(), dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        self.unit_items = _var(vectors / np.maximum(norms, 1e-12), tf.float32)  # [N, d]
        self._enable_similar()

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


class ItemToItemServable(Servable):
    """``X[u] @ W`` (:class:`~ncf.scorer.ItemToItem`, e.g. item-kNN with W = S^T), sparse.

    ``similar_items`` reads rows of the form's ``similarity``; non-neighbours are padding.
    """

    def __init__(self, form: ItemToItem, **common: Any) -> None:
        super().__init__(**common)
        if not sp.issparse(form.weights):
            raise TypeError("ItemToItemServable serves sparse weights only")
        self.interactions = csr_variables(sp.csr_matrix(form.interactions))  # X [users, items]
        self.weights = csr_variables(sp.csr_matrix(form.weights))
        if form.similarity is not None:
            self.similarity = csr_variables(sp.csr_matrix(form.similarity))
            self._enable_similar()

    def _rows(self, users: tf.Tensor) -> tf.Tensor:
        return sparse_product_rows(self.interactions, self.weights, users, self.num_items)

    def _pairs(self, users: tf.Tensor, items: tf.Tensor) -> tf.Tensor:
        return sparse_product_pairs(self.interactions, self.weights, users, items)

    def _similar(self, items: tf.Tensor) -> tf.Tensor:
        batch, cols, vals = expand_rows(self.similarity, items)
        rows = tf.fill(tf.stack([tf.size(items), self.num_items]), NEG_INF)
        return tf.tensor_scatter_nd_update(rows, tf.stack([batch, cols], axis=1), vals)


class UserToUserServable(Servable):
    """``S[u] @ X`` (:class:`~ncf.scorer.UserToUser`, user-kNN); no item similarity."""

    def __init__(self, form: UserToUser, **common: Any) -> None:
        super().__init__(**common)
        self.similarity = csr_variables(sp.csr_matrix(form.similarity))
        self.interactions = csr_variables(sp.csr_matrix(form.interactions))

    def _rows(self, users: tf.Tensor) -> tf.Tensor:
        return sparse_product_rows(self.similarity, self.interactions, users, self.num_items)

    def _pairs(self, users: tf.Tensor, items: tf.Tensor) -> tf.Tensor:
        return sparse_product_pairs(self.similarity, self.interactions, users, items)


class ItemPriorServable(Servable):
    """The same item scores for everyone (:class:`~ncf.scorer.ItemPrior`, popularity)."""

    def __init__(self, form: ItemPrior, **common: Any) -> None:
        super().__init__(**common)
        self.prior = _var(np.asarray(form.scores, np.float32), tf.float32)

    def _rows(self, users: tf.Tensor) -> tf.Tensor:
        return tf.tile(self.prior[None, :], tf.stack([tf.size(users), 1]))

    def _pairs(self, users: tf.Tensor, items: tf.Tensor) -> tf.Tensor:
        return tf.gather(self.prior, items)


SERVABLES: dict[type, type[Servable]] = {
    KerasModel: NeuralServable,
    ItemToItem: ItemToItemServable,
    UserToUser: UserToUserServable,
    ItemPrior: ItemPriorServable,
}


def servable_for(form: Any, **common: Any) -> Servable:
    """The servable of a scorer's ``serving_form()``; ``common`` as :class:`Servable` takes."""
    return SERVABLES[type(form)](form, **common)

"""The serving graph: one servable per serving form, its endpoints become SavedModel signatures.

Every input has a leading batch dimension, so TensorFlow Serving's row (``instances``) and
columnar (``inputs``) JSON forms both work. All ids are raw strings; the vocabularies live
inside the graph as ``tf.lookup`` tables. ``B`` is the batch size, ``N`` the catalogue size.

- ``score`` (also ``serving_default``): ``user_id [B] string``, ``item_id [B] string`` ->
  ``score [B] float32``. A pair whose user or item is unknown scores ``-inf``.
- ``recommend``: ``user_id [B] string``, ``k [B] int32`` (one value per user, or a single
  value for all) -> ``item_ids [B, W] string``, ``scores [B, W] float32``, ``known_user [B]
  bool`` with ``W = min(max(k), N)``. Row b holds its best ``k[b]`` items, best first (ties:
  lower item index); slots after them, and slots left when fewer items remain, are padding
  (``""`` and ``-inf``). With ``exclude_seen`` the user's train and validation items are
  removed. An unknown user gets the most popular items (train counts as scores, ``known_user``
  false). ``k < 1`` is an ``InvalidArgumentError``.
- ``similar_items`` (forms with an item similarity): ``item_id [B]``, ``k [B]`` ->
  ``item_ids [B, W]``, ``scores [B, W]``, ``known_item [B]``: the nearest items, never the item
  itself; an unknown item's row is all padding.
- ``recommend_from_history``: ``history [B, H] string`` (item ids a user unknown at training
  time just interacted with; ``""`` pads short rows, unknown ids are ignored), ``k [B]`` ->
  ``item_ids``, ``scores`` as ``recommend``, ``known_items [B] int32`` (history ids found).
  The history's items are never recommended; a row with no known item gets the most popular
  items. Each form folds the history in by its own algebra (:mod:`ncf.serve.history`).
- ``explain`` (forms that know the users' items: every form but user-kNN and popularity, and
  for factor and neural models only with ``export.include_seen``): ``user_id [B]``, ``k [B]``
  -> ``recommend``'s outputs plus ``because_ids [B, W, E] string`` and ``because_weights [B,
  W, E] float32``: for each recommended item the ``E`` of the user's own items that
  contributed most, with their weights (``""`` and ``-inf`` where there are fewer).

A servable is a plain object holding TensorFlow state; :meth:`Servable.endpoints` names its
functions and input specs and :meth:`Servable.resources` the lookup tables, which
:mod:`ncf.serve.export` hands to Keras' ``ExportArchive``. The archive keeps only the
variables the endpoints read (no optimizer state). A new signature is one method plus one
entry in ``endpoints()``. Seen items and sparse matrices are CSR arrays held in variables and
expanded per batch with ``tf.ragged.range``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import tensorflow as tf

from ncf.scorer import Factors, ItemPrior, ItemToItem, KerasModel, PooledHistory, UserToUser
from ncf.serve import history as fold
from ncf.serve.graph_ops import (
    csr_variables,
    dense_rows,
    expand_rows,
    lookup_table,
    per_row_k,
    sparse_product_pairs,
    sparse_product_rows,
    unit_rows,
    variable,
)

IDS = tf.TensorSpec([None], tf.string)
HISTORY = tf.TensorSpec([None, None], tf.string)
KS = tf.TensorSpec([None], tf.int32)
NEG_INF = float("-inf")


@dataclass(frozen=True)
class Endpoint:
    """A signature: the function and the specs of its (named, positional) arguments."""

    fn: Callable[..., dict[str, tf.Tensor]]
    specs: list[tf.TensorSpec]


class Servable:
    """Lookup tables, popularity and seen items, and the signatures.

    Subclasses provide ``_rows(users [B] int32) -> [B, N]``, ``_pairs(users, items) -> [B]``
    and, where item similarity means something, ``_similar(items [B] int32) -> [B, N]`` with
    ``has_similar = True``.

    Args:
        users: [num_users] raw user ids (index = position).
        items: [N] raw item ids.
        popularity: [N] train interaction counts.
        seen: scipy CSR ``[num_users, N]`` of train and validation interactions, or None
            (``export.include_seen: false``: the export does not hold them).
        exclude_seen: whether ``recommend`` removes the seen items (needs ``seen``).
    """

    has_similar = False
    has_explain = False  # subclasses that can: _contributions
    num_features = 0  # > 0: score_items_by_features, with _feature_pairs

    def __init__(
        self,
        users: np.ndarray,
        items: np.ndarray,
        popularity: np.ndarray,
        seen: Any,
        exclude_seen: bool,
    ) -> None:
        if exclude_seen and seen is None:
            raise ValueError("exclude_seen needs the seen items")
        self.num_users, self.num_items = len(users), len(items)
        self.exclude_seen = bool(exclude_seen)
        self.user_table = lookup_table(users)
        self.item_table = lookup_table(items)
        self.item_vocab = variable(np.asarray(items, dtype=object).astype(str), tf.string)
        self.popularity = variable(popularity, tf.float32)
        self.seen = csr_variables(seen) if self.exclude_seen else None

    def endpoints(self) -> dict[str, Endpoint]:
        """Signature name -> endpoint; the first one is also ``serving_default``."""
        found = {
            "score": Endpoint(self.score, [IDS, IDS]),
            "recommend": Endpoint(self.recommend, [IDS, KS]),
        }
        if self.has_similar:
            found["similar_items"] = Endpoint(self.similar_items, [IDS, KS])
        found["recommend_from_history"] = Endpoint(self.recommend_from_history, [HISTORY, KS])
        if self.has_explain:
            found["explain"] = Endpoint(self.explain, [IDS, KS])
        if self.num_features:
            features = tf.TensorSpec([None, self.num_features], tf.float32)
            found["score_items_by_features"] = Endpoint(
                self.score_items_by_features, [IDS, features]
            )
        return found

    def resources(self) -> list[Any]:
        """Non-variable state the endpoints use (lookup tables)."""
        return [self.user_table, self.item_table]

    def _rows(self, users: tf.Tensor) -> tf.Tensor:
        raise NotImplementedError

    def _pairs(self, users: tf.Tensor, items: tf.Tensor) -> tf.Tensor:
        return tf.gather(self._rows(users), items, axis=1, batch_dims=1)

    def _similar(self, items: tf.Tensor) -> tf.Tensor:
        raise NotImplementedError

    def _history_rows(self, owner: tf.Tensor, items: tf.Tensor, batch: tf.Tensor) -> tf.Tensor:
        """Scores ``[B, N]`` for histories given as entries ``(owner [M], items [M])``."""
        raise NotImplementedError

    def _user_items(self, users: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """The users' own items as entries ``(owner [M], items [M], values [M])``."""
        assert self.seen is not None
        return expand_rows(self.seen, users)

    def _contributions(self, items: tf.Tensor, values: tf.Tensor) -> tf.Tensor:
        """Weights ``[M, N]`` of each own item (value ``values[m]``) for every item."""
        raise NotImplementedError

    def score(self, user_id: tf.Tensor, item_id: tf.Tensor) -> dict[str, tf.Tensor]:
        check = tf.debugging.assert_equal(
            tf.size(user_id),
            tf.size(item_id),
            message="user_id and item_id must have the same length",
        )
        with tf.control_dependencies([check]):
            users, items = self.user_table.lookup(user_id), self.item_table.lookup(item_id)
        known = (users >= 0) & (items >= 0)
        scores = self._pairs(tf.maximum(users, 0), tf.maximum(items, 0))
        return {"score": tf.where(known, tf.cast(scores, tf.float32), NEG_INF)}

    def recommend(self, user_id: tf.Tensor, k: tf.Tensor) -> dict[str, tf.Tensor]:
        rows, ks, known = self._recommend_rows(user_id, k)
        return {**self._top_k(rows, ks), "known_user": known}

    def _recommend_rows(self, user_id: tf.Tensor, k: tf.Tensor) -> tuple[Any, Any, Any]:
        """``recommend``'s candidate scores ``[B, N]`` (seen items -inf), ``k`` per row, known."""
        users = self.user_table.lookup(user_id)
        ks = per_row_k(k, tf.size(users))
        known = users >= 0
        rows = tf.cast(self._rows(tf.maximum(users, 0)), tf.float32)  # [B, N]
        rows = tf.where(known[:, None], rows, self.popularity[None, :])
        if self.seen is not None:
            batch, cols, _ = expand_rows(self.seen, tf.where(known, users, self.num_users))
            fill = tf.fill(tf.shape(cols), NEG_INF)
            rows = tf.tensor_scatter_nd_update(rows, tf.stack([batch, cols], axis=1), fill)
        return rows, ks, known

    def similar_items(self, item_id: tf.Tensor, k: tf.Tensor) -> dict[str, tf.Tensor]:
        items = self.item_table.lookup(item_id)
        ks = per_row_k(k, tf.size(items))
        known = items >= 0
        safe = tf.maximum(items, 0)
        rows = tf.cast(self._similar(safe), tf.float32)  # [B, N]
        itself = tf.stack([tf.range(tf.size(safe)), safe], axis=1)
        rows = tf.tensor_scatter_nd_update(rows, itself, tf.fill(tf.shape(safe), NEG_INF))
        rows = tf.where(known[:, None], rows, NEG_INF)
        return {**self._top_k(rows, ks), "known_item": known}

    def score_items_by_features(
        self, user_id: tf.Tensor, item_features: tf.Tensor
    ) -> dict[str, tf.Tensor]:
        users = self.user_table.lookup(user_id)
        known = users >= 0
        scores = self._feature_pairs(tf.maximum(users, 0), item_features)
        return {"score": tf.where(known, tf.cast(scores, tf.float32), NEG_INF)}

    def _feature_pairs(self, users: tf.Tensor, features: tf.Tensor) -> tf.Tensor:
        """Scores ``[B]`` of items given by their feature rows ``[B, F]`` for ``users``."""
        raise NotImplementedError

    def recommend_from_history(self, history: tf.Tensor, k: tf.Tensor) -> dict[str, tf.Tensor]:
        items = self.item_table.lookup(history)  # [B, H]; "" and unknown ids: -1
        batch = tf.shape(items)[0]
        ks = per_row_k(k, batch)
        where = tf.where(items >= 0)  # [M, 2]
        owner = tf.cast(where[:, 0], tf.int32)
        hist = tf.gather_nd(items, where)  # [M]
        key, _ = tf.unique(tf.cast(owner, tf.int64) * self.num_items + tf.cast(hist, tf.int64))
        owner = tf.cast(key // self.num_items, tf.int32)  # each (row, item) once
        hist = tf.cast(key % self.num_items, tf.int32)
        count = tf.math.bincount(owner, minlength=batch, maxlength=batch, dtype=tf.int32)
        rows = tf.cast(self._history_rows(owner, hist, batch), tf.float32)  # [B, N]
        rows = tf.where((count > 0)[:, None], rows, self.popularity[None, :])
        fill = tf.fill(tf.shape(hist), NEG_INF)
        rows = tf.tensor_scatter_nd_update(rows, tf.stack([owner, hist], axis=1), fill)
        return {**self._top_k(rows, ks), "known_items": count}

    def explain(self, user_id: tf.Tensor, k: tf.Tensor) -> dict[str, tf.Tensor]:
        rows, ks, known = self._recommend_rows(user_id, k)
        users = self.user_table.lookup(user_id)
        batch = tf.size(users)
        scores, index, keep = self._ranked(rows, ks)  # [B, W]
        owner, items, values = self._user_items(tf.where(known, users, self.num_users))
        weights = self._contributions(items, values)  # [M, N]
        parts = tf.gather(weights, tf.gather(index, owner), batch_dims=1)  # [M, W]
        because, because_weights = fold.top_contributions(owner, items, parts, batch)
        shown = keep[:, :, None] & (because >= 0)
        return {
            "item_ids": tf.where(keep, tf.gather(self.item_vocab, index), ""),
            "scores": tf.where(keep, scores, NEG_INF),
            "known_user": known,
            "because_ids": tf.where(shown, tf.gather(self.item_vocab, tf.maximum(because, 0)), ""),
            "because_weights": tf.where(shown, because_weights, NEG_INF),
        }

    def _ranked(self, rows: tf.Tensor, ks: tf.Tensor) -> tuple[Any, Any, Any]:
        """Top ``max(k)`` of each row: scores, item index and which slots are real ``[B, W]``."""
        width = tf.maximum(tf.minimum(tf.reduce_max(ks), self.num_items), 0)
        scores, index = tf.math.top_k(rows, width)  # [B, W]
        inside = tf.range(width)[None, :] < ks[:, None]
        return scores, index, inside & (scores > NEG_INF)

    def _top_k(self, rows: tf.Tensor, ks: tf.Tensor) -> dict[str, tf.Tensor]:
        scores, index, keep = self._ranked(rows, ks)
        ids = tf.where(keep, tf.gather(self.item_vocab, index), "")
        return {"item_ids": ids, "scores": tf.where(keep, scores, NEG_INF)}


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


class PooledHistoryServable(Servable):
    """A Keras ``HistoryModel`` (:class:`~ncf.scorer.PooledHistory`): a known user is their
    row of the model's history table; ``recommend_from_history`` pools the given items the
    same way (natively: no fold-in), the list read oldest first, so its last ``L`` items
    are the history, the last one the most recent. Similarity and explanations are cosines
    of the item output embeddings."""

    has_similar = True

    def __init__(self, form: PooledHistory, **common: Any) -> None:
        super().__init__(**common)
        self.model = form.model
        self.unit_items = variable(unit_rows(self.model.item_embeddings()), tf.float32)  # [N, d]
        self.has_explain = self.seen is not None

    def _rows(self, users: tf.Tensor) -> tf.Tensor:
        return self.model.score_all(users)

    def _pairs(self, users: tf.Tensor, items: tf.Tensor) -> tf.Tensor:
        return self.model({"user": users, "item": items}, training=False)

    def _similar(self, items: tf.Tensor) -> tf.Tensor:
        return tf.matmul(tf.gather(self.unit_items, items), self.unit_items, transpose_b=True)

    def _history_rows(self, owner: tf.Tensor, items: tf.Tensor, batch: tf.Tensor) -> tf.Tensor:
        length = self.model.history_length
        # entries come row by row in the request's order: the m-th of a row with c entries
        # is (c - 1 - m) steps from the latest; keep the latest L, most recent first
        counts = tf.math.bincount(owner, minlength=batch, maxlength=batch, dtype=tf.int32)
        first = tf.cumsum(counts, exclusive=True)
        position = tf.range(tf.size(owner), dtype=tf.int32) - tf.gather(first, owner)
        back = tf.gather(counts, owner) - 1 - position
        keep = back < length
        where = tf.stack([tf.boolean_mask(owner, keep), tf.boolean_mask(back, keep)], axis=1)
        history = tf.tensor_scatter_nd_update(
            tf.fill(tf.stack([batch, length]), self.num_items), where, tf.boolean_mask(items, keep)
        )
        return self.model.score_histories(history)

    def _contributions(self, items: tf.Tensor, values: tf.Tensor) -> tf.Tensor:
        return tf.matmul(tf.gather(self.unit_items, items), self.unit_items, transpose_b=True)


class ItemToItemServable(Servable):
    """``X[u] @ W`` (:class:`~ncf.scorer.ItemToItem`): item-kNN (W = S^T, sparse) or EASE
    (W = B, dense). ``similar_items`` reads rows of the form's ``similarity`` (sparse: entries
    not stored are padding)."""

    has_explain = True

    def __init__(self, form: ItemToItem, **common: Any) -> None:
        super().__init__(**common)
        self.interactions = csr_variables(sp.csr_matrix(form.interactions))  # X [users, items]
        self.sparse = sp.issparse(form.weights)
        if self.sparse:
            self.weights: Any = csr_variables(sp.csr_matrix(form.weights))
        else:
            self.weights = variable(np.asarray(form.weights, np.float32), tf.float32)  # [N, N]
        self.has_similar = form.similarity is not None
        if sp.issparse(form.similarity):
            self.similarity: Any = csr_variables(sp.csr_matrix(form.similarity))
        elif self.has_similar:
            self.similarity = variable(np.asarray(form.similarity, np.float32), tf.float32)
        if form.item_features is not None:
            self.num_features = int(form.item_features.shape[1])
            self.unit_features = variable(unit_rows(form.item_features), tf.float32)  # [N, F]

    def _feature_pairs(self, users: tf.Tensor, features: tf.Tensor) -> tf.Tensor:
        unit = tf.math.l2_normalize(features, axis=1)  # [B, F]
        owner, cols, vals = expand_rows(self.interactions, users)  # the users' items
        cosines = tf.reduce_sum(tf.gather(self.unit_features, cols) * tf.gather(unit, owner), 1)
        return tf.math.unsorted_segment_sum(vals * cosines, owner, tf.size(users))

    def _rows(self, users: tf.Tensor) -> tf.Tensor:
        if self.sparse:
            return sparse_product_rows(self.interactions, self.weights, users, self.num_items)
        return tf.matmul(dense_rows(self.interactions, users, self.num_items), self.weights)

    def _pairs(self, users: tf.Tensor, items: tf.Tensor) -> tf.Tensor:
        if self.sparse:
            return sparse_product_pairs(self.interactions, self.weights, users, items)
        owner, cols, vals = expand_rows(self.interactions, users)  # x_uj for the pair's user
        weights = tf.gather_nd(self.weights, tf.stack([cols, tf.gather(items, owner)], axis=1))
        return tf.math.unsorted_segment_sum(vals * weights, owner, tf.size(users))

    def _similar(self, items: tf.Tensor) -> tf.Tensor:
        if isinstance(self.similarity, tuple):
            return dense_rows(self.similarity, items, self.num_items, NEG_INF)
        return tf.gather(self.similarity, items)

    def _weight_rows(self, items: tf.Tensor) -> tf.Tensor:
        """Rows ``W[items]`` ``[M, N]``."""
        if self.sparse:
            return dense_rows(self.weights, items, self.num_items)
        return tf.gather(self.weights, items)

    def _history_rows(self, owner: tf.Tensor, items: tf.Tensor, batch: tf.Tensor) -> tf.Tensor:
        if self.sparse:  # sum of the history items' rows of W, from their non-zeros only
            entry, cols, vals = expand_rows(self.weights, items)
            where = tf.stack([tf.gather(owner, entry), cols], axis=1)
            return tf.scatter_nd(where, vals, tf.stack([batch, self.num_items]))
        return tf.matmul(fold.indicator(owner, items, batch, self.num_items), self.weights)

    def _user_items(self, users: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        return expand_rows(self.interactions, users)  # the X the scores are computed from

    def _contributions(self, items: tf.Tensor, values: tf.Tensor) -> tf.Tensor:
        parts = values[:, None] * self._weight_rows(items)  # x_uj W[j, :]: parts of the score
        return tf.where(parts > 0, parts, NEG_INF)  # an item that did not raise it: not a reason


class UserToUserServable(Servable):
    """``S[u] @ X`` (:class:`~ncf.scorer.UserToUser`, user-kNN); no item similarity."""

    def __init__(self, form: UserToUser, **common: Any) -> None:
        super().__init__(**common)
        x = sp.csr_matrix(form.interactions, dtype=np.float32)
        self.similarity = csr_variables(sp.csr_matrix(form.similarity))
        self.interactions = csr_variables(x)
        self.by_item = csr_variables(x.T.tocsr())  # X^T [items, users]
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
        self.user_norms = variable(norms, tf.float32)  # [U]
        self.neighbours = min(int(form.neighbours), x.shape[0])
        self.shrinkage = float(form.shrinkage)

    def _rows(self, users: tf.Tensor) -> tf.Tensor:
        return sparse_product_rows(self.similarity, self.interactions, users, self.num_items)

    def _history_rows(self, owner: tf.Tensor, items: tf.Tensor, batch: tf.Tensor) -> tf.Tensor:
        num_users = tf.size(self.user_norms)
        entry, users, vals = expand_rows(self.by_item, items)  # who else has each item
        dots = tf.scatter_nd(  # <x_h, x_v> [B, U]
            tf.stack([tf.gather(owner, entry), users], axis=1), vals, tf.stack([batch, num_users])
        )
        count = tf.math.unsorted_segment_sum(tf.ones_like(items, tf.float32), owner, batch)
        denom = tf.sqrt(count)[:, None] * self.user_norms[None, :] + self.shrinkage
        sims = tf.math.divide_no_nan(dots, denom)
        sims = tf.where(sims > 0, sims, NEG_INF)
        top, who = tf.math.top_k(sims, self.neighbours)  # [B, n]
        top = tf.where(top > NEG_INF, top, 0.0)
        entry, cols, vals = expand_rows(self.interactions, tf.reshape(who, [-1]))
        row = entry // self.neighbours
        weight = tf.gather(tf.reshape(top, [-1]), entry) * vals
        return tf.scatter_nd(
            tf.stack([row, cols], axis=1), weight, tf.stack([batch, self.num_items])
        )

    def _pairs(self, users: tf.Tensor, items: tf.Tensor) -> tf.Tensor:
        return sparse_product_pairs(self.similarity, self.interactions, users, items)


class FactorsServable(Servable):
    """``P[u] . Q[i] + b[i]`` (:class:`~ncf.scorer.Factors`, iALS and other factorisations);
    similar items are the nearest item factors (cosine)."""

    has_similar = True

    def __init__(self, form: Factors, **common: Any) -> None:
        super().__init__(**common)
        self.user_factors = variable(np.asarray(form.user, np.float32), tf.float32)  # [U, d]
        self.item_factors = variable(np.asarray(form.item, np.float32), tf.float32)  # [N, d]
        bias = np.zeros(len(form.item)) if form.item_bias is None else form.item_bias
        self.item_bias = variable(np.asarray(bias, np.float32), tf.float32)  # [N]
        self.unit_items = variable(unit_rows(form.item), tf.float32)
        self.fold_in = (float(form.l2), float(form.alpha))
        self.has_explain = self.seen is not None

    def _rows(self, users: tf.Tensor) -> tf.Tensor:
        users = tf.gather(self.user_factors, users)
        return tf.matmul(users, self.item_factors, transpose_b=True) + self.item_bias[None, :]

    def _pairs(self, users: tf.Tensor, items: tf.Tensor) -> tf.Tensor:
        p, q = tf.gather(self.user_factors, users), tf.gather(self.item_factors, items)
        return tf.reduce_sum(p * q, axis=1) + tf.gather(self.item_bias, items)

    def _similar(self, items: tf.Tensor) -> tf.Tensor:
        return tf.matmul(tf.gather(self.unit_items, items), self.unit_items, transpose_b=True)

    def _history_rows(self, owner: tf.Tensor, items: tf.Tensor, batch: tf.Tensor) -> tf.Tensor:
        x = fold.indicator(owner, items, batch, self.num_items)
        users = fold.ridge_fold_in(self.item_factors, x, *self.fold_in)  # [B, d]
        return tf.matmul(users, self.item_factors, transpose_b=True) + self.item_bias[None, :]

    def _contributions(self, items: tf.Tensor, values: tf.Tensor) -> tf.Tensor:
        return tf.matmul(tf.gather(self.unit_items, items), self.unit_items, transpose_b=True)


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


SERVABLES: dict[type, type[Servable]] = {
    KerasModel: NeuralServable,
    PooledHistory: PooledHistoryServable,
    ItemToItem: ItemToItemServable,
    UserToUser: UserToUserServable,
    Factors: FactorsServable,
    ItemPrior: ItemPriorServable,
}


def servable_for(form: Any, **common: Any) -> Servable:
    """The servable of a scorer's ``serving_form()``; ``common`` as :class:`Servable` takes."""
    return SERVABLES[type(form)](form, **common)


def write_saved_model(servable: Servable, path: str) -> list[str]:
    """Write ``servable`` as a SavedModel through Keras' ``ExportArchive``; its signature names."""
    import keras

    archive = keras.export.ExportArchive()
    for resource in servable.resources():
        archive.track(resource)
    endpoints = servable.endpoints()
    for name, endpoint in endpoints.items():
        archive.add_endpoint(name, endpoint.fn, endpoint.specs)
    archive.write_out(path, verbose=False)
    return sorted([*endpoints, "serving_default"])

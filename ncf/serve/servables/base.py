"""What every servable shares: its endpoints become the SavedModel signatures specified here.

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
:func:`ncf.serve.servables.write_saved_model` hands to Keras' ``ExportArchive``. The archive
keeps only the variables the endpoints read (no optimizer state). A new signature is one
method here plus one entry in ``endpoints()``; a new serving form is one module of
:mod:`ncf.serve.servables` with a :class:`Servable` subclass. Seen items and sparse matrices
are CSR arrays held in variables and expanded per batch with ``tf.ragged.range``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf

from ncf.serve import history as fold
from ncf.serve.graph_ops import csr_variables, expand_rows, lookup_table, per_row_k, variable

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

"""The one interface every model answers, neural or classical: scores of items for users.

A :class:`Scorer` has ``num_items`` and two methods:

- ``score_items(users [B] int32, items [B, C] int32) -> [B, C] float32``: the score of
  ``items[b, c]`` for ``users[b]``;
- ``score_all(users [B] int32) -> [B, num_items] float32``: every item for each user.

Higher is better; only the order within a user's row matters. The two methods must agree:
``score_all(users)[b, items[b, c]] == score_items(users, items)[b, c]`` (the contract test
checks it for every recommender). Implementations must not modify their input arrays (the
evaluator passes read-only broadcast views). The evaluator (``ncf.evaluation``) talks to
nothing else, so neural models and the baselines are compared on the same footing.

For serving, a fitted model describes itself as one of a few closed forms
(``serving_form()``): :class:`ItemToItem`, :class:`UserToUser`, :class:`Factors`,
:class:`ItemPrior`, :class:`KerasModel` or :class:`PooledHistory`. :mod:`ncf.serve.servables`
has one TensorFlow servable per form, so a new model family whose scores take one of these
forms is served without new serving code.

This module also holds :func:`top_k_mask` and :func:`top_k`, the deterministic top-K used
both for recommendation lists and for pruning kNN neighbourhoods: among equal scores the
lower column index wins, so the result never depends on how a row was chunked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Scorer(Protocol):
    """Scores of items for users; see the module docstring for the contract."""

    num_items: int

    def score_items(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """``users`` [B] int32, ``items`` [B, C] int32 -> scores [B, C] float32."""
        ...

    def score_all(self, users: np.ndarray) -> np.ndarray:
        """``users`` [B] int32 -> scores [B, num_items] float32."""
        ...


class MatrixScorer:
    """A scorer over a precomputed dense score matrix [num_users, num_items] (tests, debugging).

    Example:
        >>> scorer = MatrixScorer(np.eye(3, dtype=np.float32))
        >>> scorer.score_items(np.array([1]), np.array([[0, 1]])).tolist()
        [[0.0, 1.0]]
    """

    def __init__(self, scores: np.ndarray) -> None:
        if scores.ndim != 2:
            raise ValueError(f"scores must be [num_users, num_items], got shape {scores.shape}")
        self.scores = np.asarray(scores, dtype=np.float32)
        self.num_items = int(scores.shape[1])

    def score_items(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.scores[np.asarray(users)[:, None], items]

    def score_all(self, users: np.ndarray) -> np.ndarray:
        return self.scores[np.asarray(users)]


@dataclass(frozen=True)
class ItemToItem:
    """``s(u, i) = (X W)[u, i]``: the user's row of X [users, items] times W [items, items].

    ``weights`` is scipy sparse (item-kNN's S^T) or a dense array. ``similarity`` [items,
    items] gives ``similar_items`` (row i: the items most similar to i); None for none.
    ``item_features`` [items, F] (the content model): an item unseen at training time with
    features f scores ``sum_{j in I_u} cos(F_j, f)`` (``score_items_by_features``).
    """

    interactions: Any
    weights: Any
    similarity: Any | None = None
    item_features: np.ndarray | None = None


@dataclass(frozen=True)
class UserToUser:
    """``s(u, i) = (S X)[u, i]`` with S [users, users] (user-kNN); no item similarity.

    ``neighbours`` and ``shrinkage`` are how S was built (shrunk cosine, top ``neighbours``
    per row): a new user's row of S is built the same way (``recommend_from_history``)."""

    similarity: Any
    interactions: Any
    neighbours: int = 100
    shrinkage: float = 0.0


@dataclass(frozen=True)
class Factors:
    """``s(u, i) = <p_u, q_i> + b_i``: user factors P [users, d], item factors Q [items, d]
    and optional item biases b [items] (iALS and other matrix factorisations). Similar items
    are the nearest item factors (cosine). A new user's factors solve the iALS user step
    ``(Q^T Q + alpha Q_h^T Q_h + l2 I) p = (1 + alpha) Q_h^T 1`` for their history h
    (``alpha = 0``: ridge regression)."""

    user: np.ndarray
    item: np.ndarray
    item_bias: np.ndarray | None = None
    l2: float = 1.0
    alpha: float = 0.0


@dataclass(frozen=True)
class ItemPrior:
    """``s(u, i) = scores[i]`` for every user (popularity); no item similarity."""

    scores: np.ndarray


@dataclass(frozen=True)
class KerasModel:
    """A Keras ``NCFModel``; similar items are the nearest item embeddings (cosine)."""

    model: Any


@dataclass(frozen=True)
class PooledHistory:
    """A Keras model that reads a user from their latest items (``HistoryModel``,
    ``SequenceModel``: a table in the model, ``history_length`` items each, most recent
    first), so any list of items is a user (``score_histories``); similar items are the
    nearest output embeddings (``item_embeddings``)."""

    model: Any


def top_k_mask(scores: np.ndarray, k: int) -> np.ndarray:
    """Boolean mask of the ``k`` largest entries of each row; NaN entries are never chosen.

    Ties at the k-th value go to the lower column index, so the mask is unique. Rows with
    fewer than ``k`` non-NaN entries select all of them.

    Args:
        scores: [B, N] float array; NaN marks excluded entries.
        k: how many to keep per row (positive).

    Returns:
        [B, N] bool.
    """
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    if k >= scores.shape[1]:
        return ~np.isnan(scores)
    # np.partition sorts NaN last, so partition the negation: NaN then means "smallest".
    kth = -np.partition(-scores, k - 1, axis=1)[:, k - 1 : k]  # [B, 1]; NaN if row is short
    with np.errstate(invalid="ignore"):
        mask = scores > kth
        ties = scores == kth
    need = k - np.count_nonzero(mask, axis=1)  # [B]
    overflow = np.flatnonzero(np.count_nonzero(ties, axis=1) > need)
    if overflow.size:  # keep only the first `need` ties of those rows, by column
        tie_rank = np.cumsum(ties[overflow], axis=1, dtype=np.int32)
        ties[overflow] &= tie_rank <= need[overflow, None]
    mask |= ties
    short = np.flatnonzero(np.isnan(kth[:, 0]))
    if short.size:
        mask[short] = ~np.isnan(scores[short])
    return mask


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Columns of the ``k`` best entries per row, best first; ties by lower column index.

    Args:
        scores: [B, N] float array; NaN marks excluded entries.
        k: list length.

    Returns:
        [B, k] int64 column indices, padded with -1 where a row has fewer than ``k``
        non-NaN entries.
    """
    rows, cols = np.nonzero(top_k_mask(scores, k))
    order = np.lexsort((cols, -scores[rows, cols], rows))
    rows, cols = rows[order], cols[order]
    starts = np.searchsorted(rows, np.arange(scores.shape[0]))
    out = np.full((scores.shape[0], k), -1, dtype=np.int64)
    out[rows, np.arange(len(rows)) - starts[rows]] = cols
    return out

"""Neighbourhood baselines: cosine item-kNN (Sarwar et al. 2001) and user-kNN, sparse throughout.

X is the [users, items] matrix of train interactions: x_ui = 1 (``binary``) or the rating
(``rating`` weighting). Between two rows a, b of the matrix being compared (item columns
for item-kNN, user rows for user-kNN) the shrunk cosine similarity is

    sim(a, b) = <x_a, x_b> / (|x_a| |x_b| + shrinkage)

with the diagonal set to zero. Each row of the similarity matrix S keeps only its top
``neighbours`` positive entries (ties go to the lower index). Scores:

- item-kNN:  s(u, i) = sum_j x_uj S[j, i]   i.e. scores = X[users] @ S, S [items, items]
  (each of the user's items votes for its nearest neighbours);
- user-kNN:  s(u, i) = sum_v S[u, v] x_vi    i.e. scores = S[users] @ X, S [users, users]
  (the user's nearest users vote with their interactions).

S is built chunk by chunk of rows: a sparse product X_rows[chunk] @ X_rows^T, densified only
for the chunk ([chunk, n] floats, at most ``max_dense`` of them), pruned to the top
``neighbours`` per row and stored sparse; no dense [n, n] matrix ever exists. Scoring
densifies only the scores of one batch of users. These are the kNN baselines the NCF paper
compares against (He et al. 2017); they go through the same evaluator (Krichene & Rendle 2020).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal, TypeVar

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from ncf.baselines.storage import load_arrays, save_baseline
from ncf.errors import ConfigError
from ncf.family import Capabilities, Family, FitInputs, MemoryParts
from ncf.schema import Section
from ncf.scorer import ItemToItem, UserToUser, top_k_mask

if TYPE_CHECKING:
    from ncf.config import Config, ModelConfig
    from ncf.data.dataset import Dataset
    from ncf.data.split import Split

_Model = TypeVar("_Model", bound="_NeighbourModel")

DEFAULT_MAX_DENSE = 2**24  # similarity entries densified at once while fitting (float32: 64 MiB)


class KnnConfig(Section):
    """Item-kNN and user-kNN (``model.type: itemknn | userknn``)."""

    neighbours: int = Field(100, gt=0, description="neighbours kept per item (user)")
    shrinkage: float = Field(0.0, ge=0, description="cosine shrinkage term")
    weighting: Literal["binary", "rating"] = Field(
        "binary", description="matrix entries are 1 or the rating"
    )


def interaction_matrix(
    num_users: int,
    num_items: int,
    train_user: np.ndarray,
    train_item: np.ndarray,
    ratings: np.ndarray | None = None,
) -> sp.csr_matrix:
    """X [num_users, num_items] float32: 1 per train pair, or the rating (duplicates summed)."""
    train_user, train_item = np.asarray(train_user), np.asarray(train_item)
    if train_user.shape != train_item.shape or train_user.ndim != 1:
        raise ValueError("train_user and train_item must be 1-D arrays of the same length")
    if ratings is not None and np.shape(ratings) != train_user.shape:
        raise ValueError(f"ratings {np.shape(ratings)} must align with train ({train_user.shape})")
    if train_user.size and not (train_user.min() >= 0 and train_user.max() < num_users):
        raise ValueError(f"train_user must lie in 0..{num_users - 1}")
    if train_item.size and not (train_item.min() >= 0 and train_item.max() < num_items):
        raise ValueError(f"train_item must lie in 0..{num_items - 1}")
    values = (
        np.ones(len(train_user), np.float32) if ratings is None else np.asarray(ratings, np.float32)
    )
    x = sp.csr_matrix((values, (train_user, train_item)), shape=(num_users, num_items))
    x.sum_duplicates()
    if ratings is None:
        x.data[:] = 1.0
    return x


def _dot_chunks(rows: sp.csr_matrix, step: int) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(lo, rows[lo:lo+step] @ rows.T)`` densified, [c, n] per chunk.

    (A worker thread computing the next chunk ahead did not help: scipy's sparse product
    holds the GIL, so the pruning could not overlap with it.)
    """
    others_t = rows.T.tocsr()  # [d, n]
    for lo in range(0, rows.shape[0], step):
        yield lo, (rows[lo : lo + step] @ others_t).toarray()


def _similarity(dots: np.ndarray, norms: np.ndarray, lo: int, shrinkage: float) -> np.ndarray:
    """Shrunk cosine of rows lo.. from their dot products [c, n], in place; NaN where not positive."""
    chunk = np.arange(dots.shape[0])
    denom = np.multiply.outer(norms[lo : lo + len(chunk)], norms)
    if shrinkage:
        denom += np.float32(shrinkage)
    with np.errstate(divide="ignore", invalid="ignore"):  # empty rows: 0 / 0 = NaN, excluded
        sims = np.divide(dots, denom, out=dots)
    sims[sims <= 0] = np.nan
    sims[chunk, lo + chunk] = np.nan
    return sims


def cosine_neighbours(
    rows: sp.csr_matrix, neighbours: int, shrinkage: float = 0.0, max_dense: int = DEFAULT_MAX_DENSE
) -> sp.csr_matrix:
    """Top-``neighbours`` shrunk cosine similarities between the rows of ``rows`` [n, d].

    Returns:
        [n, n] float32 CSR: row a holds a's ``neighbours`` most similar rows (positive only).
    """
    if neighbours <= 0 or shrinkage < 0:
        raise ValueError("neighbours must be positive and shrinkage non-negative")
    rows = sp.csr_matrix(rows, dtype=np.float32)
    n = rows.shape[0]
    norms = np.sqrt(np.asarray(rows.multiply(rows).sum(axis=1), dtype=np.float32).ravel())
    step = max(1, max_dense // max(1, n))
    parts_r, parts_c, parts_v = [], [], []
    for lo, dots in _dot_chunks(rows, step):
        sims = _similarity(dots, norms, lo, shrinkage)
        r, c = np.nonzero(top_k_mask(sims, neighbours))
        parts_r.append(r + lo)
        parts_c.append(c)
        parts_v.append(sims[r, c])
    if not parts_r:
        return sp.csr_matrix((n, n), dtype=np.float32)
    values = np.concatenate(parts_v).astype(np.float32)
    return sp.csr_matrix((values, (np.concatenate(parts_r), np.concatenate(parts_c))), shape=(n, n))


class _NeighbourModel:
    """Shared fit / score / save of the two kNN scorers; subclasses say what is compared."""

    kind: ClassVar[str]

    def __init__(
        self,
        interactions: sp.csr_matrix,
        similarity: sp.csr_matrix,
        neighbours: int,
        shrinkage: float,
    ) -> None:
        self.interactions = sp.csr_matrix(interactions, dtype=np.float32)  # X [users, items]
        self.similarity = sp.csr_matrix(similarity, dtype=np.float32)  # S
        self.neighbours, self.shrinkage = int(neighbours), float(shrinkage)
        self.num_users, self.num_items = self.interactions.shape
        self._columns: sp.csc_matrix | None = None  # CSC copy for score_items, built lazily
        self._transposed: sp.csr_matrix | None = None

    @staticmethod
    def _compared(x: sp.csr_matrix) -> sp.csr_matrix:
        raise NotImplementedError

    @classmethod
    def fit(
        cls: type[_Model],
        num_users: int,
        num_items: int,
        train_user: np.ndarray,
        train_item: np.ndarray,
        ratings: np.ndarray | None = None,
        *,
        neighbours: int = 100,
        shrinkage: float = 0.0,
        max_dense: int = DEFAULT_MAX_DENSE,
    ) -> _Model:
        """Build X from train (``ratings`` aligned with it, or binary) and the pruned similarity S."""
        x = interaction_matrix(num_users, num_items, train_user, train_item, ratings)
        sim = cosine_neighbours(cls._compared(x), neighbours, shrinkage, max_dense)
        return cls(x, sim, neighbours, shrinkage)

    def _score(self, users: np.ndarray, columns: np.ndarray | None) -> np.ndarray:
        raise NotImplementedError

    def score_all(self, users: np.ndarray) -> np.ndarray:
        return self._score(np.asarray(users), None)

    def score_items(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Scores the distinct items of the batch densely, a slice of users at a time."""
        users, items = np.asarray(users), np.asarray(items)
        out = np.empty(items.shape, dtype=np.float32)
        step = max(1, DEFAULT_MAX_DENSE // self.num_items)  # dense block <= step * num_items
        for lo in range(0, len(users), step):
            block = items[lo : lo + step]
            unique, inverse = np.unique(block.ravel(), return_inverse=True)
            dense = self._score(users[lo : lo + step], unique)  # [b, n_unique]
            out[lo : lo + step] = np.take_along_axis(dense, inverse.reshape(block.shape), axis=1)
        return out

    def save(self, directory: str | os.PathLike[str]) -> None:
        params = {"neighbours": self.neighbours, "shrinkage": self.shrinkage}
        arrays = {"interactions": self.interactions, "similarity": self.similarity}
        save_baseline(directory, self.kind, params, arrays)

    @classmethod
    def load(cls: type[_Model], directory: str | os.PathLike[str]) -> _Model:
        names = {"interactions": True, "similarity": True}
        params, arrays = load_arrays(directory, cls.kind, names)
        return cls(
            arrays["interactions"], arrays["similarity"], params["neighbours"], params["shrinkage"]
        )


class ItemKNN(_NeighbourModel):
    """Cosine item-kNN scorer: ``scores = X[users] @ S.T``, S [items, items] pruned per row.

    Row i of S holds candidate i's ``neighbours`` most similar items, and a candidate is
    scored by its own neighbourhood: score(u, i) = sum over j in N_k(i) of X[u, j] S[i, j]
    (Sarwar et al. 2001). Summing instead each of the user's items' neighbourhoods (X @ S)
    was tried and is worse on the ML-100K validation split (sampled NDCG@10 0.334 vs 0.372
    at 20 neighbours); see docs/benchmarks.md.
    """

    kind = "itemknn"

    @staticmethod
    def _compared(x: sp.csr_matrix) -> sp.csr_matrix:
        return x.T.tocsr()  # items are compared

    @property
    def scoring_matrix(self) -> sp.csr_matrix:
        """S.T as CSR: ``X @ scoring_matrix`` gives every score."""
        if self._transposed is None:
            self._transposed = self.similarity.T.tocsr()
        return self._transposed

    def _score(self, users: np.ndarray, columns: np.ndarray | None) -> np.ndarray:
        if columns is None:
            return (self.interactions[users] @ self.scoring_matrix).toarray()
        return (self.interactions[users] @ self.similarity[columns].T).toarray()

    def serving_form(self) -> ItemToItem:
        return ItemToItem(self.interactions, self.scoring_matrix, self.similarity)


class UserKNN(_NeighbourModel):
    """Cosine user-kNN scorer: ``scores = S[users] @ X``, S [users, users] pruned per row."""

    kind = "userknn"

    @property
    def scoring_matrix(self) -> sp.csr_matrix:
        """S: ``scoring_matrix[users] @ X`` gives every score."""
        return self.similarity

    @staticmethod
    def _compared(x: sp.csr_matrix) -> sp.csr_matrix:
        return x  # users are compared

    def _score(self, users: np.ndarray, columns: np.ndarray | None) -> np.ndarray:
        x = self.interactions
        if columns is not None:
            if self._columns is None:
                self._columns = self.interactions.tocsc()
            x = self._columns[:, columns]
        return (self.similarity[users] @ x).toarray()

    def serving_form(self) -> UserToUser:
        return UserToUser(self.similarity, self.interactions, self.neighbours, self.shrinkage)


def _fit(cls: type[_Model]):
    def fit(config: ModelConfig, split: Split, inputs: FitInputs) -> _Model:
        knn = config.knn
        if knn.weighting == "rating" and inputs.ratings is None:
            raise ConfigError(
                "model.knn.weighting=rating needs ratings, but the data has none; "
                "use model.knn.weighting=binary or a source with a rating column"
            )
        return cls.fit(
            split.num_users,
            split.num_items,
            split.train_user,
            split.train_item,
            inputs.ratings if knn.weighting == "rating" else None,
            neighbours=knn.neighbours,
            shrinkage=knn.shrinkage,
        )

    return fit


def _load(cls: type[_Model]):
    return lambda run: cls.load(Path(run) / "baseline")


def knn_memory(
    rows: int, neighbours: int, num_train: int, max_dense: int = DEFAULT_MAX_DENSE
) -> int:
    """Bytes of a fit: the pruned similarity and its transpose (CSR: 12 bytes an entry), X
    and its transpose, and the densified chunk of similarities (twice: scores and ranks)."""
    return 24 * rows * neighbours + 24 * num_train + 8 * max_dense


def _memory(config: Config, dataset: Dataset) -> MemoryParts:
    split = dataset.split
    rows = split.num_items if config.model.type == "itemknn" else split.num_users
    size = knn_memory(rows, config.model.knn.neighbours, split.num_train)
    return {"model": (size, "model.knn.neighbours")}


def _uses_ratings(config: ModelConfig) -> bool:
    return bool(config.knn.weighting == "rating")


SEARCH_SPACE = {
    "trials": 25,
    "timeout_minutes": 20,
    "startup_trials": 8,
    "params": {
        "model.knn.neighbours": {"low": 5, "high": 500, "log": True},
        "model.knn.shrinkage": {"low": 0.0, "high": 100.0},
    },
    "start": {
        "model.knn.neighbours": 20,
        "model.knn.shrinkage": 10.0,
    },  # configs/ml-100k/itemknn.yaml
}
SUMMARIES = {
    "itemknn": "cosine item-kNN (Sarwar et al. 2001)",
    "userknn": "cosine user-kNN",
}
NO_SIMILAR = {"userknn": "user-kNN compares users, not items, so it has no item similarity"}

FAMILIES = {
    cls.kind: Family(
        name=cls.kind,
        summary=SUMMARIES[cls.kind],
        neural=False,
        load=_load(cls),
        section="knn",
        settings=KnnConfig,
        hyperparameters=("knn.neighbours", "knn.shrinkage", "knn.weighting"),
        search_space=SEARCH_SPACE,
        can=Capabilities(
            similar_items=cls.kind not in NO_SIMILAR, no_similar_items=NO_SIMILAR.get(cls.kind, "")
        ),
        fit=_fit(cls),
        memory=_memory,
        uses_ratings=_uses_ratings,
        legacy={key: f"knn.{key}" for key in ("neighbours", "shrinkage", "weighting")},
    )
    for cls in (ItemKNN, UserKNN)
}

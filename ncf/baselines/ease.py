"""EASE: an item-item linear model with a closed-form solution (Steck 2019, "Embarrassingly
Shallow Autoencoders for Sparse Data").

X is the binary [users, items] matrix of train interactions. EASE learns B [items, items]:

    min_B ||X - X B||_F^2 + lambda ||B||_F^2   subject to diag(B) = 0

whose solution, with P = (X^T X + lambda I)^{-1}, is B = I - P diag(1 / diag(P)), i.e.
B[i, j] = -P[i, j] / P[j, j] off the diagonal and 0 on it. Scores: s(u, i) = (X B)[u, i].

P is computed in one of two forms (``model.ease.form``; ``auto`` picks the cheaper one):

- **primal**: invert the [items, items] Gram matrix X^T X + lambda I (O(items^3));
- **dual**, when there are fewer users than items: by the Woodbury identity
  P = (I - X^T (X X^T + lambda I_users)^{-1} X) / lambda, which inverts a [users, users]
  matrix instead (O(users^3 + users items^2)).

Both give the same B up to rounding; B is dense ([items, items] float32), so EASE suits
catalogues up to some tens of thousands of items. Served as the dense
:class:`~ncf.scorer.ItemToItem` form ``X @ B``; ``similar_items`` reads the columns of B
(the items whose presence raises item i's score most).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from pydantic import Field

from ncf.baselines.knn import interaction_matrix
from ncf.baselines.storage import load_arrays, save_baseline
from ncf.family import Family, FitInputs, MemoryParts
from ncf.schema import Section
from ncf.scorer import ItemToItem

if TYPE_CHECKING:
    from ncf.config import Config, ModelConfig
    from ncf.data.dataset import Dataset
    from ncf.data.split import Split

log = logging.getLogger(__name__)

KIND = "ease"


class EaseConfig(Section):
    """EASE (Steck 2019): the closed-form item-item model (``model.type: ease``)."""

    l2: float = Field(500.0, gt=0, description="lambda, the L2 penalty on the item-item weights")
    form: Literal["auto", "primal", "dual"] = Field(
        "auto",
        description="invert the [items, items] Gram matrix (primal) or a [users, users] one "
        "(dual, Woodbury); auto: dual when there are fewer users than items",
    )


MAX_DENSE_SCORES = 2**24  # scores densified at once in score_items (float32: 64 MiB)


def _spd_inverse(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a symmetric positive definite matrix through its Cholesky factor."""
    factor = scipy.linalg.cho_factor(matrix, lower=True, overwrite_a=True, check_finite=False)
    inverse = scipy.linalg.cho_solve(factor, np.eye(len(matrix)), check_finite=False)
    return (inverse + inverse.T) / 2  # exactly symmetric


def ease_weights(x: sp.spmatrix, l2: float, form: str = "auto") -> np.ndarray:
    """The EASE weight matrix B [items, items] float32 of ``x`` [users, items] (module docstring).

    Args:
        x: the interaction matrix.
        l2: lambda, the L2 penalty (positive).
        form: ``primal``, ``dual`` or ``auto`` (dual when users < items).
    """
    if l2 <= 0:
        raise ValueError(f"l2 must be positive, got {l2}")
    if form not in ("auto", "primal", "dual"):
        raise ValueError(f"form must be auto, primal or dual, got {form!r}")
    x = sp.csr_matrix(x, dtype=np.float64)
    num_users, num_items = x.shape
    if form == "auto":
        form = "dual" if num_users < num_items else "primal"
    if form == "primal":
        gram = (x.T @ x).toarray()  # [items, items]
        gram[np.diag_indices(num_items)] += l2
        p = _spd_inverse(gram)
    else:
        kernel = (x @ x.T).toarray()  # [users, users]
        kernel[np.diag_indices(num_users)] += l2
        inner = _spd_inverse(kernel)
        xd = x.toarray()  # [users, items]
        p = -(xd.T @ inner @ xd)
        p[np.diag_indices(num_items)] += 1.0
        p /= l2
    b = -p / np.diag(p)[None, :]  # B[i, j] = -P[i, j] / P[j, j]
    b[np.diag_indices(num_items)] = 0.0
    log.debug(f"EASE: {form} form, {num_users} users x {num_items} items")
    return b.astype(np.float32)


class EASE:
    """EASE scorer: ``scores = X[users] @ B``. Build with :meth:`fit` or :meth:`load`.

    Example:
        >>> model = EASE.fit(3, 3, np.array([0, 0, 1, 2]), np.array([0, 1, 1, 2]), l2=1.0)
        >>> model.weights.shape
        (3, 3)
    """

    kind = KIND

    def __init__(self, interactions: sp.csr_matrix, weights: np.ndarray, l2: float) -> None:
        self.interactions = sp.csr_matrix(interactions, dtype=np.float32)  # X [users, items]
        self.weights = np.asarray(weights, dtype=np.float32)  # B [items, items]
        self.l2 = float(l2)
        self.num_users, self.num_items = self.interactions.shape

    @classmethod
    def fit(
        cls,
        num_users: int,
        num_items: int,
        train_user: np.ndarray,
        train_item: np.ndarray,
        ratings: np.ndarray | None = None,
        *,
        l2: float = 500.0,
        form: str = "auto",
    ) -> EASE:
        """Build the binary X from train and solve for B (``ratings`` are not used)."""
        x = interaction_matrix(num_users, num_items, train_user, train_item)
        return cls(x, ease_weights(x, l2, form), l2)

    def score_all(self, users: np.ndarray) -> np.ndarray:
        return np.asarray(self.interactions[np.asarray(users)] @ self.weights, dtype=np.float32)

    def score_items(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Scores the distinct items of each slice of users: ``X[users] @ B[:, those items]``."""
        users, items = np.asarray(users), np.asarray(items)
        out = np.empty(items.shape, dtype=np.float32)
        step = max(1, MAX_DENSE_SCORES // self.num_items)
        for lo in range(0, len(users), step):
            block = items[lo : lo + step]
            unique, inverse = np.unique(block.ravel(), return_inverse=True)
            dense = self.interactions[users[lo : lo + step]] @ self.weights[:, unique]
            out[lo : lo + step] = np.take_along_axis(dense, inverse.reshape(block.shape), axis=1)
        return out

    def serving_form(self) -> ItemToItem:
        return ItemToItem(self.interactions, self.weights, self.weights.T)

    def save(self, directory: str | os.PathLike[str]) -> None:
        arrays = {"interactions": self.interactions, "weights": self.weights}
        save_baseline(directory, KIND, {"l2": self.l2}, arrays)

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> EASE:
        params, arrays = load_arrays(directory, KIND, {"interactions": True, "weights": False})
        return cls(arrays["interactions"], arrays["weights"], params["l2"])


def ease_memory(num_users: int, num_items: int, form: str = "auto") -> int:
    """Bytes of a fit's dense matrices: primal the [items, items] Gram matrix, its inverse and
    B in float64 and B in float32; dual also the [users, users] kernel and its inverse and
    the densified X."""
    if form == "auto":
        form = "dual" if num_users < num_items else "primal"
    items = 28 * num_items**2
    if form == "primal":
        return items
    return items + 16 * num_users**2 + 8 * num_users * num_items


def _memory(config: Config, dataset: Dataset) -> MemoryParts:
    split = dataset.split
    size = ease_memory(split.num_users, split.num_items, config.model.ease.form)
    return {"model": (size, "data (fewer items)")}


def _fit(config: ModelConfig, split: Split, inputs: FitInputs) -> EASE:
    settings = config.ease
    return EASE.fit(
        split.num_users, split.num_items, split.train_user, split.train_item,
        l2=settings.l2, form=settings.form,
    )  # fmt: skip


FAMILIES = {
    KIND: Family(
        name=KIND,
        summary="EASE, the closed-form item-item model (Steck 2019)",
        neural=False,
        load=lambda run: EASE.load(Path(run) / "baseline"),
        section="ease",
        settings=EaseConfig,
        hyperparameters=("ease.l2",),
        search_space={
            "trials": 20,
            "timeout_minutes": 20,
            "startup_trials": 6,
            "params": {"model.ease.l2": {"low": 1.0, "high": 20000.0, "log": True}},
            "start": {"model.ease.l2": 300.0},  # configs/ml-100k/ease.yaml
        },
        score_meaning="EASE score: the sum, over the user's items, of their learned weights "
        "for this item (unbounded; only the order matters)",
        fit=_fit,
        memory=_memory,
    )
}

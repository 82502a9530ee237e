"""iALS: implicit alternating least squares (Hu, Koren & Volinsky 2008), solved by conjugate
gradient (Takács, Pilászy & Tikk 2011; settings as revisited by Rendle et al. 2021).

With X the binary [users, items] train matrix, user factors W [users, d] and item factors
H [items, d], the model scores s(u, i) = <w_u, h_i> and minimises over every (u, i) pair

    L = sum_{u,i} c_ui (x_ui - <w_u, h_i>)^2 + lambda (||W||_F^2 + ||H||_F^2),
    c_ui = 1 + alpha x_ui

(every unobserved pair is a negative of weight 1, every observed one a positive of weight
1 + alpha). Each iteration solves for all of W with H fixed, then for all of H with W fixed.
For a user the exact step is the d x d system

    (H^T H + lambda I + alpha sum_{i in I_u} h_i h_i^T) w_u = (1 + alpha) sum_{i in I_u} h_i

which costs O(d^3) per user; instead ``cg_steps`` steps of conjugate gradient, started from
the current w_u, approximate it at O(|I_u| d + d^2) per step, vectorised over all users at
once (the product with sum_i h_i h_i^T touches only the observed pairs). With cg_steps >= d
(in exact arithmetic) CG reaches the exact solution. Factors start as N(0, 0.1 / sqrt(d))
drawn from the run's seed, so a config gives the same factors every time. Served as the
:class:`~ncf.scorer.Factors` form (no item bias).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from ncf.baselines.knn import interaction_matrix
from ncf.baselines.storage import load_arrays, save_baseline
from ncf.family import Family, FitInputs, MemoryParts
from ncf.rng import rng_for
from ncf.schema import Section
from ncf.scorer import Factors

log = logging.getLogger(__name__)

KIND = "ials"
MAX_GATHER = 2**22  # pairs (or dense scores) held at once in the CG products
DENSE_RATIO = 30  # score every pair densely when rows * columns <= this * observed pairs


class IalsConfig(Section):
    """iALS (Hu et al. 2008) by conjugate gradient (``model.type: ials``)."""

    factors: int = Field(64, gt=0, description="dimension of the user and item factors")
    l2: float = Field(1.0, gt=0, description="lambda, the L2 penalty on all factors")
    alpha: float = Field(
        10.0, ge=0, description="confidence of an observed pair: weight 1 + alpha (unobserved: 1)"
    )
    iterations: int = Field(15, gt=0, description="alternating sweeps (users, then items)")
    cg_steps: int = Field(
        3, gt=0, description="conjugate-gradient steps per sweep, warm-started (>= factors: exact)"
    )


def init_factors(num_rows: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """Initial factors [num_rows, dim] float64: N(0, 0.1 / sqrt(dim))."""
    return rng.normal(0.0, 0.1 / np.sqrt(dim), (num_rows, dim))


def _observed_products(x: sp.csr_matrix, fixed: np.ndarray, d: np.ndarray) -> np.ndarray:
    """For each row r: sum_{i in row r} fixed[i] <fixed[i], d[r]>, i.e. (F^T diag(x_r) F) d_r.

    The inner products <fixed[i], d[r]> of the observed pairs come from a dense block
    d[rows] @ F^T when the matrix is dense enough for that to be cheaper (BLAS over every
    pair beats gathering |pairs| factor rows), otherwise from gathered rows.
    """
    out = np.zeros_like(d)
    num_rows, num_cols = x.shape
    dense = num_rows * num_cols <= DENSE_RATIO * max(1, x.nnz)
    per_row = num_cols if dense else max(1, x.nnz // max(1, num_rows))
    step = max(1, MAX_GATHER // per_row)
    for lo in range(0, num_rows, step):
        block = x[lo : lo + step]
        rows = np.repeat(np.arange(block.shape[0]), np.diff(block.indptr))
        if dense:
            weights = (d[lo : lo + step] @ fixed.T)[rows, block.indices]
        else:
            weights = np.einsum("nd,nd->n", fixed[block.indices], d[lo + rows])
        products = sp.csr_matrix((weights, block.indices, block.indptr), block.shape) @ fixed
        out[lo : lo + step] = products
    return out


def solve_side(
    x: sp.csr_matrix, fixed: np.ndarray, current: np.ndarray, l2: float, alpha: float, steps: int
) -> np.ndarray:
    """One half-iteration: the rows of ``x`` [R, C] given the fixed factors [C, d].

    Runs ``steps`` conjugate-gradient steps from ``current`` [R, d] on every row's system
    A_r w = b_r at once, with A_r = F^T F + lambda I + alpha F^T diag(x_r) F and
    b_r = (1 + alpha) F^T x_r. Returns the new [R, d] factors.
    """
    gram = fixed.T @ fixed + l2 * np.eye(fixed.shape[1])  # [d, d]

    def apply(d: np.ndarray) -> np.ndarray:  # A_r d_r for every row: [R, d]
        return d @ gram + alpha * _observed_products(x, fixed, d)

    w = current.copy()
    residual = (1.0 + alpha) * (x @ fixed) - apply(w)
    direction = residual.copy()
    rs = np.einsum("rd,rd->r", residual, residual)
    for _ in range(steps):
        a_dir = apply(direction)
        curvature = np.einsum("rd,rd->r", direction, a_dir)
        step = np.divide(rs, curvature, out=np.zeros_like(rs), where=curvature > 0)
        w += step[:, None] * direction
        residual -= step[:, None] * a_dir
        rs_new = np.einsum("rd,rd->r", residual, residual)
        beta = np.divide(rs_new, rs, out=np.zeros_like(rs), where=rs > 0)
        direction = residual + beta[:, None] * direction
        rs = rs_new
    return w


def ials_loss(
    x: sp.csr_matrix, user: np.ndarray, item: np.ndarray, l2: float, alpha: float
) -> float:
    """L of the module docstring, without the [users, items] score matrix."""
    everything = float(np.sum((user.T @ user) * (item.T @ item)))  # sum over all pairs of s^2
    rows = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))
    s = np.einsum("nd,nd->n", user[rows], item[x.indices])  # observed scores
    observed = float(np.sum((1.0 + alpha) * (1.0 - s) ** 2 - s**2))
    return everything + observed + l2 * float(np.sum(user**2) + np.sum(item**2))


def ials_factors(
    x: sp.csr_matrix,
    factors: int,
    l2: float,
    alpha: float,
    iterations: int,
    cg_steps: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """User and item factors (float64) after ``iterations`` alternating CG sweeps."""
    if factors <= 0 or iterations <= 0 or cg_steps <= 0 or l2 <= 0 or alpha < 0:
        raise ValueError("factors, iterations, cg_steps and l2 must be positive, alpha >= 0")
    from tqdm import tqdm

    x = sp.csr_matrix(x, dtype=np.float64)
    x.data[:] = 1.0
    xt = x.T.tocsr()
    user = init_factors(x.shape[0], factors, rng)
    item = init_factors(x.shape[1], factors, rng)
    sweeps = tqdm(range(iterations), desc="iALS", unit="sweep", disable=None, leave=False)
    for iteration in sweeps:  # a progress bar on a terminal only
        user = solve_side(x, item, user, l2, alpha, cg_steps)
        item = solve_side(xt, user, item, l2, alpha, cg_steps)
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                f"iALS iteration {iteration + 1}: loss {ials_loss(x, user, item, l2, alpha):.2f}"
            )
    return user, item


class IALS:
    """iALS scorer: ``scores = W[users] @ H^T``. Build with :meth:`fit` or :meth:`load`."""

    kind = KIND

    def __init__(self, user_factors: np.ndarray, item_factors: np.ndarray, params: dict) -> None:
        self.user_factors = np.asarray(user_factors, dtype=np.float32)  # W [users, d]
        self.item_factors = np.asarray(item_factors, dtype=np.float32)  # H [items, d]
        self.params = dict(params)
        self.num_users, self.num_items = len(self.user_factors), len(self.item_factors)

    @classmethod
    def fit(
        cls,
        num_users: int,
        num_items: int,
        train_user: np.ndarray,
        train_item: np.ndarray,
        ratings: np.ndarray | None = None,
        *,
        factors: int = 64,
        l2: float = 1.0,
        alpha: float = 10.0,
        iterations: int = 15,
        cg_steps: int = 3,
        seed: int = 0,
    ) -> IALS:
        """Fit on the binary train matrix (``ratings`` are not used); ``seed`` draws the start."""
        x = interaction_matrix(num_users, num_items, train_user, train_item)
        params = {"factors": factors, "l2": l2, "alpha": alpha, "iterations": iterations,
                  "cg_steps": cg_steps, "seed": seed}  # fmt: skip
        user, item = ials_factors(
            x, factors, l2, alpha, iterations, cg_steps, rng_for(seed, "ials-init")
        )
        return cls(user, item, params)

    def score_all(self, users: np.ndarray) -> np.ndarray:
        return self.user_factors[np.asarray(users)] @ self.item_factors.T

    def score_items(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        user = self.user_factors[np.asarray(users)]  # [B, d]
        return np.einsum("bd,bcd->bc", user, self.item_factors[np.asarray(items)])

    def serving_form(self) -> Factors:
        l2, alpha = float(self.params["l2"]), float(self.params["alpha"])
        return Factors(self.user_factors, self.item_factors, l2=l2, alpha=alpha)

    def save(self, directory: str | os.PathLike[str]) -> None:
        arrays = {"user_factors": self.user_factors, "item_factors": self.item_factors}
        save_baseline(directory, KIND, self.params, arrays)

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> IALS:
        names = {"user_factors": False, "item_factors": False}
        params, arrays = load_arrays(directory, KIND, names)
        return cls(arrays["user_factors"], arrays["item_factors"], params)


def _memory(config: Any, dataset: Any) -> MemoryParts:
    """The user and item factors and the conjugate-gradient state of one side (float32)."""
    split, factors = dataset.split, config.model.ials.factors
    rows = split.num_users + split.num_items
    size = 4 * factors * (rows + 3 * max(split.num_users, split.num_items)) + 24 * split.num_train
    return {"model": (size, "model.ials.factors")}


def _fit(config, split, inputs: FitInputs) -> IALS:
    ials = config.ials
    return IALS.fit(
        split.num_users,
        split.num_items,
        split.train_user,
        split.train_item,
        factors=ials.factors,
        l2=ials.l2,
        alpha=ials.alpha,
        iterations=ials.iterations,
        cg_steps=ials.cg_steps,
        seed=inputs.seed,
    )


FAMILIES = {
    KIND: Family(
        name=KIND,
        summary="implicit ALS by conjugate gradient (Hu et al. 2008)",
        neural=False,
        section="ials",
        settings=IalsConfig,
        hyperparameters=("ials.factors", "ials.l2", "ials.alpha", "ials.iterations"),
        search_space={
            "trials": 30,
            "timeout_minutes": 20,
            "startup_trials": 8,
            "params": {
                "model.ials.factors": {"choices": [16, 32, 64, 128, 256]},
                "model.ials.l2": {"low": 0.01, "high": 300.0, "log": True},
                "model.ials.alpha": {"low": 0.3, "high": 100.0, "log": True},
                "model.ials.iterations": {"low": 5, "high": 25},
            },
            "start": {  # configs/ml-100k/ials.yaml
                "model.ials.factors": 32,
                "model.ials.l2": 3.0,
                "model.ials.alpha": 1.0,
                "model.ials.iterations": 15,
            },
        },
        score_meaning="predicted preference: dot product of the user and item factors "
        "(about 1 for items like the user's, 0 for others)",
        load=lambda run: IALS.load(Path(run) / "baseline"),
        fit=_fit,
        memory=_memory,
    )
}

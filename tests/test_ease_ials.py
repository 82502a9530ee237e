"""EASE and iALS against slow, obvious dense references; save/load, seeds, serving forms, CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import QUICKSTART, TINY, set_args

from ncf.baselines.ease import EASE, ease_weights
from ncf.baselines.ials import IALS, ials_factors, ials_loss, init_factors
from ncf.baselines.knn import interaction_matrix
from ncf.config import ModelConfig
from ncf.data.split import Split
from ncf.family import FitInputs
from ncf.registry import family
from ncf.scorer import Factors, ItemToItem


def random_binary(seed: int, users: int, items: int, density: float = 0.3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = (rng.random((users, items)) < density).astype(np.float64)
    x[0] = 0.0  # a user without interactions
    x[:, 1] = 0.0  # an item without interactions
    return x


def ease_reference(x: np.ndarray, l2: float) -> np.ndarray:
    """EASE by its definition: the objective splits into one ridge regression per column j,
    predicting x_j from every other column (diag(B) = 0 means j never predicts itself)."""
    items = x.shape[1]
    b = np.zeros((items, items))
    for j in range(items):
        others = [i for i in range(items) if i != j]
        a = x[:, others]
        b[others, j] = np.linalg.solve(a.T @ a + l2 * np.eye(items - 1), a.T @ x[:, j])
    return b


@pytest.mark.parametrize("users,items", [(14, 9), (7, 12)])  # primal wins, then dual wins
@pytest.mark.parametrize("form", ["primal", "dual", "auto"])
def test_ease_equals_column_wise_ridge_regression(users, items, form):
    x = random_binary(users + items, users, items)
    expected = ease_reference(x, l2=3.0)
    got = ease_weights(sp.csr_matrix(x), 3.0, form)
    assert got.dtype == np.float32 and np.all(np.diag(got) == 0)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_ease_scores_are_x_times_b_and_serve_as_dense_item_to_item():
    x = random_binary(3, 10, 8)
    user, item = np.nonzero(x)
    model = EASE.fit(10, 8, user, item, l2=2.0)
    expected = x @ ease_reference(x, 2.0)
    users = np.arange(10, dtype=np.int32)
    np.testing.assert_allclose(model.score_all(users), expected, rtol=1e-5, atol=1e-6)
    form = model.serving_form()
    assert isinstance(form, ItemToItem) and isinstance(form.weights, np.ndarray)
    np.testing.assert_allclose(form.interactions @ form.weights, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(form.similarity, form.weights.T)
    with pytest.raises(ValueError):
        ease_weights(sp.csr_matrix(x), 0.0)


def exact_als(x: np.ndarray, dim: int, l2: float, alpha: float, iterations: int, seed: int):
    """Hu et al. 2008 with every least-squares step solved exactly, densely, one row at a time."""
    rng = np.random.default_rng(seed)
    user = init_factors(x.shape[0], dim, rng)
    item = init_factors(x.shape[1], dim, rng)
    confidence = 1.0 + alpha * x
    for _ in range(iterations):
        for rows, fixed, c, p in ((user, item, confidence, x), (item, user, confidence.T, x.T)):
            for r in range(len(rows)):
                weighted = fixed.T * c[r]  # F^T C_r
                rows[r] = np.linalg.solve(weighted @ fixed + l2 * np.eye(dim), weighted @ p[r])
    return user, item


def dense_loss(x, user, item, l2, alpha) -> float:
    scores = user @ item.T
    return float(
        np.sum((1 + alpha * x) * (x - scores) ** 2) + l2 * (np.sum(user**2) + np.sum(item**2))
    )


def test_ials_with_enough_cg_steps_equals_exact_als():
    x = random_binary(5, 12, 10, density=0.35)
    expected_user, expected_item = exact_als(x, 4, l2=0.5, alpha=3.0, iterations=4, seed=7)
    user, item = ials_factors(
        sp.csr_matrix(x), 4, 0.5, 3.0, 4, cg_steps=12, rng=np.random.default_rng(7)
    )
    np.testing.assert_allclose(user, expected_user, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(item, expected_item, rtol=1e-7, atol=1e-9)


def test_ials_loss_matches_dense_and_three_cg_steps_descend_to_the_exact_optimum():
    x = random_binary(9, 15, 11, density=0.3)
    csr = sp.csr_matrix(x)
    user, item = exact_als(x, 3, l2=0.2, alpha=5.0, iterations=30, seed=1)
    exact = dense_loss(x, user, item, 0.2, 5.0)
    assert ials_loss(csr, user, item, 0.2, 5.0) == pytest.approx(exact, rel=1e-10)
    losses = []
    for iterations in (1, 2, 4, 8, 30):
        u, i = ials_factors(csr, 3, 0.2, 5.0, iterations, 3, np.random.default_rng(1))
        losses.append(dense_loss(x, u, i, 0.2, 5.0))
    assert all(a >= b - 1e-9 for a, b in zip(losses, losses[1:], strict=False)), losses
    assert losses[-1] == pytest.approx(exact, rel=1e-3)


def test_ials_is_reproducible_from_the_seed_and_serves_as_factors():
    x = random_binary(2, 20, 15)
    user, item = np.nonzero(x)
    fit = lambda seed: IALS.fit(20, 15, user, item, factors=5, iterations=3, seed=seed)  # noqa: E731
    a, b, c = fit(42), fit(42), fit(1)
    np.testing.assert_array_equal(a.user_factors, b.user_factors)
    assert not np.allclose(a.user_factors, c.user_factors)
    form = a.serving_form()
    assert isinstance(form, Factors) and form.item_bias is None
    users = np.arange(20, dtype=np.int32)
    np.testing.assert_allclose(a.score_all(users), form.user @ form.item.T, rtol=1e-6)


def _split(user, item, users, items) -> Split:
    empty = np.zeros(0, np.int32)
    no_cases = np.zeros((0, 1), np.int32)
    return Split(users, items, user.astype(np.int32), item.astype(np.int32), empty, empty, empty,
                 empty, no_cases, no_cases)  # fmt: skip


@pytest.mark.parametrize("kind", ["ease", "ials"])
def test_family_fit_save_load_round_trip(kind, tmp_path):
    x = random_binary(4, 16, 12)
    user, item = np.nonzero(x)
    config = ModelConfig.model_validate(
        {"type": kind, "ease": {"l2": 4.0}, "ials": {"factors": 3, "iterations": 2}}
    )
    model = family(kind).fit(config, _split(user, item, 16, 12), FitInputs(seed=3))
    model.save(tmp_path / "baseline")
    loaded = family(kind).load(tmp_path)
    assert type(loaded) is type(model) and loaded.num_items == 12
    users = np.arange(16, dtype=np.int32)
    np.testing.assert_array_equal(loaded.score_all(users), model.score_all(users))
    if kind == "ease":
        assert model.l2 == 4.0
    else:
        assert model.params["factors"] == 3 and model.params["seed"] == 3


def test_interaction_matrix_is_binary_for_both():
    x = interaction_matrix(2, 3, np.array([0, 0, 1]), np.array([1, 1, 2]))
    model = EASE(x, np.eye(3, dtype=np.float32), 1.0)
    assert model.score_all(np.array([0])).tolist() == [[0.0, 1.0, 0.0]]


def test_ncf_train_and_compare_ease_and_ials(tmp_path):
    """The way users run them: ``ncf train`` (refit on train + validation), then ``ncf compare``."""
    runs = []
    for kind, extra in (("ease", ["model.ease.l2=50"]), ("ials", ["model.ials.factors=8"])):
        args = [f"run.dir={tmp_path / 'runs'}", *TINY, f"model.type={kind}", "train.refit=true",
                f"run.name={kind}", *extra]  # fmt: skip
        done = subprocess.run(
            [sys.executable, "-m", "ncf.cli", "train", str(QUICKSTART), *set_args(*args)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        (run,) = (tmp_path / "runs" / kind).iterdir()
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics["fit_on"] == "train+val" and metrics["test"]["full"]["HR@10"] > 0.05
        runs.append(str(run))
    done = subprocess.run(
        [sys.executable, "-m", "ncf.cli", "compare", *runs],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "l2=50" in done.stdout and "factors=8 l2=1 alpha=10 iterations=15" in done.stdout


@pytest.mark.parametrize(
    "dense_ratio,max_gather", [(0, 7), (0, 2**22), (10**6, 40), (10**6, 2**22)]
)
def test_ials_products_agree_gathered_or_dense_and_in_any_chunks(
    monkeypatch, dense_ratio, max_gather
):
    """The CG product (F^T diag(x_r) F) d_r, computed from gathered rows or from a dense
    block, in chunks of any size, equals the dense formula."""
    from ncf.baselines import ials

    x = random_binary(6, 13, 9)
    rng = np.random.default_rng(0)
    fixed, d = rng.normal(size=(9, 3)), rng.normal(size=(13, 3))
    expected = np.stack([fixed.T @ np.diag(x[r]) @ fixed @ d[r] for r in range(13)])
    monkeypatch.setattr(ials, "DENSE_RATIO", dense_ratio)
    monkeypatch.setattr(ials, "MAX_GATHER", max_gather)
    np.testing.assert_allclose(
        ials._observed_products(sp.csr_matrix(x), fixed, d), expected, atol=1e-12
    )

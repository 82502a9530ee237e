"""Baselines: sparse kNN against brute-force dense cosine, popularity, save/load, the factory."""

from __future__ import annotations

import numpy as np
import pytest

from ncf.baselines import ItemKNN, Popularity, UserKNN
from ncf.baselines.knn import cosine_neighbours, interaction_matrix
from ncf.config import ModelConfig
from ncf.data.split import Split
from ncf.errors import ConfigError, NcfError
from ncf.family import FitInputs
from ncf.registry import family


def random_train(seed: int, users=15, items=12, density=0.35, ratings=False):
    rng = np.random.default_rng(seed)
    dense = rng.random((users, items)) < density
    user, item = np.nonzero(dense)
    order = rng.permutation(len(user))
    values = rng.integers(1, 6, len(user)).astype(np.float32) if ratings else None
    return user[order].astype(np.int32), item[order].astype(np.int32), values


def dense_x(users, items, user, item, values=None) -> np.ndarray:
    x = np.zeros((users, items), np.float32)
    x[user, item] = 1.0 if values is None else values
    return x


def brute_force_similarity(rows: np.ndarray, neighbours: int, shrinkage: float) -> np.ndarray:
    """Dense cosine between the rows of ``rows``, pruned row by row with plain sorting."""
    dots = rows @ rows.T
    norms = np.sqrt((rows * rows).sum(axis=1))
    denom = np.outer(norms, norms) + np.float32(shrinkage)
    sims = np.divide(dots, denom, out=np.zeros_like(dots), where=denom > 0)
    np.fill_diagonal(sims, 0.0)
    pruned = np.zeros_like(sims)
    for a, row in enumerate(sims):
        ranked = sorted(range(len(row)), key=lambda b: (-row[b], b))
        keep = [b for b in ranked[:neighbours] if row[b] > 0]
        pruned[a, keep] = row[keep]
    return pruned


CASES = [(k, s, r) for k in (1, 3, 100) for s in (0.0, 2.5) for r in (False, True)]


@pytest.mark.parametrize("neighbours,shrinkage,ratings", CASES)
def test_itemknn_equals_dense_brute_force(neighbours, shrinkage, ratings):
    # User 15 and item 12 have no interactions: their similarities are 0, never NaN.
    user, item, values = random_train(neighbours + int(ratings), ratings=ratings)
    x = dense_x(16, 13, user, item, values)
    expected_sim = brute_force_similarity(x.T, neighbours, shrinkage)
    model = ItemKNN.fit(
        16, 13, user, item, values, neighbours=neighbours, shrinkage=shrinkage, max_dense=30
    )
    np.testing.assert_array_equal(model.similarity.toarray(), expected_sim)
    users = np.arange(16, dtype=np.int32)
    np.testing.assert_allclose(model.score_all(users), x @ expected_sim.T, rtol=1e-6)


@pytest.mark.parametrize("neighbours,shrinkage,ratings", CASES)
def test_userknn_equals_dense_brute_force(neighbours, shrinkage, ratings):
    user, item, values = random_train(7 + neighbours, ratings=ratings)
    x = dense_x(16, 13, user, item, values)
    expected_sim = brute_force_similarity(x, neighbours, shrinkage)
    model = UserKNN.fit(
        16, 13, user, item, values, neighbours=neighbours, shrinkage=shrinkage, max_dense=40
    )
    np.testing.assert_array_equal(model.similarity.toarray(), expected_sim)
    users = np.array([3, 0, 15], dtype=np.int32)
    np.testing.assert_allclose(model.score_all(users), (expected_sim @ x)[users], rtol=1e-6)


def test_chunk_size_does_not_change_the_similarity():
    user, item, _ = random_train(11, users=40, items=30)
    rows = interaction_matrix(40, 30, user, item).T.tocsr()
    whole = cosine_neighbours(rows, 4, 1.0, max_dense=10**9).toarray()
    for max_dense in (1, 29, 31, 200):
        np.testing.assert_array_equal(
            cosine_neighbours(rows, 4, 1.0, max_dense=max_dense).toarray(), whole
        )


def test_interaction_matrix_binary_and_validation():
    x = interaction_matrix(2, 3, np.array([0, 0, 1]), np.array([1, 1, 2]))
    assert x.toarray().tolist() == [[0, 1, 0], [0, 0, 1]]
    with pytest.raises(ValueError):
        interaction_matrix(2, 3, np.array([0]), np.array([3]))
    with pytest.raises(ValueError):
        interaction_matrix(2, 3, np.array([0]), np.array([1]), np.array([1.0, 2.0]))


def test_popularity_scores_are_train_counts():
    model = Popularity.fit(3, 4, np.array([0, 1, 2, 2]), np.array([1, 1, 3, 1]))
    assert model.score_all(np.array([0, 2])).tolist() == [[0, 3, 0, 1]] * 2
    assert model.score_items(np.array([1]), np.array([[3, 1]])).tolist() == [[1, 3]]


@pytest.mark.parametrize("cls", [ItemKNN, UserKNN, Popularity])
def test_save_load_round_trip(cls, tmp_path):
    user, item, _ = random_train(5)
    model = cls.fit(15, 12, user, item)
    model.save(tmp_path / "run" / "baseline")
    users = np.arange(15, dtype=np.int32)
    for loaded in (
        cls.load(tmp_path / "run" / "baseline"),
        family(cls.kind).load(tmp_path / "run"),
    ):
        assert type(loaded) is cls and loaded.num_items == 12
        np.testing.assert_array_equal(loaded.score_all(users), model.score_all(users))


def test_load_errors_are_user_errors(tmp_path):
    with pytest.raises(NcfError):
        family("itemknn").load(tmp_path)
    Popularity.fit(2, 2, np.array([0]), np.array([1])).save(tmp_path)
    with pytest.raises(NcfError):
        ItemKNN.load(tmp_path)


def _train_split(user, item, users=15, items=12) -> Split:
    empty = np.zeros(0, np.int32)
    no_cases = np.zeros((0, 1), np.int32)
    return Split(users, items, user, item, empty, empty, empty, empty, no_cases, no_cases)


def test_families_fit_from_config():
    user, item, values = random_train(2, ratings=True)
    split = _train_split(user, item)
    config = ModelConfig(
        type="itemknn", knn={"neighbours": 2, "shrinkage": 1.0, "weighting": "rating"}
    )
    model = family("itemknn").fit(config, split, FitInputs(ratings=values))
    assert isinstance(model, ItemKNN) and model.similarity.getnnz(axis=1).max() <= 2
    expected = ItemKNN.fit(15, 12, user, item, values, neighbours=2, shrinkage=1.0)
    np.testing.assert_array_equal(model.similarity.toarray(), expected.similarity.toarray())
    binary_config = ModelConfig(type="itemknn", knn={"neighbours": 2, "weighting": "binary"})
    binary = family("itemknn").fit(binary_config, split, FitInputs(ratings=values))
    assert set(binary.interactions.data.tolist()) == {1.0}
    user_model = family("userknn").fit(
        ModelConfig(type="userknn", knn={"neighbours": 3}), split, FitInputs()
    )
    assert isinstance(user_model, UserKNN) and user_model.similarity.getnnz(axis=1).max() <= 3
    popularity = family("popularity").fit(ModelConfig(type="popularity"), split, FitInputs())
    assert isinstance(popularity, Popularity)
    with pytest.raises(ConfigError, match="weighting=rating needs ratings"):
        family("itemknn").fit(config, split, FitInputs())
    with pytest.raises(ConfigError, match="model.type 'bogus'"):
        family("bogus")
    assert family("gmf").neural and family("gmf").fit is None


@pytest.mark.parametrize("cls", [ItemKNN, UserKNN])
def test_score_items_in_user_slices_matches_score_all(cls, monkeypatch):
    user, item, _ = random_train(4, users=30, items=20)
    model = cls.fit(30, 20, user, item, neighbours=4)
    monkeypatch.setattr("ncf.baselines.knn.DEFAULT_MAX_DENSE", 50)  # slices of 2 users
    users = np.arange(30, dtype=np.int32)
    items = np.random.default_rng(0).integers(0, 20, (30, 6)).astype(np.int32)
    expected = np.take_along_axis(model.score_all(users), items, axis=1)
    np.testing.assert_array_equal(model.score_items(users, items), expected)

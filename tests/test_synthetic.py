"""The synthetic generator: shape, determinism, skewed popularity, learnable taste."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ncf.config import SyntheticConfig
from ncf.data.sources.synthetic import generate, latent_model, num_genres

SMALL = SyntheticConfig(users=300, items=400, interactions=15_000)


@pytest.fixture(scope="module")
def small() -> pd.DataFrame:
    return generate(SMALL, seed=0).frame


def _indices(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Ids are "1".."n": index = id - 1."""
    return frame["user"].astype(int).to_numpy() - 1, frame["item"].astype(int).to_numpy() - 1


def test_columns_and_types(small: pd.DataFrame) -> None:
    assert list(small.columns) == ["user", "item", "rating", "timestamp"]
    assert pd.api.types.is_string_dtype(small["user"]) and pd.api.types.is_string_dtype(
        small["item"]
    )
    assert small["rating"].dtype == np.float64 and small["timestamp"].dtype == np.int64
    assert set(np.unique(small["rating"])) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert 3.0 < small["rating"].mean() < 4.0
    users, items = _indices(small)
    assert users.min() == 0 and users.max() == SMALL.users - 1 and items.max() < SMALL.items
    assert 0.95 * SMALL.interactions <= len(small) <= SMALL.interactions


def test_every_user_has_five_and_time_increases(small: pd.DataFrame) -> None:
    users, _ = _indices(small)
    assert np.bincount(users).min() >= 5
    assert (np.diff(users) >= 0).all()  # grouped by user
    same_user = np.diff(users) == 0
    assert (np.diff(small["timestamp"].to_numpy())[same_user] >= 0).all()
    assert small["timestamp"].between(946_684_800, 1_577_836_800).all()


def test_deterministic_for_a_seed(small: pd.DataFrame) -> None:
    again = generate(SMALL, seed=0)
    pd.testing.assert_frame_equal(again.frame, small)
    other = generate(SMALL, seed=1).frame
    assert not other["item"].equals(small["item"])


def test_popularity_is_skewed() -> None:
    frame = generate(SyntheticConfig(users=1000, items=3000, interactions=60_000), seed=0).frame
    counts = frame["item"].value_counts().to_numpy()
    top = counts[: 3000 // 100].sum() / len(frame)
    assert top > 0.06  # the top 1% of items: 6x their uniform share
    flat = generate(
        SyntheticConfig(users=1000, items=3000, interactions=60_000, popularity_exponent=0.0),
        seed=0,
    ).frame
    assert flat["item"].value_counts().to_numpy()[:30].sum() / len(flat) < top / 2


def test_taste_is_learnable(small: pd.DataFrame) -> None:
    """Hold out each user's latest item; the true scores rank it far above random."""
    model = latent_model(SMALL, seed=0)
    users, items = _indices(small)
    last = np.r_[users[1:] != users[:-1], True]  # grouped by user, ordered by time
    logits = model.logits(np.arange(SMALL.users))
    scorers = {"true": logits, "dot product": logits - model.item_log_popularity[None, :]}
    hit_rate = {}
    for name, scores in scorers.items():
        scores = scores.copy()
        scores[users[~last], items[~last]] = -np.inf  # rank among items not seen in training
        held_out = scores[users[last], items[last]]
        rank = (scores[users[last]] > held_out[:, None]).sum(axis=1)
        hit_rate[name] = (rank < 10).mean()
    candidates = SMALL.items - (np.bincount(users) - 1)
    random = np.mean(10 / candidates)  # expected HR@10 of a random ranking
    assert hit_rate["true"] > 8 * random
    assert hit_rate["dot product"] > 4 * random


def test_side_information(small: pd.DataFrame) -> None:
    raw = generate(SMALL, seed=0)
    genres = [c for c in raw.item_info.columns if c.startswith("genre:")]
    assert len(genres) == num_genres(SMALL.items) == 10
    assert raw.item_info.loc["45", "title"] == "Item 45"
    assert (raw.item_info[genres].sum(axis=1) >= 1).all()
    assert len(raw.user_info) == SMALL.users
    assert raw.user_info["age"].between(18, 80).all()
    assert set(raw.user_info["gender"]) == {"F", "M"}
    # genre is taste: a user's favourite genre takes a larger share than if the same items
    # were spread over users at random
    model = latent_model(SMALL, seed=0)
    users, items = _indices(small)
    genre = model.item_genre[items]
    shuffled = np.random.default_rng(0).permutation(genre)
    assert _favourite_share(users, genre) > _favourite_share(users, shuffled) + 0.08


def _favourite_share(users: np.ndarray, genre: np.ndarray) -> float:
    counts = np.bincount(users * 10 + genre, minlength=SMALL.users * 10).reshape(-1, 10)
    return float((counts.max(axis=1) / counts.sum(axis=1)).mean())


def test_tiny_configs() -> None:
    frame = generate(SyntheticConfig(users=2, items=2, interactions=1, factors=1), seed=3).frame
    assert len(frame) <= 1
    frame = generate(SyntheticConfig(users=50, items=3, interactions=500), seed=3).frame
    assert frame["item"].nunique() <= 3 and not frame.duplicated(["user", "item"]).any()

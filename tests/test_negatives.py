import numpy as np
import pytest

from ncf.data import negatives
from ncf.data.negatives import PositiveSet, item_sampler, sample_candidates, sample_negatives
from ncf.errors import DataError


def random_positives(seed=0, users=50, items=40, n=600):
    rng = np.random.default_rng(seed)
    user = rng.integers(0, users, n).astype(np.int32)
    item = rng.integers(0, items, n).astype(np.int32)
    return user, item


@pytest.mark.parametrize("budget", [1 << 30, 0])  # bitset and sorted-keys paths
def test_positive_set_matches_python_set(monkeypatch, budget):
    monkeypatch.setattr(negatives, "BITSET_BUDGET", budget)
    user, item = random_positives()
    positives = PositiveSet(user, item, 50, 40)
    truth = set(zip(user.tolist(), item.tolist(), strict=True))
    qu, qi = np.meshgrid(np.arange(50), np.arange(40), indexing="ij")
    got = positives.contains(qu.ravel(), qi.ravel())
    expected = np.array([(u, i) in truth for u, i in zip(qu.ravel(), qi.ravel(), strict=True)])
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("popularity", [False, True])
def test_negatives_are_never_positives(popularity):
    user, item = random_positives()
    positives = PositiveSet(user, item, 50, 40)
    draw = item_sampler(40, np.bincount(item, minlength=40) if popularity else None)
    users = np.repeat(np.arange(50, dtype=np.int32), 200)
    neg = sample_negatives(positives, users, np.random.default_rng(1), draw)
    assert neg.dtype == np.int32 and neg.shape == users.shape
    assert not positives.contains(users, neg).any()
    # every non-positive item of user 0 shows up: the draw covers the whole complement
    free = set(range(40)) - set(item[user == 0].tolist())
    assert set(neg[users == 0].tolist()) == free


def test_uniform_negatives_are_uniform_over_the_complement():
    user = np.zeros(10, dtype=np.int32)
    item = np.arange(10, dtype=np.int32)  # user 0 has items 0..9 of 20
    positives = PositiveSet(user, item, 1, 20)
    neg = sample_negatives(positives, np.zeros(100_000, dtype=np.int32), np.random.default_rng(0))
    counts = np.bincount(neg, minlength=20)
    assert counts[:10].sum() == 0
    assert np.allclose(counts[10:] / 100_000, 0.1, atol=0.01)


def test_nearly_full_user_still_gets_negatives():
    item = np.arange(99, dtype=np.int32)
    positives = PositiveSet(np.zeros(99, dtype=np.int32), item, 1, 100)
    neg = sample_negatives(
        positives, np.zeros(50, dtype=np.int32), np.random.default_rng(0), max_rounds=1
    )
    assert (neg == 99).all()


def test_user_with_every_item_is_an_error():
    positives = PositiveSet(np.zeros(5, dtype=np.int32), np.arange(5, dtype=np.int32), 1, 5)
    with pytest.raises(DataError, match="every item"):
        sample_negatives(positives, np.zeros(3, dtype=np.int32), np.random.default_rng(0))


def test_candidates_distinct_non_positive_and_uniform():
    user, item = random_positives()
    positives = PositiveSet(user, item, 50, 40)
    users = np.arange(50, dtype=np.int32)
    cands = sample_candidates(positives, users, 15, np.random.default_rng(3))
    assert cands.shape == (50, 15)
    assert not positives.contains(users[:, None], cands).any()
    assert all(len(set(row)) == 15 for row in cands.tolist())
    # uniform subset: low and high item ids are equally likely for an empty user
    empty = PositiveSet(np.array([0], np.int32), np.array([0], np.int32), 2, 1000)
    many = sample_candidates(empty, np.ones(2000, np.int32), 10, np.random.default_rng(0))
    assert abs(many.mean() - 499.5) < 10


def test_candidates_when_the_complement_is_exactly_n():
    positives = PositiveSet(np.zeros(90, np.int32), np.arange(90, dtype=np.int32), 1, 100)
    cands = sample_candidates(positives, np.zeros(3, np.int32), 10, np.random.default_rng(0))
    assert all(sorted(row) == list(range(90, 100)) for row in cands.tolist())
    with pytest.raises(DataError, match="lower eval.sampled_negatives"):
        sample_candidates(positives, np.zeros(1, np.int32), 11, np.random.default_rng(0))


def test_popularity_sampler_matches_the_weights():
    counts = np.array([0, 1, 2, 5, 40, 0, 12])
    draw = item_sampler(len(counts), counts, power=0.75)
    drawn = draw(np.random.default_rng(0), 400_000)
    expected = counts**0.75 / (counts**0.75).sum()
    np.testing.assert_allclose(np.bincount(drawn, minlength=7) / 400_000, expected, atol=0.003)
    assert drawn.dtype == np.int32

"""Ranking metrics: hand-computed cases and a slow list-walking reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
from reference_metrics import list_metrics

from ncf import metrics as m


def one(rank: int) -> m.Ranking:
    return m.Ranking.from_ranks(np.array([rank]))


def test_rank_one_is_perfect():
    r = one(1)
    for fn in (m.hit_rate, m.ndcg, m.recall, m.average_precision):
        assert fn(r, 10)[0] == 1.0
    assert m.reciprocal_rank(r)[0] == 1.0
    assert m.precision(r, 10)[0] == pytest.approx(0.1)


def test_rank_three_by_hand():
    r = one(3)
    assert m.ndcg(r, 10)[0] == pytest.approx(1 / math.log2(4))  # = 0.5
    assert m.ndcg(r, 10)[0] == pytest.approx(0.5)
    assert m.hit_rate(r, 2)[0] == 0.0 and m.hit_rate(r, 3)[0] == 1.0
    assert m.ndcg(r, 2)[0] == 0.0
    assert m.reciprocal_rank(r)[0] == pytest.approx(1 / 3)
    assert m.reciprocal_rank(r, 2)[0] == 0.0
    assert m.precision(r, 5)[0] == pytest.approx(1 / 5)
    assert m.average_precision(r, 5)[0] == pytest.approx(1 / 3)


def test_several_relevant_items_by_hand():
    # Exclusive ranks 1, 1, 4: the list reads R R n n n R, so positions are 1, 2, 6.
    r = m.Ranking.from_ranks(np.array([4, 1, 1]), np.array([0, 0, 0]))
    assert r.positions.tolist() == [1, 2, 6]
    idcg = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert m.ndcg(r, 5)[0] == pytest.approx((1 + 1 / math.log2(3)) / idcg)
    assert m.ndcg(r, 6)[0] == pytest.approx((1 + 1 / math.log2(3) + 1 / math.log2(7)) / idcg)
    assert m.recall(r, 5)[0] == pytest.approx(2 / 3)
    assert m.precision(r, 5)[0] == pytest.approx(2 / 5)
    assert m.average_precision(r, 5)[0] == pytest.approx((1 / 1 + 2 / 2) / 3)
    assert m.average_precision(r, 2)[0] == pytest.approx((1 / 1 + 2 / 2) / 2)
    assert m.average_precision(r, 6)[0] == pytest.approx((1 + 1 + 3 / 6) / 3)
    assert m.hit_rate(r, 1)[0] == 1.0 and m.reciprocal_rank(r)[0] == 1.0


def test_pessimistic_ranks_count_ties_against_the_target():
    target = np.array([1.0, 1.0, np.nan, 0.0])
    competitors = np.array(
        [[1.0, 0.5, 2.0], [0.0, 0.0, 0.0], [0.0, 1.0, -np.inf], [np.nan, 0.0, 0.0]]
    )
    assert m.pessimistic_ranks(target, competitors).tolist() == [3, 1, 4, 3]


def test_constant_scores_rank_last():
    ranks = m.pessimistic_ranks(np.zeros(5), np.zeros((5, 99)))
    assert (ranks == 100).all()


def test_ideal_dcg():
    two = 1 + 1 / math.log2(3)
    assert m.ideal_dcg(np.array([1, 2, 5]), 2).tolist() == pytest.approx([1.0, two, two])


def test_from_ranks_validates():
    with pytest.raises(ValueError):
        m.Ranking.from_ranks(np.array([0]))
    with pytest.raises(ValueError):
        m.Ranking.from_ranks(np.array([1, 1]), np.array([0, 2]))  # case 1 is empty


def test_coverage_and_mean_popularity_ignore_padding():
    top = np.array([[0, 1], [1, -1], [-1, -1]])
    assert m.coverage(top, 4) == pytest.approx(0.5)
    popularity = np.array([10.0, 2.0, 0.0, 0.0])
    assert m.mean_popularity(top, popularity) == pytest.approx((6.0 + 2.0) / 2)


def test_summarise_empty_is_nan():
    out = m.summarise(m.Ranking.from_ranks(np.zeros(0, np.int64)), [10])
    assert math.isnan(out["HR@10"]) and math.isnan(out["MRR"])


def _reference(relevance: list[int], num_relevant: int, k: int) -> dict[str, float]:
    values = list_metrics(relevance, num_relevant, [k])
    return {name.split("@")[0]: value for name, value in values.items()}


@pytest.mark.parametrize("seed", range(5))
def test_matches_list_walking_reference(seed):
    rng = np.random.default_rng(seed)
    lists, ranks, cases = [], [], []
    for case in range(30):
        length = int(rng.integers(1, 40))
        relevance = (rng.random(length) < rng.uniform(0.05, 0.5)).astype(int).tolist()
        relevance[int(rng.integers(length))] = 1
        lists.append(relevance)
        positions = [p + 1 for p, rel in enumerate(relevance) if rel]
        ranks += [pos - j for j, pos in enumerate(positions)]  # exclusive rank = position - j
        cases += [case] * len(positions)
    order = rng.permutation(len(ranks))  # from_ranks must not depend on input order
    ranking = m.Ranking.from_ranks(np.array(ranks)[order], np.array(cases)[order])
    fns = {
        "HR": m.hit_rate,
        "Recall": m.recall,
        "Precision": m.precision,
        "NDCG": m.ndcg,
        "MAP": m.average_precision,
    }
    for k in (1, 3, 10, 50):
        for name, fn in fns.items():
            expected = [_reference(rel, sum(rel), k)[name] for rel in lists]
            assert fn(ranking, k) == pytest.approx(expected), (name, k)
    assert m.reciprocal_rank(ranking) == pytest.approx(
        [_reference(rel, sum(rel), 1)["MRR"] for rel in lists]
    )

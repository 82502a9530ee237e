"""The two protocols against a slow, obvious per-user reference; chunking; the Split wrapper."""

from __future__ import annotations

import math

import numpy as np
import pytest
from reference_metrics import list_metrics

from ncf.data.split import Split
from ncf.evaluation import evaluate, evaluate_full, evaluate_sampled
from ncf.scorer import MatrixScorer, top_k, top_k_mask

METRICS = ("HR", "NDCG", "Recall", "Precision", "MAP")


def reference_full(scores, train, held, ks, popularity):
    """Per user: sort the non-train items by score, relevant items after equal-scored others."""
    rows, tops = [], []
    for user in sorted({u for u, _ in held}):
        relevant = {i for u, i in held if u == user}
        seen = {i for u, i in train if u == user}
        items = [i for i in range(scores.shape[1]) if i not in seen - relevant]
        ranked = sorted(items, key=lambda i: (-scores[user, i], i in relevant))
        rows.append(list_metrics([int(i in relevant) for i in ranked], len(relevant), ks))
        unseen = [
            i for i in range(scores.shape[1]) if i not in seen
        ]  # lists never show train items
        tops.append(sorted(unseen, key=lambda i: (-scores[user, i], i)))
    out = {name: float(np.mean([r[name] for r in rows])) for name in rows[0]}
    for k in ks:
        out[f"Coverage@{k}"] = len({i for top in tops for i in top[:k]}) / scores.shape[1]
        out[f"MeanPopularity@{k}"] = float(
            np.mean([np.mean([popularity[i] for i in top[:k]]) for top in tops])
        )
    return {**out, "cases": len(rows)}


def random_case(seed: int, users=12, items=15, levels=3, leave_one_out=False):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, levels, (users, items)).astype(np.float32)  # many ties
    pairs = [(u, i) for u in range(users) for i in range(items) if rng.random() < 0.5]
    rng.shuffle(pairs)
    held = [p for j, p in enumerate(pairs) if j % 3 == 0]
    if leave_one_out:
        held = list({u: (u, i) for u, i in held}.values())
    train = [p for p in pairs if p not in held]
    train += [held[0]]  # a held-out pair also in train must still be ranked by its score
    return scores, train, held


def _arrays(pairs):
    arr = np.array(pairs, dtype=np.int32).reshape(-1, 2)
    return arr[:, 0], arr[:, 1]


@pytest.mark.parametrize("leave_one_out", [False, True])
@pytest.mark.parametrize("seed", range(6))
def test_full_matches_reference(seed, leave_one_out):
    scores, train, held = random_case(seed, leave_one_out=leave_one_out)
    ks = [1, 2, 5, 15]
    popularity = np.bincount(_arrays(train)[1], minlength=scores.shape[1])
    expected = reference_full(scores, train, held, ks, popularity)
    got = evaluate_full(MatrixScorer(scores), *_arrays(train), *_arrays(held), ks, scores.shape[1])
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value), key


@pytest.mark.parametrize("leave_one_out", [False, True])
@pytest.mark.parametrize(
    "batch_users,max_scores", [(1, 10**9), (5, 10**9), (4, 7), (3, 1), (12, 40)]
)
def test_full_chunking_and_batching_change_nothing(batch_users, max_scores, leave_one_out):
    scores, train, held = random_case(7, users=20, items=23, leave_one_out=leave_one_out)
    args = (MatrixScorer(scores), *_arrays(train), *_arrays(held), [1, 3, 10], 23)
    baseline = evaluate_full(*args)
    assert (
        evaluate_full(*args, batch_users=batch_users, max_scores_per_batch=max_scores) == baseline
    )


def test_full_leave_one_out_by_hand():
    # One user, 6 items; item 0 is in train; held-out item 3 scores third among items 1..5.
    scores = np.array([[9.0, 5.0, 1.0, 3.0, 4.0, 0.0]], dtype=np.float32)
    got = evaluate_full(MatrixScorer(scores), [0], [0], [0], [3], [2, 3], 6)
    assert got["HR@2"] == 0.0 and got["HR@3"] == 1.0
    assert got["NDCG@3"] == pytest.approx(0.5) and got["MRR"] == pytest.approx(1 / 3)
    assert got["Coverage@2"] == pytest.approx(2 / 6) and got["cases"] == 1


def test_full_ties_and_nan_count_against_the_held_out_item():
    scores = np.array([[1.0, 1.0, 1.0, np.nan]], dtype=np.float32)
    got = evaluate_full(MatrixScorer(scores), [], [], [0], [0], [1], 4)
    assert got["MRR"] == pytest.approx(1 / 3)  # items 1, 2 tie with it; NaN (-inf) ranks below
    got = evaluate_full(MatrixScorer(scores), [], [], [0], [3], [1], 4)
    assert got["MRR"] == pytest.approx(1 / 4)


def reference_sampled(scores, users, held, candidates, ks):
    rows = []
    for u, i, negs in zip(users, held, candidates, strict=True):
        rank = 1 + sum(scores[u, j] >= scores[u, i] for j in negs)
        rows.append(list_metrics([0] * (rank - 1) + [1], 1, ks))
    return {name: float(np.mean([r[name] for r in rows])) for name in rows[0]}


@pytest.mark.parametrize("batch_size", [1, 3, 4096])
def test_sampled_matches_reference(batch_size):
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 4, (10, 30)).astype(np.float32)
    users = rng.integers(0, 10, 25)
    held = rng.integers(0, 30, 25)
    candidates = np.stack(
        [rng.choice(np.setdiff1d(np.arange(30), [i]), 8, replace=False) for i in held]
    )
    got = evaluate_sampled(
        MatrixScorer(scores), users, held, candidates, [1, 5, 9], batch_size=batch_size
    )
    expected = reference_sampled(scores, users, held, candidates, [1, 5, 9])
    assert got["cases"] == 25
    for key, value in expected.items():
        assert got[key] == pytest.approx(value), key


def test_sampled_fourth_place_by_hand():
    scores = np.array([[0.9, 0.1, 0.8, 0.5, 0.7]], dtype=np.float32)
    got = evaluate_sampled(MatrixScorer(scores), [0], [3], [[0, 1, 2, 4]], [3, 4])
    assert got["HR@3"] == 0.0 and got["NDCG@4"] == pytest.approx(1 / math.log2(5))
    assert got["MRR"] == pytest.approx(1 / 4)


def test_no_cases_gives_nan():
    scorer = MatrixScorer(np.zeros((2, 3), np.float32))
    got = evaluate_full(scorer, [0], [0], [], [], [2], 3)
    assert got["cases"] == 0 and math.isnan(got["HR@2"]) and math.isnan(got["Coverage@2"])
    got = evaluate_sampled(scorer, [], [], np.zeros((0, 2)), [2])
    assert got["cases"] == 0 and math.isnan(got["NDCG@2"])


def test_bad_inputs_raise():
    scorer = MatrixScorer(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError):
        evaluate_full(scorer, [], [], [0], [1], [2], 4)  # catalogue mismatch
    with pytest.raises(ValueError):
        evaluate_sampled(scorer, [0], [1], [[0, 2]], [0])
    with pytest.raises(ValueError):
        evaluate_sampled(scorer, [0, 1], [1], [[0, 2]], [1])


def _split() -> Split:
    i32 = lambda *v: np.array(v, dtype=np.int32)  # noqa: E731
    return Split(
        num_users=2, num_items=6,
        train_user=i32(0, 0, 1, 1), train_item=i32(0, 1, 2, 3),
        val_user=i32(0, 1), val_item=i32(2, 4),
        test_user=i32(0, 1), test_item=i32(3, 5),
        val_candidates=i32(4, 5).reshape(1, 2).repeat(2, 0), test_candidates=i32(4, 5).reshape(1, 2).repeat(2, 0),
    )  # fmt: skip


def test_evaluate_on_a_split_masks_validation_items_for_test():
    split = _split()
    # Each user scores its val item highest: it must not count against the test item.
    scores = np.array([[0, 0, 9, 8, 1, 1], [0, 0, 0, 0, 9, 8]], dtype=np.float32)
    out = evaluate(MatrixScorer(scores), split, "test", ["sampled", "full"], [1, 2])
    assert set(out) == {"sampled", "full"}
    assert out["full"]["HR@1"] == 1.0 and out["full"]["MRR"] == 1.0
    assert out["sampled"]["cases"] == 2 and "Coverage@1" not in out["sampled"]
    val = evaluate(MatrixScorer(scores), split, "val", ["full"], [1])
    assert set(val) == {"full"} and val["full"]["HR@1"] == 1.0
    with pytest.raises(ValueError):
        evaluate(MatrixScorer(scores), split, "train")
    with pytest.raises(ValueError):
        evaluate(MatrixScorer(scores), split, "test", ["fast"])


def test_top_k_breaks_ties_by_lower_index_and_skips_nan():
    scores = np.array([[1.0, 3.0, 3.0, np.nan, 3.0], [np.nan, np.nan, 2.0, np.nan, np.nan]])
    assert top_k(scores, 2).tolist() == [[1, 2], [2, -1]]
    assert top_k_mask(scores, 4).sum(axis=1).tolist() == [4, 1]
    rng = np.random.default_rng(0)
    many = rng.integers(0, 3, (50, 40)).astype(float)
    many[rng.random(many.shape) < 0.2] = np.nan
    for row, got in zip(many, top_k(many, 7), strict=True):
        valid = [i for i in range(40) if not np.isnan(row[i])]
        assert got[got >= 0].tolist() == sorted(valid, key=lambda i: (-row[i], i))[:7]

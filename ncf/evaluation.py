"""The two evaluation protocols, over any :class:`~ncf.scorer.Scorer`.

**Sampled** (He et al. 2017, NCF): each held-out interaction (u, i) is ranked among its N
saved negatives, items u never interacted with in any split (``Split.*_candidates``):
rank = 1 + #{j in negatives(u) : s(u, j) >= s(u, i)}. Every case is one held-out item.

**Full ranking** (Krichene & Rendle 2020, "On sampled metrics for item recommendation"):
each user's held-out items are ranked among every item the user did not interact with in
training. Train items are masked out; the user's other held-out items are not competitors:
rank = 1 + #{j not in train(u) and not in held_out(u) : s(u, j) >= s(u, i)}. A case is one
user, with one (leave-one-out) or several (ratio, temporal) relevant items. Counting ranks
this way is exact and needs no sort. Users are scored in batches of ``batch_users``; when
``batch_users * num_items`` exceeds ``max_scores_per_batch`` the catalogue is also scored in
item chunks through ``score_items``, which gives the same metrics (top-K lists break ties by
item index either way).

Ranks are pessimistic (ties count against the held-out item) and turn into HR@K, NDCG@K,
MRR, Recall@K, Precision@K and MAP@K as defined in :mod:`ncf.metrics`. Full ranking also
reports Coverage@K and MeanPopularity@K of the top-K lists (lists exclude train items and
include held-out ones). A NaN score counts as -inf. Every result has ``cases``, the number
of held-out interactions (sampled) or users (full); with no cases the metrics are NaN.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import scipy.sparse as sp

from ncf.data.split import Split
from ncf.metrics import Ranking, coverage, mean_popularity, pessimistic_ranks, summarise
from ncf.scorer import Scorer, top_k

DEFAULT_MAX_SCORES = 2**25  # scores held at once (float32: 128 MiB)


def _clean(scores: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A writable float32 copy with NaN replaced by -inf; checks the scorer's output shape."""
    out = np.array(scores, dtype=np.float32)
    if out.shape != shape:
        raise ValueError(f"scorer returned shape {out.shape}, expected {shape}")
    out[np.isnan(out)] = -np.inf
    return out


def _check_ks(ks: Sequence[int]) -> list[int]:
    ks = [int(k) for k in ks]
    if not ks or min(ks) <= 0:
        raise ValueError(f"ks must be a non-empty list of positive integers, got {ks}")
    return ks


def evaluate_sampled(
    scorer: Scorer,
    users: np.ndarray,
    held_out: np.ndarray,
    candidates: np.ndarray,
    ks: Sequence[int],
    batch_size: int = 4096,
) -> dict[str, float]:
    """Rank each held-out item among its sampled negatives (He et al. 2017).

    Args:
        scorer: anything with ``score_items``.
        users: [n] int32 user of each case.
        held_out: [n] int32 held-out item of each case.
        candidates: [n, N] int32 sampled negatives of each case (held-out item excluded).
        ks: cut-offs.
        batch_size: cases scored per ``score_items`` call.

    Returns:
        HR@K, NDCG@K, Recall@K, Precision@K, MAP@K for each K, MRR and ``cases``.
    """
    ks = _check_ks(ks)
    users, held_out = np.asarray(users, np.int32), np.asarray(held_out, np.int32)
    candidates = np.asarray(candidates, np.int32)
    if candidates.ndim != 2 or len(candidates) != len(users) or len(held_out) != len(users):
        raise ValueError("users [n], held_out [n] and candidates [n, N] must have the same n")
    ranks = np.empty(len(users), dtype=np.int64)
    for start in range(0, len(users), batch_size):
        stop = min(start + batch_size, len(users))
        items = np.concatenate([held_out[start:stop, None], candidates[start:stop]], axis=1)
        scores = _clean(scorer.score_items(users[start:stop], items), items.shape)
        ranks[start:stop] = pessimistic_ranks(scores[:, 0], scores[:, 1:])
    return {**summarise(Ranking.from_ranks(ranks), ks), "cases": len(users)}


class _Cases:
    """Held-out items grouped by user (a case per user), and the users' train items."""

    def __init__(self, users, held_out, train_user, train_item, num_items: int) -> None:
        users, held_out = np.asarray(users, np.int64), np.asarray(held_out, np.int64)
        if users.shape != held_out.shape:
            raise ValueError("users and held_out must have the same length")
        order = np.lexsort((held_out, users))
        self.users, inverse = np.unique(users[order], return_inverse=True)
        self.case = inverse.reshape(-1)  # [n] case of each held-out item
        self.items = held_out[order]
        self.indptr = np.searchsorted(self.case, np.arange(len(self.users) + 1))
        n_users = int(max(users.max(initial=-1), np.max(train_user, initial=-1))) + 1
        ones = np.ones(len(train_user), dtype=bool)
        shape = (n_users, num_items)
        self.train = sp.csr_matrix((ones, (train_user, train_item)), shape=shape)

    def batch(self, lo: int, hi: int) -> tuple[np.ndarray, ...]:
        """Users, relevant (row, item) and train (row, item) of cases lo..hi-1."""
        users = self.users[lo:hi]
        span = slice(self.indptr[lo], self.indptr[hi])
        rel_row, rel_item = self.case[span] - lo, self.items[span]
        train = self.train[users]
        train_row = np.repeat(np.arange(len(users)), np.diff(train.indptr))
        return users.astype(np.int32), rel_row, rel_item, train_row, train.indices


def _chunks(scorer: Scorer, users: np.ndarray, num_items: int, width: int) -> Iterator:
    """Yield ``(first_item, scores [B, C])`` covering the catalogue in chunks of ``width``."""
    if width >= num_items:
        yield 0, _clean(scorer.score_all(users), (len(users), num_items))
        return
    for lo in range(0, num_items, width):
        items = np.arange(lo, min(lo + width, num_items), dtype=np.int32)
        block = np.broadcast_to(items, (len(users), len(items)))
        yield lo, _clean(scorer.score_items(users, block), block.shape)


def _count_at_least(scores, rel_row, target, max_scores: int) -> np.ndarray:
    """#{non-NaN entries of row rel_row[n] >= target[n]} for each relevant item n."""
    if len(rel_row) == len(scores):  # one relevant item per row: no gather needed
        return np.count_nonzero(scores >= target[:, None], axis=1)
    step = max(1, max_scores // max(1, scores.shape[1]))
    counts = np.empty(len(rel_row), dtype=np.int64)
    for lo in range(0, len(rel_row), step):
        rows, t = rel_row[lo : lo + step], target[lo : lo + step, None]
        counts[lo : lo + step] = np.count_nonzero(scores[rows] >= t, axis=1)
    return counts


_Top = tuple[np.ndarray, np.ndarray]  # items [B, k] (-1 padded), scores [B, k] (NaN padded)


def _merge_top(best: _Top | None, scores: np.ndarray, lo: int, k: int) -> _Top:
    """Top-k (items, scores) of the previous chunks and this one; ties to the lower item."""
    cols = top_k(scores, k)
    items = np.where(cols >= 0, cols + lo, -1)
    vals = np.where(cols >= 0, np.take_along_axis(scores, np.maximum(cols, 0), 1), np.nan)
    if best is None:
        return items, vals
    items, vals = np.concatenate([best[0], items], 1), np.concatenate([best[1], vals], 1)
    cols = top_k(vals, k)  # earlier chunks hold lower item indices, so column order = item order
    safe = np.maximum(cols, 0)
    items = np.where(cols >= 0, np.take_along_axis(items, safe, 1), -1)
    return items, np.where(cols >= 0, np.take_along_axis(vals, safe, 1), np.nan)


def _rank_batch(scorer, cases: _Cases, lo: int, hi: int, k: int, max_scores: int) -> tuple:
    """Pessimistic ranks of the relevant items of cases lo..hi-1 and their top-k lists."""
    users, rel_row, rel_item, train_row, train_item = cases.batch(lo, hi)
    width = max(1, max_scores // len(users))
    num_items = scorer.num_items
    target = None
    if width < num_items:  # chunked: held-out scores from score_items
        held = scorer.score_items(users[rel_row], rel_item[:, None])
        target = _clean(held, (len(rel_row), 1))[:, 0]
    counts = np.zeros(len(rel_row), dtype=np.int64)
    best: _Top | None = None
    for first, scores in _chunks(scorer, users, num_items, width):
        last = first + scores.shape[1]
        if target is None:
            target = scores[rel_row, rel_item]
        inside = (train_item >= first) & (train_item < last)
        scores[train_row[inside], train_item[inside] - first] = np.nan
        best = _merge_top(best, scores, first, k)
        inside = (rel_item >= first) & (rel_item < last)
        scores[rel_row[inside], rel_item[inside] - first] = np.nan
        counts += _count_at_least(scores, rel_row, target, max_scores)
    assert best is not None  # the catalogue has at least one chunk
    return counts + 1, best[0]


def evaluate_full(
    scorer: Scorer,
    split_train_user: np.ndarray,
    split_train_item: np.ndarray,
    users: np.ndarray,
    held_out: np.ndarray,
    ks: Sequence[int],
    num_items: int,
    batch_users: int = 1024,
    item_popularity: np.ndarray | None = None,
    max_scores_per_batch: int = DEFAULT_MAX_SCORES,
) -> dict[str, float]:
    """Rank each user's held-out items among all items outside the user's train set.

    Args:
        scorer: anything with ``score_all`` (and ``score_items`` when chunking over items).
        split_train_user, split_train_item: [n_train] int32, the interactions to mask.
        users, held_out: [n] int32 held-out interactions; a user may appear several times.
        ks: cut-offs.
        num_items: catalogue size (must equal ``scorer.num_items``).
        batch_users: users scored per batch.
        item_popularity: [num_items] popularity for MeanPopularity@K (default: train counts).
        max_scores_per_batch: most scores held at once; beyond it items are chunked too.

    Returns:
        The :mod:`ncf.metrics` means plus Coverage@K, MeanPopularity@K and ``cases`` (users).
    """
    ks = _check_ks(ks)
    train_user = np.asarray(split_train_user, dtype=np.int64)
    train_item = np.asarray(split_train_item, dtype=np.int64)
    if scorer.num_items != num_items:
        raise ValueError(f"scorer has {scorer.num_items} items, the data {num_items}")
    cases = _Cases(users, held_out, train_user, train_item, num_items)
    if item_popularity is None:
        item_popularity = np.bincount(train_item, minlength=num_items)
    n_cases, kmax = len(cases.users), max(ks)
    ranks = np.empty(len(cases.items), dtype=np.int64)
    tops = np.full((n_cases, kmax), -1, dtype=np.int64)
    for lo in range(0, n_cases, batch_users):
        hi = min(lo + batch_users, n_cases)
        span = slice(cases.indptr[lo], cases.indptr[hi])
        ranks[span], tops[lo:hi] = _rank_batch(scorer, cases, lo, hi, kmax, max_scores_per_batch)
    result = summarise(Ranking.from_ranks(ranks, cases.case), ks)
    for k in ks:
        result[f"Coverage@{k}"] = coverage(tops[:, :k], num_items) if n_cases else float("nan")
        result[f"MeanPopularity@{k}"] = mean_popularity(tops[:, :k], np.asarray(item_popularity))
    return {**result, "cases": n_cases}


def evaluate(
    scorer: Scorer,
    split: Split,
    which: str = "test",
    protocols: Sequence[str] = ("sampled", "full"),
    ks: Sequence[int] = (5, 10, 20),
    batch_users: int = 1024,
    max_scores_per_batch: int = DEFAULT_MAX_SCORES,
) -> dict[str, dict[str, float]]:
    """Evaluate on ``split``'s ``"val"`` or ``"test"`` cases with each protocol.

    Full ranking on ``"test"`` masks train and validation interactions (validation items are
    known positives, just as the sampled negatives exclude them); on ``"val"`` it masks train.

    Returns:
        ``{"sampled": {...}, "full": {...}}`` for the protocols asked for.
    """
    if which not in ("val", "test"):
        raise ValueError(f"which must be 'val' or 'test', got {which!r}")
    unknown = set(protocols) - {"sampled", "full"}
    if unknown:
        raise ValueError(f"unknown protocols {sorted(unknown)}; use sampled and/or full")
    users, items = getattr(split, f"{which}_user"), getattr(split, f"{which}_item")
    out: dict[str, dict[str, float]] = {}
    if "sampled" in protocols:
        candidates = getattr(split, f"{which}_candidates")
        out["sampled"] = evaluate_sampled(scorer, users, items, candidates, ks)
    if "full" in protocols:
        train_user, train_item = split.train_user, split.train_item
        if which == "test":
            train_user = np.concatenate([train_user, split.val_user])
            train_item = np.concatenate([train_item, split.val_item])
        popularity = np.bincount(split.train_item, minlength=split.num_items)
        out["full"] = evaluate_full(
            scorer, train_user, train_item, users, items, ks, split.num_items,
            batch_users=batch_users, item_popularity=popularity,
            max_scores_per_batch=max_scores_per_batch,
        )  # fmt: skip
    return out

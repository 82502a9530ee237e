"""Ranking metrics: pure, vectorised functions from ranks to per-case values.

**Rank.** The rank of a held-out (relevant) item is pessimistic:

    rank = 1 + #{competitors c : score(c) >= score(held-out)}

so every tie counts against the held-out item (a constant scorer gets the worst rank, not
the best). Competitors are the sampled negatives (sampled protocol, He et al. 2017) or every
item the user did not interact with in training (full ranking, Krichene & Rendle 2020); the
other relevant items of the same case are never competitors. A NaN held-out score ranks
last; NaN competitors are absent.

**List positions.** A case (a user) may have several relevant items (ratio and temporal
splits). With their ranks sorted, r_(0) <= r_(1) <= ..., the j-th relevant item sits at
position p_j = r_(j) + j of the ranked list: the j relevant items above it are hits, not
competitors. With one relevant item, p_0 = rank.

**Metrics of one case** with R relevant items and hits H_K = {j : p_j <= K}:

- HR@K = 1 if H_K is non-empty else 0
- Recall@K = |H_K| / R;  Precision@K = |H_K| / K
- NDCG@K = sum_{j in H_K} 1 / log2(p_j + 1)  /  sum_{i=1}^{min(K, R)} 1 / log2(i + 1)
- MAP@K = sum_{j in H_K} ((j + 1) / p_j)  /  min(K, R)  (precision at each hit)
- MRR = 1 / p_0 over the full list (not cut at K); ``reciprocal_rank(r, k)`` gives MRR@K.

Reported values are means over cases. Catalogue metrics of top-K lists: Coverage@K is the
share of the catalogue that appears in at least one user's top-K; MeanPopularity@K is the
mean over users of the mean popularity (train count) of their top-K items (Abdollahpouri
et al.'s average recommendation popularity).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

METRIC_NAMES = ("HR", "NDCG", "Recall", "Precision", "MAP")  # each reported at every K; MRR once


def pessimistic_ranks(target: np.ndarray, competitors: np.ndarray) -> np.ndarray:
    """``1 + #{c : competitors[n, c] >= target[n]}``; NaN competitors are ignored.

    Args:
        target: [N] float scores of the held-out items.
        competitors: [N, C] float scores of what each competes with.

    Returns:
        [N] int64 ranks in ``1..C+1``.
    """
    target = np.where(np.isnan(target), -np.inf, target)
    return 1 + np.count_nonzero(competitors >= target[:, None], axis=1).astype(np.int64)


@dataclass(frozen=True)
class Ranking:
    """Where the relevant items of each case landed in its ranked list.

    Attributes:
        positions: [n_relevant] int64 1-based list positions, ascending within each case.
        case: [n_relevant] int64 case of each position, non-decreasing.
        num_relevant: [n_cases] int64 relevant items per case (at least one).
    """

    positions: np.ndarray
    case: np.ndarray
    num_relevant: np.ndarray

    @classmethod
    def from_ranks(cls, ranks: np.ndarray, case: np.ndarray | None = None) -> Ranking:
        """Build from pessimistic ranks; ``case`` [n] (0..n_cases-1) groups them, default one each."""
        ranks = np.asarray(ranks, dtype=np.int64)
        if case is None:
            case = np.arange(len(ranks), dtype=np.int64)
        case = np.asarray(case, dtype=np.int64)
        if case.shape != ranks.shape:
            raise ValueError(f"ranks {ranks.shape} and case {case.shape} must have the same shape")
        if ranks.size and ranks.min() < 1:
            raise ValueError("ranks start at 1")
        order = np.lexsort((ranks, case))
        ranks, case = ranks[order], case[order]
        num_relevant = np.bincount(case) if case.size else np.zeros(0, np.int64)
        if np.any(num_relevant == 0):
            raise ValueError("every case from 0 to max(case) needs at least one relevant item")
        starts = np.cumsum(num_relevant) - num_relevant
        within = np.arange(len(ranks)) - starts[case]
        return cls(positions=ranks + within, case=case, num_relevant=num_relevant)

    @property
    def num_cases(self) -> int:
        return len(self.num_relevant)

    @property
    def within(self) -> np.ndarray:
        """[n_relevant] index j of each relevant item within its case."""
        starts = np.cumsum(self.num_relevant) - self.num_relevant
        return np.arange(len(self.positions)) - starts[self.case]

    def per_case(self, values: np.ndarray) -> np.ndarray:
        """Sum ``values`` [n_relevant] per case -> [n_cases] float64."""
        return np.bincount(self.case, weights=values, minlength=self.num_cases)


def _hits(ranking: Ranking, k: int) -> np.ndarray:
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    return ranking.positions <= k


def hit_rate(ranking: Ranking, k: int) -> np.ndarray:
    """HR@K per case: 1.0 if any relevant item is in the top K."""
    return (ranking.per_case(_hits(ranking, k)) > 0).astype(np.float64)


def recall(ranking: Ranking, k: int) -> np.ndarray:
    """Recall@K per case: hits in the top K / number of relevant items."""
    return ranking.per_case(_hits(ranking, k)) / ranking.num_relevant


def precision(ranking: Ranking, k: int) -> np.ndarray:
    """Precision@K per case: hits in the top K / K."""
    return ranking.per_case(_hits(ranking, k)) / k


def ideal_dcg(num_relevant: np.ndarray, k: int) -> np.ndarray:
    """DCG of a perfect list: sum_{i=1}^{min(K, R)} 1 / log2(i + 1), per case."""
    table = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))])
    return table[np.minimum(num_relevant, k)]


def ndcg(ranking: Ranking, k: int) -> np.ndarray:
    """NDCG@K per case with the log2 discount, normalised by the ideal DCG."""
    gains = np.where(_hits(ranking, k), 1.0 / np.log2(ranking.positions + 1.0), 0.0)
    return ranking.per_case(gains) / ideal_dcg(ranking.num_relevant, k)


def average_precision(ranking: Ranking, k: int) -> np.ndarray:
    """AP@K per case: sum over hits of precision at that position / min(K, R)."""
    prec_at_hit = (ranking.within + 1.0) / ranking.positions
    summed = ranking.per_case(np.where(_hits(ranking, k), prec_at_hit, 0.0))
    return summed / np.minimum(ranking.num_relevant, k)


def reciprocal_rank(ranking: Ranking, k: int | None = None) -> np.ndarray:
    """1 / position of the first relevant item per case; 0 beyond ``k`` when ``k`` is given."""
    first = ranking.positions[ranking.within == 0]
    rr = 1.0 / first
    if k is not None:
        rr = np.where(_hits(ranking, k)[ranking.within == 0], rr, 0.0)
    return rr


def summarise(ranking: Ranking, ks: Sequence[int]) -> dict[str, float]:
    """Mean of every per-case metric: HR@K, NDCG@K, Recall@K, Precision@K, MAP@K, MRR."""
    if ranking.num_cases == 0:
        names = [f"{m}@{k}" for k in ks for m in METRIC_NAMES]
        return {**dict.fromkeys(names, float("nan")), "MRR": float("nan")}
    out: dict[str, float] = {}
    for k in ks:
        out[f"HR@{k}"] = float(hit_rate(ranking, k).mean())
        out[f"NDCG@{k}"] = float(ndcg(ranking, k).mean())
        out[f"Recall@{k}"] = float(recall(ranking, k).mean())
        out[f"Precision@{k}"] = float(precision(ranking, k).mean())
        out[f"MAP@{k}"] = float(average_precision(ranking, k).mean())
    out["MRR"] = float(reciprocal_rank(ranking).mean())
    return out


def coverage(top_items: np.ndarray, num_items: int) -> float:
    """Share of the catalogue in at least one top-K list; ``top_items`` [U, K], -1 is padding."""
    seen = np.zeros(num_items, dtype=bool)
    seen[top_items[top_items >= 0]] = True
    return float(np.count_nonzero(seen) / num_items)


def mean_popularity(top_items: np.ndarray, popularity: np.ndarray) -> float:
    """Mean over users of the mean ``popularity`` of their top-K items (-1 is padding)."""
    valid = top_items >= 0
    pop = np.where(valid, popularity[np.maximum(top_items, 0)], 0.0)
    counts = valid.sum(axis=1)
    has = counts > 0
    if not has.any():
        return float("nan")
    return float((pop.sum(axis=1)[has] / counts[has]).mean())

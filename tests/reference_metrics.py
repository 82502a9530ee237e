"""The slow, obvious reference for ranking metrics: walk an explicit 0/1 ranked list."""

from __future__ import annotations

import math


def list_metrics(relevance: list[int], num_relevant: int, ks) -> dict[str, float]:
    """``relevance[j]`` is 1 when the item at position j+1 is relevant; metrics at each k."""
    out: dict[str, float] = {}
    for k in ks:
        top = relevance[:k]
        hits = sum(top)
        dcg = sum(rel / math.log2(pos + 2) for pos, rel in enumerate(top))
        idcg = sum(1 / math.log2(pos + 2) for pos in range(min(k, num_relevant)))
        ap, seen = 0.0, 0
        for pos, rel in enumerate(top):
            seen += rel
            ap += rel * seen / (pos + 1)
        out.update({f"HR@{k}": float(hits > 0), f"NDCG@{k}": dcg / idcg, f"Recall@{k}": hits / num_relevant,
                    f"Precision@{k}": hits / k, f"MAP@{k}": ap / min(k, num_relevant)})  # fmt: skip
    out["MRR"] = 1 / (relevance.index(1) + 1)
    return out

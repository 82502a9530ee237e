"""Benchmark item-kNN fit and full-ranking evaluation at MovieLens-20M scale.

Builds a random train set the size of ML-20M (138,493 users, 26,744 items, 20M
interactions) with power-law item popularity (Zipf exponent ``--exponent``) and log-normal
user activity (at least 20 per user, as in ML-20M), holds out one random interaction for
``--eval-users`` users (leave-one-out style), fits cosine item-kNN (``--neighbours``) and
ranks each held-out item among all items outside the user's train set. Prints the fit and
evaluation seconds and the peak resident memory. ``--scale 0.1`` shrinks users, items and
interactions by that factor.

    python scripts/bench_knn.py                       # full scale (target: < 2 min, < 6 GB)
    python scripts/bench_knn.py --scale 0.05 --eval-users 2000
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from ncf.baselines.knn import ItemKNN
from ncf.evaluation import evaluate_full


def synthetic_train(users: int, items: int, interactions: int, exponent: float, seed: int):
    """Distinct (user, item) pairs, sorted by user: Zipf items, log-normal user activity."""
    rng = np.random.default_rng(seed)
    item_p = 1.0 / np.arange(1, items + 1) ** exponent
    item_p = rng.permutation(item_p / item_p.sum())
    activity = 20 + rng.lognormal(0.0, 1.2, users)
    activity *= interactions / activity.sum()
    keys = np.zeros(0, dtype=np.int64)
    while len(keys) < interactions:  # duplicates are dropped, so top up until the target
        need = int((interactions - len(keys)) * 1.5) + 10_000  # overshoot: few rounds
        per_user = (
            rng.multinomial(need, activity / activity.sum())
            if keys.size
            else np.ceil(activity).astype(np.int64)
        )
        user = np.repeat(np.arange(users, dtype=np.int64), per_user)
        item = rng.choice(items, size=len(user), p=item_p)
        keys = np.sort(np.concatenate([keys, user * items + item]))
        keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])]
    keys = np.sort(rng.choice(keys, size=interactions, replace=False))
    return (keys // items).astype(np.int32), (keys % items).astype(np.int32)


def hold_out(user: np.ndarray, item: np.ndarray, n_users: int, seed: int):
    """One random interaction of ``n_users`` random users (with at least 2) leaves train."""
    rng = np.random.default_rng(seed + 1)
    counts = np.bincount(user)
    starts = np.cumsum(counts) - counts
    chosen = rng.choice(np.flatnonzero(counts >= 2), size=n_users, replace=False)
    rows = starts[chosen] + rng.integers(0, counts[chosen])
    keep = np.ones(len(user), dtype=bool)
    keep[rows] = False
    return user[keep], item[keep], user[rows], item[rows]


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--scale", type=float, default=1.0, help="shrink users, items, interactions"
    )
    parser.add_argument("--eval-users", type=int, default=10_000)
    parser.add_argument("--neighbours", type=int, default=100)
    parser.add_argument(
        "--exponent", type=float, default=1.0, help="Zipf exponent of item popularity"
    )
    parser.add_argument("--batch-users", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    users, items = int(138_493 * args.scale), int(26_744 * args.scale)
    interactions = int(20_000_263 * args.scale)

    start = time.perf_counter()
    user, item = synthetic_train(users, items, interactions, args.exponent, args.seed)
    train_user, train_item, test_user, test_item = hold_out(
        user, item, min(args.eval_users, users), args.seed
    )
    print(f"data: {users:,} users, {items:,} items, {len(train_user):,} train interactions, "
          f"{len(test_user):,} held out ({time.perf_counter() - start:.1f} s, "
          f"peak RSS so far {peak_rss_gb():.2f} GB)", flush=True)  # fmt: skip

    start = time.perf_counter()
    model = ItemKNN.fit(users, items, train_user, train_item, neighbours=args.neighbours)
    fit_s = time.perf_counter() - start
    print(f"fit:  {fit_s:.1f} s (similarity nnz {model.similarity.nnz:,})", flush=True)

    start = time.perf_counter()
    metrics = evaluate_full(
        model,
        train_user,
        train_item,
        test_user,
        test_item,
        [10],
        items,
        batch_users=args.batch_users,
    )
    eval_s = time.perf_counter() - start
    shown = ", ".join(f"{k}={v:.4f}" for k, v in metrics.items() if k != "cases")
    print(f"eval: {eval_s:.1f} s for {metrics['cases']:,} users ({shown})")
    print(f"fit + eval: {fit_s + eval_s:.1f} s; peak RSS {peak_rss_gb():.2f} GB")


if __name__ == "__main__":
    main()

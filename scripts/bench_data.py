"""Data preparation at MovieLens-20M scale: generate, index, split, sample negatives.

    python scripts/bench_data.py [--users 138000 --items 27000 --interactions 20000000]

Prints seconds for each stage of the preparation (synthetic generation, vocabularies and
labels, leave-one-out split with validation and 100 sampled candidates per case),
training negatives per second (uniform and popularity-weighted, one core), and the
process's peak resident memory. Targets: preparation under 60 s and under 4 GB.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from ncf.config import DataConfig, SplitConfig, SyntheticConfig
from ncf.data.features import attach_side_features
from ncf.data.interactions import prepare
from ncf.data.negatives import PositiveSet, item_sampler, sample_negatives
from ncf.data.sources.synthetic import generate
from ncf.data.split import make_split
from ncf.rng import rng_for


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=138_000)
    parser.add_argument("--items", type=int, default=27_000)
    parser.add_argument("--interactions", type=int, default=20_000_000)
    parser.add_argument(
        "--negatives", type=int, default=20_000_000, help="training negatives to time"
    )
    args = parser.parse_args()
    synthetic = SyntheticConfig(users=args.users, items=args.items, interactions=args.interactions)
    config = DataConfig(source="synthetic", synthetic=synthetic)

    start = time.perf_counter()
    raw = generate(synthetic, seed=42)
    t_generate = time.perf_counter() - start
    tic = time.perf_counter()
    data = attach_side_features(prepare(raw, config), raw)
    t_prepare = time.perf_counter() - tic
    del raw
    tic = time.perf_counter()
    split = make_split(data, SplitConfig(), seed=42, num_candidates=100)
    t_split = time.perf_counter() - tic
    total = time.perf_counter() - start
    print(
        f"data              {data.num_users:,} users, {data.num_items:,} items, {len(data):,} interactions"
    )
    print(f"generate          {t_generate:6.1f} s")
    print(f"labels + vocab    {t_prepare:6.1f} s")
    print(
        f"split + cands     {t_split:6.1f} s  (train {split.num_train:,}, val {len(split.val_user):,}, test {len(split.test_user):,})"
    )
    print(f"preparation total {total:6.1f} s  (target < 60 s)")
    print(f"peak memory       {peak_gb():6.2f} GB (target < 4 GB)")

    tic = time.perf_counter()
    positives = PositiveSet(split.train_user, split.train_item, split.num_users, split.num_items)
    print(f"positive set      {time.perf_counter() - tic:6.1f} s")
    users = np.repeat(split.train_user, -(-args.negatives // split.num_train))[: args.negatives]
    rng = rng_for(42, "bench")
    counts = np.bincount(split.train_item, minlength=split.num_items)
    for name, draw in (
        ("uniform", item_sampler(split.num_items)),
        ("popularity", item_sampler(split.num_items, counts)),
    ):
        tic = time.perf_counter()
        negatives = sample_negatives(positives, users, rng, draw)
        seconds = time.perf_counter() - tic
        assert not positives.contains(users, negatives).any()
        print(
            f"negatives {name:10s} {len(users) / seconds / 1e6:6.1f} M/s ({len(users):,} in {seconds:.2f} s)"
        )
    print(f"peak memory       {peak_gb():6.2f} GB (whole script)")


if __name__ == "__main__":
    main()

"""Choose a baseline's settings on the validation split (mean over seeds); test printed for the record.

    NCF_DATA_DIR=../shared/data python scripts/sweep_baselines.py configs/ml-100k/ease.yaml \\
        --vary model.ease.l2=100,200,500,1000 --seeds 42,1,2

Every combination of the ``--vary`` values (config keys, as ``--set`` takes them) is fitted
on train and ranked on validation for each seed; the row to use is the best mean validation
sampled NDCG@10 (marked *). The test columns come from the same fit (train only) and are
printed for the record only: they choose nothing.
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np

from ncf.config import load_config
from ncf.data.dataset import load_dataset
from ncf.evaluation import evaluate
from ncf.registry import family


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("config")
    parser.add_argument("--vary", action="append", default=[], metavar="KEY=V1,V2,...")
    parser.add_argument("--seeds", default="42,1,2")
    args = parser.parse_args()
    keys = [v.partition("=")[0] for v in args.vary]
    values = [v.partition("=")[2].split(",") for v in args.vary]
    seeds = [int(s) for s in args.seeds.split(",")]
    splits = {}
    for seed in seeds:
        splits[seed] = load_dataset(load_config(args.config, [f"run.seed={seed}"])).split
    rows = []
    for combo in itertools.product(*values):
        sets = [f"{k}={v}" for k, v in zip(keys, combo, strict=True)]
        per_seed = []
        for seed in seeds:
            config = load_config(args.config, [*sets, f"run.seed={seed}"])
            start = time.perf_counter()
            fitted = family(config.model.type).fit(config.model, splits[seed], None, seed=seed)
            seconds = time.perf_counter() - start
            val = evaluate(fitted, splits[seed], "val", ["sampled", "full"], [10])
            test = evaluate(fitted, splits[seed], "test", ["sampled", "full"], [10])
            per_seed.append([val["sampled"]["NDCG@10"], val["sampled"]["HR@10"],
                             val["full"]["HR@10"], test["sampled"]["HR@10"],
                             test["full"]["HR@10"], seconds])  # fmt: skip
        rows.append((" ".join(sets), np.mean(per_seed, axis=0)))
        print(f"  {rows[-1][0]}: " + " ".join(f"{v:.4f}" for v in rows[-1][1]), flush=True)
    best = max(rows, key=lambda r: r[1][0])
    print(f"\nmeans over seeds {args.seeds}")
    print(
        "| setting | val sampled NDCG@10 | val sampled HR@10 | val full HR@10 | test sampled HR@10 | test full HR@10 | fit s |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        name = f"**{row[0]}** *" if row is best else row[0]
        print(f"| {name} | " + " | ".join(f"{v:.4f}" for v in row[1][:5]) + f" | {row[1][5]:.1f} |")


if __name__ == "__main__":
    main()

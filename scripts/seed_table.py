"""Mean and spread over seeds of finished runs' test metrics, one row per run name.

    python scripts/seed_table.py runs/ease/* runs/ials/*

Runs are grouped by ``run.name`` (or ``--by model``: ``model.type``); each row gives the mean and the standard deviation (over
the runs of the group, ddof=1) of sampled and full HR@10 / NDCG@10 on the test split, the
seeds, and the mean train seconds. The runs' own validation choice is all that chose them.
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np

from ncf.train.rundir import RunDir

COLUMNS = [("sampled", "HR@10"), ("sampled", "NDCG@10"), ("full", "HR@10"), ("full", "NDCG@10")]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs", nargs="+")
    parser.add_argument(
        "--by", choices=["name", "model"], default="name", help="group by run.name or model.type"
    )
    args = parser.parse_args()
    groups: dict[str, list[RunDir]] = defaultdict(list)
    for path in args.runs:
        run = RunDir(path)
        if run.complete:
            config = run.config
            groups[config.run.name if args.by == "name" else config.model.type].append(run)
    header = " | ".join(f"{p} {m}" for p, m in COLUMNS)
    print(f"| run | seeds | {header} | train s |")
    print("|" + " --- |" * (len(COLUMNS) + 3))
    for name, runs in groups.items():
        metrics = [run.metrics() for run in runs]
        cells = []
        for protocol, metric in COLUMNS:
            values = np.array([m["test"][protocol][metric] for m in metrics])
            spread = values.std(ddof=1) if len(values) > 1 else 0.0
            cells.append(f"{values.mean():.4f} ± {spread:.4f}")
        seeds = ",".join(str(run.config.run.seed) for run in runs)
        seconds = np.mean([m["train_seconds"] for m in metrics])
        print(f"| {name} | {seeds} | " + " | ".join(cells) + f" | {seconds:.1f} |")


if __name__ == "__main__":
    main()

"""Every model on one data set, over seeds: the comparison table of docs/benchmarks.md.

    NCF_DATA_DIR=../shared/data python scripts/bench_models.py --data ml-100k --seeds 1,2,3
    python scripts/bench_models.py --data synthetic-dense --seeds 1,2,3
    python scripts/bench_models.py --data synthetic-sparse --seeds 1,2,3 --models ease,history
    NCF_DATA_DIR=../shared/data python scripts/bench_models.py --data ml-100k-notime
    NCF_DATA_DIR=../shared/data python scripts/bench_models.py --data ml-100k-relabelled

``ml-100k-notime`` is MovieLens 100K as a CSV of ``user,item,rating`` without its timestamps
(written to a temporary folder from ``$NCF_DATA_DIR/ml-100k/u.data``, never into the repo):
the same interactions with no order in time, so each user's test and validation cases are
drawn at random. ``ml-100k-relabelled`` keeps the timestamps but gives every item a new id
drawn by a fixed permutation: the split breaks ties in time by item id, and 44 % of the
users' test cases share their second with the validation case, so this draws the order
inside those ties at random instead of by MovieLens' movie ids.

Each (model, seed) is one ``ncf train configs/ml-100k/<model>.yaml --set run.seed=S`` in its
own process (the shipped configs as they are; for the synthetic sets with the data keys
replaced), so every model is chosen on validation and refit as its config says, and the test
split is ranked once. Prints one Markdown row per model: mean ± standard deviation (ddof 1)
of test HR@10 and NDCG@10 under both protocols, and the mean seconds of the whole command.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
MODELS = (
    "popularity", "itemknn", "userknn", "ease", "ials", "mf", "gmf", "mlp", "neumf", "best",
    "sequence", "vae",
)  # fmt: skip
NOTIME = "{tmp}/ml100k_notime.csv"
RELABELLED = "{tmp}/ml100k_relabelled.csv"
DATA = {
    "ml-100k": [],
    "ml-100k-notime": ["data.source=csv", "data.name=null", f"data.path={NOTIME}"],
    # timestamps kept, item ids relabelled at random: ties in time no longer break by movie id
    "ml-100k-relabelled": [
        "data.source=csv", "data.name=null", f"data.path={RELABELLED}",
        "data.columns.timestamp=timestamp",
    ],
    # MovieLens-100K's shape, three times denser / four times sparser, from the generator
    "synthetic-dense": [
        "data.source=synthetic", "data.name=null", "data.synthetic.users=1000",
        "data.synthetic.items=800", "data.synthetic.interactions=100000",
    ],
    "synthetic-sparse": [
        "data.source=synthetic", "data.name=null", "data.synthetic.users=4000",
        "data.synthetic.items=3000", "data.synthetic.interactions=60000",
    ],
}  # fmt: skip
COLUMNS = [("sampled", "HR@10"), ("sampled", "NDCG@10"), ("full", "HR@10"), ("full", "NDCG@10")]


def write_notime(folder: Path) -> None:
    """MovieLens 100K's ``u.data`` as ``user,item,rating`` lines, no timestamps."""
    source = Path(os.environ.get("NCF_DATA_DIR", REPO.parent / "shared" / "data")) / "ml-100k"
    lines = (source / "u.data").read_text().splitlines()
    rows = ["user,item,rating"] + [",".join(line.split("\t")[:3]) for line in lines if line]
    (folder / "ml100k_notime.csv").write_text("\n".join(rows) + "\n")


def write_relabelled(folder: Path) -> None:
    """``u.data`` as ``user,item,rating,timestamp`` with each item id replaced by a fixed random
    permutation of the ids (seed 0). The split breaks ties in time by item id, and MovieLens
    100K rates 44 % of the users' last two items in one second: this draws that order at random."""
    source = Path(os.environ.get("NCF_DATA_DIR", REPO.parent / "shared" / "data")) / "ml-100k"
    fields = [line.split("\t") for line in (source / "u.data").read_text().splitlines() if line]
    ids = sorted({int(f[1]) for f in fields})
    new = dict(zip(ids, np.random.default_rng(0).permutation(ids).tolist(), strict=True))
    rows = ["user,item,rating,timestamp"]
    rows += [f"{f[0]},{new[int(f[1])]},{f[2]},{f[3].strip()}" for f in fields]
    (folder / "ml100k_relabelled.csv").write_text("\n".join(rows) + "\n")


def run_one(model: str, seed: int, data: list[str], folder: Path) -> tuple[dict, float]:
    data = [value.format(tmp=folder) for value in data]
    sets = [f"run.seed={seed}", f"run.dir={folder / model / str(seed)}", *data]
    command = [
        sys.executable,
        "-m",
        "ncf.cli",
        "train",
        str(REPO / "configs" / "ml-100k" / f"{model}.yaml"),
    ]
    command += [arg for value in sets for arg in ("--set", value)]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy())
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{model} seed {seed} failed:\n{done.stderr[-3000:]}")
    metrics_file = next((folder / model / str(seed)).glob("*/*/metrics.json"))
    return json.loads(metrics_file.read_text()), seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", choices=sorted(DATA), default="ml-100k")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--json", help="append each run's figures here as JSON lines")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    header = " | ".join(f"{p} {m}" for p, m in COLUMNS)
    print(f"| model ({args.data}) | seeds | {header} | s per run |")
    print("|" + " --- |" * (len(COLUMNS) + 3), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        if args.data == "ml-100k-notime":
            write_notime(Path(tmp))
        if args.data == "ml-100k-relabelled":
            write_relabelled(Path(tmp))
        for model in args.models.split(","):
            results = [run_one(model, seed, DATA[args.data], Path(tmp)) for seed in seeds]
            if args.json:
                with open(args.json, "a") as fh:
                    for seed, (m, s) in zip(seeds, results, strict=True):
                        row = {"data": args.data, "model": model, "seed": seed, "seconds": s}
                        fh.write(json.dumps({**row, "test": m["test"], "val": m["val"]}) + "\n")
            cells = []
            for protocol, metric in COLUMNS:
                values = np.array([m["test"][protocol][metric] for m, _ in results])
                spread = values.std(ddof=1) if len(values) > 1 else 0.0
                cells.append(f"{values.mean():.4f} ± {spread:.4f}")
            seconds = np.mean([s for _, s in results])
            print(
                f"| {model} | {args.seeds} | " + " | ".join(cells) + f" | {seconds:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()

"""``ncf update`` against a full retrain on ML-100K: quality and seconds.

Each user's latest interaction (ties: larger item id) is the final test case and is never
trained on. The rest is cut at a time quantile (``--new-share`` of it, the latest, is "new"):
a base run trains on the old part, ``ncf update`` adds the new part, and a full retrain
trains on old + new from scratch (same config). The base run (stale), the updated run and
the retrain are asked ``recommend`` (their seen items excluded) for every user with a final
test case; HR@10 and NDCG@10 over all items (full ranking), computed here for all three, so
they are compared on the same cases.

    NCF_DATA_DIR=/work/shared/data python scripts/bench_update.py --model mf
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def ncf(*args: str) -> tuple[str, float]:
    exe = str(Path(sys.executable).with_name("ncf"))
    start = time.perf_counter()
    proc = subprocess.run([exe, *args], capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"ncf {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return proc.stdout, seconds


def quality(export: Path, users: list[str], tests: list[str]) -> tuple[float, float]:
    from ncf.serve.client import Export

    ex = Export(export)
    known = set(ex.user_ids())
    pairs = [(u, t) for u, t in zip(users, tests, strict=True) if u in known]
    got = ex.call("recommend", user_id=[u for u, _ in pairs], k=[10])["item_ids"]
    hits, gains = [], []
    for (_, test), row in zip(pairs, got, strict=True):
        top = [i.decode() for i in row]
        rank = top.index(test) if test in top else None
        hits.append(rank is not None)
        gains.append(0.0 if rank is None else 1 / np.log2(rank + 2))
    return float(np.mean(hits)), float(np.mean(gains))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="mf")
    parser.add_argument("--new-share", type=float, default=0.1)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--replay", type=float, default=4.0)
    args = parser.parse_args()
    data = Path(os.environ["NCF_DATA_DIR"]) / "ml-100k" / "u.data"
    frame = pd.read_csv(data, sep="\t", names=["user", "item", "rating", "timestamp"])
    frame = frame.sort_values(["user", "timestamp", "item"])
    last = frame.groupby("user").tail(1)
    rest = frame.drop(last.index)
    cut = rest.timestamp.quantile(1 - args.new_share)
    old, new = rest[rest.timestamp <= cut], rest[rest.timestamp > cut]
    config = REPO / "configs" / "ml-100k" / f"{args.model}.yaml"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name, part in (("old", old), ("new", new), ("all", rest)):
            part.to_csv(work / f"{name}.csv", index=False)
        common = ["--set", "data.source=csv", "--set", "data.columns.rating=rating"]
        common += ["--set", "data.columns.timestamp=timestamp", "--set", f"run.dir={work}/runs"]
        common += ["--set", "train.histograms=false"]
        runs = {}
        for name in ("old", "all"):
            runs[name] = work / f"run-{name}"
            extra = ["--set", f"data.path={work / f'{name}.csv'}", "--run-dir", str(runs[name])]
            _, seconds = ncf("train", str(config), *common, *extra)
            rows.append((f"train on {name}", seconds))
        runs["update"] = work / "run-update"
        out, seconds = ncf(
            "update", str(runs["old"]), "--data", str(work / "new.csv"), "--out",
            str(runs["update"]), "--epochs", str(args.epochs), "--replay", str(args.replay),
        )  # fmt: skip
        rows.append(("update old with new", seconds))
        print(out.splitlines()[-6], flush=True)
        users = last.user.astype(str).tolist()
        tests = last.item.astype(str).tolist()
        print(
            f"\n{args.model}: old {len(old)}, new {len(new)} interactions "
            f"(new share {args.new_share}), {len(users)} final test cases; "
            f"update: {args.epochs} epochs, replay {args.replay}\n"
        )
        print("| model | HR@10 | NDCG@10 | wall seconds (ncf command) |")
        print("|---|---|---|---|")
        labels = {"old": "base (old only, stale)", "update": "ncf update", "all": "full retrain"}
        seconds_of = {"old": rows[0][1], "all": rows[1][1], "update": rows[2][1]}
        for key in ("old", "update", "all"):
            ncf("export", str(runs[key]), "--out", str(work / "exports" / key))
            hr, ndcg = quality(work / "exports" / key, users, tests)
            print(f"| {labels[key]} | {hr:.4f} | {ndcg:.4f} | {seconds_of[key]:.1f} |", flush=True)


if __name__ == "__main__":
    main()

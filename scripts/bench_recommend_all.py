"""Time ``ncf recommend EXPORT --all`` at MovieLens-20M size (138,493 users x 26,744 items).

Trains one epoch of a model on synthetic data of that shape (the weights' quality does not
change the cost of ranking), exports it, then runs the command as a user would, in a
subprocess, and prints its wall time, users per second and the output's size. With
``--users N`` only the first N users are ranked and the full-size time is extrapolated
linearly (the cost is per user: one row of scores over the whole catalogue each).

Usage::

    python scripts/bench_recommend_all.py [--model mf] [--interactions 2000000] [--k 10]
    python scripts/bench_recommend_all.py --model neumf --users 20000
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
ML20M_USERS, ML20M_ITEMS = 138_493, 26_744


def train_and_export(model: str, interactions: int, work: Path) -> Path:
    from ncf.config import load_config
    from ncf.serve.export import export_run
    from ncf.train import train

    overrides = [
        f"run.dir={work / 'runs'}",
        f"model.type={model}",
        f"data.synthetic.users={ML20M_USERS}",
        f"data.synthetic.items={ML20M_ITEMS}",
        f"data.synthetic.interactions={interactions}",
        "train.epochs=1",
        "train.batch_size=8192",
        "train.histograms=false",
        "eval.protocols=[sampled]",
        "eval.sampled_negatives=20",
    ]
    config = load_config(REPO / "configs" / "quickstart.yaml", overrides)
    start = time.perf_counter()
    result = train(config, verbose=0)
    print(f"trained {model} in {time.perf_counter() - start:.0f}s", flush=True)
    return export_run(result.run_dir, work / "exports" / "ml20m")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mf", help="model.type (default mf)")
    parser.add_argument("--interactions", type=int, default=2_000_000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--users", type=int, help="rank only the first N users and extrapolate")
    parser.add_argument("--export", help="time this export instead of training one")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="ncf-bench-all-") as tmp:
        work = Path(tmp)
        from ncf.serve.client import resolve_export

        path = resolve_export(args.export or train_and_export(args.model, args.interactions, work))
        ncf = str(Path(sys.executable).with_name("ncf"))
        out = work / "recs.parquet"
        command = [ncf, "recommend", str(path), "--k", str(args.k), "--out", str(out)]
        if args.users:
            users = (path / "assets" / "users.txt").read_text().splitlines()
            (work / "users.txt").write_text("\n".join(users[: args.users]) + "\n")
            command += ["--users", str(work / "users.txt")]
        else:
            command.append("--all")
        print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
        start = time.perf_counter()
        proc = subprocess.run(command, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if proc.returncode:
            print(proc.stderr[-3000:])
            return proc.returncode
        print(proc.stdout.strip())
        ranked = args.users or ML20M_USERS
        print(
            f"{args.model}: {ranked} users x {ML20M_ITEMS} items, k={args.k}: {seconds:.1f}s wall "
            f"(process start and model load included), {ranked / seconds:.0f} users/s, "
            f"output {out.stat().st_size / 1e6:.1f} MB"
        )
        if args.users:
            print(
                f"extrapolated to all {ML20M_USERS} users: {seconds * ML20M_USERS / ranked / 60:.1f} min"
            )
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How training cost grows with the data: NeuMF and MF from MovieLens-100K to -20M sizes.

    python scripts/bench_scale.py steps                  # step time by table size
    python scripts/bench_scale.py epoch [--sizes 100k,1m,10m,20m] [--models neumf,mf]
    python scripts/bench_scale.py run --sizes 20m --models neumf   # whole shipped runs

Sizes are MovieLens-shaped synthetic data (``data.source: synthetic``): 100k = 943 users x
1,682 items, 1m = 6,040 x 3,706, 10m = 69,878 x 10,677, 20m = 138,493 x 26,744, with that
many interactions before de-duplication. Models are the shipped ``configs/ml-100k/neumf.yaml``
and ``mf.yaml`` settings on that data, and ``neumf-large`` (``configs/large/neumf.yaml``: the
batch and learning rate scaled for a million interactions and more).

- ``steps``: milliseconds per training step (fixed random batches of ``train.batch_size``,
  steps_per_execution 32, XLA) with the tables of each size, for Keras' dense Adam, the lazy
  Adam ncf uses, and SGD. One process, so the rows compare.
- ``epoch``: ``ncf train`` with two epochs (the first traces and compiles), no refit, and
  ``eval.val_users=10000``: steady seconds per epoch (training, validation), examples per
  second, the first epoch's seconds, and the whole command's seconds and peak resident memory.
- ``run``: the whole shipped ``ncf train`` (early stopping on validation, refit on train +
  validation, test with both protocols) with ``eval.val_users=10000``: seconds, peak memory,
  epochs and test metrics.

Each ``ncf train`` is its own process; run directories go to a temporary folder. Prints one
Markdown row per measurement; ``--json FILE`` also appends the raw figures as JSON lines.
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

REPO = Path(__file__).resolve().parents[1]
SIZES = {  # name: (users, items, interactions), MovieLens 100K, 1M, 10M and 20M
    "100k": (943, 1_682, 100_000),
    "1m": (6_040, 3_706, 1_000_000),
    "10m": (69_878, 10_677, 10_000_000),
    "20m": (138_493, 26_744, 20_000_000),
}


def config_path(model: str) -> Path:
    """``neumf-large`` is configs/large/neumf.yaml; the others are the ML-100K configs."""
    if model == "neumf-large":
        return REPO / "configs" / "large" / "neumf.yaml"
    return REPO / "configs" / "ml-100k" / f"{model}.yaml"


def data_sets(size: str) -> list[str]:
    users, items, interactions = SIZES[size]
    return [
        "data.source=synthetic",
        "data.name=null",
        f"data.synthetic.users={users}",
        f"data.synthetic.items={items}",
        f"data.synthetic.interactions={interactions}",
        "eval.val_users=10000",
    ]


def popen_peak_gb(process: subprocess.Popen) -> float:
    _, _, usage = os.wait4(process.pid, 0)
    return usage.ru_maxrss / 1024**2


def run_train(model: str, size: str, run_dir: str, extra: list[str]) -> dict:
    """``ncf train`` in a child process; its metrics, wall seconds and peak resident GB."""
    sets = [*data_sets(size), f"run.dir={run_dir}", f"run.name={model}-{size}", *extra]
    args = [sys.executable, "-m", "ncf.cli", "train", str(config_path(model))]
    args += [a for s in sets for a in ("--set", s)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    with tempfile.TemporaryFile() as log:
        start = time.perf_counter()
        process = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
        peak = popen_peak_gb(process)  # waits for the child
        seconds = time.perf_counter() - start
        log.seek(0)
        output = log.read().decode(errors="replace")
    if process.returncode not in (0, None) or "run directory" not in output:
        raise SystemExit(f"ncf train failed:\n{output[-3000:]}")
    (metrics_file,) = Path(run_dir).glob(f"{model}-{size}/*/metrics.json")
    return {"metrics": json.loads(metrics_file.read_text()), "seconds": seconds, "peak_gb": peak}


def epoch_rows(sizes: list[str], models: list[str], extra: list[str], out) -> None:
    print("| model | size | examples/epoch | s/epoch (train + val) | examples/s | first epoch s "
          "| whole command s | peak RSS GB |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    two = ["train.epochs=2", "train.early_stopping.patience=0", "train.refit=false", *extra]
    for model in models:
        for size in sizes:
            with tempfile.TemporaryDirectory() as tmp:
                result = run_train(model, size, tmp, two)
            m = result["metrics"]
            steady = m["seconds_per_epoch"]
            print(
                f"| {model} | {size} | {m['examples_per_epoch']:,} | {steady['epoch']:.1f} "
                f"({steady['train']:.1f} + {steady['eval']:.1f}) | {m['examples_per_second']:,.0f} "
                f"| {m['first_epoch_seconds']['epoch']:.1f} | {result['seconds']:.0f} "
                f"| {result['peak_gb']:.2f} |",
                flush=True,
            )
            write_json(out, {"mode": "epoch", "model": model, "size": size, **result})


def run_rows(sizes: list[str], models: list[str], extra: list[str], out) -> None:
    print("| model | size | whole run s | epochs (best) + refit | s/epoch | test sampled HR@10 "
          "/ NDCG@10 | test full HR@10 | peak RSS GB |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for model in models:
        for size in sizes:
            with tempfile.TemporaryDirectory() as tmp:
                result = run_train(model, size, tmp, extra)
            m = result["metrics"]
            refit = m.get("refit", {}).get("epochs", 0)
            test = m["test"]
            print(
                f"| {model} | {size} | {result['seconds']:.0f} | {m['epochs_run']} "
                f"({m['best_epoch']}) + {refit} | {m['seconds_per_epoch']['epoch']:.1f} "
                f"| {test['sampled']['HR@10']:.4f} / {test['sampled']['NDCG@10']:.4f} "
                f"| {test['full']['HR@10']:.4f} | {result['peak_gb']:.2f} |",
                flush=True,
            )
            write_json(out, {"mode": "run", "model": model, "size": size, **result})


def step_rows(models: list[str], out) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import numpy as np
    import tensorflow as tf

    from ncf.config import load_config
    from ncf.train.neural import build_for
    from ncf.train.phase import compile_model

    print("| model | optimizer | " + " | ".join(f"{s} tables" for s in SIZES) + " |")
    print("| --- | --- |" + " --- |" * len(SIZES))
    variants = {
        "Keras Adam (dense)": ["train.sparse_updates=false"],
        "lazy Adam (ncf)": [],
        "SGD": ["train.optimizer=sgd"],
    }
    for model in models:
        for name, sets in variants.items():
            cells = []
            for size in SIZES:
                users, items, _ = SIZES[size]
                config = load_config(config_path(model), sets)
                keras.utils.set_random_seed(0)
                net = compile_model(_bare_model(config, users, items, build_for), config)
                batch, steps = config.train.batch_size, 32 * 10
                rng = np.random.default_rng(0)
                x = {
                    "user": rng.integers(0, users, batch * steps, dtype=np.int32),
                    "item": rng.integers(0, items, batch * steps, dtype=np.int32),
                }
                y = rng.integers(0, 2, batch * steps).astype(np.float32)
                data = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch).cache()
                net.fit(data, verbose=0)  # trace, compile, fill the cache
                start = time.perf_counter()
                net.fit(data, verbose=0)
                ms = (time.perf_counter() - start) / steps * 1000
                cells.append(ms)
                write_json(out, {"mode": "steps", "model": model, "optimizer": name,
                                 "size": size, "ms_per_step": ms})  # fmt: skip
            row = " | ".join(f"{ms:.2f} ms" for ms in cells)
            print(f"| {model} | {name} | {row} | ratio 20m/100k {cells[-1] / cells[0]:.2f}",
                  flush=True)  # fmt: skip


def _bare_model(config, users: int, items: int, build_for):
    """A model of ``config`` for ``users`` x ``items`` without any data behind it."""
    from types import SimpleNamespace

    from ncf.data.split import Split

    empty = __import__("numpy").zeros(0, "int32")
    split = Split(users, items, empty, empty, empty, empty, empty, empty, empty[:, None], empty[:, None])  # fmt: skip
    features = SimpleNamespace(user_features=None, item_features=None)
    return build_for(config, SimpleNamespace(interactions=features, split=split))


def write_json(out, record: dict) -> None:
    if out is not None:
        out.write(json.dumps(record) + "\n")
        out.flush()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("mode", choices=["steps", "epoch", "run"])
    parser.add_argument("--sizes", default=",".join(SIZES))
    parser.add_argument("--models", default="neumf,mf")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--json", help="append the raw figures to this file (JSON lines)")
    args = parser.parse_args()
    sizes, models = args.sizes.split(","), args.models.split(",")
    out = open(args.json, "a") if args.json else None  # noqa: SIM115
    print(f"{time.strftime('%Y-%m-%d %H:%M')}, load {os.getloadavg()[0]:.1f}", flush=True)
    if args.mode == "steps":
        step_rows(models, out)
    elif args.mode == "epoch":
        epoch_rows(sizes, models, args.overrides, out)
    else:
        run_rows(sizes, models, args.overrides, out)
    print(f"{time.strftime('%Y-%m-%d %H:%M')}, load {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()

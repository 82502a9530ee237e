"""Choose between training settings on validation, over several seeds.

    NCF_DATA_DIR=../shared/data python scripts/sweep_train.py [CONFIG] --seeds 42,1,2 \\
        --variant "" --variant "train.lr_schedule=exponential train.lr_decay_rate=0.85"

Each variant (space-separated ``key=value`` overrides of CONFIG; ``""`` is CONFIG as it is)
is trained once per seed, the seed changing the validation and test candidates, the
negatives and the initial weights. Validation sampled NDCG@10 is averaged over the seeds
and the variant with the highest mean is marked: that is the only selection made. Test
figures are printed beside it for the report, never used to choose. With ``train.refit``
the test figures are those of the model refit on train + validation.

``--size 1m`` (or 100k, 10m, 20m) trains on the MovieLens-shaped synthetic data of
``scripts/bench_scale.py`` instead of the config's data; each row then also gives the run's
seconds, its steady training examples/s and the validation NDCG@10 of every epoch:

    python scripts/sweep_train.py --size 1m --seeds 42,1,2 \
        --variant "train.refit=false train.epochs=10" \
        --variant "train.refit=false train.epochs=10 train.batch_size=8192 train.learning_rate=0.008"
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from ncf.config import load_config  # noqa: E402
from ncf.train import train  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def run_once(config_path: str, overrides: list[str], seed: int) -> tuple[dict[str, float], dict]:
    """The figures to average, and the run's extra figures (seconds, examples/s, curve)."""
    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(config_path, [*overrides, f"run.seed={seed}", f"run.dir={tmp}"])
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            m = train(config, verbose=0).metrics
        seconds = time.perf_counter() - start
    row = {
        "val NDCG@10": m["val"]["sampled"]["NDCG@10"],
        "test HR@10": m["test"]["sampled"]["HR@10"],
        "test NDCG@10": m["test"]["sampled"]["NDCG@10"],
    }
    if "full" in m["test"]:
        row["test full HR@10"] = m["test"]["full"]["HR@10"]
    curve = [
        next((v for k, v in h["val"].items() if k.endswith("NDCG@10")), float("nan"))
        for h in m.get("history", [])
    ]
    extra = {
        "epoch": m["best_epoch"],
        "seconds": seconds,
        "examples/s": m.get("examples_per_second"),
        "curve": curve,
    }
    return row, extra


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "config", nargs="?", default=str(REPO / "configs" / "ml-100k" / "neumf.yaml")
    )
    parser.add_argument("--seeds", default="42,1,2", help="comma-separated seeds")
    parser.add_argument("--variant", action="append", default=None, help="overrides, quoted")
    parser.add_argument("--size", default=None, help="bench_scale.py's synthetic data: 1m, 10m...")
    args = parser.parse_args()
    data: list[str] = []
    if args.size:
        from bench_scale import data_sets  # scripts/ is on sys.path when this file runs

        data = data_sets(args.size)
    seeds = [int(s) for s in args.seeds.split(",")]
    variants = args.variant if args.variant is not None else [""]
    means = []
    for variant in variants:
        overrides = [*data, *variant.split()]
        rows = []
        for seed in seeds:
            row, extra = run_once(args.config, overrides, seed)
            rows.append(row)
            rate = extra["examples/s"]
            print(
                f"{variant or '(config)'} | seed {seed} | epoch {extra['epoch']} | "
                + "  ".join(f"{k} {v:.4f}" for k, v in row.items())
                + f" | {extra['seconds']:.1f} s, "
                + (f"{rate:,.0f} examples/s" if rate else "examples/s n/a")
                + " | val NDCG@10 by epoch "
                + " ".join(f"{v:.4f}" for v in extra["curve"]),
                flush=True,
            )
        mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
        means.append((variant, mean))
    best = max(range(len(means)), key=lambda i: means[i][1]["val NDCG@10"])
    print(f"\nmeans over seeds {args.seeds} (* highest validation NDCG@10: the one chosen)")
    for i, (variant, mean) in enumerate(means):
        mark = "*" if i == best else " "
        print(
            f"{mark} {variant or '(config)'} | "
            + "  ".join(f"{k} {v:.4f}" for k, v in mean.items())
        )


if __name__ == "__main__":
    main()

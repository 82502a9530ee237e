"""Quality and speed of one training run: NeuMF on MovieLens 100K by default.

    NCF_DATA_DIR=../shared/data python scripts/bench_train.py [CONFIG] [--set key=value ...]

Prints test HR@10 / NDCG@10 under both protocols (the epoch is chosen on the validation
split; with ``train.refit`` the tested model is then retrained on train + validation for
that many epochs), seconds per epoch split into training and validation, and training
examples per second. The run directory goes to a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from ncf.config import load_config  # noqa: E402
from ncf.train import train  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "config", nargs="?", default=str(REPO / "configs" / "ml-100k" / "neumf.yaml")
    )
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(args.config, [*args.overrides, f"run.dir={tmp}"])
        result = train(config, verbose=0)
    m = result.metrics
    history = m["history"]
    # The steady figures (median over the epochs that did not compile) are what a long run
    # pays per epoch; the first epoch traces and XLA-compiles the training step.
    steady, first = m["seconds_per_epoch"], m["first_epoch_seconds"]
    print(f"config            {args.config} {' '.join(args.overrides)}")
    print(
        f"best epoch        {m['best_epoch']} of {len(history)} (chosen on validation {m['monitor']})"
    )
    for protocol, values in m["val"].items():
        print(
            f"val  {protocol:8s}     HR@10 {values['HR@10']:.4f}  NDCG@10 {values['NDCG@10']:.4f}"
        )
    refit = m.get("refit")
    if refit:
        seconds = sum(h["seconds"]["epoch"] for h in refit["history"])
        print(
            f"refit             a fresh model on train + validation, {refit['epochs']} epochs, "
            f"{seconds:.1f} s; the test rows below are its figures"
        )
    for protocol, values in m["test"].items():
        print(
            f"test {protocol:8s}     HR@10 {values['HR@10']:.4f}  NDCG@10 {values['NDCG@10']:.4f}"
        )
    print(
        f"seconds/epoch     {steady['epoch']:.2f} (training {steady['train']:.2f} with negatives "
        f"drawn in tf.data threads, validation {steady['eval']:.2f}), median of epochs "
        f"2..{len(history)}; epoch 1 (compiles) {first['epoch']:.2f}"
    )
    print(f"examples/epoch    {m['examples_per_epoch']:,}")
    print(f"train examples/s  {m['examples_per_second']:,.0f} (steady)")
    print(f"total seconds     {m['train_seconds']:.1f}")


if __name__ == "__main__":
    main()

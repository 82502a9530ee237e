"""Diagnostic: our training run scored the way the original NCF code reports itself.

    NCF_DATA_DIR=../shared/data python scripts/reference_protocol.py [CONFIG] [--set key=value ...]

The original NCF code evaluates the test split after every epoch and reports the best
epoch's figures, which picks the epoch on test. ncf never does that: the run below selects
its epoch on validation as always. This script only *observes* the test metrics of every
epoch through a callback (nothing is selected with them), so that a figure measured with
the optimistic protocol elsewhere can be compared like with like. Prints both. The model
observed is the one trained on train only (``train.refit`` is switched off here).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

from ncf.config import load_config  # noqa: E402
from ncf.data.dataset import load_dataset  # noqa: E402
from ncf.evaluation import evaluate  # noqa: E402
from ncf.models.scorer import NeuralScorer  # noqa: E402
from ncf.train import train  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


class TestObserver(keras.callbacks.Callback):
    """Records test sampled HR@10 / NDCG@10 after each epoch; changes nothing."""

    def __init__(self, split) -> None:
        super().__init__()
        self.split = split
        self.rows: list[tuple[int, float, float]] = []

    def on_epoch_end(self, epoch, logs=None) -> None:
        metrics = evaluate(NeuralScorer(self.model), self.split, "test", ["sampled"], [10])[
            "sampled"
        ]
        self.rows.append((epoch + 1, metrics["HR@10"], metrics["NDCG@10"]))


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
        config = load_config(
            args.config,
            [
                *args.overrides,
                f"run.dir={tmp}",
                "train.early_stopping.patience=0",
                "train.refit=false",
            ],
        )
        observer = TestObserver(load_dataset(config).split)
        result = train(config, verbose=0, extra_callbacks=[observer])
    best = max(observer.rows, key=lambda r: r[1])
    chosen = result.metrics["best_epoch"]
    on_chosen = next(r for r in observer.rows if r[0] == chosen)
    print(f"config                         {args.config} {' '.join(args.overrides)}")
    print(
        f"epoch chosen on validation     {chosen}: test HR@10 {on_chosen[1]:.4f}  NDCG@10 {on_chosen[2]:.4f}"
    )
    print(
        f"best epoch on test (optimistic) {best[0]}: test HR@10 {best[1]:.4f}  NDCG@10 {best[2]:.4f}"
    )
    print(
        "per epoch (epoch, HR@10, NDCG@10): "
        + ", ".join(f"({e}, {h:.3f}, {n:.3f})" for e, h, n in observer.rows)
    )


if __name__ == "__main__":
    main()

"""The config-driven training run, top to bottom.

``train(config)``:

1. prepare the data (``ncf.data``) and write the run directory's inputs: resolved config,
   vocabularies, split and its fingerprint (``ncf.rundir``);
2. baselines (itemknn, userknn, popularity) are fitted in one pass; neural models are built
   from ``config.model`` (optionally initialised from pretrained GMF and MLP runs) and
   trained with plain ``keras.Model.fit`` on a stream that draws fresh negatives each epoch;
3. after every epoch the validation split is ranked, checkpoints are written and early
   stopping watches ``train.early_stopping.metric``; the best epoch's weights are restored;
   with ``train.refit`` a fresh model is then trained on train + validation for the epochs
   validation chose (baselines: fitted again on train + validation);
4. validation metrics are the selected model's; the test split is evaluated once, with the
   refit model where there is one, with every protocol in ``config.eval``, and
   ``metrics.json`` is written last. The test split never picks an epoch or a setting.

A run killed at any point is resumed by running the same command again (or
``ncf train --resume RUN``): training continues after the last completed epoch with the
optimizer state, and draws the same negatives an uninterrupted run would.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ncf.config import Config
from ncf.data.dataset import Dataset, load_dataset
from ncf.data.split import Split
from ncf.errors import ConfigError, NcfError
from ncf.evaluation import evaluate
from ncf.fitted import Fitted
from ncf.rundir import RunDir, find_resumable, new_run_dir, read_json, write_json, write_run_inputs

METRIC_NAMES = ("HR", "NDCG", "Recall", "Precision", "MAP")


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    metrics: dict[str, Any]


def train(
    config: Config,
    run_dir: str | Path | None = None,
    resume: bool = True,
    verbose: int = 1,
    extra_callbacks: list[Any] | None = None,
) -> RunResult:
    """Train (or resume) the run ``config`` describes; returns its folder and metrics.

    ``extra_callbacks`` (Keras callbacks, neural models only) observe training after the
    built-in ones; scripts use them for diagnostics, never to select anything.
    """
    monitor = _monitor_key(config)
    path = Path(run_dir) if run_dir else (find_resumable(config) if resume else None)
    if path is not None and (path / "metrics.json").exists():
        raise NcfError(f"{path} already holds a finished run; choose another --run-dir")
    if path is not None and (path / "checkpoints" / "state.json").exists():
        print(f"resuming {path}", flush=True)
    path = path or new_run_dir(config)
    dataset = load_dataset(config)
    _check_same_data(path, dataset)
    write_run_inputs(path, config, dataset)
    print(f"run directory: {path}", flush=True)
    start = time.perf_counter()
    if config.model.is_baseline:
        fitted = _fit_baseline(config, dataset, path)
    else:
        fitted = _fit_neural(config, dataset, path, monitor, verbose, extra_callbacks)
    train_seconds = time.perf_counter() - start
    # Validation metrics are the selected model's: a refit model was trained on validation.
    val = _evaluate(fitted.selected, dataset.split, "val", config)
    test = _evaluate(fitted.final, dataset.split, "test", config)
    metrics = {
        "model": config.model.type,
        "fingerprint": dataset.split.fingerprint(),
        "fit_on": "train+val" if config.train.refit else "train",
        "val": val,
        "test": test,
        "history": fitted.history,
        "train_seconds": train_seconds,
        **fitted.extra,
    }
    write_json(path / "metrics.json", metrics)
    return RunResult(path, metrics)


def _evaluate(scorer, split: Split, which: str, config: Config) -> dict[str, dict[str, float]]:
    cases = len(getattr(split, f"{which}_user"))
    if cases == 0:
        return {}
    return evaluate(
        scorer,
        split,
        which,
        config.eval.protocols,
        config.eval.k,
        batch_users=config.eval.batch_users,
    )


def _monitor_key(config: Config) -> str:
    """``NDCG@10`` -> ``val/sampled/NDCG@10``; ``full/Recall@20`` -> ``val/full/Recall@20``."""
    metric = config.train.early_stopping.metric
    protocol, _, name = metric.rpartition("/")
    protocol = protocol or "sampled"
    base, _, k = name.partition("@")
    valid = protocol in config.eval.protocols and (
        (name == "MRR") or (base in METRIC_NAMES and k.isdigit() and int(k) in config.eval.k)
    )
    if not valid:
        raise ConfigError(
            f"train.early_stopping.metric: {metric!r} is not computed; use [PROTOCOL/]NAME@K with "
            f"PROTOCOL in eval.protocols {config.eval.protocols}, NAME in {', '.join(METRIC_NAMES)} "
            f"and K in eval.k {config.eval.k} (or MRR)"
        )
    return f"val/{protocol}/{name}"


def _check_same_data(path: Path, dataset: Dataset) -> None:
    info = path / "data.json"
    if info.exists() and read_json(info)["fingerprint"] != dataset.split.fingerprint():
        raise NcfError(
            f"{path}: the data changed since this run started (split fingerprint differs); start a new run"
        )


def _fit_baseline(config: Config, dataset: Dataset, path: Path) -> Fitted:
    """Fit on train; with ``train.refit``, fit again on train + validation for test and export."""
    selected = _fit_baseline_on(config, dataset, dataset.split)
    final = selected
    if config.train.refit:
        final = _fit_baseline_on(config, dataset, dataset.split.with_validation_in_train())
    final.save(path / "baseline")
    return Fitted(selected, final, [], {})


def _fit_baseline_on(config: Config, dataset: Dataset, split: Split):
    from ncf.baselines import fit_baseline

    ratings = _train_ratings(dataset, split) if config.model.weighting == "rating" else None
    return fit_baseline(
        config.model, split.num_users, split.num_items, split.train_user, split.train_item, ratings
    )


def _train_ratings(dataset: Dataset, split: Split) -> np.ndarray | None:
    inter = dataset.interactions
    if inter.rating is None:
        return None
    keys = inter.user.astype(np.int64) * inter.num_items + inter.item
    order = np.argsort(keys)
    train_keys = split.train_user.astype(np.int64) * inter.num_items + split.train_item
    return inter.rating[order[np.searchsorted(keys[order], train_keys)]]


def _fit_neural(
    config: Config, dataset: Dataset, path: Path, monitor: str, verbose: int, extra_callbacks
) -> Fitted:
    from ncf.neural import fit_neural

    return fit_neural(config, dataset, path, monitor, verbose, extra_callbacks or [])


def resume_run(run: str | Path, verbose: int = 1) -> RunResult:
    """Continue an interrupted run from its own saved config."""
    run_dir = RunDir(run)
    if run_dir.complete:
        raise NcfError(f"{run_dir.path}: this run already finished; nothing to resume")
    return train(run_dir.config, run_dir.path, verbose=verbose)

"""The config-driven training run, top to bottom.

``train(config)``:

1. prepare the data (``ncf.data``) and write the run directory's inputs: resolved config,
   vocabularies, split and its fingerprint (:mod:`ncf.train.rundir`);
2. fit the model: a baseline in one call of its family's ``fit`` (:mod:`ncf.registry`;
   with ``train.refit`` once more on train + validation), a neural model through the
   selection and refit phases of :mod:`ncf.train.neural`;
3. validation metrics are the selected model's; the test split is evaluated once, with the
   refit model where there is one, with every protocol in ``config.eval``, and
   ``metrics.json`` is written last. The test split never picks an epoch or a setting.

A run killed at any point is resumed by running the same command again (or
``ncf train --resume RUN``): training continues after the last completed epoch with the
optimizer state, and draws the same negatives an uninterrupted run would. Run again after
the run finished, the same command reports the finished run. A resume with a config other
than the one the checkpoints were trained with is refused before anything is written,
naming the keys that differ (:func:`ncf.train.rundir.config_changes`).

Before anything is written the run refuses, with an :class:`~ncf.errors.NcfError`, a split
without test cases (or without validation cases when validation is on) and a run whose
estimated memory exceeds what is available (:mod:`ncf.train.resources`). While it trains
it holds the lock of its folder, and a folder it created is removed again if it fails
before the first checkpoint (:mod:`ncf.train.lock`).

With ``train.distribute.strategy`` the model trains under ``tf.distribute``
(:mod:`ncf.train.distribute`); in a multi-worker job every worker runs this function with
the same ``--run-dir``: the chief (worker 0) does all of the above, the other workers train
in step with it and write nothing into the run directory.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ncf.config import Config, config_to_dict
from ncf.data.dataset import Dataset, load_dataset
from ncf.data.pairs import pair_keys
from ncf.data.split import Split, check_cases
from ncf.errors import ConfigError, NcfError
from ncf.evaluation import evaluate
from ncf.family import FitInputs
from ncf.io import read_json, write_json
from ncf.metrics import METRIC_NAMES
from ncf.registry import family
from ncf.train.distribute import (
    Replication,
    check_batch,
    cluster_from_env,
    make_strategy,
    worker_folder,
)
from ncf.train.fitted import Fitted
from ncf.train.integrity import seal_run
from ncf.train.lock import claim_run_dir, guarded_run
from ncf.train.resources import check_memory
from ncf.train.rundir import (
    RunDir,
    config_changes,
    find_resumable,
    started_config,
    write_run_inputs,
)

log = logging.getLogger(__name__)


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
    evaluate_test: bool = True,
) -> RunResult:
    """Train (or resume) the run ``config`` describes; returns its folder and metrics.

    ``extra_callbacks`` (Keras callbacks, neural models only) observe both phases after the
    built-in ones; scripts use them for diagnostics, never to select anything (``ncf tune``
    prunes trials with one, from validation). ``evaluate_test=False`` leaves the test split
    unranked (``"test": {}``): a tuning trial must not even see it.
    """
    monitor = monitor_key(config)
    cluster = cluster_from_env(config.train.distribute)  # before anything else: a bad TF_CONFIG
    if cluster.distributed and not family(config.model.type).neural:
        raise ConfigError(
            f"train.distribute.strategy: {config.model.type} is not a neural model and is "
            "fitted in one process; set it to none"
        )
    if cluster.kind == "multi_worker" and run_dir is None:
        raise ConfigError(
            "train.distribute.strategy multi_worker: pass --run-dir (the same folder, on a file "
            "system every worker can read, to every worker; ncf launch does)"
        )
    path = Path(run_dir) if run_dir else (find_resumable(config) if resume else None)
    finished = finished_run(path, config)  # the same command again: nothing to do
    if finished is not None:
        return finished
    refuse_other_config(path, config)  # before anything is written
    strategy = make_strategy(cluster, config.train.distribute)  # before other TensorFlow ops
    if strategy is not None:
        check_batch(config.train.batch_size, int(strategy.num_replicas_in_sync))
    dataset = load_dataset(config)
    check_cases(dataset.split, config.data.split, dataset.interactions.description)
    check_memory(config, dataset)
    note_data(config, dataset)
    if not cluster.is_chief:
        assert path is not None
        return _run_worker(config, dataset, path, monitor, Replication(cluster, strategy, path))
    created = path is None or not path.exists()
    path = path or claim_run_dir(config)
    replication = Replication(cluster, strategy, path) if strategy is not None else None
    with guarded_run(path, created):
        finished = finished_run(path, config)  # again, now that no other process can finish it
        if finished is not None:
            return finished
        return complete_run(
            config, dataset, path, monitor, verbose, extra_callbacks, evaluate_test, replication
        )


NOTED: set[tuple[str, str]] = set()  # (family, data) already noted in this process


def note_data(config: Config, dataset: Dataset) -> None:
    """The family's note on data that lacks what it is built for (once per family, data set
    and process, not once per tuning trial)."""
    kind = family(config.model.type)
    key = (kind.name, dataset.interactions.description)
    if key in NOTED:
        return
    note = kind.note(config, dataset)
    if note:
        NOTED.add(key)
        log.warning(note)


def _run_worker(
    config: Config, dataset: Dataset, path: Path, monitor: str, replication: Replication
) -> RunResult:
    """A non-chief worker: trains in step with the chief, writing only to a temporary folder;
    the chief evaluates the test split and writes ``metrics.json``."""
    from ncf.train.neural import fit_neural

    with worker_folder(replication.cluster) as scratch:
        fit_neural(config, dataset, scratch, monitor, 0, [], replication)
    cluster = replication.cluster
    return RunResult(path, {"worker": cluster.index, "workers": cluster.workers})


def finished_run(path: Path | None, config: Config) -> RunResult | None:
    """The finished run in ``path`` when it is this config's (the same command run again
    reports it: a kill after ``metrics.json`` was written leaves nothing to do); None when
    ``path`` holds no finished run. A finished run of another config is refused."""
    if path is None or not (path / "metrics.json").exists():
        return None
    run = RunDir(path)
    metrics = run.metrics()  # verified: the seal covers config.yaml
    changes = config_changes(config_to_dict(run.config), config)
    if changes:
        raise NcfError(
            f"{path} already holds a finished run of another config ({'; '.join(changes)}); "
            "choose another --run-dir"
        )
    log.info(f"{path}: this run has finished already; nothing to do")
    return RunResult(path, metrics)


def refuse_other_config(path: Path | None, config: Config) -> None:
    """Refuse to resume the checkpoints in ``path`` with a config other than the one they were
    trained with, naming the keys that differ (nothing has been written yet)."""
    if path is None or not (path / "checkpoints" / "state.json").exists():
        return  # nothing to resume: the run starts from scratch with this config
    changes = config_changes(started_config(path), config)
    if changes:
        raise NcfError(
            f"{path}: its checkpoints were trained with another config, so they cannot be "
            f"resumed with this one ({'; '.join(changes)}); resume with the run's own config "
            f"(ncf train --resume {path}, with config.yaml as the run wrote it), or start a new "
            "run in another --run-dir"
        )


def complete_run(
    config: Config,
    dataset: Dataset,
    path: Path,
    monitor: str,
    verbose: int,
    extra_callbacks: list[Any] | None,
    evaluate_test: bool,
    replication: Replication | None = None,
) -> RunResult:
    """Steps 1 (the run directory's inputs) to 3 of the module docstring, in ``path``
    (held by the caller; ``ncf update`` / ``ncf forget`` fit their changed data with it)."""
    kind = family(config.model.type)
    if (path / "checkpoints" / "state.json").exists():
        log.info(f"resuming {path}")
    _check_same_data(path, dataset)
    write_run_inputs(path, config, dataset)
    log.info(f"run directory: {path}")
    start = time.perf_counter()
    if kind.neural:
        from ncf.train.neural import fit_neural

        fitted = fit_neural(
            config, dataset, path, monitor, verbose, extra_callbacks or [], replication
        )
    else:
        fitted = _fit_baseline(config, dataset, path)
    train_seconds = time.perf_counter() - start
    # Validation metrics are the selected model's: a refit model was trained on validation.
    metrics = {
        "model": config.model.type,
        "fingerprint": dataset.split.fingerprint(),
        "fit_on": "train+val" if config.train.refit else "train",
        "val": fitted.val
        if fitted.val is not None
        else evaluate_split(fitted.selected, dataset.split, "val", config),
        "test": evaluate_split(fitted.final, dataset.split, "test", config)
        if evaluate_test
        else {},
        "history": fitted.history,
        "train_seconds": train_seconds,
        **fitted.extra,
    }
    write_json(path / "metrics.json", seal_run(path, metrics))  # last: completes the run
    return RunResult(path, metrics)


def resume_run(run: str | Path, verbose: int = 1) -> RunResult:
    """Continue an interrupted run from its own saved config (a finished one is reported)."""
    run_dir = RunDir(run)
    return train(run_dir.config, run_dir.path, verbose=verbose)


def evaluate_split(
    scorer: Any, split: Split, which: str, config: Config
) -> dict[str, dict[str, float]]:
    """``scorer``'s metrics on ``split``'s ``which`` cases ("val", "test") with every protocol
    and cut-off of ``config.eval`` (empty when there are no such cases)."""
    if len(getattr(split, f"{which}_user")) == 0:
        return {}
    ev = config.eval
    return evaluate(scorer, split, which, ev.protocols, ev.k, batch_users=ev.batch_users)


def monitor_key(config: Config) -> str:
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
    fit = family(config.model.type).fit
    assert fit is not None, f"{config.model.type} is a baseline family without fit"
    inter = dataset.interactions

    def inputs(split: Split) -> FitInputs:
        ratings = _train_ratings(dataset, split)
        return FitInputs(ratings, inter.item_features, config.run.seed)

    selected = fit(config.model, dataset.split, inputs(dataset.split))
    final = selected
    if config.train.refit:
        merged = dataset.split.with_validation_in_train()
        final = fit(config.model, merged, inputs(merged))
    final.save(path / "baseline")
    return Fitted(selected, final, [], {})


def _train_ratings(dataset: Dataset, split: Split) -> np.ndarray | None:
    """The rating of each train interaction of ``split`` (None when the data has none)."""
    inter = dataset.interactions
    if inter.rating is None:
        return None
    keys = pair_keys(inter.user, inter.item, inter.num_items)
    order = np.argsort(keys)
    wanted = pair_keys(split.train_user, split.train_item, inter.num_items)
    return inter.rating[order[np.searchsorted(keys[order], wanted)]]

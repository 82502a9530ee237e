"""Runs derived from a finished run: forgetting users (``ncf forget``) and adding new
interactions (``ncf update``). The source run is never changed; the result is a new, complete
run directory that evaluates and exports like any other.

Both start from the source run's own data (``split.npz`` and the vocabularies; the original
data files are not read again), change it, and then fit:

- **baselines** (kNN, EASE, iALS, popularity) are refitted on the changed data, as ``ncf
  train`` fits them: closed forms, seconds, and exactly the model a fresh run would give;
- **neural models**, by default, from the source run's last state: a fresh model of the new
  sizes takes every weight of the old one (embedding rows follow their ids: a removed id's
  row is dropped, a new id gets a freshly initialised row) and trains ``epochs`` epochs on
  ``tune_split`` (forget: all remaining data; update: the new interactions plus a replayed
  sample of the old), without validation;
- with ``exact`` a neural model is retrained from scratch on the changed data by the run's
  config (selection, early stopping, refit): what ``ncf train`` would give on that data.

The new run's ``derived.json`` says how it was made (source run, method, counts; never the
forgotten ids). Its ``config.yaml`` is the source's: ``data.*`` still names the original
files, so such a run is not resumable by ``ncf train --resume`` (its data lives in
``split.npz``); a failed derivation leaves nothing behind.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ncf.data.dataset import Dataset
from ncf.data.interactions import Interactions
from ncf.data.split import Split
from ncf.data.vocab import Vocabulary
from ncf.errors import NcfError
from ncf.io import read_json, write_json
from ncf.registry import family
from ncf.train.integrity import seal_run
from ncf.train.rundir import RunDir

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Change:
    """A changed copy of a run's data.

    Attributes:
        dataset: the new interactions and split.
        user_map: [new num_users] the old index of each new user, -1 for a new user.
        item_map: [new num_items] likewise for items.
        tune_split: what a warm neural fine-tune trains on (``split.train_*``).
        info: counts for ``derived.json``.
    """

    dataset: Dataset
    user_map: np.ndarray
    item_map: np.ndarray
    tune_split: Split
    info: dict[str, Any]


def dataset_of_run(run: RunDir) -> Dataset:
    """The run's interactions, rebuilt from its split and vocabularies (no ratings or times)."""
    split = run.split()
    features = run.side_features()
    titles = run.item_titles()
    inter = Interactions(
        user=np.concatenate([split.train_user, split.val_user, split.test_user]),
        item=np.concatenate([split.train_item, split.val_item, split.test_item]),
        rating=None,
        timestamp=None,
        users=run.users(),
        items=run.items(),
        dropped={},
        description=f"the data of run {run.path.name}",
        item_titles=np.array(titles, dtype=object) if titles is not None else None,
        item_features=_nonempty(features.get("item_features")),
        item_feature_names=tuple(features.get("item_feature_names", ())),
        user_features=_nonempty(features.get("user_features")),
        user_feature_names=tuple(features.get("user_feature_names", ())),
        feature_encoders=_encoders(run.path / "vocab" / "feature_encoders.json"),
    )
    return Dataset(inter, split)


def _encoders(path: Path) -> dict:
    return read_json(path) if path.is_file() else {}


def _nonempty(matrix: np.ndarray | None) -> np.ndarray | None:
    return None if matrix is None or matrix.size == 0 else matrix


def rebuild(dataset: Dataset, split: Split, users: Vocabulary, items: Vocabulary) -> Dataset:
    inter = dataset.interactions
    return Dataset(
        replace(
            inter,
            user=np.concatenate([split.train_user, split.val_user, split.test_user]),
            item=np.concatenate([split.train_item, split.val_item, split.test_item]),
            users=users,
            items=items,
        ),
        split,
    )


def derive_run(
    source: RunDir,
    change: Change,
    out: Path,
    *,
    epochs: int,
    exact: bool,
    how: dict[str, Any],
    verbose: int = 0,
) -> tuple[Path, dict[str, Any]]:
    """Fit the changed data into the new run ``out`` (see the module docstring)."""
    from ncf.train.lock import guarded_run
    from ncf.train.run import complete_run, monitor_key

    config = source.config
    kind = family(config.model.type)
    if kind.uses_ratings(config.model):
        raise NcfError(
            f"{source.path}: this {config.model.type} model is fitted on the ratings, which a "
            "run does not keep; retrain with ncf train on the changed data instead"
        )
    if out.exists():
        raise NcfError(f"{out}: already exists; choose another --out")
    neural = kind.neural
    method = "refit (closed form)" if not neural else ("retrain" if exact else "warm start")
    start = time.perf_counter()
    info = {"source": source.path.name, "method": method, **how, **change.info}
    with guarded_run(out, created=True):
        write_json(out / "derived.json", info)  # before metrics.json, which completes a run
        if not neural or exact:
            result = complete_run(
                config, change.dataset, out, monitor_key(config), verbose, None, True
            )
            metrics = result.metrics
        else:
            metrics = _warm_start(source, change, out, epochs, verbose)
    return out, {**metrics, "derived": {**info, "seconds": time.perf_counter() - start}}


def _warm_start(source: RunDir, change: Change, out: Path, epochs: int, verbose: int) -> dict:
    """Train the transplanted old model ``epochs`` epochs on ``change.tune_split``."""
    from ncf.models.scorer import NeuralScorer, load_keras_model
    from ncf.train.neural import build_for
    from ncf.train.phase import Phase, compile_model, run_phase
    from ncf.train.run import evaluate_split
    from ncf.train.rundir import write_run_inputs
    from ncf.train.state import save_model

    config = source.config
    if not family(config.model.type).can.warm_start:
        raise NcfError(
            f"{source.path}: a warm start of model.type {config.model.type} is not supported "
            "(its parameters do not follow id maps); add --exact to retrain from scratch on "
            "the changed data"
        )
    dataset = change.dataset
    write_run_inputs(out, config, dataset)
    old = load_keras_model(source.path / "model.keras")
    model = compile_model(build_for(config, dataset), config)

    def initial() -> Any:
        fresh = build_for(config, dataset)
        transplant(old, fresh, change.user_map, change.item_map)
        return fresh

    phase = Phase(
        "fine-tune epoch",
        out / "checkpoints",
        out / "tensorboard",
        epochs,
        change.tune_split,
        validate=False,
        initial=initial,
    )
    start = time.perf_counter()
    result = run_phase(config, dataset, phase, model, None, "", verbose)
    train_seconds = time.perf_counter() - start
    save_model(model, out / "model.keras")
    metrics = {
        "model": config.model.type,
        "fingerprint": dataset.split.fingerprint(),
        "fit_on": "train+val",
        "val": {},
        "test": evaluate_split(NeuralScorer(model), dataset.split, "test", config),
        "history": result.state.history,
        "train_seconds": train_seconds,
    }
    write_json(out / "metrics.json", seal_run(out, metrics))  # last: completes the run
    return metrics


def transplant(old: Any, new: Any, user_map: np.ndarray, item_map: np.ndarray) -> None:
    """Copy ``old``'s weights into ``new``: embedding rows by ``user_map`` / ``item_map``
    (new index -> old index; -1 keeps ``new``'s fresh row), every other weight as it is.
    Side-feature tables are data, not weights: ``new`` was built with the grown ones (the old
    rows, then the new ids' rows) and keeps them."""
    olds = {v.path.split("/", 1)[1]: v for v in old.variables}
    for var in new.variables:
        name = var.path.split("/", 1)[1]
        if name.endswith("side_features"):
            continue
        value = np.asarray(olds[name].numpy())
        if name.endswith("embeddings") and name.startswith(("user_", "item_")):
            mapping = user_map if name.startswith("user_") else item_map
            rows = np.array(var.numpy())
            rows[mapping >= 0] = value[mapping[mapping >= 0]]
            value = rows
        var.assign(value)


def default_out(source: RunDir, what: str) -> Path:
    """``RUN-<what>-<timestamp>`` beside the source run (the newest run of its folder)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = source.path.with_name(f"{source.path.name}-{what}-{stamp}")
    n = 1
    while path.exists():
        n += 1
        path = source.path.with_name(f"{source.path.name}-{what}-{stamp}-{n}")
    return path

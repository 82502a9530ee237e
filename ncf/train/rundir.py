"""The run directory: one self-describing folder per training run.

Layout::

    RUN/
      config.yaml          resolved config (defaults < file < --set)
      data.json            data statistics, the split fingerprint and the resolved config the
                           run started with (a resume must match both)
      split.npz            train / val / test indices and the sampled candidates
      vocab/users.txt      raw user ids, one per line (line number = index)
      vocab/items.txt      raw item ids
      vocab/item_titles.txt  item titles aligned with items.txt (when the data has them)
      vocab/side_features.npz  user and item side-feature matrices (when used)
      vocab/feature_encoders.json  how data.item_features / user_features encoded their tables
      checkpoints/         epoch-NNNN.keras (model + optimizer), best-NNNN.weights.h5, state.json
                           with their checksums, and the epoch before (state.prev.json and its
                           files) to fall back to (refit/ the same for the refit phase; see
                           ncf.train.state and ncf.train.integrity)
      tensorboard/         event files and the embedding projector
      model.keras          the final model (best validation epoch, or the refit), or baseline/
      selected.keras       with train.refit: the model chosen on validation (trained on train)
      metrics.json         val and test metrics, history, timings: written last
      .lock                the advisory lock of the process training the run (its pid)

Every file is written atomically, so a crash never leaves a half-written one; a run is
complete exactly when ``metrics.json`` exists. Evaluation and export read nothing else.
``metrics.json`` records the SHA-256 of the files above (checkpoints and TensorBoard logs
apart) and its own: :class:`RunDir` verifies them before it hands out any part of a finished
run (``ncf.train.integrity.verify_run``), and hands out nothing of an unfinished one.

A run's checkpoints hold the weights of the model its config describes, so resuming them
with another config cannot work (another ``model.embedding_dim``) or would mix two runs
(another learning rate): :func:`config_changes` names what differs from the config the run
started with, which ``data.json`` records (``config.yaml`` may have been edited since).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from ncf.config import Config, config_to_dict, load_config, save_config
from ncf.data.dataset import Dataset, data_stats
from ncf.data.split import Split
from ncf.data.vocab import Vocabulary
from ncf.errors import NcfError
from ncf.io import atomic_write_text, load_npz, plain, read_json, save_npz, write_json
from ncf.registry import family
from ncf.train.integrity import RUN_FILES, SEAL, CorruptState, verify_run


def new_run_dir(config: Config) -> Path:
    """``<run.dir>/<run.name>/<timestamp>``, unique even when two runs start in one second."""
    parent = Path(config.run.dir) / (config.run.name or "run")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = parent / stamp
    n = 1
    while path.exists():
        n += 1
        path = parent / f"{stamp}-{n}"
    return path


def find_resumable(config: Config) -> Path | None:
    """The newest unfinished run of this exact config under ``<run.dir>/<run.name>``, if any."""
    parent = Path(config.run.dir) / (config.run.name or "run")
    if not parent.is_dir():
        return None
    for path in sorted(parent.iterdir(), reverse=True):
        if (path / "metrics.json").exists() or not (path / "checkpoints" / "state.json").exists():
            continue
        try:
            if not config_changes(started_config(path), config):
                return path
        except NcfError:
            continue
    return None


# Where a run lives and whether its memory is checked: no part of what it computes.
NOT_COMPARED = ("run.dir", "run.name", "run.check_memory")


def started_config(run: Path) -> dict[str, Any]:
    """The resolved config the run in ``run`` started with, as ``data.json`` records it (a run
    of an earlier version without that record: its ``config.yaml``)."""
    info = run / "data.json"
    recorded = read_json(info).get("config") if info.is_file() else None
    if isinstance(recorded, dict):
        return recorded
    return config_to_dict(load_config(run / "config.yaml", saved=True))


def config_changes(before: dict[str, Any], config: Config) -> list[str]:
    """``"key: BEFORE -> NOW"`` for each key whose value in ``config`` differs from the
    resolved config ``before`` (:data:`NOT_COMPARED` apart), in the order of the schema."""
    old, new = _flat(before), _flat(plain(config_to_dict(config)))
    keys = list(dict.fromkeys([*new, *old]))
    return [
        f"{key}: {_shown(old.get(key))} -> {_shown(new.get(key))}"
        for key in keys
        if key not in NOT_COMPARED and old.get(key) != new.get(key)
    ]


def _flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _shown(value: Any) -> str:
    return "(unset)" if value is None else json.dumps(value)


def write_run_inputs(run: Path, config: Config, dataset: Dataset) -> None:
    """Everything a run needs to be re-evaluated or exported without the original files."""
    run.mkdir(parents=True, exist_ok=True)
    save_config(config, run / "config.yaml")
    inter = dataset.interactions
    inter.users.save(run / "vocab" / "users.txt")
    inter.items.save(run / "vocab" / "items.txt")
    if inter.item_titles is not None:
        titles = [t.replace("\n", " ") for t in np.asarray(inter.item_titles).astype(str).tolist()]
        atomic_write_text(run / "vocab" / "item_titles.txt", "".join(f"{t}\n" for t in titles))
    if inter.item_features is not None or inter.user_features is not None:
        save_npz(
            run / "vocab" / "side_features.npz",
            item_features=_or_empty(inter.item_features),
            item_feature_names=np.array(inter.item_feature_names, dtype=str),
            user_features=_or_empty(inter.user_features),
            user_feature_names=np.array(inter.user_feature_names, dtype=str),
        )
    if inter.feature_encoders:
        write_json(run / "vocab" / "feature_encoders.json", inter.feature_encoders)
    dataset.split.save(run / "split.npz")
    info = {"fingerprint": dataset.split.fingerprint(), "stats": data_stats(dataset)}
    write_json(run / "data.json", {**info, "config": config_to_dict(config)})


def _or_empty(matrix: np.ndarray | None) -> np.ndarray:
    return np.zeros((0, 0), np.float32) if matrix is None else matrix


def resolve_run(path: str | Path) -> Path:
    """A run directory, or a folder of runs (``runs/gmf``) meaning its newest finished run."""
    path = Path(path)
    if (path / "config.yaml").is_file():
        return path
    finished = sorted(p.parent for p in path.glob("*/metrics.json")) if path.is_dir() else []
    if not finished:
        raise NcfError(
            f"{path}: neither a run directory nor a folder holding a finished run; train it first"
        )
    return finished[-1]


class RunDir:
    """Read access to a finished (or resumable) run directory."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not (self.path / "config.yaml").is_file():
            raise NcfError(
                f"{self.path}: not a run directory (no config.yaml); pass the folder `ncf train` printed"
            )
        self._verified = False

    def _checked(self) -> Path:
        """The run's folder, once its files matched the checksums its ``metrics.json`` records
        (verified once per RunDir). An unfinished run is refused: nothing seals its files (a
        model file in it may be another run's, or the run may be writing it)."""
        if not self._verified:
            if not self.complete:
                raise NcfError(self._unfinished())
            try:
                verify_run(self.path, read_json(self.path / "metrics.json"))
            except CorruptState as exc:
                raise NcfError(str(exc)) from None
            self._verified = True
        return self.path

    @property
    def config(self) -> Config:
        return load_config(self.path / "config.yaml", saved=True)

    @property
    def complete(self) -> bool:
        return (self.path / "metrics.json").is_file()

    def split(self) -> Split:
        return Split.load(self._checked() / "split.npz")

    def users(self) -> Vocabulary:
        return Vocabulary.load(self._checked() / "vocab" / "users.txt")

    def items(self) -> Vocabulary:
        return Vocabulary.load(self._checked() / "vocab" / "items.txt")

    def item_titles(self) -> list[str] | None:
        path = self._checked() / "vocab" / "item_titles.txt"
        return path.read_text(encoding="utf-8").splitlines() if path.is_file() else None

    def side_features(self) -> dict[str, np.ndarray]:
        path = self._checked() / "vocab" / "side_features.npz"
        return load_npz(path) if path.is_file() else {}

    def data_info(self) -> dict[str, Any]:
        return read_json(self._checked() / "data.json")

    def _unfinished(self) -> str:
        return (
            f"{self.path}: the run has not finished (no metrics.json), so none of its files is "
            f"read; resume it with ncf train --resume {self.path}"
        )

    def metrics(self) -> dict[str, Any]:
        payload = read_json(self._checked() / "metrics.json")
        return {k: v for k, v in payload.items() if k not in (SEAL, RUN_FILES)}

    def load_scorer(self) -> Any:
        """The run's final model or baseline, behind the evaluator's Scorer interface."""
        return family(self.config.model.type).load(self._checked())

    def evaluate(self, which: str, protocols: list[str], ks: list[int]) -> dict[str, Any]:
        """Rank the ``which`` split ("test" or "val") with the run's final model."""
        from ncf.evaluation import evaluate

        config = self.config
        if which == "val" and config.train.refit:
            raise NcfError(
                f"{self.path}: this run's model was refit on train + validation, so ranking the "
                "validation split with it says nothing; the validation metrics of the model chosen "
                'on validation are in its metrics.json ("val")'
            )
        split = self.split()
        if max(ks) > split.num_items:
            raise NcfError(f"--k {max(ks)} is larger than the catalogue ({split.num_items} items)")
        return evaluate(self.load_scorer(), split, which, protocols, ks, config.eval.batch_users)

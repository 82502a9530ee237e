"""Fitting a neural model: a selection phase, then (with ``train.refit``) a refit phase.

1. **Selection** trains on train, validates after every epoch and stops early on
   ``train.early_stopping``; the best epoch's weights are restored (with
   ``data.split.validation: false`` it trains ``train.epochs`` epochs and keeps the last).
   Its checkpoints are in ``RUN/checkpoints``, its TensorBoard logs in ``RUN/tensorboard``.
2. **Refit** (``train.refit``) trains a fresh model (same seed) on train + validation for
   the number of epochs selection chose, with no validation; ``RUN/checkpoints/refit`` and
   ``RUN/tensorboard/refit``. Selection's model is kept as ``RUN/selected.keras``.

The final model (the refit one, or the selected one) is saved as ``RUN/model.keras``; the
item embeddings go to TensorBoard's projector. Both phases run through one function,
:func:`ncf.train.phase.run_phase`, on one model compiled once: the refit copies a freshly
built model's weights into it and resets the optimizer, which gives what a fresh, separately
compiled model would (tests/test_refit.py checks it) without tracing and compiling again.
The validation metrics reported are the best epoch's, computed during selection (on every
validation case; with ``eval.val_users`` they are computed once more on all cases, before
the refit changes the weights).

NeuMF with ``model.pretrained`` starts from trained GMF and MLP runs (He et al. 2017,
§3.4.1): the selection phase from their ``selected.keras`` where they have one (a model that
never saw the validation split), the refit from their final ``model.keras``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ncf.config import Config
from ncf.data.dataset import Dataset
from ncf.errors import ConfigError, NcfError
from ncf.evaluation import evaluate
from ncf.registry import family
from ncf.train.distribute import Replication, scope_of
from ncf.train.fitted import Fitted
from ncf.train.phase import Phase, PhaseResult, compile_model, run_phase, seed_everything
from ncf.train.state import load_state, save_model

log = logging.getLogger(__name__)

SELECTED_MODEL = "selected.keras"  # a refit run's model chosen on validation (train only)
# Pretrained files, in order of preference: the selection phase must not start from a model
# that saw the validation split; the refit starts from the pretrained runs' final models.
PRETRAINED_SELECTED = (SELECTED_MODEL, "model.keras")
PRETRAINED_FINAL = ("model.keras",)


def fit_neural(
    config: Config,
    dataset: Dataset,
    path: Path,
    monitor: str,
    verbose: int,
    extra_callbacks: Sequence[Any] = (),
    replication: Replication | None = None,
) -> Fitted:
    """Select the epoch on validation (then refit, if configured) and save ``model.keras``.

    With ``replication`` the model lives and trains under its strategy; ``path`` is where
    this process writes (a non-chief worker's temporary folder) and ``replication.restore``
    the run directory it resumes from (:mod:`ncf.train.distribute`)."""
    with scope_of(replication):
        fitted = _fit_neural(config, dataset, path, monitor, verbose, extra_callbacks, replication)
    # Outside the strategy's scope: a variable made inside it would be a collective op that
    # every worker must join; only the chief writes the projector (its run has the vocab).
    if config.train.histograms and (replication is None or replication.cluster.is_chief):
        from ncf.train.projector import write_projector

        write_projector(path / "tensorboard", fitted.final.model.item_embeddings(), path)
    return fitted


def _fit_neural(
    config: Config,
    dataset: Dataset,
    path: Path,
    monitor: str,
    verbose: int,
    extra_callbacks: Sequence[Any],
    replication: Replication | None,
) -> Fitted:
    from ncf.models.scorer import NeuralScorer

    seed_everything(config.run.seed)
    model = compile_model(
        build_for(config, dataset, PRETRAINED_SELECTED), config, jit_compile=replication is None
    )
    scorer = NeuralScorer(model)  # traced once; follows the model's weights
    phase = _selection(config, dataset, path, replication)
    selection = run_phase(
        config, dataset, phase, model, scorer, monitor, verbose, extra_callbacks, replication
    )
    state = selection.state
    extra: dict[str, Any] = {
        "best_epoch": state.best_epoch,
        "monitor": monitor,
        "epochs_run": len(state.history),
        "stopped": state.stopped,
        **_throughput(selection),
    }
    calibrate = family(config.model.type).calibrate
    chosen = None
    if calibrate is not None and config.data.split.validation:
        chosen = calibrate(model, lambda: _measure(config, dataset, scorer, monitor), None)
        extra["calibrated"] = chosen
    # The best epoch was validated on every validation case unless eval.val_users sampled them.
    val = state.best_val
    if config.eval.val_users is not None or val is None or chosen:
        val = _validate(config, dataset, scorer)
    selected: Any = scorer
    if config.train.refit:
        save_model(model, path / SELECTED_MODEL)
        selected = None  # its weights are about to be replaced; its metrics are in ``val``
        epochs = int(state.best_epoch or 0)
        refit = _refit(config, dataset, path, epochs, model, verbose, extra_callbacks, replication)
        if calibrate is not None and chosen:  # a fresh model starts from the defaults
            calibrate(model, lambda: float("nan"), chosen)
        extra["refit"] = {
            "from": config.train.refit_from,
            "epochs": refit.state.epoch,
            **_throughput(refit),
        }
        extra["refit"]["history"] = refit.state.history
    save_model(model, path / "model.keras")
    return Fitted(selected, scorer, state.history, extra, val)


def _selection(
    config: Config, dataset: Dataset, path: Path, replication: Replication | None
) -> Phase:
    """Training on train, validated after every epoch (unless the split has no validation)."""
    return Phase(
        "epoch",
        path / "checkpoints",
        path / "tensorboard",
        config.train.epochs,
        dataset.split,
        validate=config.data.split.validation,
        restore=_restore(replication, "checkpoints"),
    )


def _restore(replication: Replication | None, folder: str) -> Path | None:
    """The chief's phase folder a worker resumes from (None: the process's own)."""
    return replication.restore / folder if replication is not None else None


def _validate(config: Config, dataset: Dataset, scorer: Any) -> dict[str, dict[str, float]]:
    ev = config.eval
    return evaluate(scorer, dataset.split, "val", ev.protocols, ev.k, batch_users=ev.batch_users)


def _measure(config: Config, dataset: Dataset, scorer: Any, monitor: str) -> float:
    """The ``monitor`` metric (``val/PROTOCOL/NAME``) of the model as it stands."""
    _, protocol, name = monitor.split("/")
    return float(_validate(config, dataset, scorer)[protocol][name])


def _refit(
    config: Config,
    dataset: Dataset,
    path: Path,
    epochs: int,
    model: Any,
    verbose: int,
    extra_callbacks: Sequence[Any],
    replication: Replication | None = None,
) -> PhaseResult:
    folder = path / "checkpoints" / "refit"
    restore = _restore(replication, "checkpoints/refit")
    state = load_state(restore or folder)
    fresh = config.train.refit_from == "fresh"
    if not fresh:
        epochs = config.train.refit_epochs
    if state is None or state.epoch < epochs:
        if fresh:
            log.info(f"refit: training a fresh model on train + validation for {epochs} epochs")
        else:
            log.info(
                f"refit: the model chosen on validation reads train + validation and trains "
                f"{epochs} more epochs on them"
            )
    phase = Phase(
        "refit epoch",
        folder,
        path / "tensorboard" / "refit",
        epochs,
        dataset.split.with_validation_in_train(),
        validate=False,
        initial=(lambda: build_for(config, dataset, PRETRAINED_FINAL)) if fresh else None,
        restore=restore,
    )
    return run_phase(config, dataset, phase, model, None, "", verbose, extra_callbacks, replication)


def _throughput(result: PhaseResult) -> dict[str, Any]:
    """Steady seconds per epoch, the first compiled epoch's seconds, and training examples
    per second at the steady rate.

    The steady figures are medians over the epochs that traced nothing (``compiled``):
    ``epoch`` and ``train`` over all of them; ``eval`` over those that validated, so with
    ``eval.val_every`` it is the cost of one validation, not a mix with the skipped ones.
    """
    history = result.state.history
    steady = [h for h in history if not h.get("compiled")]
    seconds: dict[str, float] = {}
    if steady:
        seconds = {
            k: float(np.median([h["seconds"][k] for h in steady])) for k in steady[0]["seconds"]
        }
        validated = [h["seconds"]["eval"] for h in steady if h["val"]]
        if validated:
            seconds["eval"] = float(np.median(validated))
    first = next((h["seconds"] for h in history if h.get("compiled")), None)
    examples = result.stream.examples_per_epoch
    return {
        "seconds_per_epoch": seconds,
        "first_epoch_seconds": first,
        "examples_per_epoch": examples,
        "examples_per_second": examples / seconds["train"] if seconds.get("train") else None,
    }


def build_for(config: Config, dataset: Dataset, pretrained: tuple[str, ...] = ()) -> Any:
    """A fresh model as its family builds it from ``config``, initialised from pretrained
    GMF/MLP runs when ``model.pretrained`` names them (``pretrained``: the model files to
    take from them, in order of preference)."""
    build = family(config.model.type).build
    assert build is not None, f"{config.model.type} is not a neural family"
    model = build(config, dataset)
    if config.model.pretrained.gmf:
        _init_pretrained(config, dataset, model, pretrained)
    return model


def _init_pretrained(config: Config, dataset: Dataset, model: Any, names: tuple[str, ...]) -> None:
    """Initialise NeuMF from the GMF and MLP runs; ``names`` lists, in order of preference, the
    model files to take from each."""
    from ncf.models import init_neumf_from_pretrained
    from ncf.models.scorer import load_keras_model
    from ncf.train.rundir import RunDir, resolve_run

    fingerprint = dataset.split.fingerprint()
    loaded = {}
    for role in ("gmf", "mlp"):
        try:
            run = RunDir(resolve_run(getattr(config.model.pretrained, role)))
        except NcfError as exc:
            raise ConfigError(f"model.pretrained.{role}: {exc}") from None
        info = run.data_info()
        if info["fingerprint"] != fingerprint:
            raise ConfigError(
                f"model.pretrained.{role}: {run.path} was trained on a different split "
                f"(fingerprint {info['fingerprint']} vs {fingerprint}); pretrain on the same data and seed"
            )
        found = [run.path / name for name in names if (run.path / name).exists()]
        if not found:
            raise ConfigError(
                f"model.pretrained.{role}: {run.path} has no model.keras; has the run finished?"
            )
        log.info(f"initialising the {role} branch from {found[0]}")
        loaded[role] = load_keras_model(found[0])
    try:
        init_neumf_from_pretrained(
            model, loaded["gmf"], loaded["mlp"], config.model.pretrained.alpha
        )
    except ValueError as exc:
        raise ConfigError(f"model.pretrained: {exc}") from None

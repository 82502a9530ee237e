"""Fitting a neural model: build, (pretrained init,) compile, ``fit`` with callbacks, restore best.

Training batches come from :class:`ncf.data.pipeline.TrainingStream` through one
``tf.data`` pipeline that covers epochs ``initial_epoch..epochs-1``; epoch ``e``'s batches
are drawn from ``(seed, e)`` alone, so a resumed run continues exactly where the
interrupted one stopped. A refit (``train.refit``) is a second, shorter run of the same loop
on train + validation with no validation, checkpointed under ``checkpoints/refit/``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ncf.callbacks import (
    Checkpointer,
    EpochProgbar,
    NanGuard,
    TensorBoardWriter,
    Validation,
    load_state,
)
from ncf.config import Config
from ncf.data.dataset import Dataset
from ncf.data.pipeline import TrainingStream
from ncf.errors import ConfigError, NcfError
from ncf.evaluation import evaluate
from ncf.fitted import Fitted

SELECTED_MODEL = "selected.keras"  # a refit run's model chosen on validation (train only)
# Pretrained files, in order of preference: the selection phase must not start from a model
# that saw the validation split; the refit starts from the pretrained runs' final models.
PRETRAINED_SELECTED = (SELECTED_MODEL, "model.keras")
PRETRAINED_FINAL = ("model.keras",)


class NeuralScorer:
    """The evaluator's view of a Keras model: numpy in, numpy out, compiled score functions."""

    def __init__(self, model: Any) -> None:
        import tensorflow as tf

        self.model = model
        self.num_items = int(model.num_items)
        spec_u = tf.TensorSpec([None], tf.int32)
        self._items = tf.function(
            model.score_items, input_signature=[spec_u, tf.TensorSpec([None, None], tf.int32)]
        )
        self._all = tf.function(model.score_all, input_signature=[spec_u])

    def score_items(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self._items(np.asarray(users, np.int32), np.asarray(items, np.int32)).numpy()

    def score_all(self, users: np.ndarray) -> np.ndarray:
        return self._all(np.asarray(users, np.int32)).numpy()


def seed_everything(seed: int) -> None:
    """Seeds Python, numpy and TF. Op determinism is not forced: it would disable XLA, and the
    CPU kernels used here are deterministic already (tests/test_training.py checks runs agree)."""
    import keras

    keras.utils.set_random_seed(seed)


def build_for(
    config: Config,
    dataset: Dataset | None,
    num_users: int,
    num_items: int,
    features: dict | None = None,
):
    """The model ``config.model`` describes, with the side features it asks for."""
    from ncf.models import build_model

    features = dict(features or {})
    if dataset is not None:
        features = {
            "user_features": dataset.interactions.user_features,
            "item_features": dataset.interactions.item_features,
        }
    for side in ("user", "item"):
        if getattr(config.model, f"{side}_features") and not _has(features.get(f"{side}_features")):
            raise ConfigError(
                f"model.{side}_features is true but the data has no {side} side features; set it to false"
            )
    return build_model(
        config.model,
        num_users,
        num_items,
        user_features=features.get("user_features")
        if _has(features.get("user_features"))
        else None,
        item_features=features.get("item_features")
        if _has(features.get("item_features"))
        else None,
        loss=config.train.loss,
    )


def _has(matrix: np.ndarray | None) -> bool:
    return matrix is not None and matrix.size > 0


def fit_neural(
    config: Config,
    dataset: Dataset,
    path: Path,
    monitor: str,
    verbose: int,
    extra_callbacks: Sequence[Any] = (),
) -> Fitted:
    """Train, restore the best epoch (then refit, if configured) and save ``model.keras``."""

    split = dataset.split
    seed_everything(config.run.seed)
    stream = TrainingStream(split, config.train, config.run.seed)
    folder = path / "checkpoints"
    state = load_state(folder)
    model = _model_to_start_from(config, dataset, folder, state, stream.steps_per_epoch)
    scorer = NeuralScorer(model)
    validation = Validation(
        lambda: evaluate(
            scorer, split, "val", config.eval.protocols, config.eval.k, config.eval.batch_users
        ),
        monitor,
    )
    checkpointer = _train_epochs(
        config,
        model,
        stream,
        folder,
        state,
        validation=validation,
        log_dir=path / "tensorboard",
        epochs=config.train.epochs,
        monitor=monitor,
        verbose=verbose,
        extra_callbacks=extra_callbacks,
    )
    model.load_weights(folder / checkpointer.state["best_weights"])
    history = checkpointer.state["history"]
    best_epoch = checkpointer.state["best_epoch"]
    extra: dict[str, Any] = {
        "best_epoch": best_epoch,
        "monitor": monitor,
        "epochs_run": len(history),
    }
    extra["seconds_per_epoch"] = _mean_seconds(history)
    extra["examples_per_epoch"] = stream.examples_per_epoch
    final, final_scorer = model, scorer
    if config.train.refit:
        _save_model(model, path / SELECTED_MODEL)
        final, extra["refit"] = _refit(config, dataset, path, best_epoch, verbose)
        final_scorer = NeuralScorer(final)
    _save_model(final, path / "model.keras")
    if config.train.histograms:
        from ncf.projector import write_projector

        write_projector(path / "tensorboard", final.item_embeddings(), path)
    return Fitted(scorer, final_scorer, history, extra)


def _refit(config: Config, dataset: Dataset, path: Path, epochs: int, verbose: int):
    """A fresh model trained on train + validation for ``epochs`` epochs (resumable)."""
    split = dataset.split.with_validation_in_train()
    folder = path / "checkpoints" / "refit"
    state = load_state(folder)
    if state is None or state["epoch"] < epochs:
        print(
            f"refit: training a fresh model on train + validation for {epochs} epochs", flush=True
        )
    seed_everything(config.run.seed)
    stream = TrainingStream(split, config.train, config.run.seed)
    model = _model_to_start_from(
        config, dataset, folder, state, stream.steps_per_epoch, pretrained=PRETRAINED_FINAL
    )
    checkpointer = _train_epochs(
        config,
        model,
        stream,
        folder,
        state,
        validation=None,
        log_dir=path / "tensorboard" / "refit",
        epochs=epochs,
        monitor="",
        verbose=verbose,
        label="refit epoch",
    )
    history = checkpointer.state["history"]
    return model, {
        "epochs": epochs,
        "history": history,
        "seconds_per_epoch": _mean_seconds(history),
        "examples_per_epoch": stream.examples_per_epoch,
    }


def _train_epochs(
    config: Config,
    model: Any,
    stream: TrainingStream,
    folder: Path,
    state: dict | None,
    validation: Validation | None,
    log_dir: Path,
    epochs: int,
    monitor: str,
    verbose: int,
    extra_callbacks: Sequence[Any] = (),
    label: str = "epoch",
) -> Checkpointer:
    """Epochs ``state["epoch"]..epochs-1`` (early stopping only where there is validation)."""
    nan_guard = NanGuard()

    def timings() -> dict[str, float]:
        return {
            "sampling": stream.take_sampling_seconds(),
            "eval": validation.seconds if validation else 0.0,
        }

    patience = config.train.early_stopping.patience if validation else 0
    checkpointer = Checkpointer(
        folder,
        monitor,
        patience,
        config.train.early_stopping.min_delta,
        nan_guard,
        validation,
        timings,
        state,
        label,
    )
    board = TensorBoardWriter(log_dir, config.train.histograms, nan_guard, validation)
    callbacks = [nan_guard, board, checkpointer, *extra_callbacks]
    if validation is not None:
        callbacks.insert(0, validation)
    if verbose:
        callbacks.insert(0, EpochProgbar(epochs))
    # One fit() call per epoch on that epoch's own dataset: Keras' steps_per_execution would
    # otherwise run whole executions across epoch boundaries of a shared iterator.
    epoch = state["epoch"] if state else 0
    while epoch < epochs and not _stopped(checkpointer, nan_guard, patience):
        with warnings.catch_warnings():
            # Each epoch's dataset ends where the epoch ends; Keras warns when its last
            # execution asks for more steps than are left, which is intended here.
            warnings.filterwarnings("ignore", message="Your input ran out of data")
            model.fit(
                stream.dataset(epoch),
                epochs=epoch + 1,
                initial_epoch=epoch,
                callbacks=callbacks,
                verbose=verbose,
                shuffle=False,
            )
        epoch += 1
    board.close()
    if nan_guard.bad_epoch is not None:
        raise NcfError(
            f"training diverged: the loss became NaN or infinite in epoch {nan_guard.bad_epoch + 1}; "
            f"the last good checkpoint (epoch {checkpointer.state['epoch']}) is kept in {folder}; "
            "lower train.learning_rate or add regularisation, then resume or start again"
        )
    return checkpointer


def _stopped(checkpointer: Checkpointer, nan_guard: NanGuard, patience: int) -> bool:
    return nan_guard.bad_epoch is not None or bool(
        patience and checkpointer.state["wait"] >= patience
    )


def _mean_seconds(history: list[dict[str, Any]]) -> dict[str, float]:
    if not history:
        return {}
    keys = history[0]["seconds"].keys()
    return {k: float(np.mean([h["seconds"][k] for h in history])) for k in keys}


def _model_to_start_from(
    config: Config,
    dataset: Dataset,
    folder: Path,
    state: dict | None,
    steps: int,
    pretrained: tuple[str, ...] = PRETRAINED_SELECTED,
):
    import keras

    from ncf.models import optimizer_from_config

    split = dataset.split
    if state is not None:
        return keras.models.load_model(folder / state["checkpoint"])
    model = build_for(config, dataset, split.num_users, split.num_items)
    if config.model.pretrained.gmf:
        _init_pretrained(config, dataset, model, pretrained)
    model.compile(
        optimizer=optimizer_from_config(config.train, steps),
        # Several steps per call and XLA: per-step overhead dominates these small models
        # (measured: about 2x the examples/s of one eager step per call at batch 2048).
        steps_per_execution=max(1, min(32, steps)),
        jit_compile=True,
    )
    return model


def _init_pretrained(config: Config, dataset: Dataset, model, names: tuple[str, ...]) -> None:
    """Initialise NeuMF from the GMF and MLP runs; ``names`` lists, in order of preference, the
    model files to take from each (a refit run's selected model never saw validation)."""
    import keras

    from ncf.models import init_neumf_from_pretrained
    from ncf.rundir import RunDir, resolve_run

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
        print(f"initialising the {role} branch from {found[0]}", flush=True)
        loaded[role] = keras.models.load_model(found[0])
    try:
        init_neumf_from_pretrained(
            model, loaded["gmf"], loaded["mlp"], config.model.pretrained.alpha
        )
    except ValueError as exc:
        raise ConfigError(f"model.pretrained: {exc}") from None


def _save_model(model, path: Path) -> None:
    tmp = path.with_name(f".tmp-{os.getpid()}.keras")
    model.save(tmp)
    os.replace(tmp, path)

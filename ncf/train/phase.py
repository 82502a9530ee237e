"""One training phase of a neural model: the single loop behind selection and refit.

A :class:`Phase` names its checkpoint folder, its TensorBoard folder, its epoch budget, the
split it trains on and whether it validates. :func:`run_phase` builds the model (or restores
it from the phase's last checkpoint), compiles it and runs epochs ``state.epoch .. epochs-1``
with plain ``keras.Model.fit`` and the callbacks of :mod:`ncf.train.callbacks`. Training
batches come from :class:`ncf.data.pipeline.TrainingStream`; epoch ``e``'s batches depend
on ``(seed, e)`` alone, so a resumed phase continues exactly where a killed one stopped.

Early stopping is decided in one place, the :class:`~ncf.train.callbacks.EarlyStopping`
callback, through Keras' ``model.stop_training``; the decision is saved in ``state.json`` so
a run killed after it does not train further when resumed. Each epoch is its own ``fit()``
call over that epoch's dataset: with ``steps_per_execution`` > 1 Keras would otherwise run
whole executions across epoch boundaries of a shared iterator.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ncf.config import Config
from ncf.data.dataset import Dataset
from ncf.data.pipeline import TrainingStream
from ncf.data.split import Split
from ncf.evaluation import evaluate
from ncf.rng import rng_for
from ncf.train.callbacks import (
    Checkpointer,
    EarlyStopping,
    EpochLog,
    EpochProgbar,
    NanGuard,
    TensorBoardWriter,
    Validation,
    divergence_error,
)
from ncf.train.state import PhaseState, load_state

log = logging.getLogger(__name__)

# Builds a fresh, uncompiled model for a phase (pretrained initialisation included).
ModelBuilder = Callable[[], Any]


@dataclass(frozen=True)
class Phase:
    """One run of the epoch loop.

    Attributes:
        label: first word of the epoch lines (``epoch``, ``refit epoch``).
        folder: checkpoint folder (state.json, epoch and best-weight files).
        log_dir: TensorBoard folder.
        epochs: epoch budget.
        split: the data it trains on (``split.train_*``).
        validate: rank ``split``'s validation cases after each epoch and stop early on
            ``monitor``; without it every epoch is the best so far.
    """

    label: str
    folder: Path
    log_dir: Path
    epochs: int
    split: Split
    validate: bool


@dataclass(frozen=True)
class PhaseResult:
    model: Any  # best weights restored
    state: PhaseState
    stream: TrainingStream


def seed_everything(seed: int) -> None:
    """Seeds Python, numpy and TF. Op determinism is not forced: it would disable XLA, and the
    CPU kernels used here are deterministic already (tests/test_training.py checks runs agree)."""
    import keras

    keras.utils.set_random_seed(seed)


def run_phase(
    config: Config,
    dataset: Dataset,
    phase: Phase,
    build: ModelBuilder,
    monitor: str,
    verbose: int,
    extra_callbacks: Sequence[Any] = (),
) -> PhaseResult:
    """Train (or resume) ``phase``; returns the model with its best epoch's weights restored."""
    seed_everything(config.run.seed)
    stream = TrainingStream(phase.split, config.train, config.run.seed)
    state = load_state(phase.folder)
    if state is None or state.checkpoint is None:
        state = PhaseState()
        model = _compile(build(), config, stream.steps_per_epoch)
    else:
        from ncf.models.scorer import load_keras_model

        model = load_keras_model(phase.folder / state.checkpoint)
    callbacks, board = _callbacks(config, dataset, phase, state, model, stream, monitor, verbose)
    for epoch in range(state.epoch, phase.epochs):
        if state.stopped:
            break
        with warnings.catch_warnings():
            # Each epoch's dataset ends where the epoch ends; Keras warns when its last
            # execution asks for more steps than are left, which is intended here.
            warnings.filterwarnings("ignore", message="Your input ran out of data")
            model.fit(
                stream.dataset(epoch),
                epochs=epoch + 1,
                initial_epoch=epoch,
                callbacks=[*callbacks, *extra_callbacks],
                verbose=verbose,
                shuffle=False,
            )
        if state.diverged_epoch is not None:
            board.close()
            raise divergence_error(state, phase.folder)
    board.close()
    if phase.validate and not state.stopped and state.epoch >= phase.epochs:
        state.stopped = "epoch cap"
    if state.best_weights:
        model.load_weights(phase.folder / state.best_weights)
    return PhaseResult(model, state, stream)


def validation_split(config: Config, split: Split) -> Split:
    """The split whose validation cases are ranked each epoch: all, or ``eval.val_users`` of
    them drawn once from the seed."""
    if config.eval.val_users is None:
        return split
    return split.with_validation_sample(
        config.eval.val_users, rng_for(config.run.seed, "val-users")
    )


def _compile(model: Any, config: Config, steps: int) -> Any:
    from ncf.models import optimizer_from_config

    model.compile(
        optimizer=optimizer_from_config(config.train, steps),
        # Several steps per call and XLA: per-step overhead dominates these small models
        # (measured: about 2x the examples/s of one eager step per call at batch 2048).
        steps_per_execution=max(1, min(32, steps)),
        jit_compile=True,
    )
    return model


def _callbacks(config, dataset, phase, state, model, stream, monitor, verbose) -> tuple:
    validation = None
    if phase.validate:
        from ncf.models.scorer import NeuralScorer

        scorer, ev = NeuralScorer(model), config.eval
        split = validation_split(config, dataset.split)
        validation = Validation(
            lambda: evaluate(scorer, split, "val", ev.protocols, ev.k, ev.batch_users),
            monitor,
            every=ev.val_every,
            last_epoch=phase.epochs,
        )
    stopping = config.train.early_stopping
    patience = stopping.patience if validation else 0

    def timings() -> dict[str, float]:
        return {"sampling": stream.take_sampling_seconds()}

    board = TensorBoardWriter(phase.log_dir, config.train.histograms, state, validation)
    callbacks: list[Any] = [
        NanGuard(state),
        EarlyStopping(state, validation, patience, stopping.min_delta),
        EpochLog(state, validation, timings, phase.label),
        Checkpointer(phase.folder, state),
        board,
    ]
    if validation is not None:
        callbacks.insert(0, validation)
    if verbose:
        callbacks.insert(0, EpochProgbar(phase.epochs))
    return callbacks, board

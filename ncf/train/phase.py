"""One training phase of a neural model: the single loop behind selection and refit.

A :class:`Phase` names its checkpoint folder, its TensorBoard folder, its epoch budget, the
split it trains on, whether it validates and how it starts. :func:`run_phase` puts the run's
one compiled model in the phase's starting state (its last checkpoint: weights and optimizer
state; otherwise ``phase.initial``, a fresh model whose weights are copied in, with a fresh
optimizer state) and runs epochs ``state.epoch .. epochs-1`` with plain ``keras.Model.fit``
and the callbacks of :mod:`ncf.train.callbacks`. The model is compiled once per run
(:func:`compile_model`): the selection and the refit share the traced and XLA-compiled train
step, and the refit gives what a freshly built and compiled model would.

Training batches come from :class:`ncf.data.pipeline.TrainingStream`; epoch ``e``'s batches
depend on ``(seed, e)`` alone, so a resumed phase continues exactly where a killed one
stopped. Every batch has the same size, so the train step is compiled for one shape.

Early stopping is decided in one place, the :class:`~ncf.train.callbacks.EarlyStopping`
callback, through Keras' ``model.stop_training`` (an extra callback may end a phase the same
way, naming why in ``model.stop_reason``: ``ncf tune``'s time budget); the decision is saved in ``state.json`` so
a run killed after it does not train further when resumed. Each epoch is its own ``fit()``
call over that epoch's dataset: with ``steps_per_execution`` > 1 Keras would otherwise run
whole executions across epoch boundaries of a shared iterator. Under a ``tf.distribute``
strategy (``train.distribute``) each epoch is run instead by
:class:`~ncf.train.distribute.ReplicatedEpochs` (Keras' ``train_step`` under
``strategy.run``, the same callbacks), because Keras 3's ``fit`` cannot run these models
under a strategy; the rest of the loop is shared.
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
from ncf.registry import family
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
from ncf.train.distribute import Replication, replicated_epochs, traced
from ncf.train.state import PhaseState, load_state

log = logging.getLogger(__name__)

# Builds a fresh, uncompiled model for a phase (pretrained initialisation included).
ModelBuilder = Callable[[], Any]
STEPS_PER_EXECUTION = 32


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
        initial: builds the fresh model the phase starts from (its weights are copied into
            the compiled model); None: the compiled model is fresh already.
        restore: the folder the phase resumes from, when not ``folder`` (a non-chief worker
            writes to its own temporary folder and resumes from the chief's).
    """

    label: str
    folder: Path
    log_dir: Path
    epochs: int
    split: Split
    validate: bool
    initial: ModelBuilder | None = None
    restore: Path | None = None


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
    model: Any,
    scorer: Any,
    monitor: str,
    verbose: int,
    extra_callbacks: Sequence[Any] = (),
    replication: Replication | None = None,
) -> PhaseResult:
    """Train (or resume) ``phase`` with the compiled ``model`` (see :func:`compile_model`);
    ``scorer`` ranks validation with it. Returns it with its best epoch's weights restored.
    With ``replication`` the epochs run under its strategy (:mod:`ncf.train.distribute`)."""
    from ncf.models.optim import set_steps_per_epoch

    source = phase.restore or phase.folder
    state = load_state(source)
    if state is None or state.checkpoint is None:
        state = PhaseState()
        if phase.initial is not None:
            seed_everything(config.run.seed)
            reinitialise(model, phase.initial())
    else:
        model.load_weights(source / state.checkpoint)  # weights and optimizer state
    stream = training_stream(config, dataset, phase.split, model)
    set_steps_per_epoch(model.optimizer, stream.steps_per_epoch)
    epochs = None
    compiles = model.train_function is None  # compile() clears it; the first fit() traces it
    if replication is not None:
        compiles = not traced(model)
        epochs = replicated_epochs(model, replication.strategy, STEPS_PER_EXECUTION)
        verbose = 0  # no progress bar: the epoch lines say it all
    callbacks, board = _callbacks(config, dataset, phase, state, scorer, monitor, verbose, compiles)
    if verbose:  # Keras' progress bar, with the epoch's number of steps
        callbacks.insert(0, EpochProgbar(phase.epochs, stream.steps_per_epoch))
    ran = False  # whether this call trained an epoch (the model then holds the last one)
    for epoch in range(state.epoch, phase.epochs):
        if state.stopped:
            break
        ran = True
        if epochs is not None:
            epochs.fit_epoch(stream, epoch, [*callbacks, *extra_callbacks])
        else:
            _fit_epoch(model, stream, epoch, [*callbacks, *extra_callbacks], verbose)
        if state.diverged_epoch is not None:
            board.close()
            raise divergence_error(state, phase.folder)
        if model.stop_training and not state.stopped:  # an extra callback ended the phase
            state.stopped = getattr(model, "stop_reason", None) or "stopped by a callback"
    board.close()
    if phase.validate and not state.stopped and state.epoch >= phase.epochs:
        state.stopped = cap_reason(config)
    if state.best_weights and not (ran and state.best_epoch == state.epoch):
        # (otherwise the model holds the best epoch's weights already: it just trained it)
        best = phase.folder / state.best_weights
        model.load_weights(best if best.exists() else source / state.best_weights)
    return PhaseResult(model, state, stream)


def cap_reason(config: Config) -> str:
    """Why a validated phase that ran all ``train.epochs`` stopped: a cosine schedule ends
    with its budget (the rate reaches zero at the last epoch), so running every epoch is its
    plan, not early stopping that never triggered."""
    return "schedule end" if config.train.lr_schedule == "cosine" else "epoch cap"


def _fit_epoch(
    model: Any, stream: TrainingStream, epoch: int, callbacks: list, verbose: int
) -> None:
    """One epoch of plain ``keras.Model.fit``."""
    with warnings.catch_warnings():
        # The last execution of an epoch may ask for more steps than are left; intended.
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        model.fit(
            stream.dataset(epoch),
            epochs=epoch + 1,
            initial_epoch=epoch,
            callbacks=callbacks,
            verbose=verbose,
            shuffle=False,
        )


def training_stream(config: Config, dataset: Dataset, split: Split, model: Any) -> TrainingStream:
    """The phase's batches, from its family (which also gives the model what it reads from
    the data it fits on, such as the history model's table of each user's latest items)."""
    prepare = family(config.model.type).prepare
    assert prepare is not None, f"{config.model.type} is not a neural family"
    stream: TrainingStream = prepare(model, config, dataset, split)
    return stream


def compile_model(model: Any, config: Config, jit_compile: bool = True) -> Any:
    """Compile ``model`` for every phase of the run, with its optimizer built (so a checkpoint
    restores the optimizer state too). The schedule's epoch length is set by each phase.
    Under a strategy (``jit_compile=False``) XLA is off: its steps exchange gradients."""
    from ncf.models import optimizer_from_config

    model.compile(
        optimizer=optimizer_from_config(config.train, steps_per_epoch=1),
        # Several steps per call and XLA: per-step overhead dominates these small models
        # (measured: about 2x the examples/s of one eager step per call at batch 2048).
        steps_per_execution=STEPS_PER_EXECUTION,
        jit_compile=jit_compile,
    )
    model.optimizer.build(model.trainable_variables)
    return model


def reinitialise(model: Any, fresh: Any) -> None:
    """Give the compiled ``model`` the state of the freshly built ``fresh`` (same architecture):
    its weights and random-generator states, and a fresh optimizer state."""
    from ncf.models.optim import reset_optimizer

    targets, sources = model.variables, fresh.variables
    if [tuple(v.shape) for v in targets] != [tuple(v.shape) for v in sources]:
        raise ValueError("reinitialise needs two models of the same architecture")
    for target, source in zip(targets, sources, strict=True):
        target.assign(source)
    reset_optimizer(model.optimizer, model.trainable_variables)


def validation_split(config: Config, split: Split) -> Split:
    """The split whose validation cases are ranked each epoch: all, or ``eval.val_users`` of
    them drawn once from the seed."""
    if config.eval.val_users is None:
        return split
    return split.with_validation_sample(
        config.eval.val_users, rng_for(config.run.seed, "val-users")
    )


def _callbacks(config, dataset, phase, state, scorer, monitor, verbose, compiles) -> tuple:
    validation = None
    if phase.validate:
        ev = config.eval
        split = validation_split(config, dataset.split)
        validation = Validation(
            lambda: evaluate(scorer, split, "val", ev.protocols, ev.k, ev.batch_users),
            monitor,
            every=ev.val_every,
            last_epoch=phase.epochs,
        )
    stopping = config.train.early_stopping
    patience = stopping.patience if validation else 0

    board = TensorBoardWriter(phase.log_dir, config.train.histograms, state, validation)
    callbacks: list[Any] = [
        NanGuard(state),
        EarlyStopping(state, validation, patience, stopping.min_delta),
        EpochLog(state, validation, dict, phase.label, compiles),  # sampling: tf.data threads
        Checkpointer(phase.folder, state),
        board,
    ]
    if validation is not None:
        callbacks.insert(0, validation)
    return callbacks, board

"""Keras callbacks of a training phase, one job each, in the order they run after an epoch.

They share the phase's :class:`~ncf.train.state.PhaseState`:

1. :class:`Validation` ranks the validation split (``val/sampled/NDCG@10``, ...).
2. :class:`NanGuard` stops at the first non-finite batch loss (``state.diverged_epoch``).
3. :class:`EarlyStopping` compares the monitored metric with the best so far and sets
   Keras' ``model.stop_training`` once ``patience`` epochs passed without improvement.
4. :class:`EpochLog` appends the epoch's record (loss, metrics, seconds) to the history and
   logs the one-line summary.
5. :class:`Checkpointer` saves the epoch's model with its optimizer state, the best weights
   when the epoch improved, then ``state.json`` with their checksums (see
   :mod:`ncf.train.state` and :mod:`ncf.train.integrity`).
6. :class:`TensorBoardWriter` writes the epoch scalars and weight histograms with
   ``tf.summary`` directly, so every promised tag is there.

After a diverged epoch the last four do nothing, so the last good checkpoint stays.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import keras

from ncf.errors import NcfError
from ncf.io import library_write_error
from ncf.train.histograms import write_histogram
from ncf.train.integrity import BEST_WEIGHTS, CHECKPOINT
from ncf.train.state import PhaseState, save_best_weights, save_model, save_state

log = logging.getLogger(__name__)

EvalFn = Callable[[], dict[str, dict[str, float]]]
SHOWN = ("sampled/HR@10", "sampled/NDCG@10", "full/HR@10", "full/NDCG@10")


class Validation(keras.callbacks.Callback):
    """Evaluates the validation split after every ``every``-th epoch and after the last.

    Args:
        evaluate: ranks the validation split with the model being trained.
        monitor: the key early stopping watches, e.g. ``val/sampled/NDCG@10``.
        every: validate after epochs ``every, 2 * every, ...``.
        last_epoch: the phase's epoch budget (1-based), always validated.
    """

    def __init__(self, evaluate: EvalFn, monitor: str, every: int = 1, last_epoch: int = 0) -> None:
        super().__init__()
        self.evaluate = evaluate
        self.monitor = monitor
        self.every, self.last_epoch = every, last_epoch
        self.seconds = 0.0
        self.ran = 0  # validations so far in this process: the first traces the scorer
        self.nested: dict[str, dict[str, float]] = {}  # as evaluate() returns it
        self.results: dict[str, float] = {}  # every metric, flat: "val/full/Recall@20"

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.nested, self.results, self.seconds = {}, {}, 0.0
        if (epoch + 1) % self.every and epoch + 1 != self.last_epoch:
            return
        start = time.perf_counter()
        self.nested = self.evaluate()
        self.seconds = time.perf_counter() - start
        self.ran += 1
        self.results = {
            f"val/{protocol}/{name}": float(value)
            for protocol, values in self.nested.items()
            for name, value in values.items()
            if name != "cases"
        }
        if logs is not None:  # the progress bar shows the headline metrics only
            for key, value in self.results.items():
                if key == self.monitor or key.removeprefix("val/") in SHOWN:
                    logs[key] = value


class NanGuard(keras.callbacks.Callback):
    """Stops at the first NaN or infinite loss and records the epoch in the state."""

    def __init__(self, state: PhaseState) -> None:
        super().__init__()
        self.state = state
        self._epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.state.diverged_epoch = self._epoch
            self.model.stop_training = True


def divergence_error(state: PhaseState, folder: Path) -> NcfError:
    """The error that ends a phase whose loss became NaN or infinite (``state.diverged_epoch``)."""
    where = (
        f"the last good checkpoint (epoch {state.epoch}) is kept in {folder}"
        if state.epoch
        else "no epoch completed, so there is no checkpoint to resume from"
    )
    return NcfError(
        f"training diverged: the loss became NaN or infinite in epoch {(state.diverged_epoch or 0) + 1}; "
        f"{where}; lower train.learning_rate or add regularisation, then resume or start again"
    )


class EarlyStopping(keras.callbacks.Callback):
    """Tracks the best validation value; stops after ``patience`` validations without improving.

    Without validation (``validation=None``, a refit) every epoch counts as an improvement
    and nothing stops early. An epoch that was not validated (``eval.val_every``) is never
    the best and does not count towards patience. ``patience=0`` never stops early. The best
    epoch's validation metrics are kept in ``state.best_val``.
    """

    def __init__(
        self, state: PhaseState, validation: Validation | None, patience: int, min_delta: float
    ) -> None:
        super().__init__()
        self.state, self.validation = state, validation
        self.patience, self.min_delta = patience, min_delta

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        state = self.state
        if state.diverged_epoch is not None:
            return
        validation = self.validation
        if validation is not None and not validation.results:
            state.improved = False  # not validated this epoch
            return
        value = validation.results.get(validation.monitor) if validation else None
        state.improved = value is None or state.best is None or value > state.best + self.min_delta
        if state.improved:
            state.best, state.best_epoch, state.wait = value, epoch + 1, 0
            state.best_val = validation.nested if validation else None
        else:
            state.wait += 1
        if self.patience and state.wait >= self.patience:
            state.stopped = "early stopping"
            self.model.stop_training = True


class EpochLog(keras.callbacks.Callback):
    """Appends each epoch's record to ``state.history`` and logs its summary line.

    Args:
        state: the phase state.
        validation: the Validation callback, or None.
        timings: extra named seconds measured elsewhere.
        label: first word of the summary line (``epoch``, ``refit epoch``).
        compiles: whether the phase's first epoch traces and compiles the training step (the
            first the model runs in this process does; a phase reusing it does not).
    """

    def __init__(
        self,
        state: PhaseState,
        validation: Validation | None,
        timings: Callable[[], dict[str, float]],
        label: str,
        compiles: bool = True,
    ) -> None:
        super().__init__()
        self.state, self.validation = state, validation
        self.timings, self.label = timings, label
        self._start = 0.0
        self._compiles = compiles

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.state.diverged_epoch is not None:
            return
        results = self.validation.results if self.validation else {}
        seconds = {"epoch": time.perf_counter() - self._start, **self.timings()}
        seconds["eval"] = self.validation.seconds if self.validation else 0.0
        seconds["train"] = seconds["epoch"] - seconds["eval"]
        record = {
            "epoch": epoch + 1,
            "loss": float((logs or {}).get("loss", float("nan"))),
            "seconds": seconds,
            "val": {k.removeprefix("val/"): v for k, v in results.items()},
        }
        # The phase's first epoch traces and compiles the training step; the first validation
        # (epoch 1, or epoch N with eval.val_every=N) traces the scorer.
        first_validation = (
            bool(results) and self.validation is not None and self.validation.ran == 1
        )
        if self._compiles or first_validation:
            record["compiled"] = True  # its seconds include tracing (and XLA compilation)
            self._compiles = False
        self.state.history.append(record)
        monitor = self.validation.monitor if self.validation else ""
        improved = self.state.improved and bool(results)
        log.info(summary_line(record, monitor, improved, self.label))


def summary_line(record: dict[str, Any], monitor: str, improved: bool, label: str) -> str:
    """``epoch   3  loss 0.3012  sampled/HR@10 0.6123 ... (1.2s: train 1.0, val 0.2) *``;
    an epoch that traced the training step or the scorer says ``(4.1s incl. compile: ...)``."""
    val = record["val"]
    shown = [k for k in SHOWN if k in val]
    key = monitor.removeprefix("val/")
    if key in val and key not in shown:
        shown.append(key)
    parts = "".join(f"{k} {val[k]:.4f} " for k in shown)
    secs = record["seconds"]
    timing = f"{secs['epoch']:.1f}s"
    if record.get("compiled"):
        timing += " incl. compile"
    if val:
        timing += f": train {secs.get('train', 0):.1f}, val {secs.get('eval', 0):.1f}"
    mark = " *" if improved else ""
    return f"{label} {record['epoch']:3d}  loss {record['loss']:.4f}  {parts} ({timing}){mark}"


class Checkpointer(keras.callbacks.Callback):
    """Writes the epoch checkpoint, the best weights (when improved) and ``state.json``,
    which records both files' checksums; older files are removed by ``save_state``."""

    def __init__(self, folder: Path, state: PhaseState) -> None:
        super().__init__()
        self.folder, self.state = folder, state

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        state = self.state
        if state.diverged_epoch is not None:
            return
        state.epoch = epoch + 1
        state.checkpoint = CHECKPOINT.format(epoch + 1)
        checkpoint = self.folder / state.checkpoint
        state.checksums[state.checkpoint] = save_model(self.model, checkpoint)
        if state.improved:
            state.best_weights = BEST_WEIGHTS.format(epoch + 1)
            best = self.folder / state.best_weights
            state.checksums[state.best_weights] = save_best_weights(checkpoint, best)
        save_state(self.folder, state)  # last: it names the files written above


class TensorBoardWriter(keras.callbacks.Callback):
    """Epoch scalars (``train/loss``, ``train/learning_rate``, ``val/...``) and histograms."""

    def __init__(
        self,
        log_dir: Path,
        histograms: bool,
        state: PhaseState,
        validation: Validation | None,
    ) -> None:
        super().__init__()
        import tensorflow as tf

        self.log_dir = log_dir
        self.writer = tf.summary.create_file_writer(str(log_dir))
        self.histograms = histograms
        self.state, self.validation = state, validation

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.state.diverged_epoch is not None:
            return
        with self._user_errors():
            self._write(epoch + 1, logs)

    @contextmanager
    def _user_errors(self) -> Iterator[None]:
        """TensorFlow's failed writes (a full disk) as an NcfError naming the folder."""
        import tensorflow as tf

        try:
            yield
        except tf.errors.OpError as exc:
            raise library_write_error(self.log_dir, exc.message) from None

    def _write(self, step: int, logs: dict[str, Any] | None) -> None:
        import tensorflow as tf

        with self.writer.as_default():
            for name, value in (logs or {}).items():
                if not name.startswith("val/"):
                    tf.summary.scalar(f"train/{name}", float(value), step=step)
            for name, value in (self.validation.results if self.validation else {}).items():
                tf.summary.scalar(name, value, step=step)
            tf.summary.scalar("train/learning_rate", current_learning_rate(self.model), step=step)
            if self.histograms:
                for weight in self.model.weights:
                    write_histogram(
                        f"weights/{weight.path}", keras.ops.convert_to_numpy(weight), step
                    )
        self.writer.flush()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        with self._user_errors():
            self.writer.flush()

    def close(self) -> None:
        with self._user_errors():
            self.writer.close()


def current_learning_rate(model: keras.Model) -> float:
    return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))


class EpochProgbar(keras.callbacks.ProgbarLogger):
    """Keras' progress bar, told the phase's real number of epochs (fit() runs one at a time)
    and its steps per epoch: the batches come from a ``tf.data`` pipeline of unknown length,
    so Keras alone would show ``32/Unknown`` until the epoch ends; with ``steps`` it shows
    ``32/196`` and an ETA from the first step."""

    def __init__(self, total_epochs: int, steps: int | None = None) -> None:
        super().__init__()
        self.total_epochs, self.steps = total_epochs, steps

    def set_params(self, params: dict[str, Any]) -> None:
        super().set_params(
            {**params, "epochs": self.total_epochs, "steps": self.steps or params["steps"]}
        )

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        # The epoch's last execution of several steps reports the step it would end on.
        super().on_train_batch_end(min(batch, self.steps - 1) if self.steps else batch, logs)

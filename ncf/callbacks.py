"""Keras callbacks of the training loop, in the order they run at the end of each epoch.

1. :class:`Validation` ranks the validation split and puts the metrics in the epoch logs
   (``val/sampled/NDCG@10``, ``val/full/HR@10``, ...).
2. :class:`NanGuard` stops training at the first non-finite loss.
3. :class:`TensorBoardWriter` writes the epoch scalars (loss, learning rate, validation
   metrics) and weight histograms with ``tf.summary`` directly, so every promised tag is
   there whatever Keras' own callback would do with ``update_freq``.
4. :class:`Checkpointer` saves the epoch's model with its optimizer state, the best weights
   and ``state.json`` (atomically, in that order), applies early stopping and prints the
   one-line epoch summary.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras

from ncf.rundir import read_json, write_json

EvalFn = Callable[[], dict[str, dict[str, float]]]


class Validation(keras.callbacks.Callback):
    """Evaluates the validation split at the end of every epoch."""

    def __init__(self, evaluate: EvalFn, monitor: str) -> None:
        super().__init__()
        self.evaluate = evaluate
        self.monitor = monitor
        self.seconds = 0.0
        self.results: dict[str, float] = {}  # every metric, flat: "val/full/Recall@20"

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        start = time.perf_counter()
        nested = self.evaluate()
        self.seconds = time.perf_counter() - start
        self.results = {
            f"val/{protocol}/{name}": float(value)
            for protocol, values in nested.items()
            for name, value in values.items()
            if name != "cases"
        }
        if logs is not None:  # the progress bar shows the headline metrics only
            for key, value in self.results.items():
                if key == self.monitor or key.endswith(("/HR@10", "/NDCG@10")):
                    logs[key] = value


class NanGuard(keras.callbacks.Callback):
    """Stops at the first NaN or infinite loss and remembers where."""

    def __init__(self) -> None:
        super().__init__()
        self.bad_epoch: int | None = None
        self._epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.bad_epoch = self._epoch
            self.model.stop_training = True


class TensorBoardWriter(keras.callbacks.Callback):
    """Epoch scalars and histograms under ``log_dir`` (one event stream, tags by name)."""

    def __init__(
        self, log_dir: Path, histograms: bool, nan_guard: NanGuard, validation: Validation | None
    ) -> None:
        super().__init__()
        import tensorflow as tf

        self.writer = tf.summary.create_file_writer(str(log_dir))
        self.histograms = histograms
        self.nan_guard = nan_guard
        self.validation = validation

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        import tensorflow as tf

        if self.nan_guard.bad_epoch is not None:
            return
        step = epoch + 1
        with self.writer.as_default():
            for name, value in (logs or {}).items():
                if not name.startswith("val/"):
                    tf.summary.scalar(f"train/{name}", float(value), step=step)
            for name, value in (self.validation.results if self.validation else {}).items():
                tf.summary.scalar(name, value, step=step)
            tf.summary.scalar("train/learning_rate", current_learning_rate(self.model), step=step)
            if self.histograms:
                for weight in self.model.weights:
                    tf.summary.histogram(f"weights/{weight.path}", weight, step=step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def current_learning_rate(model: keras.Model) -> float:
    optimizer = model.optimizer
    lr = optimizer.learning_rate
    return float(keras.ops.convert_to_numpy(lr))


class Checkpointer(keras.callbacks.Callback):
    """Last checkpoint (with optimizer), best weights, state.json, early stopping, summary line."""

    def __init__(
        self,
        folder: Path,
        monitor: str,
        patience: int,
        min_delta: float,
        nan_guard: NanGuard,
        validation: Validation | None,
        timings: Callable[[], dict[str, float]],
        state: dict[str, Any] | None = None,
        label: str = "epoch",
    ) -> None:
        super().__init__()
        self.label = label
        self.validation = validation
        self.folder = folder
        self.monitor = monitor
        self.patience = patience
        self.min_delta = min_delta
        self.nan_guard = nan_guard
        self.timings = timings
        self.state = state or {
            "epoch": 0,
            "history": [],
            "best_epoch": None,
            "best": None,
            "wait": 0,
        }
        self._start = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.nan_guard.bad_epoch is not None:
            return
        logs = dict(logs or {})
        # Without validation (a refit) every epoch is the newest and best.
        results = self.validation.results if self.validation else {}
        value = results.get(self.monitor)
        seconds = {"epoch": time.perf_counter() - self._start, **self.timings()}
        seconds["train"] = seconds["epoch"] - seconds.get("eval", 0.0)
        record = {
            "epoch": epoch + 1,
            "loss": float(logs.get("loss", float("nan"))),
            "seconds": seconds,
        }
        record["val"] = {k.removeprefix("val/"): v for k, v in results.items()}
        improved = (
            value is None
            or self.state["best"] is None
            or value > self.state["best"] + self.min_delta
        )
        if improved:
            best = None if value is None else float(value)
            self.state.update(best=best, best_epoch=epoch + 1, wait=0)
            self.state["best_weights"] = f"best-{epoch + 1:04d}.weights.h5"
            _save_atomic(self.model, self.folder / self.state["best_weights"])
        else:
            self.state["wait"] += 1
        self.state["epoch"] = epoch + 1
        self.state["history"].append(record)
        self.state["checkpoint"] = f"epoch-{epoch + 1:04d}.keras"
        _save_atomic(self.model, self.folder / self.state["checkpoint"])
        # state.json names the files it goes with and is replaced last, so a kill at any
        # point leaves a consistent (state, checkpoint) pair; older files go afterwards.
        write_json(self.folder / "state.json", self.state)
        _remove_stale(self.folder, {self.state["checkpoint"], self.state["best_weights"]})
        print(
            _summary_line(record, self.monitor, improved and bool(results), self.label), flush=True
        )
        if self.patience and self.state["wait"] >= self.patience:
            self.model.stop_training = True


def _summary_line(
    record: dict[str, Any], monitor: str, improved: bool, label: str = "epoch"
) -> str:
    val = record["val"]
    shown = [
        k for k in ("sampled/HR@10", "sampled/NDCG@10", "full/HR@10", "full/NDCG@10") if k in val
    ]
    key = monitor.removeprefix("val/")
    if key in val and key not in shown:
        shown.append(key)
    parts = "".join(f"{k} {val[k]:.4f} " for k in shown)
    secs = record["seconds"]
    mark = " *" if improved else ""
    timing = f"{secs['epoch']:.1f}s"
    if val:
        timing += f": train {secs.get('train', 0):.1f}, eval {secs.get('eval', 0):.1f}"
    return f"{label} {record['epoch']:3d}  loss {record['loss']:.4f}  {parts} ({timing}){mark}"


def _remove_stale(folder: Path, keep: set[str]) -> None:
    for path in folder.glob("*"):
        if path.name not in keep and path.name != "state.json" and path.suffix in (".keras", ".h5"):
            path.unlink(missing_ok=True)


def _save_atomic(model: keras.Model, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = ".weights.h5" if path.name.endswith(".weights.h5") else ".keras"
    tmp = path.with_name(f".tmp-{os.getpid()}{suffix}")
    if suffix == ".keras":
        model.save(tmp)
    else:
        model.save_weights(tmp)
    os.replace(tmp, path)


def load_state(folder: Path) -> dict[str, Any] | None:
    path = folder / "state.json"
    return read_json(path) if path.is_file() else None


class EpochProgbar(keras.callbacks.ProgbarLogger):
    """Keras' progress bar, told the run's real number of epochs (fit() runs one at a time)."""

    def __init__(self, total_epochs: int) -> None:
        super().__init__()
        self.total_epochs = total_epochs

    def set_params(self, params: dict[str, Any]) -> None:
        super().set_params({**params, "epochs": self.total_epochs})

"""The Keras callback that reports each epoch's validation metric to Optuna and prunes."""

from __future__ import annotations

import time
from typing import Any

import keras
import optuna


class PruneOnValidation(keras.callbacks.Callback):
    """Reports ``logs[monitor]`` (put there by :class:`ncf.train.callbacks.Validation`) as the
    trial's value at that epoch and stops the trial when Optuna's pruner says so, or when the
    search's deadline has passed (``--timeout``). Stopping raises ``optuna.TrialPruned``,
    which leaves ``ncf.train.train`` at once; the trial's run directory stays incomplete.

    Args:
        trial: the Optuna trial being run.
        monitor: the validation key, e.g. ``val/sampled/NDCG@10``.
        deadline: ``time.time()`` after which no epoch starts (None: none).
    """

    def __init__(self, trial: optuna.Trial, monitor: str, deadline: float | None) -> None:
        super().__init__()
        self.trial, self.monitor, self.deadline = trial, monitor, deadline

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        value = (logs or {}).get(self.monitor)
        if value is not None:
            self.trial.report(float(value), epoch + 1)
            if self.trial.should_prune():
                raise optuna.TrialPruned(
                    f"epoch {epoch + 1}: {self.monitor} {float(value):.4f} is below the median "
                    "of earlier trials at this epoch"
                )
        if self.deadline is not None and time.time() > self.deadline:
            raise optuna.TrialPruned(f"stopped after epoch {epoch + 1}: the --timeout ran out")

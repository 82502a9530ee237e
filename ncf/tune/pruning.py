"""The Keras callback that reports each epoch's validation metric to Optuna and prunes."""

from __future__ import annotations

import time
from typing import Any

import keras
import optuna


class PruneOnValidation(keras.callbacks.Callback):
    """Reports ``logs[monitor]`` (put there by :class:`ncf.train.callbacks.Validation`) as the
    trial's value at that epoch and stops the trial when Optuna's pruner says so. Pruning
    raises ``optuna.TrialPruned``, which leaves ``ncf.train.train`` at once; the trial's run
    directory stays incomplete. Past ``deadline`` (the trial's share of ``--timeout``) no
    epoch starts: the run ends as early stopping would, with its best epoch so far, and the
    trial completes with that value (``metrics.json`` says ``stopped: "time budget"``).

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
            self.trial.set_user_attr("note", f"stopped after epoch {epoch + 1}: time budget")
            self.model.stop_training = True
            self.model.stop_reason = "time budget"


class FamilyMedianPruner(optuna.pruners.BasePruner):
    """Optuna's median rule, within a trial's own model family (a search across families).

    A trial is pruned at epoch ``s`` (from ``n_warmup_steps`` on) when the best value it has
    reported is below the median of the values that completed trials of the same
    ``model.type`` reported at ``s``, once ``n_startup_trials`` of them completed. Families
    learn at different speeds (a sequence model is behind a pooled tower at epoch 3 and ahead
    at epoch 30), so one family's curves are not a fair bar for another's.
    """

    def __init__(self, n_startup_trials: int, n_warmup_steps: int) -> None:
        self.n_startup_trials, self.n_warmup_steps = n_startup_trials, n_warmup_steps

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        step = trial.last_step
        if step is None or step < self.n_warmup_steps:
            return False
        kind = trial.params.get("model.type")
        complete = optuna.trial.TrialState.COMPLETE
        peers = [
            t
            for t in study.get_trials(deepcopy=False, states=(complete,))
            if t.params.get("model.type") == kind
        ]
        values = sorted(t.intermediate_values[step] for t in peers if step in t.intermediate_values)
        if len(peers) < self.n_startup_trials or not values:
            return False
        middle = len(values) // 2
        median = values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2
        return max(trial.intermediate_values.values()) < median

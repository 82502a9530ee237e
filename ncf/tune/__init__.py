"""Hyperparameter search on the validation split (``ncf tune``): Optuna with SQLite storage,
pruning from per-epoch validation, HParams dashboard and leaderboard, then one refit and one
test evaluation. See :mod:`ncf.tune.study`."""

from ncf.tune.study import TuneResult, tune

__all__ = ["TuneResult", "tune"]

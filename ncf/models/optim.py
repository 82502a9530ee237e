"""The optimiser and its learning-rate schedule, from ``TrainConfig``.

With initial rate ``η0``, step ``t`` (0-based, counted in optimiser updates) and
``S = steps_per_epoch``:

- ``constant``:    ``η(t) = η0``.
- ``exponential``: ``η(t) = η0 · r^floor(t / S)``, ``r = lr_decay_rate``: the rate drops by the
  factor ``r`` at each epoch boundary (staircase) and is constant within an epoch.
- ``cosine``:      ``η(t) = η0 · (1 + cos(π · min(t, T) / T)) / 2``, ``T = epochs · S``
  (Loshchilov & Hutter 2017, without restarts).

``S`` is a variable of the schedule (:func:`set_steps_per_epoch`), not a constant of the
compiled train step, so the selection and the refit (which trains on more data) share one
compiled step.

Optimisers: Adam (Kingma & Ba 2015, as in He et al. 2017), SGD, Adagrad, RMSprop, with Keras
defaults apart from the learning rate. With ``train.sparse_updates`` (the default) Adam and
Adagrad are the row-sparse :class:`~ncf.models.sparse.LazyAdam` and
:class:`~ncf.models.sparse.SparseAdagrad`, so an embedding table's step touches only the rows
in the batch; SGD (no momentum) is row-sparse already; RMSprop stays dense.
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from ncf.config import TrainConfig
from ncf.models.sparse import LazyAdam, SparseAdagrad

_DENSE: dict[str, type[keras.optimizers.Optimizer]] = {
    "adam": keras.optimizers.Adam,
    "sgd": keras.optimizers.SGD,
    "adagrad": keras.optimizers.Adagrad,
    "rmsprop": keras.optimizers.RMSprop,
}
_SPARSE: dict[str, type[keras.optimizers.Optimizer]] = {
    **_DENSE,
    "adam": LazyAdam,
    "adagrad": SparseAdagrad,
}


@keras.saving.register_keras_serializable(package="ncf")
class EpochSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """The ``exponential`` and ``cosine`` schedules above, with ``S`` held in a variable.

    Args:
        initial: float. ``η0``.
        kind: str. ``"exponential"`` or ``"cosine"``.
        steps_per_epoch: int. ``S`` (changed later with :func:`set_steps_per_epoch`).
        decay_rate: float. ``r`` (exponential).
        epochs: int. The epoch budget (cosine: ``T = epochs · S``).

    Example:

    ```python
    schedule = EpochSchedule(0.004, "exponential", steps_per_epoch=431, decay_rate=0.85)
    float(schedule(431))  # 0.0034
    ```
    """

    def __init__(
        self,
        initial: float,
        kind: str,
        steps_per_epoch: int,
        decay_rate: float = 1.0,
        epochs: int = 1,
    ) -> None:
        if kind not in ("exponential", "cosine"):
            raise ValueError(f"kind must be exponential or cosine, got {kind!r}")
        self.initial, self.kind = float(initial), kind
        self.decay_rate, self.epochs = float(decay_rate), int(epochs)
        self.steps_per_epoch = keras.Variable(
            float(_positive_steps(steps_per_epoch)), trainable=False, name="steps_per_epoch"
        )

    def __call__(self, step: Any) -> Any:
        step = ops.cast(step, "float32")
        steps = ops.convert_to_tensor(self.steps_per_epoch)
        if self.kind == "exponential":
            return self.initial * ops.power(self.decay_rate, ops.floor(step / steps))
        total = self.epochs * steps
        return self.initial * (1.0 + ops.cos(math.pi * ops.minimum(step, total) / total)) / 2.0

    def get_config(self) -> dict[str, Any]:
        return {
            "initial": self.initial,
            "kind": self.kind,
            "steps_per_epoch": int(ops.convert_to_numpy(self.steps_per_epoch)),
            "decay_rate": self.decay_rate,
            "epochs": self.epochs,
        }


def _positive_steps(steps_per_epoch: int) -> int:
    if steps_per_epoch <= 0:
        raise ValueError(f"steps_per_epoch must be positive, got {steps_per_epoch}")
    return int(steps_per_epoch)


def learning_rate_from_config(train: TrainConfig, steps_per_epoch: int) -> float | EpochSchedule:
    """The learning rate (a float or an :class:`EpochSchedule`) ``train.lr_schedule`` describes."""
    _positive_steps(steps_per_epoch)
    if train.lr_schedule == "constant":
        return train.learning_rate
    if train.lr_schedule not in ("exponential", "cosine"):
        raise ValueError(f"unknown lr_schedule {train.lr_schedule!r}")
    return EpochSchedule(
        train.learning_rate,
        train.lr_schedule,
        steps_per_epoch,
        decay_rate=train.lr_decay_rate,
        epochs=train.epochs,
    )


def optimizer_from_config(train: TrainConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """A fresh optimiser of type ``train.optimizer`` with the configured schedule.

    Example:

    ```python
    optimizer = optimizer_from_config(TrainConfig(lr_schedule="cosine"), steps_per_epoch=390)
    model.compile(optimizer=optimizer)
    ```
    """
    learning_rate = learning_rate_from_config(train, steps_per_epoch)
    kinds = _SPARSE if train.sparse_updates else _DENSE
    return kinds[train.optimizer](learning_rate=learning_rate)


def set_steps_per_epoch(optimizer: keras.optimizers.Optimizer, steps_per_epoch: int) -> None:
    """Point ``optimizer``'s schedule (if it has an :class:`EpochSchedule`) at a new epoch length."""
    schedule = getattr(optimizer, "_learning_rate", None)  # Keras keeps the schedule here
    if isinstance(schedule, EpochSchedule):
        schedule.steps_per_epoch.assign(float(_positive_steps(steps_per_epoch)))


def reset_optimizer(optimizer: keras.optimizers.Optimizer, variables: list[Any]) -> None:
    """Put a built ``optimizer`` back in the state a fresh one of its config starts in.

    A fresh copy (``from_config``) is built on ``variables`` (the model's trainable
    variables, in the order the optimizer was built with) and its step counter, slots and
    rate are copied over, so the compiled train step that uses ``optimizer`` stays valid.
    """
    fresh = type(optimizer).from_config(optimizer.get_config())
    fresh.build(variables)
    targets, sources = optimizer.variables, fresh.variables
    if [tuple(v.shape) for v in targets] != [tuple(v.shape) for v in sources]:
        raise ValueError("the optimizer was built on other variables than those given")
    for target, source in zip(targets, sources, strict=True):
        target.assign(source)

"""The optimiser and its learning-rate schedule, from ``TrainConfig``.

With initial rate ``η0``, step ``t`` (0-based, counted in optimiser updates) and
``S = steps_per_epoch``:

- ``constant``:    ``η(t) = η0``.
- ``exponential``: ``η(t) = η0 · r^floor(t / S)``, ``r = lr_decay_rate``: the rate drops by the
  factor ``r`` at each epoch boundary (staircase) and is constant within an epoch.
- ``cosine``:      ``η(t) = η0 · (1 + cos(π · min(t, T) / T)) / 2``, ``T = epochs · S``
  (Loshchilov & Hutter 2017, without restarts).

Optimisers: Adam (Kingma & Ba 2015, as in He et al. 2017), SGD, Adagrad, RMSprop, all with
Keras defaults apart from the learning rate.
"""

from __future__ import annotations

import keras

from ncf.config import TrainConfig

_OPTIMIZERS: dict[str, type[keras.optimizers.Optimizer]] = {
    "adam": keras.optimizers.Adam,
    "sgd": keras.optimizers.SGD,
    "adagrad": keras.optimizers.Adagrad,
    "rmsprop": keras.optimizers.RMSprop,
}


def learning_rate_from_config(
    train: TrainConfig, steps_per_epoch: int
) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """The learning rate (a float or a Keras schedule) ``train.lr_schedule`` describes."""
    if steps_per_epoch <= 0:
        raise ValueError(f"steps_per_epoch must be positive, got {steps_per_epoch}")
    if train.lr_schedule == "constant":
        return train.learning_rate
    if train.lr_schedule == "exponential":
        return keras.optimizers.schedules.ExponentialDecay(
            train.learning_rate,
            decay_steps=steps_per_epoch,
            decay_rate=train.lr_decay_rate,
            staircase=True,
        )
    if train.lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(
            train.learning_rate, decay_steps=train.epochs * steps_per_epoch
        )
    raise ValueError(f"unknown lr_schedule {train.lr_schedule!r}")


def optimizer_from_config(train: TrainConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """A fresh optimiser of type ``train.optimizer`` with the configured schedule.

    Example:

    ```python
    optimizer = optimizer_from_config(TrainConfig(lr_schedule="cosine"), steps_per_epoch=390)
    model.compile(optimizer=optimizer)
    ```
    """
    learning_rate = learning_rate_from_config(train, steps_per_epoch)
    return _OPTIMIZERS[train.optimizer](learning_rate=learning_rate)

"""Which rows of each user's history a split holds out: the selection every split method uses.

:func:`held_out_rows` picks the rows of one held-out part (test, or validation carved from
what is left) under ``leave_one_out``, ``ratio`` or ``temporal`` (the rules are stated in
:mod:`ncf.data.split`). It is a pure function of the arrays and the seeded generator;
:mod:`ncf.data.split` and :mod:`ncf.data.cold` (validation on the warm interactions) both
call it.
"""

from __future__ import annotations

import numpy as np

from ncf.config import SplitConfig
from ncf.errors import DataError


def held_out_rows(
    user: np.ndarray,
    ts: np.ndarray | None,
    config: SplitConfig,
    num_users: int,
    rng: np.random.Generator,
    stats: dict[str, int],
    part: str,
) -> np.ndarray:
    """Boolean mask of the rows held out for ``part`` (``"test"`` or ``"val"``).

    Rows are sorted by (user, time); ``ts`` is None for data without timestamps (then a
    random order within each user is drawn from ``rng``; ``temporal`` refuses). Under
    ``leave_one_out`` and ``ratio`` the number of users left without a case is added to
    ``stats`` as ``users_without_{part}``.
    """
    counts = np.bincount(user, minlength=num_users)
    starts = np.cumsum(counts) - counts
    position = np.arange(len(user)) - starts[user]  # rank of each row in its user's history
    if ts is None and config.method != "temporal":
        # No time order: a random order within each user, drawn from the seed.
        position = _random_positions(user, counts, starts, rng)
    if config.method == "leave_one_out":
        mask = (position == counts[user] - 1) & (counts[user] >= 2)
        stats[f"users_without_{part}"] = int(((counts > 0) & (counts < 2)).sum())
        return mask
    if config.method == "ratio":
        fraction = config.test_fraction if part == "test" else config.val_fraction
        n_out = np.clip(np.rint(counts * fraction), 1, np.maximum(counts - 1, 1)).astype(np.int64)
        mask = (position >= counts[user] - n_out[user]) & (counts[user] >= 2)
        stats[f"users_without_{part}"] = int(((counts > 0) & (counts < 2)).sum())
        return mask
    if ts is None:
        raise DataError(
            "data.split.method temporal needs timestamps, and this data has none; use leave_one_out or ratio"
        )
    fraction = config.test_fraction if part == "test" else config.val_fraction
    order = np.lexsort([np.arange(len(ts)), ts])
    n_train = int(np.ceil(len(ts) * (1 - fraction)))
    mask = np.zeros(len(ts), dtype=bool)
    mask[order[n_train:]] = True
    return mask


def _random_positions(
    user: np.ndarray, counts: np.ndarray, starts: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    keys = rng.random(len(user))
    order = np.lexsort([keys, user])  # rows of each user in random order
    position = np.empty(len(user), dtype=np.int64)
    position[order] = np.arange(len(user)) - starts[user[order]]
    return position

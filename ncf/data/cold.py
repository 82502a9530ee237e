"""The cold-item split (``data.split.method: cold_items``): measuring recommendations of
items no model has seen an interaction of.

A share ``data.split.cold_fraction`` of the items that have interactions is drawn from the
seed; every interaction with them leaves training. Each user who interacted with a cold
item gets one test case: the latest such interaction (rows are in (user, time, item) order).
The other interactions with cold items are dropped (counted in ``stats``). On the warm
interactions validation is leave-one-out, as usual, so early stopping never sees a cold
item. Candidates: a test case's sampled candidates are cold items the user never interacted
with (the **sampled** protocol then answers "which of the new items"), a validation case's
are warm items; **full** ranking ranks the cold item among every item not in the user's
training (warm and cold). Training never draws a cold item as a negative (``Split.
cold_items``, read by the input pipeline).

:func:`cold_items_cut` chooses the rows and candidates; :func:`ncf.data.split.make_split`
makes the :class:`~ncf.data.split.Split` of them (this module does not import that one).

Without side features a collaborative model has nothing to score a cold item by (its
embedding row or column was never trained); with item features (``model.item_features``)
or the content model it has: that difference is what this split measures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ncf.config import SplitConfig
from ncf.data.holdout import held_out_rows
from ncf.data.interactions import Interactions
from ncf.data.negatives import PositiveSet
from ncf.errors import DataError
from ncf.rng import rng_for


@dataclass(frozen=True)
class ColdItemsCut:
    """The cold-item split of a data set's rows: boolean masks over its rows, the sampled
    candidates of each validation and test case, the split's counts and the cold items."""

    train: np.ndarray  # [n_rows] bool
    val: np.ndarray  # [n_rows] bool
    test: np.ndarray  # [n_rows] bool
    val_candidates: np.ndarray  # [n_val, N] int32
    test_candidates: np.ndarray  # [n_test, N'] int32
    stats: dict[str, int]
    cold_items: np.ndarray  # sorted int32 item indices


def cold_items_cut(
    data: Interactions, config: SplitConfig, seed: int, num_candidates: int
) -> ColdItemsCut:
    """Hold ``config.cold_fraction`` of ``data``'s items out of training (drawn from
    ``seed``) and choose the test, validation and train rows and the candidates as the
    module docstring says; a fraction leaving no item on one side is a :class:`DataError`."""
    user, item = data.user, data.item
    present = np.unique(item)
    count = int(round(config.cold_fraction * len(present)))
    if count < 1 or count >= len(present):
        raise DataError(
            f"data.split.cold_fraction {config.cold_fraction}: holds out {count} of "
            f"{len(present)} items; it must leave at least one item on each side"
        )
    cold = np.sort(rng_for(seed, "cold-items").choice(present, count, replace=False))
    is_cold = np.zeros(data.num_items, dtype=bool)
    is_cold[cold] = True
    cold_rows = np.flatnonzero(is_cold[item])
    last = np.r_[user[cold_rows][1:] != user[cold_rows][:-1], True]  # each user's latest
    test_mask = np.zeros(len(user), dtype=bool)
    test_mask[cold_rows[last]] = True
    stats = {"cold_items": count, "cold_rows_dropped": int(len(cold_rows) - last.sum())}
    warm = ~is_cold[item]
    val_mask = np.zeros(len(user), dtype=bool)
    if config.validation:
        loo = config.model_copy(update={"method": "leave_one_out"})
        ts = None if data.timestamp is None else data.timestamp[warm]
        split_rng = rng_for(seed, "split")
        rows = held_out_rows(user[warm], ts, loo, data.num_users, split_rng, stats, "val")
        val_mask[np.flatnonzero(warm)[rows]] = True
    train = warm & ~val_mask
    everything = PositiveSet(user, item, data.num_users, data.num_items)
    rng = rng_for(seed, "candidates")
    val_candidates = _candidates(
        everything, user[val_mask], np.flatnonzero(~is_cold), num_candidates, rng
    )
    test_candidates = _candidates(everything, user[test_mask], cold, num_candidates, rng)
    return ColdItemsCut(
        train, val_mask, test_mask, val_candidates, test_candidates, stats, cold.astype(np.int32)
    )


def _candidates(
    positives: PositiveSet, users: np.ndarray, pool: np.ndarray, n: int, rng: np.random.Generator
) -> np.ndarray:
    """``[len(users), n']`` distinct items of ``pool`` each user never interacted with;
    ``n' = min(n, the smallest number any of these users has available)``."""
    if not len(users):
        return np.zeros((0, n), np.int32)
    free = [pool[~positives.contains(np.full(len(pool), u), pool)] for u in users]
    width = min(n, min(len(f) for f in free))
    if width < 1:
        raise DataError("cold_items: a user interacted with every item of a candidate pool")
    return np.stack([rng.choice(f, width, replace=False) for f in free]).astype(np.int32)

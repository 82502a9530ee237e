"""Negative sampling: training negatives every epoch and the fixed evaluation candidates.

A "negative" for user u is an item u did not interact with. Membership of (u, i) in the
positive set is tested in bulk by :class:`PositiveSet`: a bitset of ``users x items`` bits
when that fits in ``BITSET_BUDGET`` bytes (one gather per query, and a user's row is a few
KB, so queries grouped by user stay in cache), otherwise a sorted array of ``u * n_items + i``
keys searched with ``np.searchsorted``.

Training negatives are drawn by rejection: draw every negative at once, redraw only the
rejected ones. For MovieLens-scale densities (< 10 %) a handful of rounds suffice.
Evaluation candidates must also be distinct within a case: duplicates are removed in
draw order, which keeps the result a uniform random subset.
"""

from __future__ import annotations

import numpy as np

from ncf.data.pairs import pair_keys
from ncf.errors import DataError

BITSET_BUDGET = 1 << 30  # bytes


class PositiveSet:
    """Bulk membership test for (user, item) pairs."""

    def __init__(self, user: np.ndarray, item: np.ndarray, num_users: int, num_items: int) -> None:
        self.num_users = num_users
        self.num_items = num_items
        self.counts = np.bincount(user, minlength=num_users)
        bits = num_users * num_items
        self._bitset: np.ndarray | None = None
        self._keys: np.ndarray | None = None
        keys = pair_keys(user, item, num_items)
        if bits // 8 + 1 <= BITSET_BUDGET:
            self._bitset = np.zeros(bits // 8 + 1, dtype=np.uint8)
            np.bitwise_or.at(self._bitset, keys >> 3, np.left_shift(1, keys & 7).astype(np.uint8))
        else:
            keys = np.sort(keys)  # np.unique is several times slower than sort + mask here
            self._keys = keys[np.r_[True, keys[1:] != keys[:-1]]] if len(keys) else keys

    def contains(self, user: np.ndarray, item: np.ndarray) -> np.ndarray:
        """Boolean array: is (user[j], item[j]) a positive? Shapes broadcast."""
        keys = pair_keys(user, item, self.num_items)
        if self._bitset is not None:
            return ((self._bitset[keys >> 3] >> (keys & 7).astype(np.uint8)) & 1).astype(bool)
        assert self._keys is not None
        pos = np.searchsorted(self._keys, keys)
        pos[pos == len(self._keys)] = 0
        return self._keys[pos] == keys


def item_sampler(num_items: int, counts: np.ndarray | None = None, power: float = 0.75):
    """A function ``(rng, size) -> int32 items``: uniform, or proportional to ``counts ** power``.

    Weighted draws use Walker's alias method: one uniform integer and one uniform float per
    draw, so popularity sampling costs about what uniform sampling does.
    """
    if counts is None:
        return lambda rng, size: rng.integers(0, num_items, size=size, dtype=np.int32)
    weights = np.asarray(counts, dtype=np.float64) ** power
    if weights.sum() <= 0:
        raise DataError("popularity sampling needs at least one item with a training interaction")
    accept, alias = alias_table(weights)

    def draw(rng: np.random.Generator, size) -> np.ndarray:
        slots = rng.integers(0, num_items, size=size, dtype=np.int32)
        return np.where(rng.random(size) < accept[slots], slots, alias[slots]).astype(np.int32)

    return draw


def alias_table(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vose's alias table: slot i keeps itself with probability ``accept[i]``, else ``alias[i]``."""
    n = len(weights)
    scaled = weights * (n / weights.sum())
    accept = np.ones(n)
    alias = np.arange(n, dtype=np.int32)
    small = [i for i in range(n) if scaled[i] < 1.0]
    large = [i for i in range(n) if scaled[i] >= 1.0]
    while small and large:
        s, g = small.pop(), large.pop()
        accept[s], alias[s] = scaled[s], g
        scaled[g] -= 1.0 - scaled[s]
        (small if scaled[g] < 1.0 else large).append(g)
    return accept, alias


def sample_negatives(
    positives: PositiveSet,
    users: np.ndarray,
    rng: np.random.Generator,
    draw=None,
    max_rounds: int = 50,
) -> np.ndarray:
    """One negative item for each entry of ``users`` (int32, same shape)."""
    draw = draw or item_sampler(positives.num_items)
    full = positives.counts[users] >= positives.num_items
    if full.any():
        raise DataError(
            f"user index {int(users[full][0])} interacted with every item: no negative exists"
        )
    items = draw(rng, users.shape)
    todo = np.flatnonzero(positives.contains(users, items))
    for _ in range(max_rounds):
        if todo.size == 0:
            return items
        items[todo] = draw(rng, todo.shape)
        todo = todo[positives.contains(users[todo], items[todo])]
    # Users with almost every item (or a popularity law that rarely reaches their complement):
    # finish the stragglers exactly from their complement.
    for j in todo:
        free = np.setdiff1d(np.arange(positives.num_items), _items_of(positives, int(users[j])))
        items[j] = rng.choice(free)
    return items


def _items_of(positives: PositiveSet, user: int) -> np.ndarray:
    all_items = np.arange(positives.num_items)
    return all_items[positives.contains(np.full(positives.num_items, user), all_items)]


def sample_candidates(
    positives: PositiveSet, users: np.ndarray, n: int, rng: np.random.Generator
) -> np.ndarray:
    """``n`` distinct non-positive items per entry of ``users``: int32 ``[len(users), n]``."""
    free = positives.num_items - positives.counts[users]
    if len(users) and free.min() < n:
        j = int(np.argmin(free))
        raise DataError(
            f"cannot draw {n} evaluation negatives for user index {int(users[j])}: only {int(free[j])} "
            "items are left that the user did not interact with; lower eval.sampled_negatives"
        )
    out = np.empty((len(users), n), dtype=np.int32)
    todo = np.arange(len(users))
    width = n + max(8, n // 2)
    while todo.size and width <= 4 * positives.num_items:
        draws = rng.integers(0, positives.num_items, size=(todo.size, width), dtype=np.int32)
        valid = ~positives.contains(users[todo, None], draws) & ~_repeats(draws)
        enough = valid.sum(axis=1) >= n
        rows = todo[enough]
        keep = valid[enough] & (np.cumsum(valid[enough], axis=1) <= n)
        out[rows] = draws[enough][keep].reshape(len(rows), n)
        todo = todo[~enough]
        width *= 2
    for j in todo.tolist():  # users who interacted with nearly the whole catalogue
        free_items = np.setdiff1d(
            np.arange(positives.num_items), _items_of(positives, int(users[j]))
        )
        out[j] = rng.choice(free_items, size=n, replace=False)
    return out


def _repeats(draws: np.ndarray) -> np.ndarray:
    """True where a value already appeared earlier in the same row."""
    order = np.argsort(draws, axis=1, kind="stable")
    ordered = np.take_along_axis(draws, order, axis=1)
    dup_sorted = np.zeros_like(draws, dtype=bool)
    dup_sorted[:, 1:] = ordered[:, 1:] == ordered[:, :-1]
    dup = np.zeros_like(dup_sorted)
    np.put_along_axis(dup, order, dup_sorted, axis=1)
    return dup

"""From a raw table of (user, item, rating?, timestamp?) rows to indexed implicit feedback.

Every source returns a :class:`RawData`: a pandas frame with string ``user`` and ``item``
columns, optional float ``rating`` and int64 ``timestamp``, plus optional side information.
:func:`prepare` turns it into :class:`Interactions`:

1. implicit labels: every row is a positive, or only rows with ``rating >= min_rating``;
2. duplicates of one (user, item) pair collapse by the configured policy (``last`` or
   ``first`` by timestamp, then by file order; ``error`` refuses them);
3. an optional k-core filter drops users and items with too few interactions, repeated
   until every remaining user and item has enough;
4. vocabularies map the remaining raw ids to contiguous int32 indices.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ncf.config import DataConfig
from ncf.data.pairs import pair_keys
from ncf.data.vocab import Vocabulary
from ncf.errors import DataError


@dataclass(frozen=True)
class FixedSplit:
    """A split given by the data files (the NCF paper's ``.test.rating`` and ``.test.negative``).

    ``test`` has columns ``user`` and ``item`` (raw string ids, one row per test case) and
    ``negatives`` is a list, aligned with ``test``, of raw item ids ranked with each case.
    """

    test: pd.DataFrame
    negatives: list[list[str]]


@dataclass(frozen=True)
class RawData:
    """What a source reads, before any indexing.

    Attributes:
        frame: columns ``user`` (str), ``item`` (str), optional ``rating`` (float64) and
            ``timestamp`` (int64); one row per interaction, in file order.
        description: where it came from, for messages and the run directory.
        item_info: optional, indexed by raw item id (str): a ``title`` column and any number
            of ``genre:<name>`` 0/1 columns.
        user_info: optional, indexed by raw user id (str): ``age`` (number), ``gender`` and
            ``occupation`` (categories).
        fixed_split: the data's own test split, for the ``ncf`` source.
    """

    frame: pd.DataFrame
    description: str
    item_info: pd.DataFrame | None = None
    user_info: pd.DataFrame | None = None
    fixed_split: FixedSplit | None = None


@dataclass(frozen=True)
class Interactions:
    """Implicit feedback on contiguous indices. Rows are sorted by (user, timestamp, item)."""

    user: np.ndarray  # [n] int32
    item: np.ndarray  # [n] int32
    rating: np.ndarray | None  # [n] float32
    timestamp: np.ndarray | None  # [n] int64
    users: Vocabulary
    items: Vocabulary
    dropped: dict[str, int]  # rows/users/items removed by each preparation step
    description: str = ""
    item_titles: np.ndarray | None = None  # [num_items] str, aligned with ``items``
    item_features: np.ndarray | None = None  # [num_items, F] float32 (e.g. genre multi-hot)
    item_feature_names: tuple[str, ...] = ()
    user_features: np.ndarray | None = (
        None  # [num_users, G] float32 (e.g. age, gender, occupation one-hot)
    )
    user_feature_names: tuple[str, ...] = ()
    feature_encoders: dict = field(default_factory=dict)  # data.*_features tables (JSON)

    @property
    def num_users(self) -> int:
        return len(self.users)

    @property
    def num_items(self) -> int:
        return len(self.items)

    def __len__(self) -> int:
        return len(self.user)


def prepare(raw: RawData, config: DataConfig) -> Interactions:
    """Labels, duplicates, k-core and vocabularies, in that order (see the module docstring).

    Ids are hashed to integer codes once (``pd.factorize``); every later step works on
    integers, so MovieLens-20M-sized data prepares in seconds rather than minutes.
    """
    frame = raw.frame
    dropped: dict[str, int] = {"rows_read": len(frame)}
    user_codes, user_ids = pd.factorize(frame["user"])
    item_codes, item_ids = pd.factorize(frame["item"])
    rating = frame["rating"].to_numpy(np.float32) if "rating" in frame else None
    timestamp = frame["timestamp"].to_numpy(np.int64) if "timestamp" in frame else None
    keep = np.ones(len(frame), dtype=bool)
    if config.min_rating is not None:
        if rating is None:
            raise DataError(
                f"{raw.description}: data.min_rating is set but the data has no rating column"
            )
        keep = rating >= config.min_rating
        dropped["below_min_rating"] = int((~keep).sum())
    rows = np.flatnonzero(keep)
    rows = _collapse_duplicates(
        rows, user_codes, item_codes, len(item_ids), timestamp, config.duplicates, raw, dropped
    )
    rows = _k_core(
        rows,
        user_codes,
        item_codes,
        config.min_user_interactions,
        config.min_item_interactions,
        dropped,
    )
    if rows.size == 0:
        raise DataError(
            f"{raw.description}: no interactions left after filtering "
            f"(min_rating={config.min_rating}, min_user_interactions={config.min_user_interactions}, "
            f"min_item_interactions={config.min_item_interactions}); relax those settings"
        )
    users, user_index = Vocabulary.from_codes(np.asarray(user_ids), user_codes[rows])
    items, item_index = Vocabulary.from_codes(np.asarray(item_ids), item_codes[rows])
    ts = None if timestamp is None else timestamp[rows]
    order = order_by_user_time(user_index, ts, item_index)
    return Interactions(
        user=user_index[order],
        item=item_index[order],
        rating=None if rating is None else rating[rows][order],
        timestamp=None if ts is None else ts[order],
        users=users,
        items=items,
        dropped=dropped,
        description=raw.description,
    )


def order_by_user_time(user: np.ndarray, ts: np.ndarray | None, item: np.ndarray) -> np.ndarray:
    """Permutation sorting rows by (user, timestamp, item): one stable sort of a packed key.

    Equal timestamps are ordered by item index (the vocabulary's natural id order), not by
    file order, so the same data read from any source gives the same order and split.
    """
    num_items = int(item.max()) + 1 if len(item) else 1
    if ts is None:
        return np.argsort(pair_keys(user, item, num_items), kind="stable")
    low = ts.min() if len(ts) else 0
    span = int(ts.max() - low) + 1 if len(ts) else 1
    if (int(user.max()) + 1) * span * num_items < 2**62:
        return np.argsort(
            (user.astype(np.int64) * span + (ts - low)) * num_items + item, kind="stable"
        )
    return np.lexsort([item, ts, user])


def _collapse_duplicates(
    rows, user_codes, item_codes, num_items, timestamp, policy, raw, dropped
) -> np.ndarray:
    """Row numbers left after collapsing repeated (user, item) pairs by ``policy``."""
    keys = pair_keys(user_codes[rows], item_codes[rows], num_items)
    order = np.argsort(keys, kind="stable")
    same = keys[order[1:]] == keys[order[:-1]]
    grouped = np.zeros(len(rows), dtype=bool)
    grouped[1:] |= same
    grouped[:-1] |= same
    dropped["duplicates"] = 0
    if not grouped.any():
        return rows
    if policy == "error":
        row = raw.frame.iloc[rows[order[np.flatnonzero(grouped)[0]]]]
        raise DataError(
            f"{raw.description}: user {row['user']!r} interacted with item {row['item']!r} more than once "
            f"(data.duplicates: error); set data.duplicates to last or first to collapse repeats"
        )
    # Only the repeated pairs need ordering: "last"/"first" by time, then by file order.
    repeated = rows[order[grouped]]
    sub_keys = keys[order[grouped]]
    time_key = [timestamp[repeated]] if timestamp is not None else []
    sub = np.lexsort([repeated, *time_key, sub_keys])
    sub_keys = sub_keys[sub]
    boundary = sub_keys[1:] != sub_keys[:-1]
    pick = np.r_[boundary, True] if policy == "last" else np.r_[True, boundary]
    keep = ~grouped
    keep[np.flatnonzero(grouped)[sub][pick]] = True  # positions in key order
    mask = np.zeros(len(rows), dtype=bool)
    mask[order[keep]] = True
    dropped["duplicates"] = int((~mask).sum())
    return rows[mask]


def _k_core(
    rows, user_codes, item_codes, min_user: int, min_item: int, dropped: dict[str, int]
) -> np.ndarray:
    """Rows left once every user has >= ``min_user`` and every item >= ``min_item`` interactions."""
    if min_user <= 1 and min_item <= 1:
        return rows
    before = len(rows)
    while rows.size:
        users, items = user_codes[rows], item_codes[rows]
        keep = (np.bincount(users)[users] >= min_user) & (np.bincount(items)[items] >= min_item)
        if keep.all():
            break
        rows = rows[keep]
    dropped["k_core"] = before - len(rows)
    return rows

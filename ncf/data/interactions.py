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

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ncf.config import DataConfig
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
    """Implicit feedback on contiguous indices. Rows are sorted by (user, timestamp, file order)."""

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
    user_features: np.ndarray | None = None  # [num_users, G] float32 (e.g. age, gender, occupation one-hot)
    user_feature_names: tuple[str, ...] = ()

    @property
    def num_users(self) -> int:
        return len(self.users)

    @property
    def num_items(self) -> int:
        return len(self.items)

    def __len__(self) -> int:
        return len(self.user)


def prepare(raw: RawData, config: DataConfig) -> Interactions:
    """Labels, duplicates, k-core and vocabularies, in that order (see the module docstring)."""
    frame = raw.frame
    dropped: dict[str, int] = {"rows_read": len(frame)}
    if "rating" in frame and config.min_rating is not None:
        keep = frame["rating"].to_numpy() >= config.min_rating
        dropped["below_min_rating"] = int((~keep).sum())
        frame = frame[keep]
    elif config.min_rating is not None:
        raise DataError(f"{raw.description}: data.min_rating is set but the data has no rating column")
    frame = _collapse_duplicates(frame, config.duplicates, raw.description, dropped)
    frame = _k_core(frame, config.min_user_interactions, config.min_item_interactions, dropped)
    if frame.empty:
        raise DataError(
            f"{raw.description}: no interactions left after filtering "
            f"(min_rating={config.min_rating}, min_user_interactions={config.min_user_interactions}, "
            f"min_item_interactions={config.min_item_interactions}); relax those settings"
        )
    users, user_index = Vocabulary.from_values(frame["user"].to_numpy())
    items, item_index = Vocabulary.from_values(frame["item"].to_numpy())
    rating = frame["rating"].to_numpy(np.float32) if "rating" in frame else None
    timestamp = frame["timestamp"].to_numpy(np.int64) if "timestamp" in frame else None
    keys = [np.arange(len(frame))] + ([timestamp] if timestamp is not None else []) + [user_index]
    order = np.lexsort(keys)
    return Interactions(
        user=user_index[order],
        item=item_index[order],
        rating=None if rating is None else rating[order],
        timestamp=None if timestamp is None else timestamp[order],
        users=users,
        items=items,
        dropped=dropped,
        description=raw.description,
    )


def _collapse_duplicates(frame: pd.DataFrame, policy: str, where: str, dropped: dict[str, int]) -> pd.DataFrame:
    pairs = frame[["user", "item"]]
    dup = pairs.duplicated(keep=False).to_numpy()
    if not dup.any():
        dropped["duplicates"] = 0
        return frame
    if policy == "error":
        first = np.flatnonzero(dup)[0]
        row = frame.iloc[first]
        raise DataError(
            f"{where}: user {row['user']!r} interacted with item {row['item']!r} more than once "
            f"(data.duplicates: error); set data.duplicates to last or first to collapse repeats"
        )
    if "timestamp" in frame:
        order = np.lexsort([np.arange(len(frame)), frame["timestamp"].to_numpy()])
        frame = frame.iloc[order]
    kept = frame.drop_duplicates(["user", "item"], keep="last" if policy == "last" else "first")
    dropped["duplicates"] = len(frame) - len(kept)
    return kept.sort_index(kind="stable")


def _k_core(frame: pd.DataFrame, min_user: int, min_item: int, dropped: dict[str, int]) -> pd.DataFrame:
    if min_user <= 1 and min_item <= 1:
        return frame
    before = len(frame)
    while True:
        user_counts = frame["user"].map(frame["user"].value_counts())
        item_counts = frame["item"].map(frame["item"].value_counts())
        keep = (user_counts >= min_user).to_numpy() & (item_counts >= min_item).to_numpy()
        if keep.all():
            break
        frame = frame[keep]
    dropped["k_core"] = before - len(frame)
    return frame

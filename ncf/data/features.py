"""Side features: the info tables of a :class:`RawData` as arrays aligned with the vocabularies.

- ``item_titles``: the ``title`` of each item in ``interactions.items`` order, ``""`` where
  the item has no title;
- ``item_features``: float32 ``[num_items, F]``, the ``genre:<Name>`` 0/1 columns of
  ``item_info`` (a multi-hot genre vector); ``item_feature_names`` are those column names;
- ``user_features``: float32 ``[num_users, G]``: ``age`` divided by the largest age in
  ``user_info`` (so in [0, 1]), then one-hot ``gender:<value>`` and ``occupation:<value>``
  columns (values sorted); ``user_feature_names`` lists them in that order.

Items and users missing from an info table get an all-zero row (and an empty title). A
source without an info table leaves the fields as they were (None and no names).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from ncf.data.interactions import Interactions, RawData

CATEGORIES = ("gender", "occupation")


def attach_side_features(interactions: Interactions, raw: RawData) -> Interactions:
    """``interactions`` with titles and item/user features from ``raw``'s info tables."""
    titles, item_features, item_names = _item_side(raw.item_info, interactions.items.ids)
    user_features, user_names = _user_side(raw.user_info, interactions.users.ids)
    return replace(
        interactions,
        item_titles=titles,
        item_features=item_features,
        item_feature_names=item_names,
        user_features=user_features,
        user_feature_names=user_names,
    )


def _aligned(info: pd.DataFrame, ids: np.ndarray) -> pd.DataFrame:
    """``info`` reindexed by the vocabulary ids (text), first row per id, NaN where absent."""
    info = info.set_axis(info.index.astype(str), axis=0)
    info = info[~info.index.duplicated(keep="first")]
    return info.reindex(pd.Index(np.asarray(ids, dtype=object).astype(str)))


def _item_side(
    info: pd.DataFrame | None, ids: np.ndarray
) -> tuple[np.ndarray | None, np.ndarray | None, tuple[str, ...]]:
    if info is None:
        return None, None, ()
    genres = [str(c) for c in info.columns if str(c).startswith("genre:")]
    table = _aligned(info[(["title"] if "title" in info else []) + genres], ids)
    titles = None
    if "title" in table:
        text = table["title"].astype(object).where(table["title"].notna(), "")
        titles = text.astype(str).to_numpy(dtype=object)
    if not genres:
        return titles, None, ()
    flags = table[genres].apply(pd.to_numeric, errors="coerce").fillna(0.0)
    return titles, flags.to_numpy(np.float32), tuple(genres)


def _user_side(info: pd.DataFrame | None, ids: np.ndarray) -> tuple[np.ndarray | None, tuple]:
    if info is None:
        return None, ()
    parts: list[pd.DataFrame] = []
    if "age" in info:
        age = pd.to_numeric(info["age"], errors="coerce")
        largest = age.max()
        scaled = age / largest if pd.notna(largest) and largest > 0 else age * 0.0
        parts.append(scaled.rename("age").to_frame())
    for column in CATEGORIES:
        if column in info:
            dummies = pd.get_dummies(info[column], prefix=column, prefix_sep=":", dtype=np.float32)
            parts.append(dummies.sort_index(axis=1))
    if not parts:
        return None, ()
    table = _aligned(pd.concat(parts, axis=1), ids).fillna(0.0)
    return table.to_numpy(np.float32), tuple(str(c) for c in table.columns)

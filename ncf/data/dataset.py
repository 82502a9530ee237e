"""One call from a config to prepared data: read, label, index, side features, split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ncf.config import Config
from ncf.data.budget import check_input_memory
from ncf.data.feature_tables import attach_feature_tables
from ncf.data.features import attach_side_features
from ncf.data.interactions import Interactions, prepare
from ncf.data.pairs import pair_keys
from ncf.data.sources import read_raw
from ncf.data.split import Split, make_split
from ncf.errors import ConfigError


@dataclass(frozen=True)
class Dataset:
    """Prepared interactions and their split, ready for training and evaluation."""

    interactions: Interactions
    split: Split


def load_dataset(config: Config) -> Dataset:
    """Read ``config.data``, prepare it and split it with ``config.run.seed``; refuses data
    that would not fit in memory (:mod:`ncf.data.budget`) before reading it."""
    check_input_memory(config)
    raw = read_raw(config.data, config.run.seed)
    interactions = attach_side_features(prepare(raw, config.data), raw)
    interactions = attach_feature_tables(interactions, raw, config.data)
    try:
        config.check_catalogue(interactions.num_items)
    except ValueError as exc:
        raise ConfigError(f"{exc} (data: {interactions.description})") from None
    split = make_split(
        interactions,
        config.data.split,
        config.run.seed,
        config.eval.sampled_negatives,
        raw.fixed_split,
    )
    return Dataset(interactions, split)


def data_stats(dataset: Dataset) -> dict[str, object]:
    """Sizes, density, split sizes, interactions per user and cold items, as plain numbers.

    Cold items are test items absent from what a model trains on: counted against train
    (the model validation selects) and against train + validation (what a ``train.refit``
    model, and a baseline fitted with refit, trains on).
    """
    inter, split = dataset.interactions, dataset.split
    per_user = np.bincount(inter.user, minlength=inter.num_users)
    in_train = np.zeros(split.num_items, dtype=bool)
    in_train[split.train_item] = True
    in_train_val = in_train.copy()
    in_train_val[split.val_item] = True
    split_stats = dict(split.stats)
    unrankable = {k: split_stats.pop(k) for k in list(split_stats) if k.endswith("_unrankable")}
    return {
        "source": inter.description,
        "users": inter.num_users,
        "items": inter.num_items,
        "interactions": len(inter),
        "density": len(inter) / (inter.num_users * inter.num_items),
        "has_rating": inter.rating is not None,
        "has_timestamp": inter.timestamp is not None,
        "interactions_per_user": {
            "min": int(per_user.min()),
            "median": float(np.median(per_user)),
            "max": int(per_user.max()),
        },
        "split": {
            "train": split.num_train,
            "val": len(split.val_user),
            "test": len(split.test_user),
            "test_users": int(len(np.unique(split.test_user))),
            "candidates_per_case": int(split.test_candidates.shape[1])
            if len(split.test_candidates)
            else 0,
            **split_stats,
        },
        "cold_items_in_test": {
            "vs_train": _cold(split.test_item, in_train),
            "vs_train_and_val": _cold(split.test_item, in_train_val),
        },
        "time_ties": _time_ties(inter, split),
        "side_features": {
            "item": list(inter.item_feature_names),
            "user": list(inter.user_feature_names),
            "titles": inter.item_titles is not None,
        },
        "dropped": {**inter.dropped, **unrankable},
    }


def _cold(items: np.ndarray, seen: np.ndarray) -> dict[str, int]:
    cold = ~seen[items]
    return {"items": int(len(np.unique(items[cold]))), "cases": int(cold.sum())}


def _time_ties(inter: Interactions, split: Split) -> dict[str, int] | None:
    """Users whose interactions share one timestamp (no time order at all), and test cases
    whose timestamp another of the user's interactions shares (the larger item id won)."""
    if inter.timestamp is None or not len(inter):
        return None
    user, ts = inter.user, inter.timestamp  # sorted by (user, time, item)
    counts = np.bincount(user, minlength=inter.num_users)
    low = np.full(inter.num_users, np.iinfo(np.int64).max)
    high = np.full(inter.num_users, np.iinfo(np.int64).min)
    np.minimum.at(low, user, ts)
    np.maximum.at(high, user, ts)
    single_time = int(((counts > 1) & (low == high)).sum())
    tied = tied_in_time(inter, split.test_user, split.test_item)
    return {"users_with_one_timestamp": single_time, "test_cases_tied_in_time": tied}


def tied_in_time(inter: Interactions, users: np.ndarray, items: np.ndarray) -> int:
    """How many of the held-out cases ``(users[j], items[j])`` share their timestamp with
    another of the user's interactions: cases whose place in the user's order is the split's
    tie-break (the larger item id is later), not time. 0 for data without timestamps."""
    if inter.timestamp is None or not len(users):
        return 0
    user, ts = inter.user, inter.timestamp  # sorted by (user, time, item)
    keys = pair_keys(user, inter.item, inter.num_items)
    order = np.argsort(keys)
    rows = order[np.searchsorted(keys[order], pair_keys(users, items, inter.num_items))]
    same = (user[1:] == user[:-1]) & (ts[1:] == ts[:-1])
    return int((np.r_[False, same][rows] | np.r_[same, False][rows]).sum())

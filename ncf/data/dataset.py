"""One call from a config to prepared data: read, label, index, side features, split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ncf.config import Config
from ncf.data.features import attach_side_features
from ncf.data.interactions import Interactions, prepare
from ncf.data.sources import read_raw
from ncf.data.split import Split, make_split
from ncf.errors import ConfigError


@dataclass(frozen=True)
class Dataset:
    """Prepared interactions and their split, ready for training and evaluation."""

    interactions: Interactions
    split: Split


def load_dataset(config: Config) -> Dataset:
    """Read ``config.data``, prepare it and split it with ``config.run.seed``."""
    raw = read_raw(config.data, config.run.seed)
    interactions = attach_side_features(prepare(raw, config.data), raw)
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
    """Sizes, density, split sizes, interactions per user and cold items, as plain numbers."""
    inter, split = dataset.interactions, dataset.split
    per_user = np.bincount(inter.user, minlength=inter.num_users)
    train_items = np.zeros(split.num_items, dtype=bool)
    train_items[split.train_item] = True
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
        },
        "cold_items_in_test": int(len(np.unique(split.test_item[~train_items[split.test_item]]))),
        "cold_test_cases": int((~train_items[split.test_item]).sum()),
        "side_features": {
            "item": list(inter.item_feature_names),
            "user": list(inter.user_feature_names),
            "titles": inter.item_titles is not None,
        },
        "dropped": {**inter.dropped, **split.stats},
    }

"""Classical baselines as :class:`~ncf.recommender.Scorer`\\ s: item-kNN, user-kNN, popularity.

Each has ``fit(num_users, num_items, train_user, train_item, ratings=None)`` and
``save(dir)`` / ``load(dir)``; :func:`fit_baseline` builds one from a ``ModelConfig`` and
:func:`load_baseline` reads back whichever kind a directory holds. They are evaluated by
the same code as the neural models (``ncf.evaluation``).
"""

from __future__ import annotations

import os

import numpy as np

from ncf.baselines.knn import ItemKNN, UserKNN
from ncf.baselines.popularity import Popularity
from ncf.baselines.storage import read_header
from ncf.config import ModelConfig
from ncf.errors import ConfigError, NcfError

BASELINES: dict[str, type[ItemKNN] | type[UserKNN] | type[Popularity]] = {
    "itemknn": ItemKNN,
    "userknn": UserKNN,
    "popularity": Popularity,
}

__all__ = ["BASELINES", "ItemKNN", "Popularity", "UserKNN", "fit_baseline", "load_baseline"]


def fit_baseline(
    config: ModelConfig,
    num_users: int,
    num_items: int,
    train_user: np.ndarray,
    train_item: np.ndarray,
    ratings: np.ndarray | None = None,
) -> ItemKNN | UserKNN | Popularity:
    """Fit the baseline named by ``config.type`` (``neighbours``, ``shrinkage``, ``weighting``).

    ``ratings`` [n_train], aligned with train, is used only with ``weighting: rating``.
    """
    if config.type == "popularity":
        return Popularity.fit(num_users, num_items, train_user, train_item)
    if config.type not in ("itemknn", "userknn"):
        raise ValueError(f"model.type={config.type!r} is not a baseline")
    if config.weighting == "rating" and ratings is None:
        raise ConfigError(
            "model.weighting=rating needs ratings, but the data has none; "
            "use model.weighting=binary or a source with a rating column"
        )
    weights = ratings if config.weighting == "rating" else None
    cls = ItemKNN if config.type == "itemknn" else UserKNN
    return cls.fit(
        num_users, num_items, train_user, train_item, weights,
        neighbours=config.neighbours, shrinkage=config.shrinkage,
    )  # fmt: skip


def load_baseline(directory: str | os.PathLike[str]) -> ItemKNN | UserKNN | Popularity:
    """Load the baseline saved in ``directory`` (its kind is read from ``baseline.json``)."""
    kind = read_header(directory).get("type")
    if kind not in BASELINES:
        raise NcfError(f"{directory}: unknown baseline type {kind!r}")
    return BASELINES[kind].load(directory)

"""Most-popular baseline: every user gets the same ranking, by train count.

    s(u, i) = |{v : (v, i) in train}|

It is the floor any personalised model must clear (He et al. 2017 report ItemPop beside
NCF); under the sampled protocol it is often surprisingly strong (Krichene & Rendle 2020).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ncf.baselines.storage import load_arrays, save_baseline
from ncf.family import Capabilities, Family, FitInputs
from ncf.scorer import ItemPrior

KIND = "popularity"


class Popularity:
    """Scorer: the train count of each item. Build with :meth:`fit` or :meth:`load`.

    Example:
        >>> model = Popularity.fit(2, 3, np.array([0, 1]), np.array([2, 2]))
        >>> model.score_all(np.array([0])).tolist()
        [[0.0, 0.0, 2.0]]
    """

    kind = KIND

    def __init__(self, counts: np.ndarray) -> None:
        self.counts = np.asarray(counts, dtype=np.float32)  # [num_items]
        self.num_items = len(self.counts)

    @classmethod
    def fit(
        cls,
        num_users: int,
        num_items: int,
        train_user: np.ndarray,
        train_item: np.ndarray,
        ratings: np.ndarray | None = None,
    ) -> Popularity:
        """Count train interactions per item (``num_users`` and ``ratings`` are not used)."""
        train_item = np.asarray(train_item)
        if len(train_item) != len(train_user):
            raise ValueError("train_user and train_item must have the same length")
        if train_item.size and (train_item.min() < 0 or train_item.max() >= num_items):
            raise ValueError(f"train_item must lie in 0..{num_items - 1}")
        return cls(np.bincount(train_item, minlength=num_items))

    def score_items(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.counts[np.asarray(items)]

    def score_all(self, users: np.ndarray) -> np.ndarray:
        return np.tile(self.counts, (len(users), 1))

    def serving_form(self) -> ItemPrior:
        return ItemPrior(self.counts)

    def save(self, directory: str | os.PathLike[str]) -> None:
        save_baseline(directory, KIND, {"num_items": self.num_items}, {"counts": self.counts})

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> Popularity:
        _, arrays = load_arrays(directory, KIND, {"counts": False})
        return cls(arrays["counts"])


def _fit(config: Any, split: Any, inputs: FitInputs) -> Popularity:
    return Popularity.fit(split.num_users, split.num_items, split.train_user, split.train_item)


FAMILIES = {
    KIND: Family(
        name=KIND,
        summary="every user gets the most interacted-with items",
        neural=False,
        load=lambda run: Popularity.load(Path(run) / "baseline"),
        can=Capabilities(
            similar_items=False,
            no_similar_items="popularity ranks every item by its count, so it has no item "
            "similarity",
        ),
        fit=_fit,
    )
}

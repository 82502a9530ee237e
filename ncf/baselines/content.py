"""Content-based recommendation: cosine item-kNN over item side features, the pure content
baseline for cold items (the model the brief calls "content-based").

With F [items, d] the data's item side-feature matrix (genres, and the columns of
``data.item_features``: numbers, categories, hashed title/description words), the similarity
of two items is the cosine of their feature rows, each row of S keeping its top
``neighbours`` positive entries (:func:`ncf.baselines.knn.cosine_neighbours`), and

    s(u, i) = sum_{j in I_u} S[i, j]        i.e. scores = X[users] @ S^T

exactly item-kNN's scoring with a similarity that needs no interaction of item i, so an
item never seen in training is scored as well as any other. Served as the
:class:`~ncf.scorer.ItemToItem` form (``recommend_from_history``, ``explain`` and
``similar_items`` come with it) plus the unit feature rows, which score an item unseen at
training time from its features alone (``score_items_by_features``: the sum of its cosines
with the user's items, not pruned to neighbours).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from ncf.baselines.knn import ItemKNN, cosine_neighbours, interaction_matrix, knn_memory
from ncf.baselines.storage import load_arrays, save_baseline
from ncf.errors import ConfigError
from ncf.family import Family, FitInputs, MemoryParts, Needs
from ncf.schema import Section
from ncf.scorer import ItemToItem

if TYPE_CHECKING:
    from ncf.config import Config, ModelConfig
    from ncf.data.dataset import Dataset
    from ncf.data.split import Split

KIND = "content"


class ContentConfig(Section):
    """Cosine item-kNN over item side features (``model.type: content``)."""

    neighbours: int = Field(100, gt=0, description="neighbours kept per item")


class ContentKNN(ItemKNN):
    """Item-kNN whose similarity is the cosine of item features (see the module docstring)."""

    kind = KIND

    def __init__(
        self, interactions: Any, similarity: Any, features: np.ndarray, neighbours: int
    ) -> None:
        super().__init__(interactions, similarity, neighbours, 0.0)
        self.features = np.asarray(features, np.float32)  # [items, F]

    @classmethod
    def fit_features(cls, split: Split, features: np.ndarray, neighbours: int) -> ContentKNN:
        x = interaction_matrix(split.num_users, split.num_items, split.train_user, split.train_item)
        sim = cosine_neighbours(sp.csr_matrix(features), neighbours)
        return cls(x, sim, features, neighbours)

    def serving_form(self) -> ItemToItem:
        return ItemToItem(
            self.interactions, self.scoring_matrix, self.similarity, item_features=self.features
        )

    def save(self, directory: str | os.PathLike[str]) -> None:
        arrays = {"interactions": self.interactions, "similarity": self.similarity}
        save_baseline(
            directory, KIND, {"neighbours": self.neighbours}, {**arrays, "features": self.features}
        )

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> ContentKNN:  # type: ignore[override]
        names = {"interactions": True, "similarity": True, "features": False}
        params, arrays = load_arrays(directory, KIND, names)
        return cls(
            arrays["interactions"], arrays["similarity"], arrays["features"], params["neighbours"]
        )


def _fit(config: ModelConfig, split: Split, inputs: FitInputs) -> ContentKNN:
    features = inputs.item_features
    if features is None or features.size == 0:
        raise ConfigError(
            "model.type content needs item side features, and the data has none: use a source "
            "with an item table (MovieLens genres) or set data.item_features"
        )
    return ContentKNN.fit_features(split, features, config.content.neighbours)


def _memory(config: Config, dataset: Dataset) -> MemoryParts:
    split = dataset.split
    features = dataset.interactions.item_features
    width = 0 if features is None else features.shape[1]
    size = knn_memory(split.num_items, config.model.content.neighbours, split.num_train)
    return {"model": (size + 8 * split.num_items * width, "model.content.neighbours")}


def _reads_features(config: ModelConfig, side: str) -> bool:
    return side == "item"


FAMILIES = {
    KIND: Family(
        name=KIND,
        summary="cosine item-kNN over item side features (cold start)",
        neural=False,
        load=lambda run: ContentKNN.load(Path(run) / "baseline"),
        section="content",
        settings=ContentConfig,
        hyperparameters=("content.neighbours",),
        search_space={
            "trials": 20,
            "timeout_minutes": 20,
            "startup_trials": 6,
            "params": {"model.content.neighbours": {"low": 5, "high": 500, "log": True}},
        },
        needs=Needs(item_features=True),
        score_meaning="similarity (sum of the cosines of the item's features with the user's items')",
        fit=_fit,
        memory=_memory,
        reads_features=_reads_features,
        legacy={"neighbours": "content.neighbours"},
    )
}

"""``model.type`` -> its family: how a model of that type is fitted, loaded, compared and served.

A family lives in one module, which defines ``FAMILIES``: a dict from model type to
:class:`Family`. Adding a model type means writing that module, adding one line to
:data:`MODULES` and the type to the ``model.type`` literal in :mod:`ncf.config`; the
training run, the evaluator, ``ncf compare`` and the export find it here. Modules are
imported on first use, so commands that never touch a model (``--help``, ``data stats``)
do not pay for TensorFlow.

Every family's fitted model is a :class:`~ncf.scorer.Scorer` for the evaluator and
describes itself for serving as one of the closed forms in :mod:`ncf.scorer`
(``serving_form()``), which :mod:`ncf.serve.servables` turns into a SavedModel.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ncf.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np

    from ncf.config import ModelConfig
    from ncf.data.split import Split
    from ncf.scorer import Scorer

MODULES = {
    "mf": "ncf.models.family",
    "gmf": "ncf.models.family",
    "mlp": "ncf.models.family",
    "neumf": "ncf.models.family",
    "history": "ncf.models.family",
    "itemknn": "ncf.baselines.knn",
    "userknn": "ncf.baselines.knn",
    "popularity": "ncf.baselines.popularity",
    "ease": "ncf.baselines.ease",
    "ials": "ncf.baselines.ials",
    "content": "ncf.baselines.content",
}


class BaselineFit(Protocol):
    """``fit(model config, split, ratings or None, seed=run.seed) -> Scorer`` of a baseline."""

    def __call__(
        self, config: ModelConfig, split: Split, ratings: np.ndarray | None, seed: int = 0
    ) -> Any: ...


@dataclass(frozen=True)
class Family:
    """One model type.

    Attributes:
        name: the ``model.type`` value.
        neural: trained by gradient descent in :mod:`ncf.train` (epochs, validation,
            checkpoints); otherwise fitted in one call of ``fit``.
        hyperparameters: ``ModelConfig`` keys that ``ncf compare`` shows for this type.
        load: a finished run directory -> its model, as a Scorer.
        fit: baselines only: ``(model config, split, ratings aligned with split.train or
            None, seed=run.seed) -> Scorer``; the Scorer has ``save(directory)``. Families
            with random starts (iALS) draw them from ``seed``; the others ignore it.
        score_meaning: what the model's scores are, in words, for ``ncf recommend`` and the
            export's ``model.json`` ("" lets the export describe its serving form).
        uses_item_features: ``fit`` also takes ``item_features=`` (the data's [items, F]
            side-feature matrix; the content model).
    """

    name: str
    neural: bool
    hyperparameters: tuple[str, ...]
    load: Callable[[Path], Scorer]
    fit: BaselineFit | None = None
    score_meaning: str = ""
    uses_item_features: bool = False


def family(model_type: str) -> Family:
    """The family of ``model_type``; an unknown type is a :class:`ConfigError`."""
    if model_type not in MODULES:
        raise ConfigError(f"model.type {model_type!r}: use one of {', '.join(MODULES)}")
    families: dict[str, Family] = importlib.import_module(MODULES[model_type]).FAMILIES
    return families[model_type]


def is_neural(model_type: str) -> bool:
    return family(model_type).neural

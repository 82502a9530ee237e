"""What a model family is: the one object the rest of ncf asks about a ``model.type``.

A family module (``ncf/baselines/<name>.py`` for the classical ones, ``ncf/families/<name>.py``
for the neural ones) defines ``FAMILIES``, a dict from ``model.type`` to :class:`Family`;
:mod:`ncf.registry` names the module. Everything type-specific is here: the family's config
section (nested under ``model.<section>``), how it is fitted (baselines: one call of ``fit``;
neural: ``build`` a Keras model and ``prepare`` its training stream), how a finished run is
loaded as a :class:`~ncf.scorer.Scorer`, its memory estimate, its default ``ncf tune``
search space, what data it needs and what it can do. The training run, the evaluator, the
memory check, ``ncf tune``, ``ncf compare``, the export and ``ncf update`` / ``ncf forget``
ask the family; none of them compares ``model.type`` to a name.

A family module must import without TensorFlow (the config gathers every family's section
when it is imported, and ``ncf data stats`` never needs TensorFlow): heavy imports go inside
its functions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from ncf.config import Config
    from ncf.data.dataset import Dataset
    from ncf.data.split import Split
    from ncf.schema import Section
    from ncf.scorer import Scorer

# Memory parts: name -> (bytes, the config key that changes it most).
MemoryParts = dict[str, tuple[int, str]]
# A family's calibrate: (model, measure, chosen or None) -> chosen (see Family).
Calibrate = Callable[[Any, Callable[[], float], "dict[str, float] | None"], "dict[str, float]"]


@dataclass(frozen=True)
class FitInputs:
    """What a baseline's ``fit`` may read besides the split: the rating of each train
    interaction (aligned with ``split.train_*``; None when the data has none), the data's
    ``[items, F]`` side-feature matrix (None without), and the run's seed."""

    ratings: np.ndarray | None = None
    item_features: np.ndarray | None = None
    seed: int = 0


@dataclass(frozen=True)
class Needs:
    """What a family needs from the data.

    Attributes:
        time_order: it reads the order of a user's interactions (histories, sequences);
            on data without timestamps it still trains, but loses what it is built for.
        item_features: it cannot be fitted without item side features (content).
    """

    time_order: bool = False
    item_features: bool = False


@dataclass(frozen=True)
class Capabilities:
    """What a fitted model of the family can do beyond scoring.

    Attributes:
        warm_start: ``ncf update`` / ``ncf forget`` can start from the old weights (neural
            families whose parameters follow id maps); otherwise they refit (baselines) or
            need ``--exact`` (a retrain from scratch).
        similar_items: the export has ``similar_items``; ``no_similar_items`` says why not.
        from_history: how ``recommend_from_history`` treats a new user's items: ``native``
            (the model reads a list of items), ``exact`` (the closed form a training user
            with those items gets) or ``fold-in`` (a few optimisation steps in the graph).
    """

    warm_start: bool = False
    similar_items: bool = True
    no_similar_items: str = ""
    from_history: str = "exact"


def _no_check(model: Any) -> None:
    return None


def _no_note(config: Config, dataset: Dataset) -> str | None:
    return None


def _no_features(model: Any, side: str) -> bool:
    return False


def _no_ratings(model: Any) -> bool:
    return False


def _no_memory(config: Config, dataset: Dataset) -> MemoryParts:
    return {}


@dataclass(frozen=True)
class Family:
    """One ``model.type``.

    Attributes:
        name: the ``model.type`` value.
        summary: one line on what it is (``configs/README.md``, ``ncf tune --models``).
        neural: trained by gradient descent in :mod:`ncf.train` (epochs, validation,
            checkpoints); otherwise fitted in one call of ``fit``.
        load: a finished run directory -> its model, as a Scorer.
        section: the key of the family's own settings under ``model`` (None: none); two
            families may share one (item-kNN and user-kNN share ``knn``).
        settings: the pydantic section class of ``section``.
        exclusive: a value of ``section`` other than its default is an error under another
            ``model.type`` (NeuMF's ``pretrained``: it would be silently ignored).
        hyperparameters: ``model.*`` keys ``ncf compare`` shows for this type.
        losses: neural: the ``train.loss`` values it trains with, the first the default.
        search_space: the default search space of ``ncf tune`` (the layout of a
            search-space file, :mod:`ncf.tune.space`).
        needs, can: what it needs from the data and can do (:class:`Needs`,
            :class:`Capabilities`).
        order_free: settings (config key -> value) that make a family with
            ``needs.time_order`` read the data without its order; a search across families
            fixes them on data without timestamps, and leaves a family without them out.
        score_meaning: what its scores are, in words (``ncf recommend``, ``model.json``);
            "" lets the export describe its serving form.
        check: ``model config -> None``, raises ``ValueError`` where settings outside its
            section do not fit it (called when the ``model`` section is validated).
        fit: baselines: ``(model config, split, FitInputs) -> Scorer`` with ``save(dir)``.
        build: neural: ``(config, dataset) -> keras.Model``, fresh and uncompiled.
        prepare: neural: ``(model, config, dataset, split) -> TrainingStream``: gives the
            model what it reads from the data it fits on (history tables) and returns the
            phase's batches (:mod:`ncf.data.pipeline`).
        calibrate: neural, optional: ``(model, measure, chosen) -> chosen``, settings of a
            trained model fixed on validation after the selection phase (the vae family's
            blend with EASE): it tries them, ``measure()`` giving the monitored validation
            metric of the model as it stands, leaves the model at the best and returns
            ``{name: value}``; given ``chosen`` (a fresh refit's model) it applies them.
        memory: ``(config, dataset) -> {part: (bytes, key)}``, the model's part of the
            memory estimate (:mod:`ncf.train.resources` adds the data's).
        note: ``(config, dataset) -> str | None``, a warning worth printing before training
            (the data lacks what the family is built for).
        reads_features: ``(model config, "user" | "item") -> bool``: the fitted model reads
            that side's features, so new ids need their rows (``ncf update``).
        uses_ratings: ``model config -> bool``: ``fit`` reads the ratings, which a derived
            run (``ncf update`` / ``ncf forget``) does not keep.
        legacy: keys this family's settings had directly under ``model`` before they moved
            into its section (``neighbours`` -> ``knn.neighbours``): still read, moved.
    """

    name: str
    summary: str
    neural: bool
    load: Callable[[Path], Scorer]
    section: str | None = None
    settings: type[Section] | None = None
    exclusive: bool = False
    hyperparameters: tuple[str, ...] = ()
    losses: tuple[str, ...] = ()
    search_space: Mapping[str, Any] = field(default_factory=dict)
    needs: Needs = field(default_factory=Needs)
    order_free: Mapping[str, Any] = field(default_factory=dict)
    can: Capabilities = field(default_factory=Capabilities)
    score_meaning: str = ""
    check: Callable[[Any], None] = _no_check
    fit: Callable[[Any, Split, FitInputs], Any] | None = None
    build: Callable[[Config, Dataset], Any] | None = None
    prepare: Callable[[Any, Config, Dataset, Split], Any] | None = None
    calibrate: Calibrate | None = None
    memory: Callable[[Config, Dataset], MemoryParts] = _no_memory
    note: Callable[[Config, Dataset], str | None] = _no_note
    reads_features: Callable[[Any, str], bool] = _no_features
    uses_ratings: Callable[[Any], bool] = _no_ratings
    legacy: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.section is None) != (self.settings is None):
            raise ValueError(f"family {self.name}: give both section and settings, or neither")
        if self.neural and (self.build is None or self.prepare is None or not self.losses):
            raise ValueError(f"neural family {self.name} needs build, prepare and losses")
        if not self.neural and self.fit is None:
            raise ValueError(f"family {self.name} is not neural, so it needs fit")

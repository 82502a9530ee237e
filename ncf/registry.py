"""``model.type`` -> its family (:class:`ncf.family.Family`).

:data:`MODULES` is the one list of model types: each names the module whose ``FAMILIES``
declares it. Adding a model family means writing that module and adding its line here;
the config (``model.type`` and the family's ``model.<section>``), the training run, the
evaluator, ``ncf tune``, ``ncf compare`` and the export find it through :func:`family`.
Family modules are imported by name, on first use, and import without TensorFlow.

Every family's fitted model is a :class:`~ncf.scorer.Scorer` for the evaluator and
describes itself for serving as one of the closed forms in :mod:`ncf.scorer`
(``serving_form()``), which :mod:`ncf.serve.servables` turns into a SavedModel.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import TYPE_CHECKING

from ncf.errors import ConfigError
from ncf.family import Family

if TYPE_CHECKING:
    from ncf.schema import Section

MODULES = {
    "mf": "ncf.families.towers",
    "gmf": "ncf.families.towers",
    "mlp": "ncf.families.towers",
    "neumf": "ncf.families.towers",
    "history": "ncf.families.history",
    "sequence": "ncf.families.sequence",
    "vae": "ncf.families.vae",
    "itemknn": "ncf.baselines.knn",
    "userknn": "ncf.baselines.knn",
    "popularity": "ncf.baselines.popularity",
    "ease": "ncf.baselines.ease",
    "ials": "ncf.baselines.ials",
    "content": "ncf.baselines.content",
}


# model.type auto: ncf tune chooses the family among these (ncf.tune.joint), or --models.
AUTO = "auto"
AUTO_MODELS = ("history", "sequence", "vae", "ease", "ials", "itemknn")


def names() -> tuple[str, ...]:
    """Every model type, in the order of :data:`MODULES`."""
    return tuple(MODULES)


def family(model_type: str) -> Family:
    """The family of ``model_type``; an unknown type (or ``auto``) is a :class:`ConfigError`."""
    if model_type == AUTO:
        raise ConfigError(
            "model.type auto: ncf tune chooses the family (ncf tune CONFIG, optionally with "
            "--models); to train one, set model.type to one of " + ", ".join(MODULES)
        )
    if model_type not in MODULES:
        raise ConfigError(f"model.type {model_type!r}: use one of {', '.join(MODULES)}")
    return _load(model_type)


@cache
def _load(model_type: str) -> Family:
    families: dict[str, Family] = importlib.import_module(MODULES[model_type]).FAMILIES
    found = families.get(model_type)
    if found is None or found.name != model_type:
        raise RuntimeError(f"{MODULES[model_type]} does not declare the family {model_type!r}")
    return found


def families() -> list[Family]:
    """Every family, in the order of :data:`MODULES`."""
    return [family(name) for name in MODULES]


def sections() -> dict[str, type[Section]]:
    """``model.<section>`` -> its settings class, over every family (shared sections once)."""
    found: dict[str, type[Section]] = {}
    for kind in families():
        if kind.section is None or kind.settings is None:
            continue
        known = found.setdefault(kind.section, kind.settings)
        if known is not kind.settings:
            raise RuntimeError(f"model.{kind.section} is declared twice with different classes")
    return found

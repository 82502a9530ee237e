"""The ``model`` section: the model type, the towers' shared settings and every family's own.

``model.type`` names a family (:mod:`ncf.registry`). The keys directly under ``model`` are
the settings the neural towers and heads share (embedding size, MLP and tower layers,
dropout, L2, side features); each family's own settings are a nested section it declares
in its module (``model.history``, ``model.ease``, ``model.knn``, ...), so
:data:`ModelConfig` is assembled here from the registry: adding a family adds its section
without touching this file. Every section is present in a resolved config, with its
defaults where the file does not set it; only the chosen type's section is read.

Keys that moved into a family's section (``model.neighbours`` -> ``model.knn.neighbours``)
are still read, and moved (:func:`move_legacy_keys`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, create_model, model_validator

from ncf import registry
from ncf.schema import Section

DEFAULT_TYPE = "neumf"


class ModelBase(Section):
    """The model type and the settings the neural towers and heads share."""

    type: str = Field(DEFAULT_TYPE, description="the model family (see below)")
    embedding_dim: int = Field(
        8,
        gt=0,
        description="predictive factors: embedding size of mf/gmf (and the GMF branch of "
        "neumf), item and user vectors of history",
    )
    mlp_layers: list[int] = Field(
        default_factory=lambda: [64, 32, 16, 8],
        description="MLP tower sizes; the first is the concatenated embedding size (each tower embeds half)",
    )
    tower_layers: list[int] = Field(
        default_factory=list, description="dense layers after each id embedding in the towers"
    )
    user_features: bool = Field(
        False,
        description="join user side features (age, gender, occupation) when the data has them",
    )
    item_features: bool = Field(
        False, description="join item side features (genres) when the data has them"
    )
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout after each dense layer")
    l2_embedding: float = Field(
        0.0,
        ge=0,
        description="per-example L2 penalty on the embedding rows each training example looks "
        "up: the loss adds l2_embedding * (|p_u|^2 + |q_i|^2) per example (bpr: + |q_j|^2), "
        "averaged over the batch like the data loss",
    )
    l2_dense: float = Field(0.0, ge=0, description="L2 penalty on dense kernels")

    if TYPE_CHECKING:  # the families' sections, added by create_model below

        def __getattr__(self, name: str) -> Any: ...

    @model_validator(mode="before")
    @classmethod
    def _legacy(cls, raw: Any) -> Any:
        return move_legacy_keys(raw) if isinstance(raw, dict) else raw

    @model_validator(mode="after")
    def _check(self) -> ModelBase:
        if any(size <= 0 for size in self.mlp_layers + self.tower_layers):
            raise ValueError("layer sizes must be positive")
        if self.type == registry.AUTO:
            return self
        own = registry.family(self.type)
        for other in registry.families():
            section = other.section
            if not (other.exclusive and section and other.settings) or section == own.section:
                continue
            if getattr(self, section) != other.settings():
                owners = sorted({k.name for k in registry.families() if k.section == section})
                raise ValueError(
                    f"model.{section} applies to model.type {' or '.join(owners)} only"
                )
        own.check(self)
        return self


def legacy_keys(raw: dict[str, Any]) -> list[str]:
    """The keys of a raw ``model`` mapping that moved into a family's section."""
    moved = {key for kind in registry.families() for key in kind.legacy}
    return sorted(key for key in raw if key in moved and key not in ModelBase.model_fields)


def move_legacy_keys(raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` with each moved key put where it lives now: the chosen type's family decides
    first (content's ``neighbours`` is ``content.neighbours``), then the others in registry
    order. A key given in both places is an error."""
    keys = legacy_keys(raw)
    if not keys:
        return raw
    chosen = raw.get("type", DEFAULT_TYPE)
    order = sorted(registry.families(), key=lambda kind: kind.name != chosen)
    moved = {k: v for k, v in raw.items() if k not in keys}
    for key in keys:
        target = next(kind.legacy[key] for kind in order if key in kind.legacy)
        section, _, name = target.partition(".")
        values = dict(moved.get(section) or {})
        if name in values:
            raise ValueError(f"model.{key} and model.{target} are both given; keep {target}")
        moved[section] = {**values, name: raw[key]}
    return moved


def _build() -> type[ModelBase]:
    kinds = (*registry.names(), registry.AUTO)
    choices = Literal[kinds]  # type: ignore[valid-type]
    summary = (
        "the model family (the families table above lists them); auto: ncf tune chooses "
        "among several on validation"
    )
    fields: dict[str, Any] = {"type": (choices, Field(DEFAULT_TYPE, description=summary))}
    for section, settings in registry.sections().items():
        owners = ", ".join(k.name for k in registry.families() if k.section == section)
        fields[section] = (
            settings,
            Field(default_factory=settings, description=f"{owners} only"),
        )
    return create_model(  # type: ignore[call-overload, no-any-return]
        "ModelConfig",
        __base__=ModelBase,
        __module__=__name__,
        __doc__="The model: a family and its settings (the module docstring).",
        **fields,
    )


if TYPE_CHECKING:
    ModelConfig = ModelBase
else:
    ModelConfig = _build()

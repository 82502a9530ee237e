"""The ``eval``, ``export`` and ``run`` sections, and :class:`Config`: one experiment."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from ncf import registry
from ncf.config.data import DataConfig
from ncf.config.model import DEFAULT_TYPE, ModelConfig
from ncf.config.train import TrainConfig
from ncf.schema import Section


class EvalConfig(Section):
    """Ranking evaluation: protocols, cut-offs and the sampled candidates."""

    protocols: list[Literal["sampled", "full"]] = Field(
        default_factory=lambda: ["sampled", "full"],  # type: ignore[arg-type]
        description="sampled (He et al. 2017) and/or full ranking",
    )
    k: list[int] = Field(
        default_factory=lambda: [5, 10, 20], description="cut-offs for the metrics"
    )
    sampled_negatives: int = Field(
        100, gt=0, description="negatives ranked with each held-out item (sampled protocol)"
    )
    batch_users: int = Field(1024, gt=0, description="users scored per batch in full ranking")
    val_every: int = Field(
        1,
        gt=0,
        description="rank the validation split after every N-th epoch (and the last): the "
        "chosen epoch is then one of those, and early-stopping patience counts validations",
    )
    val_users: int | None = Field(
        None,
        gt=0,
        description="rank only this many validation users each epoch (a fixed sample drawn "
        "from run.seed; null: all). The chosen model's reported validation metrics use all of "
        "them; a sample of n users adds noise of about 1/sqrt(n) to each epoch's figure",
    )

    @model_validator(mode="after")
    def _check(self) -> EvalConfig:
        if not self.protocols:
            raise ValueError("protocols must name at least one of sampled, full")
        if any(k <= 0 for k in self.k) or not self.k:
            raise ValueError("k must be a non-empty list of positive integers")
        return self


class ExportConfig(Section):
    exclude_seen: bool = Field(
        True, description="recommend excludes the items each user interacted with in training"
    )
    default_k: int = Field(
        10,
        gt=0,
        description="k used when a request does not give one (at most the number of items)",
    )
    include_seen: bool = Field(
        True,
        description="the export holds each user's train and validation items (to exclude them "
        "from recommend); false leaves them out, and recommend then cannot exclude them",
    )


class RunConfig(Section):
    seed: int = Field(
        42,
        ge=0,
        le=2**32 - 1,
        description="the one seed: split, negatives, candidates, weights (0 to 2**32 - 1)",
    )
    dir: str = Field("runs", description="parent folder of run directories")
    name: str | None = Field(
        None,
        description="run name (default: the config file's stem): a plain folder name, the "
        "runs go in <run.dir>/<run.name>/",
    )
    check_memory: bool = Field(
        True,
        description="refuse to start when the estimated memory (model, optimizer state and "
        "data; docs/notes-issue-13.md) exceeds the memory available",
    )

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str | None) -> str | None:
        """A run name is one folder name: no path, so its runs stay inside ``run.dir``."""
        if name is None:
            return name
        if (
            name.strip() in ("", ".", "..")
            or any(c in name for c in "/\\")
            or not name.isprintable()
        ):
            raise ValueError(
                f"{name!r} is not a plain name: a run name becomes one folder inside run.dir, "
                "so it cannot be empty, '.' or '..', or hold a / or \\ or a control character; "
                "set run.dir to choose where runs go"
            )
        return name


class Config(Section):
    """One experiment."""

    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)
    run: RunConfig = Field(default_factory=RunConfig)

    @model_validator(mode="before")
    @classmethod
    def _family_loss(cls, raw: Any) -> Any:
        """Without ``train.loss``, a neural family trains with its own first loss."""
        if not isinstance(raw, dict):
            return raw
        model, train = raw.get("model") or {}, raw.get("train") or {}
        if not isinstance(model, dict) or not isinstance(train, dict) or "loss" in train:
            return raw
        kind = model.get("type", DEFAULT_TYPE)
        if kind in registry.MODULES and registry.family(kind).neural:
            raw = {**raw, "train": {**train, "loss": registry.family(kind).losses[0]}}
        return raw

    @model_validator(mode="after")
    def _check(self) -> Config:
        if self.data.source == "synthetic":
            self.check_catalogue(self.data.synthetic.items)
        kind = None if self.model.type == registry.AUTO else registry.family(self.model.type)
        if kind is not None and kind.neural and self.train.loss not in kind.losses:
            raise ValueError(
                f"train.loss {self.train.loss} does not fit model.type {self.model.type}, "
                f"which trains with train.loss {' or '.join(kind.losses)}"
            )
        if self.train.refit and not self.data.split.validation:
            raise ValueError(
                "train.refit needs a validation split to choose the epoch; "
                "set data.split.validation: true or train.refit: false"
            )
        return self

    def check_export(self, num_items: int) -> None:
        """Raise ``ValueError`` where an export setting cannot fit a catalogue of ``num_items``.

        Called where an export is built (``export.*`` can change at export time), so that
        ``export.default_k`` never exceeds the catalogue: a request without ``k`` would fail.
        """
        if self.export.default_k > num_items:
            raise ValueError(
                f"export.default_k={self.export.default_k} is larger than the catalogue "
                f"({num_items} items): every request without k would fail; set "
                f"--set export.default_k={num_items} or less"
            )

    def check_catalogue(self, num_items: int) -> None:
        """Raise ``ValueError`` where an eval setting cannot fit a catalogue of ``num_items``."""
        if max(self.eval.k) > num_items:
            raise ValueError(
                f"eval.k={max(self.eval.k)} is larger than the catalogue ({num_items} items)"
            )
        if self.eval.sampled_negatives >= num_items:
            raise ValueError(
                f"eval.sampled_negatives={self.eval.sampled_negatives} needs a catalogue of more items "
                f"(it has {num_items})"
            )

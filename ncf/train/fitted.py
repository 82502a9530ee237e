"""What fitting a model or baseline hands back to the training run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Fitted:
    """``selected`` was chosen on validation and trained on train only: it gives the run's
    validation metrics. ``final`` is the model tested and exported: ``selected`` itself, or
    with ``train.refit`` a fresh one trained on train + validation for the chosen epochs.
    Both are evaluator scorers (``score_items`` / ``score_all``); ``selected`` is None when
    its weights are gone (a neural refit trains the same compiled model further) and ``val``
    holds its metrics. ``val`` is ``selected``'s validation metrics when training already
    computed them on the whole validation split (None: the run evaluates them)."""

    selected: Any
    final: Any
    history: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    val: dict[str, dict[str, float]] | None = None

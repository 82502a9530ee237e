"""A search across model families: ``ncf tune CONFIG --models a,b,c`` (or ``model.type: auto``).

Each trial first draws ``model.type`` among the families, then that family's own parameters
from its search space (its default, :attr:`ncf.family.Family.search_space`); the parameters
are stored under ``<family>/<key>`` so that two families' ``model.embedding_dim`` keep their
own distributions. The study starts with every family's own starting point (its declared
``start``, the settings its shipped config was chosen with; else the config's values where
they lie in the family's space, else the middle of it) — baselines first, since they cost
seconds — so each family is tried at its best-known settings before the sampler (TPE)
spends the budget where validation says it pays.

Data steer the families (:func:`families_for`): on data without timestamps a family that
reads the order of interactions (``needs.time_order``) is left out, unless it declares an
order-free setting (``order_free``, e.g. the history tower's ``causal: false``), which is
then fixed in its trials. One time budget (``--timeout``) covers the whole search; pruning
compares a neural trial with the earlier trials of its own family
(:class:`ncf.tune.pruning.FamilyMedianPruner`).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ncf import registry
from ncf.config import Config
from ncf.errors import ConfigError
from ncf.tune.space import SearchSpace, parse_space

FAMILY_KEY = "model.type"
DEFAULT_MODELS = registry.AUTO_MODELS  # model.type auto without --models


def joint_space(names: list[str], base: Config, has_timestamps: bool) -> JointSpace:
    """The search across ``names`` for the config ``base`` on data with or without
    timestamps (unknown or repeated names are a ConfigError)."""
    unknown = [n for n in names if n not in registry.names()]
    if unknown or not names or len(set(names)) != len(names):
        raise ConfigError(
            f"--models {','.join(names)}: name each family once, from {', '.join(registry.names())}"
        )
    kept, order_free = families_for(names, has_timestamps)
    return JointSpace(spaces=family_spaces(kept), order_free=order_free, base_loss=base.train.loss)


def family_spaces(names: list[str]) -> dict[str, SearchSpace]:
    """Each named family's default search space (a family with none searches nothing)."""
    spaces = {}
    for name in names:
        kind = registry.family(name)
        raw = dict(kind.search_space) or {"params": {}}
        spaces[name] = (
            parse_space(raw, f"the default search space of {name}")
            if raw.get("params")
            else SearchSpace()
        )
    return spaces


def families_for(names: list[str], has_timestamps: bool) -> tuple[list[str], dict[str, dict]]:
    """The families a search over ``names`` tries on this data, and the settings fixed in
    each to fit it (see the module docstring)."""
    kept, fixed = [], {}
    for name in names:
        kind = registry.family(name)
        if kind.needs.time_order and not has_timestamps:
            if not kind.order_free:
                continue
            fixed[name] = dict(kind.order_free)
        kept.append(name)
    if not kept:
        raise ConfigError(f"--models {','.join(names)}: none of them fits data without time order")
    return kept, fixed


class JointSpace(BaseModel):
    """Several families' search spaces behind the interface of one (:class:`SearchSpace`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    spaces: dict[str, SearchSpace]
    order_free: dict[str, dict[str, Any]] = Field(default_factory=dict)
    base_loss: str = "bce"  # the config's train.loss: kept where a family trains with it
    trials: int = 1000
    timeout_minutes: float | None = 30.0
    startup_trials: int = 10
    prune_after_trials: int = 2
    prune_warmup_epochs: int = 2

    @property
    def params(self) -> dict[str, Any]:
        """Every family's parameters, under ``<family>/<key>`` (the HParams domains)."""
        return {f"{name}/{k}": p for name, s in self.spaces.items() for k, p in s.params.items()}

    @property
    def fixed(self) -> dict[str, Any]:
        return {}

    def sample(self, trial: Any) -> dict[str, Any]:
        kind = trial.suggest_categorical(FAMILY_KEY, list(self.spaces))
        space, pinned = self.spaces[kind], self.order_free.get(kind, {})
        values = {
            key: p.sample(trial, f"{kind}/{key}")
            for key, p in space.params.items()
            if key not in pinned  # (an order-free setting is fixed, not drawn)
        }
        return {FAMILY_KEY: kind, **values}

    def fixed_for(self, values: dict[str, Any]) -> dict[str, Any]:
        """The family's fixed keys and order-free settings, and its own loss where the
        config's does not fit it."""
        name = values[FAMILY_KEY]
        kind = registry.family(name)
        fixed = {**self.spaces[name].fixed, **self.order_free.get(name, {})}
        if kind.neural and self.base_loss not in kind.losses:
            fixed.setdefault("train.loss", kind.losses[0])
        return fixed

    def decode(self, params: dict[str, Any]) -> dict[str, Any]:
        kind = params.get(FAMILY_KEY)
        if kind not in self.spaces:
            return {}
        prefix = f"{kind}/"
        stored = {k.removeprefix(prefix): v for k, v in params.items() if k.startswith(prefix)}
        return {FAMILY_KEY: kind, **self.spaces[kind].decode(stored)}

    def hparams(self, params: dict[str, Any]) -> dict[str, Any]:
        """``model.type`` and the trial's values under ``<family>/<key>`` (as :attr:`params`)."""
        decoded = self.decode(params)
        kind = decoded.pop(FAMILY_KEY, None)
        return {FAMILY_KEY: kind, **{f"{kind}/{k}": v for k, v in decoded.items()}} if kind else {}

    def starting_points(self, base: Config) -> list[dict[str, Any]]:
        """One point per family, baselines first (their trials cost seconds): the family's
        declared start (its recommended settings, :attr:`SearchSpace.start`), else the
        config's own values where they lie in its space, else the middle of the space; the
        keys its order-free setting pins are left out (they are fixed, not drawn)."""
        order = sorted(self.spaces, key=lambda name: registry.family(name).neural)
        points = []
        for name in order:
            space, pinned = self.spaces[name], self.order_free.get(name, {})
            start = {
                **self._middle(name),
                **(space.starting_point(base) or {}),
                **(space.declared_start() or {}),
            }
            values = {f"{name}/{k}": v for k, v in start.items() if k not in pinned}
            points.append({FAMILY_KEY: name, **values})
        return points

    def start_note(self, base: Config) -> str:
        """What the leaderboard says of each family's first trial."""
        return "the family's starting point"

    def _middle(self, name: str) -> dict[str, Any]:
        """A central value of each of the family's parameters (Optuna's encoding)."""
        point: dict[str, Any] = {}
        for key, param in self.spaces[name].params.items():
            if param.choices is not None:
                point[key] = json.dumps(param.choices[len(param.choices) // 2])
                continue
            low, high = float(param.low), float(param.high)  # type: ignore[arg-type]
            value = (low * high) ** 0.5 if param.log else (low + high) / 2
            point[key] = int(round(value)) if param.is_int else value
        return point

"""Search-space files for ``ncf tune``: which config keys to vary, and how.

A search space is a YAML file (each family declares its default, :attr:`ncf.family.Family.search_space`;
``ncf tune --show-space CONFIG`` prints it as such a file)::

    trials: 30                  # default --trials: finished trials the study aims at
    timeout_minutes: 20         # default --timeout for the search (the refit comes after)
    startup_trials: 8           # random trials before TPE takes over
    prune_after_trials: 4       # no pruning until this many trials have finished
    prune_warmup_epochs: 2      # nor before a trial's third epoch
    fixed:                      # config keys set in every trial and in the refit
      train.epochs: 30
    start:                      # the first trial's values where the config's own lie outside
      train.learning_rate: 0.002  # the space (and in a search across families: always)
    params:                     # config key -> distribution
      train.learning_rate: {low: 0.0005, high: 0.01, log: true}   # float: log-uniform
      train.num_negatives: {low: 2, high: 12}                      # int: both bounds ints
      model.embedding_dim: {choices: [8, 16, 32, 64]}              # categorical
      model.mlp_layers: {choices: [[32, 16, 8], [64, 32, 16, 8]]}  # lists are fine too

Every key must be a config key; :func:`check_space` builds the config at every bound and
choice before a trial runs, so a typo or an impossible value is one clear error, not a
study of failed trials. Optuna keeps categorical choices as JSON text, so lists travel
through its storage unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ncf.config import Config, build_config, read_yaml
from ncf.errors import ConfigError

Scalar = bool | int | float | str


class Param(BaseModel):
    """One distribution: ``choices`` (categorical) or ``low``/``high`` (int when both are ints)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    low: int | float | None = None
    high: int | float | None = None
    log: bool = False
    step: int | float | None = None
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _check(self) -> Param:
        if self.choices is not None:
            if self.low is not None or self.high is not None or not self.choices:
                raise ValueError("give either a non-empty 'choices' list or 'low' and 'high'")
            return self
        if self.low is None or self.high is None:
            raise ValueError("give either a non-empty 'choices' list or 'low' and 'high'")
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError("a log-uniform range needs low > 0")
        if self.log and self.step is not None:
            raise ValueError("step and log cannot be combined")
        return self

    @property
    def is_int(self) -> bool:
        return all(isinstance(v, int) and not isinstance(v, bool) for v in (self.low, self.high))

    def values_to_check(self) -> list[Any]:
        return list(self.choices) if self.choices is not None else [self.low, self.high]

    def sample(self, trial: Any, name: str) -> Any:
        """A value drawn through an Optuna trial (categorical choices decoded from JSON)."""
        if self.choices is not None:
            encoded = trial.suggest_categorical(name, [json.dumps(c) for c in self.choices])
            return json.loads(encoded)
        assert self.low is not None and self.high is not None  # checked by _check
        if self.is_int:
            step = int(self.step or 1)
            return trial.suggest_int(name, int(self.low), int(self.high), step=step, log=self.log)
        low, high = float(self.low), float(self.high)
        return trial.suggest_float(name, low, high, step=self.step, log=self.log)


class SearchSpace(BaseModel):
    """A search-space file (module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    trials: int = Field(30, gt=0)
    timeout_minutes: float | None = Field(20.0, gt=0)
    startup_trials: int = Field(8, ge=0)
    prune_after_trials: int = Field(4, ge=0)
    prune_warmup_epochs: int = Field(2, ge=0)
    fixed: dict[str, Any] = Field(default_factory=dict)
    params: dict[str, Param] = Field(default_factory=dict)
    start: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check_start(self) -> SearchSpace:
        for name, value in self.start.items():
            if name not in self.params:
                raise ValueError(f"start.{name} is not one of the searched keys (params)")
            if self.encode(name, value) is None:
                raise ValueError(f"start.{name} = {value!r} lies outside its distribution")
        return self

    def encode(self, name: str, value: Any) -> Any:
        """``value`` of the searched key ``name`` as Optuna stores it (choices as JSON
        text); None when it lies outside the distribution."""
        param = self.params[name]
        if param.choices is not None:
            return json.dumps(value) if value in param.choices else None
        assert param.low is not None and param.high is not None  # checked by Param
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return value if param.low <= value <= param.high else None

    def sample(self, trial: Any) -> dict[str, Any]:
        return {name: param.sample(trial, name) for name, param in self.params.items()}

    def starting_point(self, config: Config) -> dict[str, Any] | None:
        """The config's own values of the searched keys, encoded as Optuna stores them; None
        when one of them lies outside the space (not among the choices, or out of range)."""
        data = config.model_dump(mode="json")
        point = {}
        for name in self.params:
            value: Any = data
            for part in name.split("."):
                value = value[part]
            point[name] = self.encode(name, value)
            if point[name] is None:
                return None
        return point

    def declared_start(self) -> dict[str, Any] | None:
        """:attr:`start` encoded as Optuna stores it (None without one); the keys it leaves
        out are drawn."""
        if not self.start:
            return None
        return {name: self.encode(name, value) for name, value in self.start.items()}

    def hparams(self, params: dict[str, Any]) -> dict[str, Any]:
        """A trial's values under the names of the HParams domains (:attr:`params`)."""
        return self.decode(params)

    def fixed_for(self, values: dict[str, Any]) -> dict[str, Any]:
        """The keys set in a trial with ``values`` besides them (one family: ``fixed``)."""
        return dict(self.fixed)

    def starting_points(self, config: Config) -> list[dict[str, Any]]:
        """The trials a new study starts with: the config's own values, when they lie inside
        the space (:meth:`starting_point`), else the space's :attr:`start` if it has one."""
        start = self.starting_point(config) or self.declared_start()
        return [] if start is None else [start]

    def start_note(self, config: Config) -> str:
        """What the leaderboard says of :meth:`starting_points`' trial."""
        if self.starting_point(config) is not None:
            return "the config's own values"
        return "the search space's start"

    def decode(self, params: dict[str, Any]) -> dict[str, Any]:
        """Optuna's stored parameters -> config values (categorical choices are JSON text)."""
        return {
            name: json.loads(value) if self.params[name].choices is not None else value
            for name, value in params.items()
            if name in self.params
        }


def load_space(path: str | Path) -> SearchSpace:
    """Read and validate a search-space file; errors name the file and the key."""
    return parse_space(read_yaml(path, "search-space file"), str(path))


def parse_space(raw: dict[str, Any], source: str) -> SearchSpace:
    """Validate a search space (a file's mapping, or a family's default); errors name
    ``source`` and the key."""
    try:
        space = SearchSpace.model_validate(raw)
    except ValidationError as err:
        lines = []
        for e in err.errors():
            where = ".".join(str(p) for p in e["loc"]) or "(top level)"
            msg = e["msg"].removeprefix("Value error, ")
            lines.append(f"{source}: {where}: {msg}")
        raise ConfigError("\n".join(lines)) from None
    if not space.params:
        raise ConfigError(f"{source}: params is empty: name at least one config key to search")
    return space


def set_path(raw: dict[str, Any], dotted: str, value: Any) -> None:
    """``set_path(raw, "train.epochs", 5)``: set a nested key, creating sections as needed."""
    *sections, last = dotted.split(".")
    node = raw
    for part in sections:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"{dotted}: {part} is a value, not a section")
        node = child
    node[last] = value


def with_values(raw: dict[str, Any], values: dict[str, Any], source: str) -> Config:
    """The config ``raw`` (a parsed YAML mapping) with ``values`` set, validated."""
    copy = json.loads(json.dumps(raw))
    for key, value in values.items():
        set_path(copy, key, value)
    return build_config(copy, source)


def check_space(
    raw: dict[str, Any], space: SearchSpace, source: str, extra: dict[str, Any] | None = None
) -> None:
    """Build the config at every bound and choice of every parameter (one at a time), with
    ``extra`` keys set too (a search across families: the family and its fixed keys)."""
    for key, param in space.params.items():
        for value in param.values_to_check():
            try:
                with_values(raw, {**space.fixed, **(extra or {}), key: value}, source)
            except ConfigError as exc:
                raise ConfigError(
                    f"{source}: params.{key} = {value!r} is not valid: {exc}"
                ) from None

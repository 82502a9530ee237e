"""Reading and writing configs: strict YAML, ``--set`` overrides, validation, the saved file.

Precedence is defaults < YAML file < ``--set a.b=value``. Override values are parsed with
``yaml.safe_load`` (a scalar or a flow list such as ``[64,32]``), never ``eval``.

What is refused, with one line naming the file, line or key: an empty config file without
``--set`` overrides (it would silently mean every default; ``{}`` says so on purpose), a
key given twice in one mapping (YAML would silently keep the last), nesting deeper than :data:`MAX_DEPTH` levels or
more than :data:`MAX_NODES` values (aliases counted as expanded), and every schema error
(:mod:`ncf.schema`). The resolved config is what a run saves (``config.yaml`` in the run
directory); loading that file gives back an equal object.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ncf.config.experiment import Config
from ncf.config.model import legacy_keys
from ncf.errors import ConfigError
from ncf.io import atomic_write_text

log = logging.getLogger(__name__)

MAX_DEPTH = 16  # a config nests three levels; anything deeper is a mistake or an attack
MAX_NODES = 100_000


def _format_errors(err: ValidationError, source: str) -> str:
    """One line: ``SOURCE: key.path: problem; other.key: problem``."""
    problems = []
    for e in err.errors():
        path = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; configs/README.md lists every key)"
            last = str(e["loc"][-1]) if e["loc"] else ""
            if ":" in last and e["input"] is None:  # {user:user_id} is the key "user:user_id"
                key, _, value = last.partition(":")
                msg = f"unknown key (YAML needs a space after the colon: {key}: {value})"
        problems.append(f"{path}: {msg}")
    return f"{source}: " + "; ".join(problems)


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # "<<: *base" entries may be overridden: that is what merging means
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            try:
                first = seen.get(key)
            except TypeError:
                continue  # an unhashable key: the base class reports it
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key {key!r} is given twice (first on line {first + 1}); keep one",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def _safe_load(text: str) -> Any:
    """YAML to Python with :class:`_StrictLoader`; too deep or too large raises ``ValueError``."""
    try:
        value = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader)
    except RecursionError:
        raise ValueError(f"nested too deeply (a config has at most {MAX_DEPTH} levels)") from None
    _check_size(value)
    return value


def _check_size(value: Any) -> None:
    """Raise ``ValueError`` past :data:`MAX_DEPTH` levels or :data:`MAX_NODES` values."""
    stack, nodes = [(value, 1)], 0
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if depth > MAX_DEPTH:
            raise ValueError(f"nested too deeply (a config has at most {MAX_DEPTH} levels)")
        if nodes > MAX_NODES:
            raise ValueError(f"too large (more than {MAX_NODES} values, aliases expanded)")
        children = node.values() if isinstance(node, dict) else node
        if isinstance(node, dict | list):
            stack.extend((child, depth + 1) for child in children)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"train.batch_size=512"`` -> ``(["train", "batch_size"], 512)``; values are YAML scalars or lists."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. --set train.epochs=5")
    try:
        value = _safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"--set {text!r}: value is not valid YAML ({exc.__class__.__name__})"
        ) from None
    except ValueError as exc:
        raise ConfigError(f"--set {text[:60]!r}: the value is {exc}") from None
    return key.strip().split("."), value


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of ``raw`` with each ``a.b.c=value`` override set (sections created as needed)."""
    result = _deep_copy(raw)
    for text in overrides:
        path, value = parse_override(text)
        node = result
        for i, part in enumerate(path[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(
                    f"--set {text!r}: {'.'.join(path[: i + 1])} is a value, not a section"
                )
            node = child
        node[path[-1]] = value
    return result


def _deep_copy(raw: dict[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in raw.items()}


def read_yaml(
    path: str | os.PathLike[str], what: str = "config file", allow_empty: bool = True
) -> dict[str, Any]:
    """Read a YAML mapping, turning every failure into a ConfigError that names the file and line
    (``what`` the file is: "config file", "search-space file"). An empty file (no YAML
    document) reads as ``{}``, or is refused unless ``allow_empty``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: {what} not found") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the {what} ({exc.__class__.__name__})") from None
    try:
        raw = _safe_load(text)
    except ValueError as exc:
        raise ConfigError(f"{path}: the YAML is {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        context, start = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and start:
            problem += (
                f" ({context} that starts at line {start.line + 1}, column {start.column + 1})"
            )
        raise ConfigError(f"{path}: {where}malformed YAML: {problem}") from None
    if raw is None:  # no YAML document at all: an empty file, or only comments
        if allow_empty:
            return {}
        raise ConfigError(
            f"{path}: the {what} is empty, so every setting would be a default without a "
            "word; write the keys to set (configs/README.md lists them), give them with --set, "
            "or write {} to train the defaults on purpose"
        )
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{path}: the top level must be a mapping with sections data, model, train, eval, export, run"
        )
    return raw


def build_config(raw: dict[str, Any], source: str = "config") -> Config:
    """Validate a raw mapping into a Config; errors name ``source`` and each key path."""
    try:
        return Config.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_format_errors(err, source)) from None


def load_config(
    path: str | os.PathLike[str], overrides: list[str] | None = None, saved: bool = False
) -> Config:
    """Load ``path``, apply ``--set`` overrides and validate. Fills ``run.name`` from the file
    stem. Keys that moved into a family's section are read where they live now, with a
    warning unless the file is a run's own saved config (``saved``)."""
    raw = apply_overrides(read_yaml(path, allow_empty=bool(overrides)), overrides or [])
    model = raw.get("model")
    if not saved and isinstance(model, dict) and legacy_keys(model):
        moved = ", ".join(f"model.{key}" for key in legacy_keys(model))
        log.warning(
            f"{path}: {moved} moved into the model family's section (read as such); "
            "configs/README.md lists where each key lives now"
        )
    run = raw.get("run", {})
    if isinstance(run, dict) and run.get("name") is None:
        raw = {**raw, "run": {**run, "name": Path(path).stem}}
    source = str(path) + (" (with --set overrides)" if overrides else "")
    return build_config(raw, source)


def config_to_dict(config: Config) -> dict[str, Any]:
    return config.model_dump(mode="json")


def save_config(config: Config, path: str | os.PathLike[str]) -> None:
    """Write the resolved config as YAML, atomically."""
    text = yaml.safe_dump(config_to_dict(config), sort_keys=False)
    atomic_write_text(Path(path), text)

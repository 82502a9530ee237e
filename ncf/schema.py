"""The base of every config section: frozen, unknown keys refused, no booleans for numbers.

Every section of the experiment config (:mod:`ncf.config`) and every model family's own
section (declared in the family's module, :mod:`ncf.registry`) subclasses :class:`Section`,
so a typo is an error that names the key path, ``true`` is not read as 1 (nor 1 as
``true``), and an infinite or NaN number (``.inf``, ``.nan``) is refused. This module
imports nothing of ncf, so a family module can declare its section without importing the
config package that gathers the sections.
"""

from __future__ import annotations

from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator


class Section(BaseModel):
    """A frozen config section that forbids unknown keys and infinite numbers."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _booleans_are_not_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        """Pydantic reads ``true`` as 1 and 1 as ``true``; a config means neither."""
        field = cls.model_fields[info.field_name or ""]
        takes_bool = mentions(field.annotation, bool)
        values = value if isinstance(value, list) else [value]
        if not takes_bool and any(isinstance(v, bool) for v in values):
            raise ValueError(f"expected {_kind(field.annotation)}, got {str(value).lower()}")
        if field.annotation is bool and not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {value!r}")
        return value


def mentions(annotation: Any, kind: type) -> bool:
    """Whether ``kind`` appears in the type ``annotation`` (unions, lists, literals)."""
    if annotation is kind:
        return True
    return any(mentions(arg, kind) for arg in get_args(annotation) if not isinstance(arg, str))


def _kind(annotation: Any) -> str:
    number = mentions(annotation, int) or mentions(annotation, float)
    text = mentions(annotation, str)
    return {(True, True): "text or a number", (True, False): "a number"}.get(
        (number, text), "text" if text else "a value of the documented type"
    )

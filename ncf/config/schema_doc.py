"""Every config key with its type, default and meaning, as Markdown (``configs/README.md``)."""

from __future__ import annotations

import re
from typing import get_args

from pydantic import BaseModel

from ncf.config.experiment import Config

_MODULE_PREFIX = re.compile(r"\b(?:[a-z_]\w*\.)+(?=[A-Z])")  # ncf.config.data.X -> X


def describe_schema() -> str:
    """Every key with its type, default and meaning, as Markdown (source of configs/README.md)."""
    lines: list[str] = []

    def walk(model: type[BaseModel], prefix: str) -> None:
        sections = []
        for name, field in model.model_fields.items():
            ann = field.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                sections.append((name, ann))
                continue
            default = field.get_default(call_default_factory=True)
            type_name = str(ann).replace("typing.", "").replace("<class '", "").replace("'>", "")
            type_name = _MODULE_PREFIX.sub("", type_name)
            lines.append(
                f"- `{prefix}{name}` ({type_name}, default `{default!r}`): {field.description or ''}"
            )
            optional = [
                a for a in get_args(ann) if isinstance(a, type) and issubclass(a, BaseModel)
            ]
            if optional:  # an optional section (null: off): its keys too
                sections.append((name, optional[0]))
        for name, section in sections:
            lines.append(f"\n### `{prefix}{name}`\n")
            walk(section, f"{prefix}{name}.")

    walk(Config, "")
    return "\n".join(lines).strip() + "\n"

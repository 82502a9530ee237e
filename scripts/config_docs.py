"""Regenerate configs/README.md from the config schema: python scripts/config_docs.py"""

from __future__ import annotations

from pathlib import Path

from ncf import registry
from ncf.config import describe_schema

HEADER = """# Config reference

One YAML file describes one experiment. Sections: `data`, `model`, `train`, `eval`, `export`,
`run`. Precedence: defaults < YAML file < `--set key.path=value` on the command line (values
are parsed as YAML: `--set model.mlp_layers=[64,32,16,8]`). Unknown keys and wrong types are
errors that name the key path. A run saves its resolved config as `config.yaml` in the run
directory; that file alone rebuilds the experiment.

This page is generated from the schema in `ncf/config/` and the model families in
`ncf/registry.py` by `python scripts/config_docs.py` (a test fails when it is out of date).
Types use Python notation; `None` is YAML `null`.

## Model families

`model.type` names one of these; a family reads the shared keys directly under `model`
(neural families) and its own section, `model.<section>`. Keys written directly under
`model` before they moved into a section (`model.neighbours`, `model.shrinkage`,
`model.weighting`) are still read, with a warning, as the section's keys.

| `model.type` | what it is | section | neural: `train.loss` |
| --- | --- | --- | --- |
"""


def families() -> str:
    rows = []
    for kind in registry.families():
        section = f"`model.{kind.section}`" if kind.section else "-"
        losses = ", ".join(kind.losses) if kind.neural else "- (fitted in one call)"
        rows.append(f"| `{kind.name}` | {kind.summary} | {section} | {losses} |")
    return "\n".join(rows) + "\n\n"


def render() -> str:
    return HEADER + families() + describe_schema()


if __name__ == "__main__":
    path = Path(__file__).resolve().parents[1] / "configs" / "README.md"
    path.write_text(render(), encoding="utf-8")
    print(f"wrote {path}")

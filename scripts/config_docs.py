"""Regenerate configs/README.md from the config schema: python scripts/config_docs.py"""

from __future__ import annotations

from pathlib import Path

from ncf.config import describe_schema

HEADER = """# Config reference

One YAML file describes one experiment. Sections: `data`, `model`, `train`, `eval`, `export`,
`run`. Precedence: defaults < YAML file < `--set key.path=value` on the command line (values
are parsed as YAML: `--set model.mlp_layers=[64,32,16,8]`). Unknown keys and wrong types are
errors that name the key path. A run saves its resolved config as `config.yaml` in the run
directory; that file alone rebuilds the experiment.

This page is generated from the schema in `ncf/config.py` by `python scripts/config_docs.py`
(a test fails when it is out of date). Types use Python notation; `None` is YAML `null`.

"""


def render() -> str:
    return HEADER + describe_schema()


if __name__ == "__main__":
    path = Path(__file__).resolve().parents[1] / "configs" / "README.md"
    path.write_text(render(), encoding="utf-8")
    print(f"wrote {path}")

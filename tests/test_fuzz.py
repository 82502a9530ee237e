"""Fuzzing data files and configs: every case trains or exits 2 cleanly.

Hypothesis draws the cases from fixed seeds (``derandomize=True``, no example database), so
every run of the suite tries the same ones:

- ``DATA_CASES`` (60) interaction files of 20 to 60 rows: separators ``,`` ``;`` tab ``::``,
  with or without a header, LF or CRLF, with or without a byte-order mark, and half of them
  with one fault: an extra or a missing field, a stray line (empty, garbage, an unterminated
  quote, random text), or a bad value (empty, space-padded, quoted or non-ASCII ids; ratings
  such as ``nan``, ``inf``, ``x``; timestamps such as ``1e30``, ISO dates, impossible dates;
  random text); each is trained as a popularity model by ``ncf train``;
- ``OVERRIDE_CASES`` (150) sets of one to four ``--set`` overrides: any key of the schema (or
  an unknown one, or a section), with the key's default (half the time) or a value as a
  user might type it, from ``true`` and ``.inf`` to flow lists, mappings, aliases, YAML tags
  and random text; each goes through ``ncf data stats`` on the tiny quickstart data;
- ``TRAIN_CASES`` (4) sets of the training keys of a neural model (type, sizes, towers, loss,
  optimizer, schedule, negatives, batch size), half of them with one bad value, each
  trained for one epoch by ``ncf train``.

A case passes when ``ncf`` (``ncf.cli.main``, in-process) returns 0 with a finished run, or
returns 2 with exactly one ``ncf: error:`` line and no file written; any exception fails it.
Each test also checks that both outcomes occur (the training fuzz: that some cases train), so
that a generator that only ever makes broken (or only valid) cases does not pass unnoticed.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from collections import Counter
from pathlib import Path

import yaml
from conftest import QUICKSTART, TINY, set_args
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ncf.cli import main

DATA_CASES = 60
OVERRIDE_CASES = 150
TRAIN_CASES = 4


def fuzz(cases: int) -> settings:
    """``cases`` examples drawn from a fixed seed, none saved, no time limit per example."""
    return settings(
        max_examples=cases,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def run_ncf(argv: list[str], runs: Path) -> int:
    """``ncf ARGV``: exit 0 with a finished run, or exit 2 with one line and nothing written;
    returns the exit status."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    files = [p for p in runs.rglob("*") if p.is_file()] if runs.exists() else []
    if code == 2:
        lines = err.getvalue().splitlines()
        assert len(lines) == 1 and lines[0].startswith("ncf: error: "), err.getvalue()
        assert not files, files
    else:
        assert code == 0, err.getvalue()
        if argv[0] == "train":
            assert [p.name for p in files if p.name == "metrics.json"] == ["metrics.json"]
    return code


# -- data files ------------------------------------------------------------------------------

# A fault is (what to put, where): a field value, an extra or a missing field, a whole line.
BAD_VALUES = {
    "user": ["", " ", " u1", "u1 ", '"u1"', '"a,b"', "é", "\u00a0", "x;y", "0"],
    "rating": ["nan", "inf", "x", "", " 3", "1e400", "-0"],
    "timestamp": ["1e30", "-1", "2021-03-04", "2021-13-45", "", "1.5", "9007199254740993"],
}
BAD_LINES = ["", "u1", "garbage", '"unterminated', "u1,i1,3,4,5,6", "\x00"]


@st.composite
def data_files(draw) -> tuple[str, str, bool]:
    """(file text, separator, header): a small well-formed interaction file, half the time
    with one fault: a bad value, an extra or a missing field, or a stray line. (Hypothesis
    favours small numbers, so the sizes start where a split has something to hold out.)"""
    sep = draw(st.sampled_from([",", ";", "\t", "::"]))
    users, items = draw(st.integers(4, 10)), draw(st.integers(8, 16))
    rows = [
        [
            f"u{draw(st.integers(0, users))}",
            f"i{draw(st.integers(0, items))}",
            str(draw(st.integers(1, 5))),
            str(draw(st.integers(10**9, 2 * 10**9))),
        ]
        for _ in range(draw(st.integers(20, 60)))
    ]
    lines = [sep.join(row) for row in rows]
    fault = draw(st.sampled_from([None, None, None, None, "value", "extra", "missing", "line"]))
    at = draw(st.integers(0, len(rows) - 1))
    if fault == "value":
        column = draw(st.sampled_from(sorted(BAD_VALUES)))
        position = {"user": draw(st.integers(0, 1)), "rating": 2, "timestamp": 3}[column]
        rows[at][position] = draw(st.sampled_from(BAD_VALUES[column]) | st.text(max_size=3))
        lines[at] = sep.join(rows[at])
    elif fault in ("extra", "missing"):
        lines[at] = sep.join(rows[at] + ["x"] if fault == "extra" else rows[at][:-1])
    elif fault == "line":
        lines.insert(at, draw(st.sampled_from(BAD_LINES) | st.text(max_size=8)))
    header = draw(st.booleans())
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    lines = ([sep.join(["user", "item", "rating", "ts"])] if header else []) + lines
    return draw(st.sampled_from(["", "\ufeff"])) + eol.join(lines) + eol, sep, header


def test_fuzzed_data_files_train_or_exit_2():
    outcomes: Counter[int] = Counter()

    @fuzz(DATA_CASES)
    @given(case=data_files(), method=st.sampled_from(["leave_one_out", "ratio", "temporal"]))
    def one(case, method):
        outcomes[_train_data_file(*case, method)] += 1

    one()
    assert sum(outcomes.values()) == DATA_CASES
    assert outcomes[0] >= DATA_CASES // 5 and outcomes[2] >= DATA_CASES // 5, outcomes


def _train_data_file(text: str, sep: str, header: bool, method: str) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.csv"
        path.write_text(text, encoding="utf-8")
        names = ["user", "item", "rating", "ts"] if header else [0, 1, 2, 3]
        config = {
            "data": {
                "source": "csv",
                "path": str(path),
                "separator": "\\t" if sep == "\t" else sep,
                "header": header,
                "columns": dict(zip(["user", "item", "rating", "timestamp"], names, strict=True)),
                "split": {"method": method},
            },
            "model": {"type": "popularity"},
            "train": {"early_stopping": {"metric": "HR@1"}},
            "eval": {"k": [1], "sampled_negatives": 1},
            "run": {"dir": str(Path(tmp) / "runs")},
        }
        (Path(tmp) / "fuzz.yaml").write_text(yaml.safe_dump(config))
        return run_ncf(["train", str(Path(tmp) / "fuzz.yaml")], Path(tmp) / "runs")


# -- configs ---------------------------------------------------------------------------------


def _schema_defaults() -> dict[str, str]:
    """Every key of the schema (sections too) with its default written as YAML."""
    from pydantic import BaseModel

    from ncf.config import Config

    defaults: dict[str, str] = {}

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, field in model.model_fields.items():
            value = field.get_default(call_default_factory=True)
            if isinstance(value, BaseModel):
                value = value.model_dump(mode="json")
            text = yaml.safe_dump(value, default_flow_style=True, width=10**6)
            defaults[prefix + name] = text.removesuffix("\n...\n").strip()
            if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
                walk(field.annotation, f"{prefix}{name}.")

    walk(Config, "")
    return defaults


DEFAULTS = _schema_defaults()
KEYS = st.sampled_from([*DEFAULTS, "train.bogus", "nope", "data.synthetic.users.x", ""])
VALUES = st.sampled_from(
    [
        "0", "-1", "1", "2", "7", "1000000000000", "0.5", "1e-3", "-0.0", "true", "false",
        "null", "~", ".inf", "-.inf", ".nan", "abc", "''", "[]", "[1, 2]", "[true]",
        "[64, 32]", "[-4]", "{a: 1}", "[[1]]", "sampled", "full", "[sampled]", "neumf",
        "popularity", "csv", "&a [*a]", "!!binary aGk=", "!!python/object:os.system", "[",
        "{", "'unclosed", "\t", "1:2", "10", "NDCG@10", "x/HR@5",
    ]
)  # fmt: skip


@st.composite
def override(draw) -> str:
    """``KEY=VALUE``: a value as a user might type it, or (half the time) the key's default."""
    key = draw(KEYS)
    leaf = key in DEFAULTS and not DEFAULTS[key].startswith("{")  # a section resets TINY
    if leaf and key != "data.source" and draw(st.booleans()):
        return f"{key}={DEFAULTS[key]}"
    return f"{key}={draw(VALUES | st.text(max_size=6))}"


OVERRIDES = st.lists(override(), min_size=1, max_size=4)


def test_fuzzed_overrides_give_stats_or_exit_2():
    outcomes: Counter[int] = Counter()

    @fuzz(OVERRIDE_CASES)
    @given(overrides=OVERRIDES)
    def one(overrides):
        with tempfile.TemporaryDirectory() as tmp:
            sets = set_args(*TINY, *overrides, f"run.dir={tmp}/runs")
            argv = ["data", "stats", str(QUICKSTART), *sets, "--json"]
            outcomes[run_ncf(argv, Path(tmp) / "runs")] += 1

    one()
    assert sum(outcomes.values()) == OVERRIDE_CASES
    assert outcomes[0] >= OVERRIDE_CASES // 10 and outcomes[2] >= OVERRIDE_CASES // 2, outcomes


# Mostly values that train, so that most cases reach a fit; one key at most gets a bad value.
TRAINING = {
    "model.type": ["mf", "gmf", "mlp", "neumf"],
    "model.embedding_dim": ["1", "4", "16"],
    "model.mlp_layers": ["[8]", "[16, 8]", "[6, 4, 2]"],
    "model.tower_layers": ["[]", "[4]"],
    "train.loss": ["bce", "bpr"],
    "train.optimizer": ["adam", "sgd", "adagrad", "rmsprop"],
    "train.lr_schedule": ["constant", "exponential", "cosine"],
    "train.num_negatives": ["1", "4", "20"],
    "train.batch_size": ["64", "512", "100000"],
}
BAD = ["0", "-5", "true", ".inf", "[7, 2]", "[]", "mse", "100000000000", "{a: 1}", "149"]


@st.composite
def training_options(draw) -> list[str]:
    options = {key: draw(st.sampled_from(values)) for key, values in TRAINING.items()}
    if draw(st.booleans()):
        options[draw(st.sampled_from(sorted(TRAINING)))] = draw(st.sampled_from(BAD))
    return [f"{key}={value}" for key, value in options.items()]


def test_fuzzed_training_configs_train_or_exit_2():
    outcomes: Counter[int] = Counter()

    @fuzz(TRAIN_CASES)
    @given(options=training_options())
    def one(options):
        with tempfile.TemporaryDirectory() as tmp:
            sets = set_args(*TINY, *options, "train.epochs=1", f"run.dir={tmp}/runs")
            outcomes[run_ncf(["train", str(QUICKSTART), *sets], Path(tmp) / "runs")] += 1

    one()
    assert sum(outcomes.values()) == TRAIN_CASES and outcomes[0] >= 1, outcomes

"""User mistakes in data and configs: one clear line, exit status 2, nothing half-written.

Each case is one the issue found accepted silently or answered with a traceback; they run
``ncf`` in-process (``ncf.cli.main``), the way the CLI runs them, minus a process start.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from conftest import QUICKSTART, set_args

from ncf.cli import main
from ncf.config import load_config

QUICK = str(QUICKSTART)
SMALL_EVAL = ["eval.k=[1]", "eval.sampled_negatives=1", "train.early_stopping.metric=HR@1"]


def _csv_args(tmp_path: Path, text: str, *extra: str) -> list[str]:
    """``--set`` arguments reading ``text`` as a CSV file, runs under ``tmp_path/runs``."""
    path = tmp_path / "data.csv"
    path.write_text(text, encoding="utf-8")
    options = ["data.source=csv", f"data.path={path}", f"run.dir={tmp_path / 'runs'}"]
    return set_args(*options, *SMALL_EVAL, *extra)


def _error(capsys) -> str:
    """The one line ncf printed on stderr (fails when there is not exactly one)."""
    err = capsys.readouterr().err
    assert err.startswith("ncf: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err.removeprefix("ncf: error: ").strip()


def _nothing_written(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    assert not runs.exists() or not [p for p in runs.rglob("*") if p.is_file()]


# -- data ------------------------------------------------------------------------------------


def _rows(fmt: str = "u{u},i{i}") -> str:
    """5 users with 3 of 5 items each (so every user has items left to sample as negatives)."""
    return "".join(fmt.format(u=u, i=(u + j) % 5, j=j) + "\n" for u in range(5) for j in range(3))


GRID = _rows()  # 15 lines


def test_ids_are_kept_exactly_as_written(tmp_path):
    from ncf.data.dataset import load_dataset

    text = "user,item\n" + GRID + " u0,i0\n u0,i1\nu1, i2\n"
    config = load_config(QUICK, _csv_args(tmp_path, text)[1::2])
    users = load_dataset(config).interactions.users.ids.tolist()
    items = load_dataset(config).interactions.items.ids.tolist()
    assert " u0" in users and "u0" in users and len(users) == 6
    assert " i2" in items and "i2" in items and len(items) == 6


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "user,item\n" + GRID + "u1,i1,extra\n",
            "data.csv line 17: 3 fields, but the header has 2",
        ),
        ("user,item,rating\nu0,i0,5\nu1,i1\n", "data.csv line 3: 2 fields, but the header has 3"),
        ("u0,i0\nu1,i1,2,3\n", "data.csv line 2: 4 fields, but the first line has 2"),
        ("user,item\n" + GRID + "u1,i1,\n", "data.csv line 17: 3 fields"),  # a trailing comma
    ],
)
def test_rows_with_other_field_counts_are_errors_naming_the_line(tmp_path, capsys, text, message):
    header = "true" if text.startswith("user") else "false"
    columns = [] if header == "true" else ["data.columns.user=0", "data.columns.item=1"]
    args = _csv_args(tmp_path, text, f"data.header={header}", *columns)
    assert main(["data", "stats", QUICK, *args]) == 2
    assert message in _error(capsys)


def test_a_quoted_separator_is_part_of_its_field(tmp_path, capsys):
    text = "user,item,title\n" + _rows('u{u},i{i},"a, b"')
    assert main(["data", "stats", QUICK, *_csv_args(tmp_path, text), "--json"]) == 0
    assert '"users": 5' in capsys.readouterr().out


def test_a_timestamp_out_of_range_is_an_error_without_numpy_warnings(tmp_path, capsys):
    text = "user,item,ts\n" + _rows("u{u},i{i},{j}000") + "u9,i1,1e30\n"
    args = _csv_args(tmp_path, text, "data.columns.timestamp=ts")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the old cast warned twice, then went on
        assert main(["data", "stats", QUICK, *args]) == 2
    assert "data.csv line 17: timestamp '1e30' is out of range" in _error(capsys)


def test_millisecond_timestamps_are_in_range(tmp_path, capsys):
    rows = _rows("u{u},i{i},17000000000{j}0")
    args = _csv_args(tmp_path, "user,item,ts\n" + rows, "data.columns.timestamp=ts")
    assert main(["data", "stats", QUICK, *args]) == 0


def test_a_split_without_test_cases_is_an_error(tmp_path, capsys):
    one_each = "user,item\n" + "".join(f"u{u},i{u % 3}\n" for u in range(6))
    args = _csv_args(tmp_path, one_each, "model.type=popularity")
    assert main(["train", QUICK, *args]) == 2
    assert (
        "the split has no test cases (data.split.method leave_one_out: a user needs at least 2"
        in (_error(capsys))
    )
    _nothing_written(tmp_path)


def test_a_split_without_validation_cases_is_an_error_unless_validation_is_off(tmp_path, capsys):
    two_each = "user,item\n" + "".join(f"u{u},i{i}\n" for u in range(4) for i in range(2))
    two_each += "u9,i2\n"
    args = _csv_args(tmp_path, two_each, "model.type=popularity")
    assert main(["train", QUICK, *args]) == 2
    err = _error(capsys)
    assert "the split has no validation cases" in err and "data.split.validation: false" in err
    _nothing_written(tmp_path)
    assert main(["train", QUICK, *args, "--set", "data.split.validation=false"]) == 0


# -- configs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.epochs=true", "train.epochs: expected a number, got true"),
        ("train.learning_rate=.inf", "train.learning_rate: Input should be a finite number"),
        ("train.learning_rate=.nan", "train.learning_rate: Input should be a finite number"),
        ("train.refit=1", "train.refit: expected true or false, got 1"),
        ("eval.k=[5,false]", "eval.k: expected a number, got [5, false]"),
        ("model.mlp_layers=" + "[" * 600 + "]" * 600, "the value is nested too deeply"),
    ],
)
def test_config_values_pydantic_or_yaml_would_bend_are_refused(override, message, capsys):
    assert main(["data", "stats", QUICK, "--set", override]) == 2
    assert message in _error(capsys)


@pytest.mark.parametrize(
    "text, message",
    [
        ("train:\n  epochs: 3\n  batch_size: 64\n  epochs: 5\n", "line 4, column 3: "),
        (
            "train:\n  epochs: 3\neval:\n  k: [5]\ntrain:\n  epochs: 5\n",
            "key 'train' is given twice",
        ),
        ("a: " + "[" * 1000 + "]" * 1000 + "\n", "nested too deeply"),
        (
            "".join("  " * i + f"k{i}:\n" for i in range(1000)) + "  " * 1000 + "v: 1\n",
            "too deeply",
        ),
        (
            "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n"
            + "".join(
                f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]\n"
                for p, c in zip("abcd", "bcde", strict=True)
            )
            + "f: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n",
            "too large (more than 100000 values",
        ),
    ],
)
def test_yaml_files_that_are_ambiguous_or_hostile_are_refused(tmp_path, capsys, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    assert main(["data", "stats", str(path)]) == 2
    err = _error(capsys)
    assert err.startswith(f"{path}: ") and message in err


def test_a_duplicate_key_names_both_lines(tmp_path, capsys):
    path = tmp_path / "dup.yaml"
    path.write_text("train:\n  epochs: 3\n  epochs: 5\n")
    assert main(["data", "stats", str(path)]) == 2
    assert "line 3, column 3: malformed YAML: key 'epochs' is given twice (first on line 2)" in (
        _error(capsys)
    )


def test_yaml_merge_keys_may_override_what_they_merge(tmp_path):
    path = tmp_path / "merge.yaml"
    path.write_text("train:\n  <<: {epochs: 3, batch_size: 64}\n  epochs: 2\n")
    config = load_config(path)
    assert (config.train.epochs, config.train.batch_size) == (2, 64)


def test_export_default_k_is_checked_against_the_catalogue():
    config = load_config(QUICK, ["export.default_k=1001"])  # training does not depend on it
    config.check_export(1001)
    with pytest.raises(ValueError, match=r"export.default_k=1001 is larger than the catalogue"):
        config.check_export(1000)


@pytest.mark.parametrize("sep", [",", "::"])
@pytest.mark.parametrize("eol", ["\n", "\r\n"])
def test_field_counts_are_exact_across_blocks_and_blank_lines(tmp_path, monkeypatch, sep, eol):
    """A slow obvious reference (Python's line splitting) against the block-wise count."""
    from ncf.data.sources import fields
    from ncf.errors import DataError

    monkeypatch.setattr(fields, "BLOCK", 7)  # many blocks, lines cut anywhere
    lines = [sep.join(["user", "item"])] + [sep.join([f"u{n}", f"i{n}"]) for n in range(40)]
    lines[5:5] = ["", ""]  # blank lines count as lines and are skipped
    for bad in (3, 17, 41):
        wrong = [*lines[:bad], sep.join(["u", "i", "extra"]), *lines[bad:]]
        path = tmp_path / "data.csv"
        path.write_text(eol.join(wrong) + eol, newline="")
        expected_line = next(
            n for n, text in enumerate(path.read_text().splitlines(), 1) if "extra" in text
        )
        with pytest.raises(DataError, match=rf"data.csv line {expected_line}: 3 fields"):
            fields.check_field_counts(path, sep, header=True)
    path.write_text(eol.join(lines), newline="")  # no line break at the end: still fine
    fields.check_field_counts(path, sep, header=True)

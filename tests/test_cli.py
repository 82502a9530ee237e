"""The ncf command: exit statuses, one-line errors, and the report commands."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import QUICKSTART, TINY
from conftest import set_args as sets

from ncf.cli import main

QUICK = str(QUICKSTART)


COMMANDS = (
    "data",
    "train",
    "launch",
    "evaluate",
    "compare",
    "export",
    "recommend",
    "similar",
    "serve",
)


def test_help_lists_every_subcommand():
    ncf = Path(sys.executable).with_name("ncf")
    result = subprocess.run([str(ncf), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    # "    train     train a model ..." (a long name puts its summary on the next line)
    listed = dict(re.findall(r"^    (\w+)\s+(\S[^\n]*)", result.stdout, flags=re.M))
    for command in COMMANDS:
        assert command in listed, f"{command} missing from ncf --help:\n{result.stdout}"


def test_data_stats_quickstart_json(capsys):
    assert main(["data", "stats", QUICK, "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["users"] == 2000 and stats["items"] <= 1000
    assert stats["split"]["test"] == stats["split"]["test_users"]
    assert stats["split"]["candidates_per_case"] == 100
    assert stats["interactions_per_user"]["min"] >= 1


def test_data_stats_of_the_ncf_files_layout_counts_not_flags(tmp_path, capsys):
    users = range(6)
    train = "".join(f"{u}\t{i}\t1\t{10 * i}\n" for u in users for i in range(u % 3, u % 3 + 4))
    train += "x\t6\t1\t1\nx\t7\t1\t2\n"  # a user without a test case
    (tmp_path / "train.rating").write_text(train)
    (tmp_path / "test.rating").write_text("".join(f"{u}\t9\t1\t99\n" for u in users))
    negatives = "".join(f"({u},9)\t6\t7\n" for u in users)
    (tmp_path / "test.negative").write_text(negatives)
    options = ["data.source=ncf", f"data.path={tmp_path}", "eval.sampled_negatives=2", "eval.k=[1]"]
    assert main(["data", "stats", QUICK, *sets(*options), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert "fixed_split" not in stats["dropped"] and "test_cases_from_files" not in stats["dropped"]
    assert stats["split"]["test_cases_from_files"] == 6
    # item 9 is only ever a test item: cold against train and against train + validation
    assert stats["cold_items_in_test"]["vs_train"] == {"items": 1, "cases": 6}
    assert stats["cold_items_in_test"]["vs_train_and_val"] == {"items": 1, "cases": 6}
    assert main(["data", "stats", QUICK, *sets(*options)]) == 0
    out = capsys.readouterr().out
    assert "the test cases and their negatives are those of the data files" in out
    assert "1 test item never seen in train (6 cases)" in out


@pytest.mark.realdata
def test_data_stats_counts_ml100k_time_ties(data_dir, monkeypatch, capsys):
    monkeypatch.setenv("NCF_DATA_DIR", str(data_dir))
    config = str(QUICKSTART.parent / "ml-100k" / "neumf.yaml")
    assert main(["data", "stats", config, "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["time_ties"] == {"users_with_one_timestamp": 0, "test_cases_tied_in_time": 415}
    assert stats["cold_items_in_test"]["vs_train"] == {"items": 3, "cases": 3}


def test_data_stats_table(capsys):
    assert main(["data", "stats", QUICK, *sets(*TINY)]) == 0
    out = capsys.readouterr().out
    assert "users         300" in out and "split" in out
    assert "time order" not in out  # the synthetic data has timestamps


def test_data_stats_says_when_the_data_has_no_time_order(tmp_path, capsys):
    rows = "".join(f"u{u},i{(u * 7 + k) % 40}\n" for u in range(30) for k in range(5))
    (tmp_path / "plays.csv").write_text("user,item\n" + rows)
    options = ["data.source=csv", f"data.path={tmp_path / 'plays.csv'}", "eval.sampled_negatives=5"]
    assert main(["data", "stats", QUICK, *sets(*options)]) == 0
    out = capsys.readouterr().out
    assert "time order    none (no timestamp column): each user's test and validation cases" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["data", "stats", "missing.yaml"], "missing.yaml: config file not found"),
        (["data", "stats", QUICK, "--set", "train.bogus=1"], "train.bogus: unknown key"),
        (
            ["data", "stats", QUICK, "--set", "data.source=csv", "--set", "data.path=/nope.csv"],
            "/nope.csv",
        ),
        (["evaluate", "/nonexistent-run"], "not a run directory"),
        (["train"], "needs a CONFIG"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("ncf: error: ") and message in err
    assert "Traceback" not in err


def test_bad_config_in_a_real_process_has_no_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  type: [unclosed\n")
    result = subprocess.run(
        [sys.executable, "-m", "ncf.cli", "data", "stats", str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert (
        "bad.yaml: line 3" in result.stderr
        and "starts at line 2" in result.stderr
        and "Traceback" not in result.stderr
    )
    assert result.stdout == ""


IMPORTS_AFTER = """
import contextlib, io, sys
from ncf.cli import main
out, status = io.StringIO(), 0
with contextlib.redirect_stdout(out):
    try:
        status = main(sys.argv[1:])
    except SystemExit as exc:  # --help
        status = exc.code
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"tensorflow", "keras", "tensorboard", "tensorflow_datasets", "matplotlib"})
print(status, len(out.getvalue()) > 100, "heavy:", ",".join(heavy))
"""


@pytest.mark.parametrize("args", [["--help"], ["train", "--help"], ["data", "stats", QUICK]])
def test_help_and_data_stats_do_not_import_tensorflow(args):
    """(scipy.sparse, about 0.13 s, is imported with the config: the classical families'
    modules, which declare their config sections, compute with it.)"""
    result = subprocess.run(
        [sys.executable, "-c", IMPORTS_AFTER, *args], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0 True heavy:", result.stdout[-200:]


# Runs the ncf command as its console script does and reports, from an atexit handler (the
# last code before the interpreter's final garbage collection), what that collection would
# have to walk.
COUNT_AT_EXIT = """
import atexit, gc, sys
atexit.register(lambda: print(f"at exit: {gc.get_freeze_count()} frozen, {len(gc.get_objects())} tracked"))
from ncf.cli import run
run(sys.argv[1:])
"""


@pytest.mark.parametrize("ok", [True, False])
def test_the_command_leaves_its_objects_out_of_the_final_garbage_collection(tmp_path, ok):
    """The slow exit (seconds to tens of seconds after the last line) was the interpreter's
    last garbage collection walking the objects TensorFlow and Keras create; the command
    freezes them once its output is out, and keeps its exit status."""
    extra = [] if ok else ["train.early_stopping.metric=NDCG@50"]  # a user mistake: status 2
    args = ["train", QUICK, *sets(f"run.dir={tmp_path}", *TINY, "train.epochs=1", *extra)]
    result = subprocess.run(
        [sys.executable, "-c", COUNT_AT_EXIT, *args], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == (0 if ok else 2), result.stderr
    frozen, tracked = map(
        int, re.findall(r"at exit: (\d+) frozen, (\d+) tracked", result.stdout)[0]
    )
    assert tracked < 1_000, result.stdout[-300:]
    assert frozen > (100_000 if ok else 10_000)  # with TensorFlow loaded, hundreds of thousands


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("cli")
    common = [
        f"run.dir={base}",
        *TINY,
        "train.epochs=1",
        "eval.k=[10]",
        "eval.sampled_negatives=50",
    ]
    assert main(["train", QUICK, *sets(*common, "model.type=popularity", "run.name=pop")]) == 0
    assert main(["train", QUICK, *sets(*common, "model.type=itemknn", "run.name=knn")]) == 0
    assert (
        main(
            [
                "train",
                QUICK,
                *sets(*common, "model.type=popularity", "run.name=other", "run.seed=7"),
            ]
        )
        == 0
    )
    return {name: next((base / name).iterdir()) for name in ("pop", "knn", "other")}


def test_evaluate_matches_training_metrics(two_runs, capsys):
    capsys.readouterr()
    assert main(["evaluate", str(two_runs["knn"]), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    saved = json.loads((two_runs["knn"] / "metrics.json").read_text())["test"]
    for protocol in ("sampled", "full"):
        assert again[protocol]["HR@10"] == pytest.approx(saved[protocol]["HR@10"], abs=1e-9)
    assert main(["evaluate", str(two_runs["knn"]), "--protocol", "full", "--k", "5,10"]) == 0
    out = capsys.readouterr().out
    assert "sampled" not in out.split("\n", 1)[1]
    header, five, ten = out.splitlines()[1:4]  # one row per cut-off, every metric
    assert header.split() == ["protocol", "K", "HR", "NDCG", "Recall", "Precision", "MAP",
                              "Coverage", "MeanPopularity", "MRR"]  # fmt: skip
    assert five.split()[:2] == ["full", "5"] and ten.split()[:2] == ["full", "10"]
    assert float(ten.split()[2]) == pytest.approx(saved["full"]["HR@10"], abs=1e-4)
    assert float(ten.split()[8]) == pytest.approx(saved["full"]["MeanPopularity@10"], abs=0.05)


def test_compare_writes_table_csv_and_chart(two_runs, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["compare", str(two_runs["pop"]), str(two_runs["knn"]), "--out", str(out)]) == 0
    table = (out / "comparison.md").read_text()
    assert "popularity" in table and "itemknn" in table and "sampled HR@10" in table
    rows = list(csv.DictReader((out / "comparison.csv").open()))
    assert [r["model"] for r in rows] == ["popularity", "itemknn"]
    for row, name in zip(rows, ("pop", "knn"), strict=True):
        saved = json.loads((two_runs[name] / "metrics.json").read_text())["test"]
        for protocol in ("sampled", "full"):
            for metric in ("HR@10", "NDCG@10", "MRR"):
                value = saved[protocol][metric]
                assert float(row[f"{protocol} {metric}"]) == value, (name, protocol, metric)
                assert f"| {value:.4f} |" in table
    # one held-out item per case: 0 < NDCG@10 <= HR@10 once any case is ranked in the top 10
    assert 0 < float(rows[1]["full NDCG@10"]) <= float(rows[1]["full HR@10"])
    saved = json.loads((two_runs["knn"] / "metrics.json").read_text())["test"]["full"]
    assert float(rows[1]["full Coverage@10"]) == pytest.approx(saved["Coverage@10"])
    assert float(rows[1]["full MeanPopularity@10"]) == pytest.approx(saved["MeanPopularity@10"])
    assert "full Coverage@10" in table and "full MeanPopularity@10" in table
    assert (out / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_refuses_runs_on_different_splits(two_runs, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["compare", str(two_runs["pop"]), str(two_runs["other"]), "--out", str(out)]) == 2
    assert "split fingerprints differ" in capsys.readouterr().err
    assert not out.exists()

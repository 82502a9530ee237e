"""Every ``ncf`` subcommand in fresh processes, as a user runs it.

For every model type ``ncf train`` (under umask 027, so the run's files must come out 0640
and its folders 0750) and ``ncf evaluate`` each run in their own process: these load a model
of that type through ncf's own classes, and ``ncf evaluate`` of a neural run once failed in
exactly such a process (the model classes were not registered yet) while in-process tests
passed. For one neural and one baseline type (``FRESH``) the rest of the path runs the same
way: ``compare``, ``export``, ``recommend`` and ``similar``. The other types' exports and
queries are checked in-process by tests/test_export.py, and ``ncf serve`` by
tests/test_serving.py: every process pays about 4 s of CPU to import TensorFlow, and the full
7 x 7 matrix would cost about 175 s of CPU against about 100 s for this file.

Each model type is one test (tiny data, one epoch) so that pytest-xdist spreads them over
its workers; nothing is shared between them.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import QUICKSTART, TINY, set_args

TYPES = ("mf", "gmf", "mlp", "neumf", "itemknn", "userknn", "popularity")
FRESH = {"neumf", "itemknn"}
NEURAL = {"mf", "gmf", "mlp", "neumf"}
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
NCF = [sys.executable, "-m", "ncf.cli"]


def ncf(*args: str, expect: int = 0) -> subprocess.CompletedProcess:
    """``ncf ARGS`` in a new process under umask 027; asserts its exit status."""
    done = subprocess.run(
        [*NCF, *args],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=lambda: os.umask(0o027),
    )
    assert done.returncode == expect, f"ncf {' '.join(args)}\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr
    return done


def test_data_stats_in_a_fresh_process():
    done = ncf("data", "stats", str(QUICKSTART), *set_args(*TINY), "--json")
    stats = json.loads(done.stdout)
    assert stats["users"] == 300 and stats["split"]["test"] == 300


@pytest.mark.parametrize("kind", TYPES)
def test_train_and_evaluate_in_fresh_processes(kind, tmp_path):
    epochs = 2 if kind in FRESH else 1  # neumf: one compiled epoch and one steady
    sets = set_args(
        f"run.dir={tmp_path / 'runs'}", *TINY, f"model.type={kind}", f"train.epochs={epochs}"
    )
    ncf("train", str(QUICKSTART), *sets)
    (run,) = (tmp_path / "runs" / "quickstart").iterdir()
    _check_permissions(run)

    evaluated = json.loads(ncf("evaluate", str(run), "--json").stdout)
    saved = json.loads((run / "metrics.json").read_text())["test"]
    for protocol in ("sampled", "full"):
        assert evaluated[protocol]["NDCG@10"] == pytest.approx(saved[protocol]["NDCG@10"], abs=1e-6)
    if kind in FRESH:
        _export_and_query(kind, run, tmp_path)


def _export_and_query(kind: str, run: Path, tmp_path: Path) -> None:
    """compare, export, recommend and similar, each in its own process."""
    report = ncf("compare", str(run), "--out", str(tmp_path / "report")).stdout
    assert kind in report and (tmp_path / "report" / "comparison.png").is_file()
    # the steady seconds per epoch (compilation apart) and the first epoch's, as metrics.json
    (row,) = csv.DictReader((tmp_path / "report" / "comparison.csv").open())
    metrics = json.loads((run / "metrics.json").read_text())
    if kind in NEURAL:
        assert float(row["s/epoch"]) == pytest.approx(metrics["seconds_per_epoch"]["epoch"])
        first = metrics["first_epoch_seconds"]["epoch"]
        assert float(row["first epoch s"]) == pytest.approx(first) and first > 0
    else:  # a closed-form or one-pass fit has no epochs
        assert row["s/epoch"] == row["first epoch s"] == ""

    exports = tmp_path / "exports"
    assert (
        ncf("export", str(run), "--out", str(exports)).stdout.strip() == f"exported {exports / '1'}"
    )
    user = (run / "vocab" / "users.txt").read_text().split("\n", 1)[0]
    item = (run / "vocab" / "items.txt").read_text().split("\n", 1)[0]
    ranked = json.loads(ncf("recommend", str(exports), "--user", user, "--k", "5", "--json").stdout)
    assert ranked["user"] == user and ranked["known"] and len(ranked["items"]) == 5

    similar = ncf("similar", str(exports), "--item", item, "--k", "3", "--json")
    assert len(json.loads(similar.stdout)["items"]) == 3


def _check_permissions(run: Path) -> None:
    """Every file and folder of the run as umask 027 makes them (Keras, TensorBoard and ncf's
    own writers alike)."""
    wrong = [
        f"{path.relative_to(run)} {oct(path.stat().st_mode & 0o777)}"
        for path in [run, *run.rglob("*")]
        if path.stat().st_mode & 0o777 != (0o750 if path.is_dir() else 0o640)
    ]
    assert not wrong, wrong

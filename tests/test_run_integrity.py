"""Runs and exports read only when sealed; a resume only with the config it started with.

Issue 24's integrity cases, each replayed with the ``ncf`` command in a fresh process:

1. a run whose ``metrics.json`` is gone (a foreign ``model.keras`` copied in) is unfinished:
   ``ncf evaluate`` and ``ncf export`` refuse it instead of reporting the foreign model's
   figures; a ``metrics.json`` whose ``sha256`` key alone was removed is refused too;
2. a damaged export (``saved_model.pb`` or the variables truncated, a file replaced, the
   manifest removed) is refused by ``ncf recommend`` / ``ncf serve`` naming the file, checked
   against ``assets/checksums.json`` before TensorFlow reads anything;
3. a resume with another model config (``config.yaml`` edited, or ``--set`` on the same
   ``--run-dir``) is refused before anything is written, naming the keys that differ; the
   run then resumes with its own config;
4. the same command run again on a finished run reports the finished run and exits 0.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
from commands import RUN_SETS, ncf, refusal, snapshot, two_runs
from conftest import QUICKSTART, TINY, build_once, set_args

from ncf.errors import NcfError

SETS = [*TINY, *RUN_SETS]


@pytest.fixture(scope="module")
def runs(shared_dir) -> dict[str, Path]:
    """``B``, trained by the command of :func:`_train_args` (embedding_dim 8), ``other`` with
    embedding_dim 4, and ``export``, an export of ``B`` (:func:`commands.two_runs`)."""
    folder = build_once(shared_dir, "issue24-runs", two_runs)
    return {"B": folder / "B", "other": folder / "other", "export": folder / "exports" / "1"}


def _train_args(run: Path, *extra: str) -> list[str]:
    return [
        "train",
        str(QUICKSTART),
        "--run-dir",
        str(run),
        *set_args(*_run_dir(run), *SETS, *extra),
    ]


def _run_dir(run: Path) -> list[str]:
    return [f"run.dir={run.parent / 'runs'}"]


def _copy(source: Path, dest: Path) -> Path:
    shutil.copytree(source, dest)
    return dest


# -- 1. a run without its seal ----------------------------------------------------------------


def test_a_run_without_metrics_json_is_unfinished_and_nothing_of_it_is_read(runs, tmp_path):
    run = _copy(runs["B"], tmp_path / "B")
    (run / "metrics.json").unlink()
    shutil.copy(runs["other"] / "model.keras", run / "model.keras")  # a foreign model
    message = refusal(ncf("evaluate", str(run)))
    assert message == (
        f"{run}: the run has not finished (no metrics.json), so none of its files is read; "
        f"resume it with ncf train --resume {run}"
    )
    assert refusal(ncf("export", str(run), "--out", str(tmp_path / "x"))) == message
    assert not (tmp_path / "x").exists()


def test_a_metrics_json_that_lost_its_seal_is_refused(runs, tmp_path):
    run = _copy(runs["B"], tmp_path / "B")
    payload = json.loads((run / "metrics.json").read_text())
    del payload["sha256"]  # the file checksums stay: a seal removed, not an old run
    (run / "metrics.json").write_text(json.dumps(payload))
    message = refusal(ncf("evaluate", str(run)))
    assert message.startswith(f"{run / 'metrics.json'}: changed since the run finished")
    assert "train the run again" in message


# -- 2. a damaged export --------------------------------------------------------------------


def _truncate(path: Path, size: int) -> None:
    path.write_bytes(path.read_bytes()[:size])


def test_an_export_carries_a_manifest_that_tf_serving_need_not_read(runs):
    version = runs["export"]
    manifest = json.loads((version / "assets" / "checksums.json").read_text())
    assert set(manifest) == {"files", "sha256"}
    assert {"saved_model.pb", "assets/model.json", "assets/items.txt"} <= set(manifest["files"])
    assert any(name.startswith("variables/variables.data-") for name in manifest["files"])
    info = json.loads((version / "assets" / "model.json").read_text())
    assert info["checksums"] == "assets/checksums.json"
    # TF Serving's loader (the TF1 session loader) reads the version folder as it is
    from ncf.serve.session import SessionModel

    model = SessionModel(version)
    assert "recommend" in model.signature_defs
    model.close()


DAMAGES = {
    "saved_model.pb": ("recommend", lambda v: _truncate(v / "saved_model.pb", 5000)),
    "variables/variables.data-00000-of-00001": (
        "serve",
        lambda v: _truncate(v / "variables" / "variables.data-00000-of-00001", 1000),
    ),
    "assets/checksums.json": ("similar", lambda v: (v / "assets" / "checksums.json").unlink()),
}


@pytest.mark.parametrize("damaged", DAMAGES)
def test_a_damaged_export_is_refused_naming_the_file(runs, tmp_path, damaged):
    version = _copy(runs["export"], tmp_path / "exports" / "1")
    command, damage = DAMAGES[damaged]
    damage(version)
    user = (version / "assets" / "users.txt").read_text().splitlines()[0]
    item = (version / "assets" / "items.txt").read_text().splitlines()[0]
    args = {
        "recommend": ["recommend", str(version.parent), "--user", user],
        "serve": ["serve", str(version.parent), "--port", "0"],
        "similar": ["similar", str(version), "--item", item],
    }[command]
    message = refusal(ncf(*args))
    assert message.startswith(f"{version / damaged}: ") and "export the run again" in message


@pytest.mark.parametrize("name", ["assets/items.txt", "assets/model.json"])
def test_a_replaced_export_file_is_refused_before_tensorflow_loads(runs, tmp_path, name):
    from ncf.serve.client import Export

    version = _copy(runs["export"], tmp_path / "exports" / "1")
    path = version / name
    path.write_text(path.read_text().replace("1", "2", 1))
    with pytest.raises(NcfError, match=rf"{version / name}: changed since the export was written"):
        Export(version)


def test_an_export_written_before_manifests_loads_with_a_warning(runs, tmp_path, caplog):
    from ncf.serve.client import Export

    version = _copy(runs["export"], tmp_path / "exports" / "1")
    (version / "assets" / "checksums.json").unlink()
    info = json.loads((version / "assets" / "model.json").read_text())
    del info["checksums"]
    (version / "assets" / "model.json").write_text(json.dumps(info))
    with caplog.at_level(logging.WARNING):
        assert Export(version).num_items == info["num_items"]
    assert "written before exports carried checksums" in caplog.text


# -- 3. a resume with another config --------------------------------------------------------


def _interrupted(runs, dest: Path) -> Path:
    """B as a kill after its last checkpoint leaves it."""
    run = _copy(runs["B"], dest)
    for name in ("metrics.json", "model.keras"):
        (run / name).unlink()
    return run


def test_a_resume_with_another_model_config_is_refused_before_anything_is_written(runs, tmp_path):
    run = _interrupted(runs, tmp_path / "B")
    config = run / "config.yaml"
    saved = config.read_text()
    config.write_text(saved.replace("embedding_dim: 8", "embedding_dim: 16"))
    before = snapshot(run)
    message = refusal(ncf("train", "--resume", str(run)))
    assert message.startswith(f"{run}: its checkpoints were trained with another config")
    assert "(model.embedding_dim: 8 -> 16)" in message
    assert snapshot(run) == before
    config.write_text(saved)
    before = snapshot(run)
    message = refusal(ncf(*_train_args(run, "model.embedding_dim=16")))
    assert "(model.embedding_dim: 8 -> 16)" in message
    assert snapshot(run) == before  # config.yaml not rewritten: --resume still works
    done = ncf("train", "--resume", str(run))
    assert done.returncode == 0, done.stderr[-3000:]
    resumed = json.loads((run / "metrics.json").read_text())["test"]
    finished = json.loads((runs["B"] / "metrics.json").read_text())["test"]
    for name, value in finished["sampled"].items():
        assert resumed["sampled"][name] == pytest.approx(value, abs=1e-6), name


# -- 4. the same command again ----------------------------------------------------------------


def test_the_same_command_on_a_finished_run_reports_it_and_exits_0(runs, tmp_path):
    run = _copy(runs["B"], tmp_path / "B")
    before = snapshot(run)
    for args in (_train_args(run), ["train", "--resume", str(run)]):
        done = ncf(*args)
        assert done.returncode == 0, done.stderr[-3000:]
        assert f"{run}: this run has finished already; nothing to do" in done.stdout
        assert "test metrics (neumf)" in done.stdout and f"run directory: {run}" in done.stdout
    assert snapshot(run) == before
    message = refusal(ncf(*_train_args(run, "model.embedding_dim=16")))
    assert message == (
        f"{run} already holds a finished run of another config (model.embedding_dim: 8 -> 16); "
        "choose another --run-dir"
    )

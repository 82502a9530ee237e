"""Bad state refused loudly: corrupt checkpoints, concurrent runs, a full disk, too little memory.

Every corruption the issue lists is applied to a copy of one interrupted tiny run (killed,
in effect, right after its third and last epoch's checkpoint) and checked against
``load_state``, the function ``run_phase`` resumes through: it falls back to the intact
second epoch or stops naming the file. The cases the issue saw change a run's results are
also resumed end to end with ``ncf train --resume`` and give the uninterrupted run's metrics.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from conftest import QUICKSTART, TINY, set_args, tiny_config

from ncf.cli import main
from ncf.errors import NcfError
from ncf.train import train
from ncf.train.integrity import seal
from ncf.train.state import PREVIOUS_FILE, STATE_FILE, load_state

# Without validation every epoch is the best so far, so the folder holds epoch-0002/0003.keras
# and best-0002/0003.weights.h5 whatever the data: each file has an intact predecessor.
RUN = ["train.epochs=3", "data.split.validation=false"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run whose metrics every resumed copy must reproduce."""
    return train(tiny_config(tmp_path_factory.mktemp("reference"), *RUN), verbose=0)


def interrupted(reference, dest: Path) -> Path:
    """A copy of the reference run as a kill after its last checkpoint leaves it."""
    shutil.copytree(reference.run_dir, dest)
    for name in ("metrics.json", "model.keras"):
        (dest / name).unlink()
    return dest


def _flip(path: Path, start: int, stop: int) -> None:
    data = bytearray(path.read_bytes())
    data[start:stop] = bytes(b ^ 0xFF for b in data[start:stop])
    path.write_bytes(bytes(data))


def _edit_state(folder: Path, reseal: bool, **changes) -> None:
    payload = json.loads((folder / STATE_FILE).read_text())
    payload.update(changes)
    if reseal:
        payload = seal({k: v for k, v in payload.items() if k != "sha256"})
    (folder / STATE_FILE).write_text(json.dumps(payload))


def _outside_checkpoint(folder: Path) -> None:
    """state.json names a valid model file outside the folder, with its right checksum."""
    from ncf.train.integrity import file_sha256

    outside = folder.parent / "elsewhere.keras"
    shutil.copy(folder / "epoch-0003.keras", outside)
    name = str(outside)
    _edit_state(folder, True, checkpoint=name, checksums={name: file_sha256(outside)})


CORRUPTIONS = {
    "best weights, 4 KiB flipped": lambda f: _flip(f / "best-0003.weights.h5", 4096, 8192),
    "state.json epoch 99": lambda f: _edit_state(f, False, epoch=99),
    "state.json epoch 99, checksum recomputed": lambda f: _edit_state(f, True, epoch=99),
    "state.json negative epoch": lambda f: _edit_state(f, True, epoch=-1),
    "state.json truncated": lambda f: (f / STATE_FILE).write_bytes(
        (f / STATE_FILE).read_bytes()[:100]
    ),
    "state.json empty": lambda f: (f / STATE_FILE).write_bytes(b""),
    "state.json missing": lambda f: (f / STATE_FILE).unlink(),
    "state.json names a path outside": _outside_checkpoint,
    "state.json names a parent path": lambda f: _edit_state(
        f, True, checkpoint="../../config.yaml"
    ),
    "checkpoint truncated": lambda f: (f / "epoch-0003.keras").write_bytes(
        (f / "epoch-0003.keras").read_bytes()[:5000]
    ),
    "checkpoint empty": lambda f: (f / "epoch-0003.keras").write_bytes(b""),
    "checkpoint bit flipped": lambda f: _flip(f / "epoch-0003.keras", 60000, 60001),
    "checkpoint missing": lambda f: (f / "epoch-0003.keras").unlink(),
    "checkpoint a symlink": lambda f: _symlink_out(f / "epoch-0003.keras"),
}


def _symlink_out(path: Path) -> None:
    target = path.parent.parent / "moved.keras"
    path.rename(target)
    path.symlink_to(target)


@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_each_corruption_falls_back_to_the_intact_epoch(reference, tmp_path, corruption, caplog):
    folder = interrupted(reference, tmp_path / "run") / "checkpoints"
    assert load_state(folder).epoch == 3  # intact: the newest generation
    CORRUPTIONS[corruption](folder)
    with caplog.at_level(logging.WARNING, logger="ncf"):
        state = load_state(folder)
    assert state.epoch == 2 and len(state.history) == 2
    assert "resuming from the intact checkpoint of epoch 2" in caplog.text
    assert str(folder) in caplog.text  # the warning names the bad file
    # state.json is the intact generation again, so the next epoch rotates it normally
    assert json.loads((folder / STATE_FILE).read_text())["epoch"] == 2
    assert load_state(folder).epoch == 2


@pytest.mark.parametrize(
    "first, second, named",
    [
        ("state.json truncated", "previous checkpoint empty", "state.json"),
        ("checkpoint empty", "previous checkpoint empty", "epoch-0003.keras"),
        ("best weights, 4 KiB flipped", "previous best weights flipped", "best-0003"),
    ],
)
def test_no_intact_generation_stops_naming_the_file(reference, tmp_path, first, second, named):
    folder = interrupted(reference, tmp_path / "run") / "checkpoints"
    more = {
        "previous checkpoint empty": lambda f: (f / "epoch-0002.keras").write_bytes(b""),
        "previous best weights flipped": lambda f: _flip(f / "best-0002.weights.h5", 0, 4096),
    }
    CORRUPTIONS.get(first, lambda f: None)(folder)
    (CORRUPTIONS | more)[second](folder)
    before = sorted(p.name for p in folder.iterdir())
    with pytest.raises(NcfError, match=rf"cannot resume from .*{named}.*--fresh"):
        load_state(folder)
    assert sorted(p.name for p in folder.iterdir()) == before  # nothing rewritten


def test_state_written_before_checksums_still_resumes(reference, tmp_path, caplog):
    folder = interrupted(reference, tmp_path / "run") / "checkpoints"
    payload = json.loads((folder / STATE_FILE).read_text())
    del payload["sha256"], payload["checksums"]
    (folder / STATE_FILE).write_text(json.dumps(payload))
    with caplog.at_level(logging.WARNING, logger="ncf"):
        assert load_state(folder).epoch == 3
    assert "written before checkpoints carried checksums" in caplog.text


def _test_metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())["test"]


@pytest.mark.parametrize("corruption", ["best weights, 4 KiB flipped", "state.json epoch 99"])
def test_resume_after_corruption_gives_the_uninterrupted_metrics(
    reference, tmp_path, corruption, capsys
):
    """The two corruptions that used to change results silently (NDCG@10 0.33855 vs
    0.33862; 4 of 8 epochs) now fall back to epoch 2 and retrain epoch 3 exactly."""
    run = interrupted(reference, tmp_path / "run")
    CORRUPTIONS[corruption](run / "checkpoints")
    assert main(["train", "--resume", str(run)]) == 0
    out = capsys.readouterr().out
    assert "resuming from the intact checkpoint of epoch 2" in out
    metrics = json.loads((run / "metrics.json").read_text())
    assert len(metrics["history"]) == 3
    _assert_same_metrics(metrics["test"], reference.metrics["test"])


def _assert_same_metrics(got: dict, want: dict) -> None:
    assert set(got) == set(want)
    for protocol, values in want.items():
        for name, value in values.items():
            assert got[protocol][name] == pytest.approx(value, abs=1e-6), (protocol, name)


def test_resume_with_no_intact_checkpoint_exits_2_naming_the_file(reference, tmp_path, capsys):
    run = interrupted(reference, tmp_path / "run")
    (run / "checkpoints" / STATE_FILE).write_text("{")
    (run / "checkpoints" / PREVIOUS_FILE).write_text("")
    assert main(["train", "--resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("ncf: error: cannot resume from ")
    assert f"{run / 'checkpoints' / STATE_FILE}: not valid JSON" in err
    assert not (run / "metrics.json").exists()


# -- a finished run is sealed: what evaluation, export, update and forget read ----------------


def _edit_metrics(run: Path) -> None:
    payload = json.loads((run / "metrics.json").read_text())
    payload["test"]["sampled"]["HR@10"] = 0.99
    (run / "metrics.json").write_text(json.dumps(payload))


FINISHED_CORRUPTIONS = {
    "model.keras": lambda run: _flip(run / "model.keras", 2000, 2064),
    "split.npz": lambda run: (run / "split.npz").unlink(),
    "items.txt": lambda run: (run / "vocab" / "items.txt").write_text("a\nb\n"),
    "metrics.json": _edit_metrics,
}


def test_a_finished_run_records_the_checksum_of_every_file_it_is_read_from(reference):
    from ncf.train.integrity import file_sha256

    files = json.loads((reference.run_dir / "metrics.json").read_text())["files"]
    assert {"model.keras", "split.npz", "config.yaml", "data.json", "vocab/items.txt"} <= set(files)
    assert not any(name.startswith(("checkpoints/", "tensorboard/")) for name in files)
    assert all(file_sha256(reference.run_dir / n) == sha for n, sha in files.items())


def test_a_seal_holds_for_numpy_values_as_the_file_reads_them_back(tmp_path):
    import numpy as np

    from ncf.io import write_json
    from ncf.train.integrity import seal_run, verify_run

    (tmp_path / "model.keras").write_bytes(b"weights")
    metrics = {"best_epoch": np.int64(3), "test": {"HR@10": np.float32(0.25)}, "k": np.arange(2)}
    write_json(tmp_path / "metrics.json", seal_run(tmp_path, metrics))
    verify_run(tmp_path, json.loads((tmp_path / "metrics.json").read_text()))  # no error
    (tmp_path / "model.keras").write_bytes(b"other weights")
    with pytest.raises(Exception, match="model.keras: changed since the run finished"):
        verify_run(tmp_path, json.loads((tmp_path / "metrics.json").read_text()))


def test_an_intact_copy_of_the_finished_run_is_read(reference, tmp_path, capsys):
    """What every damaged copy below starts from: a copy of the reference run is evaluated
    (to its own figures), compared and exported, so each refusal is the damage's doing.
    In this process: a fresh ncf process per command costs seconds of TensorFlow import
    each, and fresh processes evaluating every model type are tests/test_cli_commands.py."""
    run = tmp_path / "run"
    shutil.copytree(reference.run_dir, run)
    assert main(["evaluate", str(run), "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    for protocol, values in reference.metrics["test"].items():
        for name in ("HR@10", "NDCG@10"):
            assert evaluated[protocol][name] == pytest.approx(values[name], abs=1e-6)
    assert main(["compare", str(run), "--out", str(tmp_path / "r")]) == 0
    assert (tmp_path / "r" / "comparison.csv").is_file()
    assert main(["export", str(run), "--out", str(tmp_path / "x")]) == 0
    assert (tmp_path / "x" / "1" / "saved_model.pb").is_file()


@pytest.mark.parametrize("damaged", FINISHED_CORRUPTIONS)
def test_a_damaged_finished_run_is_refused_naming_the_file(reference, tmp_path, damaged):
    """Each refusal in a fresh ncf process (cheap: it stops before TensorFlow is imported)."""
    run = tmp_path / "run"
    shutil.copytree(reference.run_dir, run)
    FINISHED_CORRUPTIONS[damaged](run)
    for command in (["evaluate", str(run)], ["export", str(run), "--out", str(tmp_path / "x")]):
        done = subprocess.run(_ncf(*command), env=ENV, capture_output=True, text=True)
        assert done.returncode == 2, done.stderr
        (line,) = _ncf_lines(done.stderr)
        assert damaged in line and "train the run again" in line, line
        assert "Traceback" not in done.stderr
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())


def test_a_run_finished_before_runs_were_sealed_is_still_read(reference, tmp_path, caplog):
    from ncf.train.rundir import RunDir

    run = tmp_path / "run"
    shutil.copytree(reference.run_dir, run)
    payload = json.loads((run / "metrics.json").read_text())
    old = {k: v for k, v in payload.items() if k not in ("sha256", "files")}
    (run / "metrics.json").write_text(json.dumps(old))
    with caplog.at_level(logging.WARNING):
        assert RunDir(run).metrics() == old
    assert "written before runs were sealed" in caplog.text


# -- one process per run directory ----------------------------------------------------------


def _ncf(*args: str) -> list[str]:
    return [sys.executable, "-m", "ncf.cli", *args]


ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}


def _ncf_lines(stderr: str) -> list[str]:
    """What ncf itself printed to stderr (TensorFlow's start-up notes are not its own)."""
    return [line for line in stderr.splitlines() if line.startswith("ncf")]


def test_a_second_train_of_the_same_run_directory_refuses(tmp_path):
    run = tmp_path / "run"
    command = _ncf(
        "train", str(QUICKSTART), "--run-dir", str(run),
        *set_args(f"run.dir={tmp_path}", *TINY, "train.epochs=500"),
    )  # fmt: skip
    first = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        while not (run / "checkpoints" / STATE_FILE).exists():  # it holds the lock, mid-run
            assert first.poll() is None, first.stderr.read().decode() if first.stderr else ""
            assert time.monotonic() < deadline, "the first run never wrote a checkpoint"
            time.sleep(0.2)
        first.send_signal(signal.SIGSTOP)  # frozen mid-run, still holding the lock
        second = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=120)
        assert second.returncode == 2, second.stderr
        assert "Traceback" not in second.stderr
        assert _ncf_lines(second.stderr) == [
            f"ncf: error: {run}: another ncf process (pid {first.pid}) is training this run; "
            "wait for it to finish or stop it, then run the command again to resume"
        ]
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=60)
    # SIGKILL released the lock: the run can be taken over (and resumed) at once
    from ncf.train.lock import guarded_run

    with guarded_run(run, created=False):
        assert (run / ".lock").read_text().strip() == str(os.getpid())


def test_two_new_runs_in_one_second_get_their_own_folders(tmp_path):
    from ncf.train.lock import claim_run_dir

    config = tiny_config(tmp_path)
    folders = {claim_run_dir(config) for _ in range(3)}
    assert len(folders) == 3 and all(p.is_dir() for p in folders)


# -- a full disk ---------------------------------------------------------------------------

# `ncf train ...` whose third epoch finds the disk full just before its checkpoint is written:
# MODE "tmpfs" fills the file system FILLER is on; "inject" makes the next rename fail ENOSPC.
DISK_FULL_RUN = """
import errno, os, sys
from ncf.cli import main
from ncf.train import callbacks
mode, filler, *argv = sys.argv[1:]
original = callbacks.Checkpointer.on_epoch_end
real_replace = os.replace

def failing_replace(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

def on_epoch_end(self, epoch, logs=None):
    if epoch == 2:
        if mode == "tmpfs":
            with open(filler, "wb") as fh:
                try:
                    while True:
                        fh.write(b"x" * (1 << 20))
                        fh.flush()
                except OSError:
                    pass
        else:
            os.replace = failing_replace
    original(self, epoch, logs)

callbacks.Checkpointer.on_epoch_end = on_epoch_end
sys.exit(main(argv))
"""


def _mount_tmpfs(path: Path) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(path)])
    return done.returncode == 0


@pytest.fixture(scope="module")
def tmpfs_works(tmp_path_factory) -> bool:
    probe = tmp_path_factory.mktemp("probe") / "mnt"
    if _mount_tmpfs(probe):
        subprocess.run(["umount", str(probe)], check=True)
        return True
    return False


def _disk_full_then_resume(reference, disk: Path, mode: str, capsys) -> None:
    sets = set_args(f"run.dir={disk / 'runs'}", *TINY, *RUN)
    filler = disk / f"filler-{uuid.uuid4().hex}"
    argv = ["train", str(QUICKSTART), *sets]
    full = subprocess.run(
        [sys.executable, "-c", DISK_FULL_RUN, mode, str(filler), *argv],
        env=ENV, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert full.returncode == 2, full.stdout + full.stderr
    (run,) = (disk / "runs" / "quickstart").iterdir()
    assert "Traceback" not in full.stderr
    assert _ncf_lines(full.stderr) == [
        f"ncf: error: {run / 'checkpoints' / 'epoch-0003.keras'}: cannot write it: No space left "
        "on device (errno 28, ENOSPC); free some space or fix the permissions, then run the same "
        "command again (an interrupted training run resumes from its last checkpoint)"
    ]
    assert load_state(run / "checkpoints").epoch == 2  # the last complete epoch, intact
    assert not [p for p in run.rglob("*") if ".tmp" in p.name]
    filler.unlink(missing_ok=True)  # space freed: the same command resumes
    capsys.readouterr()
    assert main(argv) == 0
    assert f"resuming {run}" in capsys.readouterr().out
    _assert_same_metrics(_test_metrics(run), reference.metrics["test"])


def test_disk_full_on_a_small_tmpfs_exits_2_then_resumes(reference, tmp_path, tmpfs_works, capsys):
    if not tmpfs_works:
        pytest.skip("mounting a tmpfs needs root (test_disk_full_injected covers this machine)")
    disk = tmp_path / "disk"
    assert _mount_tmpfs(disk)
    try:
        _disk_full_then_resume(reference, disk, "tmpfs", capsys)
    finally:
        subprocess.run(["umount", "-l", str(disk)])


def test_disk_full_injected_exits_2_then_resumes(reference, tmp_path, tmpfs_works, capsys):
    if tmpfs_works:
        pytest.skip("a real tmpfs fills up on this machine (test_disk_full_on_a_small_tmpfs)")
    _disk_full_then_resume(reference, tmp_path, "inject", capsys)


def test_write_errors_name_the_path_and_errno(tmp_path, monkeypatch):
    from ncf import io

    def refuse(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(io.os, "replace", refuse)
    target = tmp_path / "metrics.json"
    with pytest.raises(NcfError, match=r"metrics.json: cannot write it: .*\(errno 30, EROFS\)"):
        io.write_json(target, {"a": 1})
    with (
        pytest.raises(NcfError, match=r"model.keras: cannot write it: .*errno 30"),
        io.atomic_path(tmp_path / "model.keras") as tmp,
    ):
        tmp.write_bytes(b"x")
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind


def test_tensorflow_write_failures_are_user_errors_naming_the_folder(tmp_path):
    import tensorflow as tf

    from ncf.train.callbacks import TensorBoardWriter
    from ncf.train.state import PhaseState

    board = TensorBoardWriter(tmp_path / "tensorboard", False, PhaseState(), None)
    message = (
        "{{function_node __wrapped__WriteSummary}} /x/events.out.tfevents.1.v2; No space left "
        "on device\n\tFailed to flush 11 events to /x/events.out.tfevents.1.v2"
    )
    with pytest.raises(NcfError) as caught, board._user_errors():
        raise tf.errors.ResourceExhaustedError(None, None, message)
    assert str(caught.value).startswith(
        f"{tmp_path / 'tensorboard'}: cannot write it: No space left on device (errno 28, ENOSPC)"
    )
    board.close()


def test_files_follow_the_umask(tmp_path):
    from ncf import io

    old = os.umask(0o027)
    try:
        io.write_json(tmp_path / "a" / "state.json", {})
        with io.atomic_path(tmp_path / "b.keras") as tmp:
            tmp.write_bytes(b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "a" / "state.json").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "a").stat().st_mode & 0o777 == 0o750
    assert (tmp_path / "b.keras").stat().st_mode & 0o777 == 0o640


# -- memory and divergence -------------------------------------------------------------------


def test_a_model_too_large_for_memory_is_refused_before_anything_is_written(tmp_path, capsys):
    args = set_args(f"run.dir={tmp_path / 'runs'}", *TINY, "model.embedding_dim=1000000000")
    assert main(["train", str(QUICKSTART), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("ncf: error: not enough memory: ")
    # neumf, adam: (300 + 150) ids x (1e9 + 8) values x 4 bytes x 3, plus dense layers
    assert "model 4.9 TiB" in err and "lower model.embedding_dim" in err
    assert not (tmp_path / "runs").exists()


def test_data_too_large_for_memory_is_refused_naming_the_part(tmp_path, capsys, monkeypatch):
    from ncf.train import resources

    monkeypatch.setattr(resources, "available_memory", lambda: 100_000)
    args = ["model.type=popularity", "eval.batch_users=100000"]
    argv = ["train", str(QUICKSTART), *set_args(f"run.dir={tmp_path / 'runs'}", *TINY, *args)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert (
        "but 97.7 KiB is available; the largest part is the ranking buffers: lower eval.batch_users"
        in err
    )
    assert not (tmp_path / "runs").exists()
    assert main([*argv, "--set", "run.check_memory=false"]) == 0  # the documented way out


@pytest.mark.parametrize(
    "override",
    ["data.synthetic.interactions=10000000000000", "data.synthetic.users=10000000000000"],
)
def test_data_too_large_to_read_is_refused_before_reading(override, capsys):
    assert main(["data", "stats", str(QUICKSTART), "--set", override]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ncf: error: not enough memory to read the data: it needs about ")
    assert "lower data.synthetic.interactions" in err


def test_a_loss_that_diverges_in_epoch_1_leaves_no_run_folder(tmp_path, capsys):
    args = set_args(f"run.dir={tmp_path / 'runs'}", *TINY, "train.learning_rate=1e30")
    assert main(["train", str(QUICKSTART), *args]) == 2
    err = capsys.readouterr().err
    assert "NaN or infinite in epoch 1; no epoch completed, so there is no checkpoint" in err
    assert not [p for p in (tmp_path / "runs").rglob("*") if p.is_file()]

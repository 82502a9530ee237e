"""A full disk during ``ncf export``, ``ncf train`` and ``ncf compare``: exit 2 with one line
naming the path, and nothing half-written left behind.

Where this process may mount file systems (root), each command writes to a small tmpfs
that is really full (or, for compare, has 20 KB left: room for the table, not the chart).
Elsewhere a wrapper makes the write that would find the disk full fail with ENOSPC: the
SavedModel writer (TensorFlow's own error text), the run's lock file, the third file of the
comparison.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from commands import ncf, refusal, snapshot, two_runs
from conftest import QUICKSTART, TINY, build_once, set_args

ENOSPC = "No space left on device (errno 28, ENOSPC)"

# `ncf ARGS` whose writes find the disk full: MODE export / train / compare (see the docstring).
INJECTED = """
import errno, os, sys
mode, *argv = sys.argv[1:]
full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
if mode == "export":
    import tensorflow as tf
    from ncf.serve import servables

    def write_saved_model(servable, path):
        os.makedirs(os.path.join(path, "variables"))
        with open(os.path.join(path, "saved_model.pb"), "wb") as fh:
            fh.write(b"half")
        message = f"{path}/variables/variables_temp/part-00000; No space left on device [Op:SaveV2]"
        raise tf.errors.ResourceExhaustedError(None, None, message)

    servables.write_saved_model = write_saved_model
elif mode == "train":
    def pwrite(*args):
        raise full

    os.pwrite = pwrite
else:
    calls, real_fsync = [], os.fsync

    def fsync(fd):
        calls.append(fd)
        if len(calls) == 3:
            raise full
        real_fsync(fd)

    os.fsync = fsync
from ncf.cli import main
sys.exit(main(argv))
"""


@pytest.fixture(scope="module")
def runs(shared_dir) -> Path:
    return build_once(shared_dir, "issue24-runs", two_runs)


def _can_mount(probe: Path) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    probe.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(probe)])
    if done.returncode:
        return False
    subprocess.run(["umount", str(probe)], check=True)
    return True


@pytest.fixture(scope="module")
def tmpfs(tmp_path_factory) -> bool:
    return _can_mount(tmp_path_factory.mktemp("probe") / "mnt")


@pytest.fixture
def disk(tmp_path, tmpfs):
    """A folder on a full 4 MiB tmpfs (``tmpfs``), or a plain folder (injected faults)."""
    path = tmp_path / "disk"
    if not tmpfs:
        path.mkdir()
        yield path
        return
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)])


def _fill(disk: Path, leave: int = 0) -> Path:
    """Fill the tmpfs ``disk`` up, then free ``leave`` bytes; returns the filler file."""
    filler = disk / f"filler-{uuid.uuid4().hex}"
    with open(filler, "wb") as fh:
        try:
            while True:
                fh.write(b"x" * (1 << 16))
                fh.flush()
        except OSError:
            pass
    if leave:
        os.truncate(filler, max(0, filler.stat().st_size - leave))
    return filler


def _run(tmpfs: bool, mode: str, *args: str):
    if tmpfs:
        return ncf(*args)
    return ncf(*args, prefix=("-c", INJECTED, mode))


def test_export_on_a_full_disk_names_the_version_and_leaves_no_folder(runs, disk, tmpfs):
    filler = _fill(disk) if tmpfs else None
    message = refusal(_run(tmpfs, "export", "export", str(runs / "B"), "--out", str(disk / "exp")))
    assert message.startswith(f"{disk / 'exp' / '1'}: cannot write it: {ENOSPC}; "), message
    assert [p.name for p in disk.iterdir()] == ([filler.name] if filler else [])


def test_train_on_a_full_disk_names_the_lock_file_and_leaves_no_run(disk, tmpfs):
    filler = _fill(disk) if tmpfs else None
    sets = set_args(f"run.dir={disk / 'runs'}", *TINY, "train.epochs=1")
    run = disk / "run1"
    done = _run(tmpfs, "train", "train", str(QUICKSTART), "--run-dir", str(run), *sets)
    message = refusal(done)
    assert message.startswith(f"{run / '.lock'}: cannot write it: {ENOSPC}; "), message
    assert [p.name for p in disk.iterdir()] == ([filler.name] if filler else [])


def test_compare_with_20_kb_free_writes_none_of_its_three_files(runs, disk, tmpfs):
    old = disk / "old"
    old.mkdir()
    for name in ("comparison.md", "comparison.csv", "comparison.png"):
        (old / name).write_text("the previous report\n")
    before = snapshot(old)
    filler = _fill(disk, leave=20 << 10) if tmpfs else None
    for out in (disk / "cmp", old):
        done = _run(
            tmpfs, "compare", "compare", str(runs / "B"), str(runs / "other"), "--out", str(out)
        )
        message = refusal(done)
        assert message.startswith(f"{out / 'comparison.'}") and ENOSPC in message, message
    assert sorted(p.name for p in disk.iterdir()) == sorted(
        ["old", *([filler.name] if filler else [])]
    )
    assert snapshot(old) == before  # all three files as they were, no temporary left

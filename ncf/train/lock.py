"""One process per run directory, and no half-made run directory after a failure.

:func:`claim_run_dir` creates a fresh ``<run.dir>/<run.name>/<timestamp>`` folder with an
atomic ``mkdir``, so two runs started in the same second get different folders.
:func:`guarded_run` holds an exclusive advisory lock (``flock``) on ``RUN/.lock`` while a run
trains: a second ``ncf train`` of the same folder stops at once with an
:class:`~ncf.errors.NcfError` naming the holder's pid. The operating system releases the lock
when the holder exits in any way, SIGKILL included, so a stale lock never blocks a resume;
the ``.lock`` file stays (it holds the pid of its last holder). Where ``fcntl`` does not
exist (Windows) runs are not locked.

When the body fails (or the lock file cannot be written: a full disk), a run folder that
this run created is removed again unless a checkpoint exists (``checkpoints/state.json``): a mistake found while preparing leaves
nothing behind, and a failure after the first checkpoint leaves a run that the same command
resumes.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ncf.config import Config
from ncf.errors import NcfError
from ncf.io import make_folder, write_error

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

LOCK_FILE = ".lock"


def claim_run_dir(config: Config) -> Path:
    """Create and return a new, empty run folder for ``config`` (never one another run took)."""
    from ncf.train.rundir import new_run_dir

    while True:
        path = new_run_dir(config)
        make_folder(path.parent)
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue  # another run took this name first; new_run_dir now skips it
        except OSError as exc:
            raise write_error(path, exc) from None


@contextmanager
def guarded_run(path: Path, created: bool) -> Iterator[None]:
    """Run the body holding the lock of ``path`` (created if missing).

    Args:
        path: the run folder.
        created: this run made ``path``: remove it if the body fails before a checkpoint.
    """
    make_folder(path)
    try:
        fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        if created:
            _remove(path)
        raise write_error(path / LOCK_FILE, exc) from None
    try:
        _lock(fd, path)
        try:
            _write_pid(fd, path)
            yield
        except BaseException:
            if created and not (path / "checkpoints" / "state.json").exists():
                _remove(path)
            raise
    finally:
        os.close(fd)  # releases the lock


def _lock(fd: int, path: Path) -> None:
    if fcntl is None:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        raise NcfError(
            f"{path}: another ncf process (pid {holder}) is training this run; wait for it to "
            "finish or stop it, then run the command again to resume"
        ) from None


def _write_pid(fd: int, path: Path) -> None:
    """The holder's pid into the lock file (a full disk: an error naming the file)."""
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except OSError as exc:
        raise write_error(path / LOCK_FILE, exc) from None


def _remove(path: Path) -> None:
    """Delete the run folder this run created (its parent folders stay)."""
    log.debug(f"removing {path}: the run failed before its first checkpoint")
    shutil.rmtree(path, ignore_errors=True)

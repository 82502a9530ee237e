"""Running ``ncf`` as a user does: a fresh process, its exit status and what it printed; and
the two finished tiny runs (and an export) that issue 24's tests replay their cases on."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}


def ncf(
    *args: str, timeout: float = 300, prefix: tuple[str, ...] = ()
) -> subprocess.CompletedProcess:
    """``ncf ARGS`` in a subprocess (``prefix``: a ``python -c`` wrapper that runs it)."""
    command = [sys.executable, *prefix] if prefix else [sys.executable, "-m", "ncf.cli"]
    return subprocess.run(
        [*command, *args], env=ENV, capture_output=True, text=True, timeout=timeout
    )


def refusal(done: subprocess.CompletedProcess) -> str:
    """The one ``ncf: error:`` line of a command that exited with status 2 (the message
    only); fails when it exited otherwise, printed a traceback or more than one line."""
    assert done.returncode == 2, (done.returncode, done.stdout[-2000:], done.stderr[-2000:])
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith("ncf")]
    assert len(lines) == 1 and lines[0].startswith("ncf: error: "), done.stderr[-2000:]
    return lines[0].removeprefix("ncf: error: ")


def snapshot(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` by relative path: equal snapshots mean nothing
    was written, moved or deleted."""
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


# A tiny neural run with checkpoints: the quickstart shrunk (conftest.TINY), two epochs.
RUN_SETS = ["train.epochs=2", "train.histograms=false", "eval.protocols=[sampled]"]


def two_runs(folder: Path) -> Path:
    """``folder/B`` (embedding_dim 8; trained as ``ncf train QUICKSTART --run-dir B --set
    run.dir=folder/runs`` with TINY and :data:`RUN_SETS`), ``folder/other`` (embedding_dim 4)
    and ``folder/exports/1``, an export of B. Returns ``folder``."""
    from conftest import QUICKSTART, TINY

    from ncf.config import load_config
    from ncf.serve.export import export_run
    from ncf.train import train

    for name, extra in (("B", []), ("other", ["model.embedding_dim=4"])):
        config = load_config(QUICKSTART, [f"run.dir={folder / 'runs'}", *TINY, *RUN_SETS, *extra])
        train(config, run_dir=folder / name, verbose=0)
    export_run(folder / "B", folder / "exports")
    return folder

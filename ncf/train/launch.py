"""``ncf launch``: a multi-worker job on one machine, for trying it before a real cluster.

It starts ``N`` processes of ``ncf train CONFIG --run-dir RUN`` with
``train.distribute.strategy=multi_worker`` and a generated ``TF_CONFIG`` each (the cluster
on ``127.0.0.1``, one free port per worker, worker 0 the chief), and acts as their cluster
manager: each worker's output is printed with a ``[worker i]`` prefix; when a worker dies
(killed, crashed) the others are killed and all ``N`` are started again on fresh ports, up
to ``max_restarts`` times, and resume from the chief's last epoch checkpoint. A worker that
exits with status 2 (a user mistake such as a bad config) ends the job with status 2:
restarting would not fix it.

The lines ``[launch] worker I pid P`` name each started process (a test kills one).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from ncf.errors import ConfigError, NcfError

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports free on 127.0.0.1 now."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def tf_config(ports: Sequence[int], index: int) -> str:
    """The ``TF_CONFIG`` of worker ``index`` in a cluster of workers on ``ports``."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    return json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})


def launch(
    config_path: str,
    overrides: Sequence[str],
    workers: int,
    run_dir: str | None = None,
    max_restarts: int = 3,
) -> int:
    """Run the job to its end; returns the exit status (0, or the failing worker's)."""
    from ncf.config import load_config
    from ncf.train.rundir import new_run_dir

    if workers < 1:
        raise NcfError(f"--workers must be at least 1, got {workers}")
    overrides = [*overrides, "train.distribute.strategy=multi_worker"]
    config = load_config(config_path, overrides)  # a config mistake stops here, once
    if config.train.batch_size % workers:
        raise ConfigError(
            f"train.batch_size {config.train.batch_size} does not split evenly over {workers} "
            f"workers; use a multiple of {workers}"
        )
    path = Path(run_dir) if run_dir else new_run_dir(config)
    command = [sys.executable, "-m", "ncf.cli", "train", config_path, "--run-dir", str(path)]
    for override in overrides:
        command += ["--set", override]
    log.info(f"[launch] {workers} workers on 127.0.0.1, run directory {path}")
    # A stopped launcher takes its workers with it (the finally of _run_job kills them).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    for attempt in range(max_restarts + 1):
        status, failed = _run_job(command, workers)
        if status == 0 or status == 2:
            return status
        if attempt == max_restarts:
            log.info(f"[launch] worker {failed} failed (status {status}); no restarts left")
            return status if status > 0 else 1
        log.info(
            f"[launch] worker {failed} exited with status {status}; restarting all {workers} "
            f"workers from the last checkpoint (restart {attempt + 1} of {max_restarts})"
        )
    return 1


def _run_job(command: list[str], workers: int) -> tuple[int, int]:
    """Start the workers and wait: ``(0, -1)`` when all finish, else ``(status, worker)`` of
    the first to fail, after stopping the others."""
    ports = free_ports(workers)
    procs: list[subprocess.Popen[bytes]] = []
    pumps = []
    try:
        for index in range(workers):
            env = {**os.environ, "TF_CONFIG": tf_config(ports, index)}
            proc = subprocess.Popen(
                command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
            )
            procs.append(proc)
            log.info(f"[launch] worker {index} pid {proc.pid}")
            assert proc.stdout is not None
            pump = threading.Thread(target=_pump, args=(proc.stdout, f"[worker {index}] "))
            pump.start()
            pumps.append(pump)
        while True:
            codes = [proc.poll() for proc in procs]
            failed = [i for i, code in enumerate(codes) if code not in (None, 0)]
            if failed:
                return int(codes[failed[0]] or 1), failed[0]
            if all(code == 0 for code in codes):
                return 0, -1
            time.sleep(POLL_SECONDS)
    finally:
        _stop(procs)
        for pump in pumps:
            pump.join()


def _pump(stream: IO[bytes], prefix: str) -> None:
    for line in iter(stream.readline, b""):
        sys.stdout.write(prefix + line.decode(errors="replace"))
        sys.stdout.flush()
    stream.close()


def _stop(procs: Sequence[subprocess.Popen[bytes]]) -> None:
    """Kill (SIGKILL) every worker still running and reap them all.

    Not SIGTERM: with its coordination service on, TensorFlow takes SIGTERM for a
    preemption notice and keeps waiting in the collective (measured: still alive 10 s
    later). Nothing is lost: the job resumes from the last epoch checkpoint, whose files
    are written atomically."""
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
    for proc in procs:
        proc.wait()

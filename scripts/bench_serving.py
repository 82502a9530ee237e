"""Latency, throughput and load behaviour of an exported model's ``recommend`` signature.

Trains a model (one epoch on synthetic data with a 10,000-item catalogue by default), exports
it, starts ``ncf serve`` on 127.0.0.1 in a subprocess (as a user runs it, request log on,
written to a file) and measures:

- in process: ``recommend`` for one user, k=10, called from N threads for ``--seconds``
  through the TF1 session loader (what ``ncf serve`` and TF Serving run) and through
  ``tf.saved_model.load`` (TF2); requests per second, p50/p99;
- over HTTP: N = 16, 64, 256 keep-alive connections sending the README's row-format request
  for ``--seconds`` each, then 16 clients opening a new connection per request: requests per
  second, p50/p99/max latency, 5xx answers and unanswered requests (no complete answer within
  ``--timeout`` seconds of sending, or a refused/reset connection).

The load client is a small asyncio HTTP/1.1 client in this process, so client and server
share the machine's cores: the HTTP figures include the client's cost; the in-process ones
have none. Compare them as ratios measured in one run.

Usage::

    python scripts/bench_serving.py [--model neumf] [--items 10000] [--seconds 30]
    python scripts/bench_serving.py --export EXPORT_DIR     # measure an existing export
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def train_and_export(model: str, items: int, users: int, work: Path) -> Path:
    from ncf.config import load_config
    from ncf.serve.export import export_run
    from ncf.train import train

    overrides = [
        f"run.dir={work / 'runs'}",
        f"model.type={model}",
        f"data.synthetic.items={items}",
        f"data.synthetic.users={users}",
        f"data.synthetic.interactions={users * 50}",
        "data.synthetic.popularity_exponent=0.5",  # so that (nearly) every item is used
        "train.epochs=1",
        "train.histograms=false",
        "eval.protocols=[sampled]",
    ]
    config = load_config(REPO / "configs" / "quickstart.yaml", overrides)
    result = train(config, verbose=0)
    return export_run(result.run_dir, work / "exports" / "bench")


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    unanswered: int = 0

    def line(self, label: str, seconds: float) -> str:
        ms = np.asarray(self.latencies) * 1000 if self.latencies else np.zeros(1)
        errors = sum(n for s, n in self.statuses.items() if s >= 500)
        return (
            f"{label:<28} {len(self.latencies) / seconds:8.0f} req/s   p50 {np.percentile(ms, 50):7.1f} ms"
            f"   p99 {np.percentile(ms, 99):7.1f} ms   max {ms.max():8.1f} ms   5xx {errors}"
            f"   unanswered {self.unanswered}"
        )


def in_process(call, bodies: list, threads: int, seconds: float) -> Stats:
    """``call(body)`` from ``threads`` threads for ``seconds``."""
    stats, stop = Stats(), time.perf_counter() + seconds
    lock = threading.Lock()

    def worker(seed: int) -> None:
        rng, mine = random.Random(seed), []
        while time.perf_counter() < stop:
            start = time.perf_counter()
            call(rng.choice(bodies))
            mine.append(time.perf_counter() - start)
        with lock:
            stats.latencies.extend(mine)

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return stats


async def read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = next(
        int(ln.split(b":")[1]) for ln in lines if ln.lower().startswith(b"content-length")
    )
    await reader.readexactly(length)
    return status


async def load(
    port: int, requests: list[bytes], conns: int, seconds: float, keep_alive: bool, timeout: float
) -> Stats:
    stats, stop = Stats(), time.perf_counter() + seconds

    async def client(seed: int) -> None:
        rng, reader, writer = random.Random(seed), None, None
        while time.perf_counter() < stop:
            start = time.perf_counter()
            try:
                if writer is None:
                    reader, writer = await asyncio.wait_for(
                        asyncio.open_connection("127.0.0.1", port), timeout
                    )
                writer.write(rng.choice(requests))
                status = await asyncio.wait_for(read_response(reader), timeout)
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError):
                stats.unanswered += 1
                if writer is not None:
                    writer.close()
                reader = writer = None
                continue
            stats.latencies.append(time.perf_counter() - start)
            stats.statuses[status] = stats.statuses.get(status, 0) + 1
            if not keep_alive:
                writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    await asyncio.gather(*(client(n) for n in range(conns)))
    return stats


def http_requests(base: str, bodies: list[bytes], keep_alive: bool) -> list[bytes]:
    connection = b"keep-alive" if keep_alive else b"close"
    return [
        b"POST "
        + base.encode()
        + b":predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Connection: "
        + connection
        + b"\r\nContent-Length: "
        + str(len(b)).encode()
        + b"\r\n\r\n"
        + b
        for b in bodies
    ]


def start_server(path: Path, log: Path) -> tuple[subprocess.Popen, int, str]:
    """``ncf serve`` on a free port, its request log in a file (nothing to drain here)."""
    ncf = str(Path(sys.executable).with_name("ncf"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with log.open("w") as out:
        proc = subprocess.Popen(
            [ncf, "serve", str(path), "--port", str(port)], stdout=out, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 300
    while "serving version" not in log.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"ncf serve did not start: {log.read_text()[-2000:]}")
        time.sleep(0.2)
    line = next(ln for ln in log.read_text().splitlines() if "serving version" in ln)
    return proc, port, "/" + line.split(" at ", 1)[1].strip().split("/", 3)[3]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="neumf", help="model.type to train (default neumf)")
    parser.add_argument("--items", type=int, default=10_000, help="catalogue size")
    parser.add_argument("--users", type=int, default=3_000, help="number of users")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each load run")
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="seconds before a request counts as unanswered"
    )
    parser.add_argument("--connections", default="16,64,256", help="keep-alive connection counts")
    parser.add_argument("--export", help="measure this export instead of training one")
    args = parser.parse_args(argv)

    from ncf.serve.client import Export, resolve_export
    from ncf.serve.session import SessionModel

    with tempfile.TemporaryDirectory(prefix="ncf-bench-") as tmp:
        path = (
            resolve_export(args.export)
            if args.export
            else train_and_export(args.model, args.items, args.users, Path(tmp))
        )
        export = Export(path)
        users = export.user_ids()
        info = export.info
        print(
            f"export {info['model_type']}, {info['num_items']} items, {info['num_users']} users, exclude_seen={info['exclude_seen']}"
        )
        print(
            f"cpu cores: {os.cpu_count()}; load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
        )
        rng = np.random.default_rng(0)
        chosen = [users[i] for i in rng.integers(0, len(users), 512)]
        bodies = [
            json.dumps(
                {"signature_name": "recommend", "instances": [{"user_id": u, "k": 10}]}
            ).encode()
            for u in chosen
        ]
        session = SessionModel(path)
        session.warm_up()
        feeds = [
            {"user_id": np.array([u.encode()], dtype=object), "k": np.array([10], np.int32)}
            for u in chosen
        ]
        tf2 = export.signature("recommend")
        import tensorflow as tf

        tf2_feeds = [{"user_id": tf.constant([u]), "k": tf.constant([10])} for u in chosen]
        tf2(**tf2_feeds[0])  # the first call traces the function: not part of the figures
        counts = [int(c) for c in args.connections.split(",")]
        seconds = args.seconds
        for n in counts:
            stats = in_process(lambda f: session.run("recommend", f), feeds, n, seconds / 3)
            print(stats.line(f"in process, TF1 session, {n} thr", seconds / 3))
            stats = in_process(lambda f: tf2(**f), tf2_feeds, n, seconds / 3)
            print(stats.line(f"in process, TF2 load, {n} thr", seconds / 3))
        session.close()
        proc, port, base = start_server(path, Path(tmp) / "serve.log")
        try:
            for n in counts:
                stats = asyncio.run(
                    load(port, http_requests(base, bodies, True), n, seconds, True, args.timeout)
                )
                print(stats.line(f"HTTP keep-alive, {n} conns", seconds))
            stats = asyncio.run(
                load(port, http_requests(base, bodies, False), 16, seconds, False, args.timeout)
            )
            print(stats.line("HTTP new conn/request, 16", seconds))
        finally:
            proc.terminate()
            proc.wait(60)
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

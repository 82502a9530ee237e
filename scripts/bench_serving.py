"""Latency and throughput of an exported model's ``recommend`` signature, in process and over HTTP.

Trains a model (one epoch on synthetic data with a 10,000-item catalogue by default),
exports it, and measures:

- ``recommend`` for one user, k=10: p50 / p99 latency calling the loaded signature;
- the same over HTTP (``ncf serve``'s server on 127.0.0.1, one keep-alive connection);
- throughput for batches of 256 users, in process and over HTTP (users per second).

Usage::

    python scripts/bench_serving.py [--model neumf] [--items 10000] [--requests 300]
    python scripts/bench_serving.py --export EXPORT_DIR     # measure an existing export

Everything is written under a temporary folder that is removed at the end.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import tempfile
import threading
import time
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
    return export_run(result.run_dir, work / "exports")


def percentiles(seconds: list[float]) -> str:
    ms = np.asarray(seconds) * 1000
    return f"p50 {np.percentile(ms, 50):7.2f} ms   p99 {np.percentile(ms, 99):7.2f} ms"


def timed(call, repeats: int, warmup: int = 20) -> list[float]:
    for _ in range(warmup):
        call()
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        out.append(time.perf_counter() - start)
    return out


def bench_in_process(export, users: list[str], requests: int, batch: int) -> None:
    import tensorflow as tf

    fn = export.signature("recommend")
    k = tf.constant(10, tf.int32)
    one = tf.constant(users[:1])
    lat = timed(lambda: fn(user_id=one, k=k)["item_ids"].numpy(), requests)
    print(f"in process, 1 user:        {percentiles(lat)}")
    many = tf.constant((users * (batch // len(users) + 1))[:batch])
    lat = timed(lambda: fn(user_id=many, k=k)["item_ids"].numpy(), max(10, requests // 10), 3)
    print(f"in process, {batch} users:    {batch / np.median(lat):9.0f} users/s")


def bench_http(export, users: list[str], requests: int, batch: int) -> None:
    from ncf.serve.http import make_server

    server = make_server(export, "127.0.0.1", 0, "bench", quiet=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=30)

    def post(ids: list[str]) -> None:
        body = json.dumps({"signature_name": "recommend", "inputs": {"user_id": ids, "k": 10}})
        conn.request("POST", "/v1/models/bench:predict", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        payload = response.read()
        if response.status != 200:
            raise RuntimeError(payload.decode())

    try:
        lat = timed(lambda: post(users[:1]), requests)
        print(f"HTTP,       1 user:        {percentiles(lat)}")
        many = (users * (batch // len(users) + 1))[:batch]
        lat = timed(lambda: post(many), max(10, requests // 10), 3)
        print(f"HTTP,       {batch} users:    {batch / np.median(lat):9.0f} users/s")
    finally:
        conn.close()
        server.shutdown()
        server.server_close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="neumf", help="model.type to train (default neumf)")
    parser.add_argument("--items", type=int, default=10_000, help="catalogue size")
    parser.add_argument("--users", type=int, default=3_000, help="number of users")
    parser.add_argument("--requests", type=int, default=300, help="timed single-user requests")
    parser.add_argument("--batch", type=int, default=256, help="users per batch request")
    parser.add_argument("--export", help="measure this export instead of training one")
    args = parser.parse_args(argv)

    from ncf.serve.client import Export

    with tempfile.TemporaryDirectory(prefix="ncf-bench-") as tmp:
        path = args.export or train_and_export(args.model, args.items, args.users, Path(tmp))
        export = Export(path)
        users = (export.path / "assets" / "users.txt").read_text(encoding="utf-8").splitlines()
        info = export.info
        print(
            f"export {export.path}: {info['model_type']}, {info['num_items']} items, "
            f"{info['num_users']} users, exclude_seen={info['exclude_seen']}"
        )
        print(f"cpu threads: {os.cpu_count()}, tensorflow intra-op default")
        bench_in_process(export, users, args.requests, args.batch)
        bench_http(export, users, args.requests, args.batch)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Peak memory of ``ncf serve`` under a few maximal ``recommend`` requests at once.

Starts ``ncf serve EXPORT`` on a free port, samples the server's resident memory every
10 ms, sends ``--requests`` concurrent requests for ``--rows`` users with ``--k`` each, and
prints the answers' sizes and times and the resident memory before and at its peak.

Usage::

    python scripts/bench_serving_memory.py EXPORT [--rows 1024] [--k 256] [--requests 4]
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_serving import start_server  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    import psutil

    from ncf.serve.client import Export, resolve_export

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export")
    parser.add_argument("--rows", type=int, default=1024)
    parser.add_argument("--k", type=int, default=256)
    parser.add_argument("--requests", type=int, default=4)
    args = parser.parse_args(argv)

    path = resolve_export(args.export)
    export = Export(path)
    users = export.user_ids()
    rows = (users * (args.rows // len(users) + 1))[: args.rows]
    body = json.dumps({"signature_name": "recommend", "inputs": {"user_id": rows, "k": [args.k]}})
    with tempfile.TemporaryDirectory() as tmp:
        proc, port, base = start_server(path, Path(tmp) / "serve.log")
        server = psutil.Process(proc.pid)
        before = peak = server.memory_info().rss
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, server.memory_info().rss)
                time.sleep(0.01)

        answers: list[tuple[int, int, float]] = []

        def ask() -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
            start = time.perf_counter()
            conn.request("POST", base + ":predict", body)
            response = conn.getresponse()
            answers.append((response.status, len(response.read()), time.perf_counter() - start))

        threading.Thread(target=sample, daemon=True).start()
        clients = [threading.Thread(target=ask) for _ in range(args.requests)]
        for client in clients:
            client.start()
        for client in clients:
            client.join()
        done.set()
        proc.terminate()
        proc.wait(60)
    info = export.info
    print(
        f"{info['model_type']}, {info['num_items']} items: {args.requests} requests of {args.rows} users, k={args.k}"
    )
    for status, size, seconds in answers:
        print(f"  {status}: {size / 1e6:.1f} MB in {seconds:.1f}s")
    print(f"resident memory: {before / 1e6:.0f} MB before, {peak / 1e6:.0f} MB at the peak")
    return 0


if __name__ == "__main__":
    sys.exit(main())

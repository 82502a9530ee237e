"""1 vs 2 multi-worker processes on loopback: examples/s, seconds per epoch, bytes per step.

    python scripts/bench_distribute.py [--sizes 1m,10m] [--workers 1,2] [--steps 64]

Data: MovieLens-shaped synthetic sets (1m = 6,040 users x 3,706 items, 10m = 69,878 x
10,677, that many interactions before de-duplication) with the shipped
``configs/ml-100k/neumf.yaml`` model and optimizer (NeuMF, lazy Adam, batch 2048 global).
For each size and worker count the script starts that many worker processes on
127.0.0.1 with a generated ``TF_CONFIG`` (``train.distribute.strategy=multi_worker``, the
code path of ``ncf launch``); each builds the data and the model as ``ncf train`` does, runs
``--warmup`` steps (tracing, collective set-up), then times ``--steps`` steps of epoch 0
through :class:`ncf.train.distribute.ReplicatedEpochs`. The epoch is bounded: seconds per
epoch are the measured seconds per step times the epoch's steps.

Bytes per step, two ways, per worker:
- **gradients**: what the worker contributes to the collectives, from one step's gradients
  on its half-batch: every ``tf.IndexedSlices`` (embedding tables: values ``[rows, d]``
  float32 plus int32 row ids, all-gathered) and every dense gradient (all-reduced);
  "received" is what an all-gather / ring all-reduce delivers to each worker:
  ``(N-1) x`` the sparse contribution plus ``2 (N-1)/N x`` the dense bytes;
- **wire**: TCP payload bytes the worker's sockets sent during the timed steps
  (``bytes_sent`` of ``ss -tinp`` for sockets of its pid: gRPC framing and control
  messages included), divided by the steps.

One run prints one Markdown row per (size, workers). The CPU is shared and noisy: compare
the ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SIZES = {"1m": (6_040, 3_706, 1_000_000), "10m": (69_878, 10_677, 10_000_000)}


def overrides(size: str) -> list[str]:
    users, items, interactions = SIZES[size]
    return [
        "data.source=synthetic",
        "data.name=null",
        f"data.synthetic.users={users}",
        f"data.synthetic.items={items}",
        f"data.synthetic.interactions={interactions}",
        "train.distribute.strategy=multi_worker",
    ]


def socket_bytes_sent(pid: int) -> int:
    """TCP bytes sent by the sockets of process ``pid`` (``ss``'s tcp_info counters)."""
    out = subprocess.run(["ss", "-tinpH"], capture_output=True, text=True).stdout
    total, mine = 0, False
    for line in out.splitlines():
        if not line.startswith((" ", "\t")):  # a socket line; its details follow indented
            mine = f"pid={pid}," in line
            continue
        match = re.search(r"bytes_sent:(\d+)", line)
        if mine and match:
            total += int(match.group(1))
    return total


def gradient_bytes(model, stream, workers: int) -> dict[str, int]:
    """Sparse (IndexedSlices) and dense gradient bytes of one step on a worker's batch."""
    import tensorflow as tf

    x, y = next(iter(stream.dataset(0, 0, workers)))
    with tf.GradientTape() as tape:
        loss = model.compute_loss(x, y, model(x, training=True), training=True)
    sparse = dense = 0
    for grad in tape.gradient(loss, model.trainable_variables):
        if isinstance(grad, tf.IndexedSlices):
            sparse += grad.values.shape.num_elements() * 4 + grad.indices.shape[0] * 4
        elif grad is not None:
            dense += grad.shape.num_elements() * 4
    return {"sparse": sparse, "dense": dense}


def worker(size: str, warmup: int, steps: int) -> None:
    from ncf.config import load_config
    from ncf.data.dataset import load_dataset
    from ncf.data.pipeline import TrainingStream
    from ncf.train.distribute import ReplicatedEpochs, cluster_from_env, make_strategy
    from ncf.train.neural import build_for
    from ncf.train.phase import STEPS_PER_EXECUTION, compile_model

    config = load_config(REPO / "configs" / "ml-100k" / "neumf.yaml", overrides(size))
    cluster = cluster_from_env(config.train.distribute)
    strategy = make_strategy(cluster, config.train.distribute)
    dataset = load_dataset(config)
    stream = TrainingStream(dataset.split, config.train, config.run.seed)
    grads = gradient_bytes(build_for(config, dataset), stream, cluster.workers)
    with strategy.scope():
        model = compile_model(build_for(config, dataset), config, jit_compile=False)
    epochs = ReplicatedEpochs(model, strategy, STEPS_PER_EXECUTION)
    iterator = iter(epochs.dataset(stream, 0))
    import tensorflow as tf

    float(epochs.steps(iterator, tf.constant(warmup, tf.int64)))
    sent = socket_bytes_sent(os.getpid())
    start = time.perf_counter()
    done = 0
    while done < steps:
        count = min(STEPS_PER_EXECUTION, steps - done)
        float(epochs.steps(iterator, tf.constant(count, tf.int64)))  # waits for the steps
        done += count
    seconds = time.perf_counter() - start
    sent = socket_bytes_sent(os.getpid()) - sent
    n = cluster.workers
    received = (n - 1) * grads["sparse"] + 2 * (n - 1) * grads["dense"] // n
    print(
        "RESULT "
        + json.dumps(
            {
                "worker": cluster.index,
                "seconds_per_step": seconds / steps,
                "steps_per_epoch": stream.steps_per_epoch,
                "batch": config.train.batch_size,
                "sparse_bytes": grads["sparse"],
                "dense_bytes": grads["dense"],
                "received_bytes": received,
                "wire_bytes_sent": sent / steps,
            }
        ),
        flush=True,
    )


def run_job(size: str, workers: int, warmup: int, steps: int) -> dict:
    sys.path.insert(0, str(REPO))
    from ncf.train.launch import free_ports, tf_config

    ports = free_ports(workers)
    procs = []
    for index in range(workers):
        env = {**os.environ, "TF_CONFIG": tf_config(ports, index), "TF_CPP_MIN_LOG_LEVEL": "3"}
        command = [sys.executable, __file__, "--worker", size, str(warmup), str(steps)]
        procs.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True))
    results = []
    for proc in procs:
        out, _ = proc.communicate()
        if proc.returncode:
            raise SystemExit(f"a worker failed ({proc.returncode})")
        results += [json.loads(line[7:]) for line in out.splitlines() if line.startswith("RESULT ")]
    return max(results, key=lambda r: r["seconds_per_step"])  # the job runs at the slowest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1m,10m")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--warmup", type=int, default=64, help="untimed steps first")
    parser.add_argument("--steps", type=int, default=128, help="timed steps")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], int(args.worker[1]), int(args.worker[2]))
        return
    print(
        "| data | workers | examples/s | s/epoch (extrapolated) | steps/epoch | sparse B/step/worker "
        "| dense B/step/worker | received B/step/worker (gradients) | wire B sent/step/worker |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for size in args.sizes.split(","):
        base = None
        for workers in [int(w) for w in args.workers.split(",")]:
            r = run_job(size, workers, args.warmup, args.steps)
            rate = r["batch"] / r["seconds_per_step"]
            base = base or rate
            print(
                f"| {size} | {workers} | {rate:,.0f} ({rate / base:.2f}x) "
                f"| {r['seconds_per_step'] * r['steps_per_epoch']:,.1f} | {r['steps_per_epoch']:,} "
                f"| {r['sparse_bytes']:,} | {r['dense_bytes']:,} | {r['received_bytes']:,} "
                f"| {r['wire_bytes_sent']:,.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()

"""The softmax families against the machine's matrix-multiply rate (docs/benchmarks.md).

    python scripts/bench_softmax.py                      # history, both losses, 3 catalogues
    python scripts/bench_softmax.py --families history --items 1682 --steps 200
    python scripts/bench_softmax.py --families neumf --losses bce --items 10677 --steps 64 \
        --set data.synthetic.users=69878 --set data.synthetic.interactions=10000000

The last times NeuMF's step at MovieLens-10M's shape (examples/s only: it has no softmax).

For each catalogue size (synthetic data of that shape: 1.7k items like MovieLens 100K, 9.7k
like a 610-user MovieLens set, 23.7k like a 31k-user one) and each loss, one compiled model
is trained on a fixed slice of ``--steps`` batches of its shipped ML-100K config's
settings: one pass to trace and compile, then ``--passes`` timed passes, of which the
fastest is reported (steady step time, examples/s; the fastest, because other jobs on a
shared machine only ever slow a pass down). The useful arithmetic of a step is that of its
logits: forward ``R x N x d`` multiply-adds and two backward products of the same size
(``6 R N d`` FLOP; the sampled softmax ``6 R (S + 1) d``, its ``S`` shared draws), with
``R`` rows of logits a step: the batch ``B`` (history), or ``B x L`` (sequence: every
position of a window in one product). The achieved rate is those FLOP per second. Beside
it, in the same process, a TensorFlow (XLA) and a numpy sgemm of the logits' shape
``[R, d] x [d, N]`` (the fastest of three blocks of repetitions): what the machine can do
on that product now. Compare within a row: the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SHAPES = {1682: (943, 100_000), 9700: (610, 100_000), 23700: (31_000, 287_000)}
CONFIGS = {"history": "best.yaml"}  # each family's shipped ML-100K config: its settings


def sgemm_rates(rows: int, dim: int, items: int, reps: int = 10) -> tuple[float, float]:
    """GFLOP/s of ``[rows, dim] x [dim, items]`` in TensorFlow (XLA) and numpy: the fastest
    of three blocks of ``reps`` products."""
    import numpy as np
    import tensorflow as tf

    a = tf.random.normal([rows, dim])
    w = tf.random.normal([items, dim])
    product = tf.function(lambda a, w: tf.matmul(a, w, transpose_b=True), jit_compile=True)
    product(a, w).numpy()
    an, wn = a.numpy(), w.numpy()
    flop = 2 * rows * dim * items * reps / 1e9

    def fastest(run: Callable[[], object]) -> float:
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            for _ in range(reps):
                run()
            best = min(best, time.perf_counter() - start)
        return flop / best

    return fastest(lambda: product(a, w).numpy()), fastest(lambda: np.dot(an, wn.T))


def step_rate(
    family: str, loss: str, items: int, steps: int, passes: int, extra: list[str]
) -> dict:
    """Steady ms per step (the fastest of ``passes``) and examples/s of ``family`` with
    ``loss`` on ``items`` items."""
    from ncf.config import load_config
    from ncf.data.dataset import load_dataset
    from ncf.models.optim import set_steps_per_epoch
    from ncf.registry import family as family_of
    from ncf.train.phase import compile_model, training_stream

    users, interactions = SHAPES.get(items, (max(1000, items), 10 * items))
    overrides = [
        f"model.type={family}", f"train.loss={loss}", "data.source=synthetic", "data.name=null",
        f"data.synthetic.items={items}", f"data.synthetic.users={users}",
        f"data.synthetic.interactions={interactions}", "run.check_memory=false", *extra,
    ]  # fmt: skip
    config = load_config(
        REPO / "configs" / "ml-100k" / CONFIGS.get(family, f"{family}.yaml"), overrides
    )
    dataset = load_dataset(config)
    model = compile_model(family_of(family).build(config, dataset), config)
    stream = training_stream(config, dataset, dataset.split, model)
    set_steps_per_epoch(model.optimizer, stream.steps_per_epoch)
    data = stream.dataset(0).take(steps).cache()
    list(data)  # the input in memory: the model's step is timed, not the pipeline
    model.fit(data, epochs=1, verbose=0)  # traces and compiles
    seconds = float("inf")
    for _ in range(passes):
        start = time.perf_counter()
        model.fit(data, epochs=1, verbose=0)
        seconds = min(seconds, (time.perf_counter() - start) / steps)
    batch, dim = config.train.batch_size, config.model.embedding_dim
    rows = batch * (config.model.sequence.length if family == "sequence" else 1)
    width = (
        items
        if loss == "softmax" or 3 * config.train.sampled_items >= items
        else (config.train.sampled_items + 1)
    )
    return {
        "ms_per_step": 1000 * seconds,
        "examples_per_s": batch / seconds,
        "gflops": 6 * rows * width * dim / seconds / 1e9,
        "rows": rows,
        "dim": dim,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--families", default="history")
    parser.add_argument("--losses", default="softmax,sampled_softmax")
    parser.add_argument("--items", default="1682,9700,23700")
    parser.add_argument("--steps", type=int, default=120, help="batches per timed pass")
    parser.add_argument("--passes", type=int, default=3, help="timed passes (fastest shown)")
    parser.add_argument("--set", dest="extra", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="repeat every row, alternating (ratios in one process)",
    )
    args = parser.parse_args()
    import warnings

    warnings.filterwarnings("ignore")
    print(
        "| family | loss | items | ms/step | examples/s | logits GFLOP/s | TF sgemm | numpy sgemm | share of TF sgemm |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |", flush=True)
    for _, family in itertools.product(range(args.rounds), args.families.split(",")):
        for items in (int(n) for n in args.items.split(",")):
            for loss in args.losses.split(","):
                got = step_rate(family, loss, items, args.steps, args.passes, args.extra)
                if "softmax" not in loss:  # (neumf, mf: no logits over the catalogue)
                    print(
                        f"| {family} | {loss} | {items:,} | {got['ms_per_step']:.2f} | "
                        f"{got['examples_per_s']:,.0f} | - | - | - | - |",
                        flush=True,
                    )
                    continue
                tf_rate, np_rate = sgemm_rates(got["rows"], got["dim"], items)
                print(
                    f"| {family} | {loss} | {items:,} | {got['ms_per_step']:.1f} | "
                    f"{got['examples_per_s']:,.0f} | {got['gflops']:.1f} | {tf_rate:.1f} | "
                    f"{np_rate:.1f} | {got['gflops'] / tf_rate:.2f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()

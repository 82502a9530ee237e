"""The memory estimate (ncf.train.resources, each family's ``memory``) against measured peaks.

Each case runs ``ncf train`` in a child of a small Python process that reports the child's
peak resident memory (``getrusage(RUSAGE_CHILDREN).ru_maxrss``); the estimate of the same
config must lie within a factor of two of it. The neural models' counts are also checked
against Keras' own parameter count.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import QUICKSTART, TINY

from ncf import registry
from ncf.config import load_config
from ncf.data.dataset import load_dataset
from ncf.train.resources import estimate

PEAK = (
    "import resource, subprocess, sys\n"
    "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
    "assert done.returncode == 0, done.stderr[-2000:]\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)\n"
)


def _peak_bytes(argv: list[str]) -> int:
    done = subprocess.run(
        [sys.executable, "-c", PEAK, sys.executable, "-m", "ncf.cli", *argv],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return int(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["history", "vae", "ease"])
def test_the_estimate_is_within_twice_the_measured_peak(kind, tmp_path):
    overrides = [f"run.dir={tmp_path}", *TINY, f"model.type={kind}", "train.epochs=2"]
    if kind in ("history", "vae"):
        overrides.append("train.loss=softmax")
    argv = ["train", str(QUICKSTART), *[a for o in overrides for a in ("--set", o)]]
    peak = _peak_bytes(argv)
    config = load_config(QUICKSTART, overrides)
    predicted = estimate(config, load_dataset(config)).total
    assert peak / 2 <= predicted <= 2 * peak, (predicted, peak)


@pytest.mark.parametrize("kind", ["mf", "gmf", "mlp", "neumf", "history"])
def test_neural_parameter_counts_equal_keras(kind):
    from ncf.train.neural import build_for

    overrides = [*TINY, f"model.type={kind}", "model.tower_layers=[6]"]
    if kind == "history":
        overrides = [*TINY, "model.type=history", "train.loss=softmax"]
    config = load_config(QUICKSTART, overrides)
    dataset = load_dataset(config)
    model = build_for(config, dataset)
    trainable = sum(int(w.numpy().size) for w in model.trainable_weights)
    parts = registry.family(kind).memory(config, dataset)
    adam = 4 * 3  # float32 and Adam's two slots
    tables = 0
    if kind == "history":  # the history table and the proposal: data, not parameters
        tables = (
            dataset.split.num_users * config.model.history.length + dataset.split.num_items
        ) * 4
    assert parts["model"][0] == trainable * adam + tables


@pytest.mark.parametrize(
    "settings",
    [[], ["model.vae.beta=0"], ["model.vae.decoder_hidden=false", "model.vae.ease_l2=10"]],
)
def test_vae_parameter_count_equals_keras(settings):
    from ncf.families.vae import parameter_count
    from ncf.train.neural import build_for

    overrides = [*TINY, "model.type=vae", "train.loss=softmax", "model.vae.hidden=12", *settings]
    config = load_config(QUICKSTART, overrides)
    dataset = load_dataset(config)
    model = build_for(config, dataset)
    trainable = sum(int(w.numpy().size) for w in model.trainable_weights)
    assert parameter_count(config.model, dataset.split.num_items) == trainable

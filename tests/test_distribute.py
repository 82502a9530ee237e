"""Data-parallel training on tf.distribute (ncf.train.distribute, ncf launch).

Tolerance of a 2-worker run against the one-process run of the same config: each step
trains on the same examples (the replicas take columns of the one-process global batch), so
the two differ only in float summation order (each worker's half-batch mean, then the
cross-worker sum; IndexedSlices concatenated before the optimizer sums duplicate rows).
Observed: epoch losses agree to ~1e-7 and every test metric is equal. Asserted: losses to
1e-5 relative, metrics to 1e-3 absolute (a rank flip of one test case at ~1e-7 score
differences moves a metric by 1/600 here).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, cast

import numpy as np
import pytest
from conftest import QUICKSTART, TINY, set_args

from ncf.config import DistributeConfig
from ncf.errors import ConfigError
from ncf.train.distribute import cluster_from_env

# With a refit, so that both phases of a run are distributed.
RUN = [
    *TINY,
    "train.batch_size=2048",
    "train.epochs=3",
    "train.histograms=true",  # the default: the projector is the chief's alone
    "train.refit=true",
]
MULTI = DistributeConfig(strategy="multi_worker")


def _ncf(*args: str, env: dict[str, str] | None = None, timeout: int = 120):
    return subprocess.run(
        [sys.executable, "-m", "ncf.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def _metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def _assert_close(one: dict, many: dict) -> None:
    assert [h["epoch"] for h in one["history"]] == [h["epoch"] for h in many["history"]]
    for run in (one, many):
        assert len(run["refit"]["history"]) == 3
    for key in ("history", "refit"):
        first, second = (m[key] if key == "history" else m[key]["history"] for m in (one, many))
        np.testing.assert_allclose(
            [h["loss"] for h in second], [h["loss"] for h in first], rtol=1e-5
        )
    for protocol, values in one["test"].items():
        for name, value in values.items():
            assert abs(many["test"][protocol][name] - value) <= 1e-3, (protocol, name)


@pytest.fixture(scope="module")
def one_process(tmp_path_factory) -> dict:
    """The one-process run every multi-worker run is compared with."""
    run = tmp_path_factory.mktemp("one") / "run"
    result = _ncf("train", str(QUICKSTART), *set_args(*RUN), "--run-dir", str(run))
    assert result.returncode == 0, result.stderr[-3000:]
    return _metrics(run)


# -- the cluster -------------------------------------------------------------------------------


def test_cluster_comes_from_tf_config():
    spec = {"cluster": {"worker": ["a:1", "b:2", "c:3"]}, "task": {"type": "worker", "index": 2}}
    cluster = cluster_from_env(MULTI, json.dumps(spec))
    assert (cluster.index, cluster.workers, cluster.is_chief) == (2, 3, False)
    spec = {"cluster": {"chief": ["a:1"], "worker": ["b:2"]}, "task": {"type": "chief", "index": 0}}
    assert cluster_from_env(MULTI, json.dumps(spec)).is_chief
    spec["task"] = {"type": "worker", "index": 0}
    assert cluster_from_env(MULTI, json.dumps(spec)).index == 1
    assert not cluster_from_env(DistributeConfig()).distributed


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "TF_CONFIG is not set"),
        ("{not json", "not a valid cluster spec"),
        ('{"cluster": {"worker": ["a:1"]}}', "not a valid cluster spec"),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}}', "not in"),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "ps", "index": 0}}', "not in"),
    ],
)
def test_bad_tf_config_is_a_config_error(text, message):
    with pytest.raises(ConfigError, match=message):
        cluster_from_env(MULTI, text)


def test_multi_worker_mistakes_exit_2(tmp_path):
    common = [str(QUICKSTART), *set_args(*RUN, "train.distribute.strategy=multi_worker")]
    no_config = _ncf("train", *common, "--run-dir", str(tmp_path / "r"), env={"TF_CONFIG": ""})
    assert no_config.returncode == 2 and "TF_CONFIG is not set" in no_config.stderr
    assert "Traceback" not in no_config.stderr
    odd = _ncf(
        "launch", str(QUICKSTART), *set_args(*RUN, "train.batch_size=2047"), "--workers", "2"
    )
    assert odd.returncode == 2 and "does not split evenly over 2 workers" in odd.stderr
    baseline = _ncf(
        "train",
        *common,
        *set_args("model.type=popularity"),
        "--run-dir",
        str(tmp_path / "b"),
        env={
            "TF_CONFIG": '{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 0}}'
        },
    )
    assert baseline.returncode == 2 and "not a neural model" in baseline.stderr


def test_parameter_server_is_refused_by_name():
    from ncf.config import load_config

    with pytest.raises(ConfigError, match="'none', 'mirrored' or 'multi_worker'"):
        load_config(QUICKSTART, ["train.distribute.strategy=parameter_server"])


# -- the batches -------------------------------------------------------------------------------


def test_replicas_take_columns_of_the_one_process_batch():
    """Shards of a step, side by side, are the one-process batch: every interaction once."""
    from conftest import tiny_config

    from ncf.data.dataset import load_dataset
    from ncf.data.pipeline import TrainingStream

    config = tiny_config(Path("/nonexistent"), "train.batch_size=64")
    stream = TrainingStream(load_dataset(config).split, config.train, seed=3)
    whole = list(stream.dataset(1).take(5).as_numpy_iterator())
    shards = [list(stream.dataset(1, s, 4).take(5).as_numpy_iterator()) for s in range(4)]
    for step, (x, y) in enumerate(whole):
        parts = [shard[step] for shard in shards]
        assert all(len(p[1]) == 16 for p in parts)
        np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), y)
        for key in x:
            np.testing.assert_array_equal(np.concatenate([p[0][key] for p in parts]), x[key])


# -- Keras' loss convention under a strategy ---------------------------------------------------

TWO_REPLICAS = """
import numpy as np, tensorflow as tf, keras
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from ncf.config import TrainConfig
from ncf.data.split import Split
from ncf.models.model import NCFModel
from ncf.train.distribute import ReplicatedEpochs

class Stream:  # two global batches of 8 examples
    config = TrainConfig(batch_size=8)
    steps_per_epoch = 2
    def dataset(self, epoch, shard=0, shards=1):
        rng = np.random.default_rng(epoch)
        x = {"user": rng.integers(0, 20, (2, 8), dtype="int32"),
             "item": rng.integers(0, 30, (2, 8), dtype="int32")}
        y = rng.integers(0, 2, (2, 8)).astype("float32")
        return tf.data.Dataset.from_tensor_slices((x, y))

def run(strategy):
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = NCFModel(20, 30, head="neumf", embedding_dim=4, mlp_layers=[8, 4],
                         l2_embedding=0.01)
        from ncf.models.sparse import LazyAdam
        model.compile(optimizer=LazyAdam(learning_rate=0.05))
        model.optimizer.build(model.trainable_variables)
        history = keras.callbacks.History()
        ReplicatedEpochs(model, strategy, 2).fit_epoch(Stream(), 0, [history])
    return history.history["loss"][0], [v.numpy() for v in model.trainable_variables]

one = run(tf.distribute.OneDeviceStrategy("/cpu:0"))
two = run(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
print("LOSS", one[0], two[0])
assert abs(one[0] - two[0]) < 1e-6, (one[0], two[0])
for a, b in zip(one[1], two[1]):
    np.testing.assert_allclose(a, b, atol=1e-6)
print("OK")
"""


def test_two_replicas_train_and_show_the_one_replica_step():
    """Keras' TF trainer sums replica gradients and shows R x the loss compute_loss returns;
    NCFModel returns 1/R of its batch loss (per_replica_share). If Keras changed either
    convention, the 2-replica step or its shown loss would differ from the 1-replica one."""
    result = subprocess.run(
        [sys.executable, "-c", TWO_REPLICAS], capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr[-3000:]


# -- ncf launch --------------------------------------------------------------------------------


def test_two_workers_match_one_process(one_process, tmp_path):
    run = tmp_path / "two"
    result = _ncf(
        "launch", str(QUICKSTART), *set_args(*RUN), "--workers", "2", "--run-dir", str(run)
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert "[worker 1] worker 1 of 2 done" in result.stdout
    assert not any(p.name.startswith("ncf-worker") for p in run.iterdir())
    assert (run / "model.keras").exists() and (run / "selected.keras").exists()
    assert "strategy: multi_worker" in (run / "config.yaml").read_text()
    _assert_close(one_process, _metrics(run))


def test_mirrored_trains_the_one_process_model(one_process, tmp_path):
    """``mirrored`` on this CPU-only machine: one replica, through the replicated epoch loop."""
    run = tmp_path / "mirrored"
    result = _ncf(
        "train",
        str(QUICKSTART),
        *set_args(*RUN, "train.distribute.strategy=mirrored"),
        "--run-dir",
        str(run),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    _assert_close(one_process, _metrics(run))


def test_killed_worker_is_restarted_and_the_job_completes(one_process, tmp_path):
    """Worker 1 is killed (SIGKILL) after the first epoch's checkpoint; ncf launch restarts
    the job, which resumes from that checkpoint and ends with the uninterrupted metrics."""
    run = tmp_path / "killed"
    args = ["launch", str(QUICKSTART), *set_args(*RUN), "--workers", "2", "--run-dir", str(run)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "ncf.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output_lines = cast(IO[str], proc.stdout)  # stdout=PIPE: always a pipe
    lines, victim = [], None
    deadline = time.monotonic() + 400  # two restarts of two workers: minutes on a loaded machine
    watchdog = threading.Timer(410, proc.kill)  # a launch that hangs silently ends the loop too
    watchdog.start()
    try:
        for line in output_lines:
            lines.append(line)
            if "[launch] worker 1 pid" in line and victim is None:
                victim = int(line.split()[-1])
            if line.startswith("[worker 0] epoch   1 ") and victim:
                while not (run / "checkpoints" / "state.json").exists():
                    assert time.monotonic() < deadline
                    time.sleep(0.05)
                os.kill(victim, signal.SIGKILL)  # mid-epoch 2
                victim = 0
            assert time.monotonic() < deadline, "".join(lines)
    except BaseException:
        proc.kill()
        raise
    finally:
        watchdog.cancel()
    assert victim == 0, "worker 1 was never killed:\n" + "".join(lines)
    assert proc.wait(60) == 0, "".join(lines)
    output = "".join(lines)
    assert "worker 1 exited with status -9; restarting all 2 workers" in output
    resumed = output.split("restarting all 2 workers")[1]
    assert "[worker 0] epoch   1 " not in resumed  # resumed after epoch 1, not from scratch
    _assert_close(one_process, _metrics(run))

"""Data-parallel training on ``tf.distribute``: the cluster, the strategy and the epoch loop.

``train.distribute.strategy``:

- ``none``: one process, one device; the phase loop calls ``keras.Model.fit``.
- ``mirrored``: ``tf.distribute.MirroredStrategy`` over the local GPUs (the CPU when there
  are none: one replica).
- ``multi_worker``: ``tf.distribute.MultiWorkerMirroredStrategy``, one process per host,
  the cluster read from ``TF_CONFIG`` (``{"cluster": {"worker": [host:port, ...]}, "task":
  {"type": "worker", "index": i}}``; a ``"chief"`` task type is accepted too). Worker 0 (or
  the chief) owns the run directory.

**Batches.** With ``R`` replicas, replica ``r`` trains on columns ``[r B/R, (r+1) B/R)`` of
the one-process global batch (:meth:`ncf.data.pipeline.TrainingStream.dataset`), so a step of
``R`` replicas sees exactly the examples, negatives included, of the one-process step: the
negatives of batch ``b`` of epoch ``e`` are a function of ``(seed, e, b)`` and the replica
takes its columns. The epoch covers every train interaction once whatever ``R`` is.

**Loss and gradients.** Each replica's ``compute_loss`` returns ``1/R`` of its batch mean
(:func:`ncf.models.losses.per_replica_share`, Keras' convention) and Keras' optimizer sums the
replicas' gradients with one ``all_reduce``: dense gradients (MLP kernels) are all-reduced,
embedding gradients stay ``tf.IndexedSlices`` and are **all-gathered** (every worker
receives every other worker's ``[rows, d]`` values and row ids, never a whole table), then
the row-sparse optimizers (:mod:`ncf.models.sparse`) sum duplicate rows and update only the
touched rows, identically on every worker. The sum over replicas of ``1/R`` of a batch mean
of ``B/R`` examples is the global batch mean, so the step is the one-process step up to float
summation order.

**The epoch loop** (:class:`ReplicatedEpochs`). Keras 3's ``fit`` cannot run these models
under a strategy (its symbolic build reduces the first input batch with
``strategy.reduce("MEAN", ...)``, which fails on a dict of ids, and its multi-worker log
reduction takes the mean of scalars over axis 0), so the epoch runs Keras' own
``Model.train_step`` under ``strategy.run`` in a ``tf.function`` of
``steps_per_execution`` steps, and drives the phase's Keras callbacks as ``fit`` would. The
epoch's loss is the loss tracker read in cross-replica context (its variables are
sync-on-read sums, so the value is the global mean); the per-execution loss the callbacks see
is the replicas' mean.

**Roles.** Every worker loads the data, trains, validates (the weights are identical on
every worker, so every worker takes the same early-stopping decision without exchanging
it) and saves its checkpoints; only the chief writes into the run directory, the others
write to a temporary folder that is removed at the end (TensorFlow's multi-worker rule:
every worker saves, so that saving never waits on a worker that skipped it). A restarted
job (every worker started again, as ``ncf launch`` and cluster managers do) reads the
chief's last checkpoint, which the run directory on a shared file system provides to every
worker.
"""

from __future__ import annotations

import json
import logging
import os
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ncf.config import DistributeConfig
from ncf.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Cluster:
    """This process's place in the job.

    Attributes:
        kind: ``train.distribute.strategy``.
        index: this worker's index (0 is the chief).
        workers: number of worker processes.
    """

    kind: str = "none"
    index: int = 0
    workers: int = 1

    @property
    def is_chief(self) -> bool:
        return self.index == 0

    @property
    def distributed(self) -> bool:
        return self.kind != "none"


def cluster_from_env(config: DistributeConfig, tf_config: str | None = None) -> Cluster:
    """The cluster ``config`` asks for; ``multi_worker`` reads ``TF_CONFIG`` (or ``tf_config``).

    Raises ConfigError when ``TF_CONFIG`` is missing, is not JSON, or does not name this
    task in its cluster.
    """
    if config.strategy != "multi_worker":
        return Cluster(config.strategy)
    text = os.environ.get("TF_CONFIG") if tf_config is None else tf_config
    hint = (
        'set TF_CONFIG to {"cluster": {"worker": ["host0:port", ...]}, "task": {"type": '
        '"worker", "index": I}} on each worker, or start the workers with ncf launch'
    )
    if not text:
        raise ConfigError(
            f"train.distribute.strategy is multi_worker but TF_CONFIG is not set; {hint}"
        )
    try:
        spec = json.loads(text)
        cluster, task = spec["cluster"], spec["task"]
        chiefs, workers = list(cluster.get("chief", [])), list(cluster.get("worker", []))
        kind, index = task["type"], int(task["index"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"TF_CONFIG is not a valid cluster spec ({exc!r}); {hint}") from None
    hosts = {"chief": chiefs, "worker": workers}
    if kind not in hosts or not 0 <= index < len(hosts[kind]) or len(chiefs) > 1:
        raise ConfigError(
            f"TF_CONFIG: task {kind!r} {index} is not in its cluster "
            f"({len(chiefs)} chief, {len(workers)} workers); {hint}"
        )
    position = index if kind == "chief" else len(chiefs) + index
    return Cluster("multi_worker", position, len(chiefs) + len(workers))


def make_strategy(cluster: Cluster, config: DistributeConfig) -> Any:
    """The ``tf.distribute`` strategy for ``cluster`` (None for ``none``). Create it before
    any other TensorFlow op runs: collective ops are configured at program start."""
    if not cluster.distributed:
        return None
    import tensorflow as tf

    if cluster.kind == "mirrored":
        return tf.distribute.MirroredStrategy()
    options = tf.distribute.experimental.CommunicationOptions(
        implementation=tf.distribute.experimental.CommunicationImplementation.RING,
        timeout_seconds=config.timeout_seconds,
    )
    return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)


@dataclass(frozen=True)
class Replication:
    """What a distributed run needs in the training code.

    Attributes:
        cluster: this process's place in the job.
        strategy: the ``tf.distribute`` strategy.
        restore: the run directory checkpoints are read from (the chief's, on every worker).
    """

    cluster: Cluster
    strategy: Any
    restore: Path

    @property
    def replicas(self) -> int:
        return int(self.strategy.num_replicas_in_sync)

    def scope(self) -> Any:
        return self.strategy.scope()


def scope_of(replication: Replication | None) -> Any:
    return replication.scope() if replication is not None else nullcontext()


def check_batch(batch_size: int, replicas: int) -> None:
    """Raise ConfigError unless the global batch splits evenly over the replicas."""
    if batch_size % replicas:
        raise ConfigError(
            f"train.batch_size {batch_size} does not split evenly over {replicas} replicas; "
            f"use a multiple of {replicas}"
        )


class ReplicatedEpochs:
    """Runs epochs of a :class:`~ncf.data.pipeline.TrainingStream` under a strategy with the
    model's own ``train_step``, calling Keras callbacks as ``fit`` does (module docstring).

    Args:
        model: compiled under ``strategy.scope()``.
        strategy: the ``tf.distribute`` strategy.
        steps_per_execution: steps per ``tf.function`` call (callbacks see one batch each).
    """

    def __init__(self, model: Any, strategy: Any, steps_per_execution: int) -> None:
        import tensorflow as tf

        self.model, self.strategy = model, strategy
        self.steps_per_execution = int(steps_per_execution)
        self.steps = tf.function(self._run_steps)

    def _run_steps(self, iterator: Any, count: Any) -> Any:
        """``count`` train steps; returns the replicas' mean of their running epoch loss."""
        import tensorflow as tf

        for _ in tf.range(count):
            self.strategy.run(self.model.train_step, args=(next(iterator),))
        logs = self.strategy.run(self.model.get_metrics_result)  # each replica's own
        return self.strategy.reduce("MEAN", logs["loss"], axis=None)

    def dataset(self, stream: Any, epoch: int) -> Any:
        """Epoch ``epoch`` of ``stream``, each replica's columns of every global batch."""
        import tensorflow as tf

        def replica_batches(context: tf.distribute.InputContext) -> tf.data.Dataset:
            pipelines = context.num_input_pipelines
            local = context.num_replicas_in_sync // pipelines
            data = stream.dataset(epoch, context.input_pipeline_id, pipelines)
            if local == 1:
                return data
            width = stream.config.batch_size // context.num_replicas_in_sync

            # consecutive elements go to this worker's replicas in turn
            def columns(t: tf.Tensor) -> tf.Tensor:  # [B, ...] -> [local, width, ...]
                return tf.reshape(t, tf.concat([[local, width], tf.shape(t)[1:]], axis=0))

            split = data.map(lambda x, y: tf.nest.map_structure(columns, (x, y)))
            return split.unbatch()

        return self.strategy.distribute_datasets_from_function(replica_batches)

    def fit_epoch(self, stream: Any, epoch: int, callbacks: Sequence[Any]) -> None:
        """Train epoch ``epoch`` (0-based) of ``stream``, as ``fit(epochs=epoch + 1,
        initial_epoch=epoch)`` would with ``callbacks``."""
        import keras
        import tensorflow as tf

        model = self.model
        steps = stream.steps_per_epoch
        hooks = keras.callbacks.CallbackList(
            list(callbacks), model=model, epochs=epoch + 1, steps=steps, verbose=0
        )
        model.stop_training = False
        hooks.on_train_begin()
        model.reset_metrics()
        hooks.on_epoch_begin(epoch)
        iterator = iter(self.dataset(stream, epoch))
        done = 0
        while done < steps and not model.stop_training:
            count = min(self.steps_per_execution, steps - done)
            hooks.on_train_batch_begin(done)
            loss = self.steps(iterator, tf.constant(count, tf.int64))
            done += count
            hooks.on_train_batch_end(done - 1, {"loss": float(loss)})
        # sync-on-read metric variables, read across replicas: the epoch's global mean
        logs = {name: float(value) for name, value in model.get_metrics_result().items()}
        hooks.on_epoch_end(epoch, logs)
        hooks.on_train_end(logs)


_EPOCHS: weakref.WeakKeyDictionary[Any, ReplicatedEpochs] = weakref.WeakKeyDictionary()


def replicated_epochs(model: Any, strategy: Any, steps_per_execution: int) -> ReplicatedEpochs:
    """The model's :class:`ReplicatedEpochs`, made once, so the selection and the refit share
    one traced step (as they share Keras' compiled ``train_function`` without a strategy)."""
    if model not in _EPOCHS:
        _EPOCHS[model] = ReplicatedEpochs(model, strategy, steps_per_execution)
    return _EPOCHS[model]


def traced(model: Any) -> bool:
    """Whether the model's replicated step exists already (its first epoch traced it)."""
    return model in _EPOCHS


@contextmanager
def worker_folder(cluster: Cluster) -> Iterator[Path]:
    """A temporary folder for a non-chief worker's files, removed afterwards."""
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix=f"ncf-worker-{cluster.index}-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)

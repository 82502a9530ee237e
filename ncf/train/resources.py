"""Memory a run will need, checked against what the machine has before any work starts.

**Model** (neural types): parameters × 4 bytes (float32) × (1 + optimizer slots), where the
slots are the optimizer's per-parameter state: Adam 2 (first and second moments), Adagrad 1,
RMSprop 1, SGD 0. The parameters are dominated by the id embeddings,
``(users + items) × width`` with ``width = embedding_dim`` (mf: ``+ 1`` for the biases),
``mlp_layers[0] / 2`` (mlp) or their sum (neumf); the dense layers of the towers and the
head are counted as well (side features are not). The count equals Keras' ``count_params()``.

**Data**, for every model type:

- 64 bytes per interaction: the indexed interactions (user, item, rating, timestamp), the
  split, and the evaluator's copies of the train interactions;
- the training positive set: ``users × items / 8`` bytes (a bitset) when that is at most
  1 GiB, otherwise already counted in the 64 bytes;
- the sampled candidates: ``(validation + test cases) × eval.sampled_negatives × 4`` bytes;
- one chunk of training examples: ``min(train interactions, 64 × train.batch_size) ×
  (1 + train.num_negatives) × 40`` bytes (neural types);
- the full-ranking score buffers: ``3 × min(eval.batch_users × items, 2**25) × 4`` bytes.

The run is refused when model + data exceed the memory available to the process
(:func:`ncf.memory.available_memory`). Reading the data is checked before it starts, by
:func:`ncf.data.budget.check_input_memory`. The message gives both numbers and the config key that moves the estimate most;
``run.check_memory: false`` skips the check. The estimate is a lower bound (TensorFlow's own
buffers and XLA's workspace come on top), so a run that passes can still run short.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ncf.config import Config
from ncf.data.dataset import Dataset
from ncf.errors import ConfigError
from ncf.memory import available_memory, human

log = logging.getLogger(__name__)

FLOAT_BYTES = 4
OPTIMIZER_SLOTS = {"adam": 2, "sgd": 0, "adagrad": 1, "rmsprop": 1}
BYTES_PER_INTERACTION = 64
BYTES_PER_EXAMPLE = 40
CHUNK_BATCHES = 64  # ncf.data.pipeline.CHUNK_BATCHES
BITSET_BUDGET = 1 << 30  # ncf.data.negatives.BITSET_BUDGET
MAX_SCORES = 2**25  # ncf.evaluation.DEFAULT_MAX_SCORES
NEURAL = ("mf", "gmf", "mlp", "neumf")


@dataclass(frozen=True)
class Estimate:
    """Bytes by part, each with the config key that changes it most."""

    parts: dict[str, tuple[int, str]]

    @property
    def total(self) -> int:
        return sum(size for size, _ in self.parts.values())

    def largest(self) -> tuple[str, int, str]:
        name = max(self.parts, key=lambda n: self.parts[n][0])
        return name, *self.parts[name]


def parameter_count(config: Config, num_users: int, num_items: int) -> int:
    """Trainable parameters of the neural model ``config.model`` describes (no side features)."""
    model = config.model
    layers, towers = model.mlp_layers, model.tower_layers
    widths = {
        "mf": [model.embedding_dim],
        "gmf": [model.embedding_dim],
        "mlp": [layers[0] // 2],
        "neumf": [model.embedding_dim, layers[0] // 2],
    }[model.type]
    count = sum((num_users + num_items) * w + 2 * _dense([w, *towers]) for w in widths)
    outs = [towers[-1] if towers else w for w in widths]
    if model.type == "mf":
        return count + num_users + num_items + 1  # user, item and global biases
    if model.type == "gmf":
        return count + outs[0] + 1
    mlp = _dense([2 * outs[-1], *layers[1:]])
    last = layers[-1] if len(layers) > 1 else 2 * outs[-1]
    gmf = outs[0] if model.type == "neumf" else 0
    return count + mlp + gmf + last + 1


def _dense(sizes: list[int]) -> int:
    """Kernels and biases of dense layers ``sizes[0] -> sizes[1] -> ...``."""
    return sum(a * b + b for a, b in zip(sizes, sizes[1:], strict=False))


def estimate(config: Config, dataset: Dataset) -> Estimate:
    """The memory estimate of the module docstring, for ``config`` on ``dataset``."""
    split, train, ev = dataset.split, config.train, config.eval
    users, items = split.num_users, split.num_items
    interactions = len(dataset.interactions)
    bitset = users * items // 8 + 1
    cases = len(split.val_user) + len(split.test_user)
    parts = {
        "interactions": (interactions * BYTES_PER_INTERACTION, "data (fewer interactions)"),
        "positive set": (bitset if bitset <= BITSET_BUDGET else 0, "data (fewer users or items)"),
        "candidates": (cases * ev.sampled_negatives * 4, "eval.sampled_negatives"),
        "ranking buffers": (3 * min(ev.batch_users * items, MAX_SCORES) * 4, "eval.batch_users"),
    }
    if config.model.type in NEURAL:
        examples = min(split.num_train, CHUNK_BATCHES * train.batch_size)
        chunk = examples * (1 + train.num_negatives) * BYTES_PER_EXAMPLE
        parts["training examples"] = (chunk, "train.batch_size")
        slots = OPTIMIZER_SLOTS[train.optimizer]
        params = parameter_count(config, users, items)
        key = "model.embedding_dim"
        if config.model.type == "mlp" or (
            config.model.type == "neumf"
            and config.model.mlp_layers[0] // 2 > config.model.embedding_dim
        ):
            key = "model.mlp_layers"
        parts["model"] = (params * FLOAT_BYTES * (1 + slots), key)
    return Estimate(parts)


def check_memory(config: Config, dataset: Dataset, available: int | None = None) -> None:
    """Raise :class:`ConfigError` when the estimate exceeds the available memory."""
    if not config.run.check_memory:
        return
    available = available_memory() if available is None else available
    if available is None:
        log.debug("available memory unknown: memory check skipped")
        return
    need = estimate(config, dataset)
    if need.total <= available:
        return
    name, size, key = need.largest()
    detail = ", ".join(f"{n} {human(s)}" for n, (s, _) in need.parts.items() if s)
    raise ConfigError(
        f"not enough memory: this run needs about {human(need.total)} ({detail}) but "
        f"{human(available)} is available; the largest part is the {name}: lower {key}, or set "
        "run.check_memory: false to try anyway"
    )

"""Memory a run will need, checked against what the machine has before any work starts.

**Model**: the family's own estimate (:attr:`ncf.family.Family.memory`): for the neural
families the parameters x 4 bytes (float32) x (1 + optimizer slots: Adam 2, Adagrad and
RMSprop 1, SGD 0), the tables the model holds (history: each user's latest items), the
training examples in flight and the softmax logits of a step; baselines report their
matrices. Every run holds **the Python runtime** with numpy, scipy and pandas
(:data:`PROCESS_BYTES`), a neural one also **the TensorFlow runtime**: the library, its
thread pools and the traced and XLA-compiled steps (:data:`TENSORFLOW_BYTES`); both were
measured as the peak memory of small runs of this project, which those two parts dominate.

**Data**, for every model type:

- 64 bytes per interaction: the indexed interactions (user, item, rating, timestamp), the
  split, and the evaluator's copies of the train interactions;
- the training positive set: ``users x items / 8`` bytes (a bitset) when that is at most
  1 GiB, otherwise already counted in the 64 bytes;
- the sampled candidates: ``(validation + test cases) x eval.sampled_negatives x 4`` bytes;
- the full-ranking score buffers: ``3 x min(eval.batch_users x items, 2**25) x 4`` bytes.

The run is refused when the total exceeds the memory available to the process
(:func:`ncf.memory.available_memory`). Reading the data is checked before it starts, by
:func:`ncf.data.budget.check_input_memory`. The message gives both numbers and the config
key that moves the estimate most; ``run.check_memory: false`` skips the check.
tests/test_resources.py compares the estimate with the peak memory of real runs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ncf.config import Config
from ncf.data.dataset import Dataset
from ncf.errors import ConfigError
from ncf.memory import available_memory, human
from ncf.registry import family

log = logging.getLogger(__name__)

BYTES_PER_INTERACTION = 64
BITSET_BUDGET = 1 << 30  # ncf.data.negatives.BITSET_BUDGET
MAX_SCORES = 2**25  # ncf.evaluation.DEFAULT_MAX_SCORES
PROCESS_BYTES = 180 << 20  # Python with numpy, scipy and pandas loaded (every run)
TENSORFLOW_BYTES = 800 << 20  # TensorFlow and Keras loaded, the steps traced and XLA-compiled


@dataclass(frozen=True)
class Estimate:
    """Bytes by part, each with the config key that changes it most."""

    parts: dict[str, tuple[int, str]]

    @property
    def total(self) -> int:
        return sum(size for size, _ in self.parts.values())

    def largest(self) -> tuple[str, int, str]:
        """The largest part a config key changes (the fixed runtime is not one)."""
        name = max((n for n in self.parts if self.parts[n][1]), key=lambda n: self.parts[n][0])
        return name, *self.parts[name]


def estimate(config: Config, dataset: Dataset) -> Estimate:
    """The memory estimate of the module docstring, for ``config`` on ``dataset``."""
    split, ev = dataset.split, config.eval
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
    kind = family(config.model.type)
    parts.update(kind.memory(config, dataset))
    parts["python runtime"] = (PROCESS_BYTES, "")
    if kind.neural:
        parts["tensorflow runtime"] = (TENSORFLOW_BYTES, "")
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

"""Memory arithmetic shared by the neural families' estimates (:attr:`ncf.family.Family.memory`).

A trainable parameter costs 4 bytes (float32) plus the optimizer's per-parameter state:
Adam keeps 2 slots (first and second moments), Adagrad and RMSprop 1, SGD none. A batch of
training examples in the input pipeline costs about 40 bytes an example (ids, labels and the
shuffle's indices), and the pipeline holds ``CHUNK_BATCHES`` batches at a time
(:mod:`ncf.data.pipeline`).
"""

from __future__ import annotations

FLOAT_BYTES = 4
OPTIMIZER_SLOTS = {"adam": 2, "sgd": 0, "adagrad": 1, "rmsprop": 1}
BYTES_PER_EXAMPLE = 40
CHUNK_BATCHES = 64  # ncf.data.pipeline.CHUNK_BATCHES


def parameter_bytes(count: int, optimizer: str) -> int:
    """Bytes of ``count`` trainable float32 parameters and their optimizer state."""
    return count * FLOAT_BYTES * (1 + OPTIMIZER_SLOTS[optimizer])


def dense_parameters(sizes: list[int]) -> int:
    """Kernels and biases of dense layers ``sizes[0] -> sizes[1] -> ...``."""
    return sum(a * b + b for a, b in zip(sizes, sizes[1:], strict=False))


def pipeline_bytes(num_train: int, batch_size: int, per_positive: int) -> int:
    """The training examples in flight: one chunk of ``CHUNK_BATCHES`` batches."""
    examples = min(num_train, CHUNK_BATCHES * batch_size)
    return examples * per_positive * BYTES_PER_EXAMPLE

"""Row-sparse optimisers: an embedding table's step reads and writes only the rows a batch touched.

The gradient of an embedding lookup ``E[ids]`` is a ``tf.IndexedSlices``: one value row per
occurrence of an id in the batch. Keras' Adam turns it into a dense ``[num_rows, d]`` update
of every row (moments decay everywhere), so a step costs time proportional to the table.
These optimisers update only the touched rows ``R`` and leave every other row, and its
optimiser state, as it was; dense gradients (the MLP, output layers) take Keras' dense step.

Duplicates are summed first: with occurrences ``(r_k, g_k)``, row ``r`` gets
``g_r = Σ_{k: r_k = r} g_k`` (what a dense gradient holds in that row). Every occurrence
carries its row's new value and the rows are written with a scatter *update*, so duplicate
writes agree and the result does not depend on their order. Shapes stay static (one entry per
occurrence), so the step compiles with XLA and shards under ``tf.distribute``. A table with
at most ``DENSE_ROWS_PER_OCCURRENCE`` rows per occurrence (MovieLens-100K's, at batch 2048)
is cheaper to step whole: the same update is computed for every row and kept only where
the batch touched it (:func:`apply_to_touched_rows`), which changes nothing else. Up to
``SUMMED_ROWS_PER_OCCURRENCE`` rows per occurrence the duplicates are summed by one
scatter-add into a zeroed ``[num_rows, d]`` buffer instead of a sort (issue 23: 8% off the
NeuMF step at MovieLens-1M and -10M shapes, where the sort was 0.3 ms of a 2 ms step); the
rows are then read, stepped and written in occurrence order.

**Lazy Adam** (as TF Addons' ``LazyAdam``; Kingma & Ba 2015 on the rows in ``R``), at step
``t`` (1-based, counted over all updates) with rate ``η``::

    m_r ← β1 m_r + (1 - β1) g_r
    v_r ← β2 v_r + (1 - β2) g_r²
    w_r ← w_r - η √(1 - β2^t) / (1 - β1^t) · m_r / (√v_r + ε)        for r in R only

Keras' dense Adam applies the same to every row with ``g_r = 0`` outside ``R``, so rows not
touched keep moving with their decaying momentum; the lazy step leaves them still.

**Sparse Adagrad** (Duchi et al. 2011): ``a_r ← a_r + g_r²``, ``w_r ← w_r - η g_r / √(a_r + ε)``
for ``r`` in ``R``. A row with zero gradient does not change under dense Adagrad either, so
this is exactly Keras' Adagrad, only cheaper (and with duplicates summed before squaring).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import keras
from keras import ops

DENSE_ROWS_PER_OCCURRENCE = 2
SUMMED_ROWS_PER_OCCURRENCE = 16


def sort_keys(keys: Any) -> Any:
    """``keys [K]`` in ascending order with XLA's own sort, compiled on its own where the
    caller is not (under ``tf.distribute``). ``tf.sort`` lowers to a top-k of all ``K``, about
    3.5x slower on the CPU (issue 23: 0.30 against 0.084 ms for 2,048 int64 keys)."""
    return _compiled_sort()(keys)


@functools.cache
def _compiled_sort() -> Callable[[Any], Any]:
    import tensorflow as tf
    from tensorflow.compiler.tf2xla.python import xla  # the XlaSort op (not in tf.raw_ops)

    return tf.function(xla.sort, jit_compile=True, autograph=False)


def summed_rows(gradient: Any) -> tuple[Any, Any]:
    """``(rows [K], g [K, d])``: each occurrence's row and its row's summed gradient.

    ``gradient`` is a ``tf.IndexedSlices`` with ``K`` occurrences (duplicates allowed); the
    result is in ascending row order, duplicates kept, each carrying the row's total.
    """
    import tensorflow as tf

    indices = tf.cast(gradient.indices, "int64")
    count = tf.shape(indices, out_type=tf.int64)[0]
    # One sort of the keys row * K + position: ascending rows, ties in occurrence order (a
    # stable argsort), and under XLA on the CPU about half the time of tf.argsort, which
    # sorts (key, index) pairs (issue 23: 0.40 against 0.73 ms for 2,048 ids, 0.84 against
    # 1.61 ms for 4,096; measured in one process, load 6).
    keys = sort_keys(indices * count + tf.range(count, dtype=tf.int64))
    rows = tf.cast(keys // count, "int32")  # [K] ascending
    values = tf.gather(gradient.values, keys % count)  # [K, d]
    first = tf.concat([[True], rows[1:] != rows[:-1]], axis=0)
    segment = tf.cumsum(tf.cast(first, "int32")) - 1  # [K] 0.. number of distinct rows - 1
    totals = tf.math.unsorted_segment_sum(values, segment, num_segments=tf.shape(rows)[0])
    return rows, tf.gather(totals, segment)


def summed_in_table(gradient: Any, num_rows: int) -> tuple[Any, Any]:
    """``(rows [K], g [K, d])`` as :func:`summed_rows` gives them, in occurrence order: the
    occurrences added into a ``[num_rows, d]`` buffer, then each one's row read back."""
    import tensorflow as tf

    rows = tf.cast(gradient.indices, "int32")
    totals = tf.math.unsorted_segment_sum(gradient.values, rows, num_rows)  # [N, d]
    return rows, tf.gather(totals, rows)


def _is_sparse(gradient: Any) -> bool:
    import tensorflow as tf

    return isinstance(gradient, tf.IndexedSlices)


def _scatter(variable: Any, rows: Any, values: Any) -> None:
    """Write ``values [K, d]`` into ``variable`` at ``rows [K]`` (duplicates carry equal values)."""
    import tensorflow as tf

    target = variable.value if isinstance(variable, keras.Variable) else variable
    target.scatter_update(tf.IndexedSlices(tf.cast(values, target.dtype), rows))


def _gather(variable: Any, rows: Any) -> Any:
    import tensorflow as tf

    target = variable.value if isinstance(variable, keras.Variable) else variable
    return tf.gather(target, rows)


def apply_to_touched_rows(
    tables: list[Any], gradient: Any, update: Callable[..., tuple[Any, ...]]
) -> None:
    """``tables`` (the variable and its optimizer slots, ``[N, ...]`` each) get
    ``update(*rows, g) -> new rows`` on the rows ``gradient`` (IndexedSlices) touches, with
    ``g`` the rows' summed gradients; every other row keeps its value."""
    import tensorflow as tf

    num_rows, occurrences = tables[0].shape[0], gradient.indices.shape[0]
    rows_per_occurrence = num_rows / occurrences if occurrences else float("inf")
    if rows_per_occurrence <= DENSE_ROWS_PER_OCCURRENCE:
        indices = tf.cast(gradient.indices, "int32")
        g = tf.math.unsorted_segment_sum(gradient.values, indices, num_rows)  # [N, d]
        hits = tf.math.unsorted_segment_sum(tf.ones_like(indices), indices, num_rows)
        touched = tf.reshape(hits > 0, [num_rows] + [1] * (len(tables[0].shape) - 1))
        current = [ops.convert_to_tensor(t) for t in tables]
        new = update(*current, ops.cast(g, tables[0].dtype))
        for table, old, value in zip(tables, current, new, strict=True):
            table.assign(tf.where(touched, value, old))
        return
    if rows_per_occurrence <= SUMMED_ROWS_PER_OCCURRENCE:
        rows, g = summed_in_table(gradient, num_rows)
    else:
        rows, g = summed_rows(gradient)
    new = update(*[_gather(t, rows) for t in tables], ops.cast(g, tables[0].dtype))
    for table, value in zip(tables, new, strict=True):
        _scatter(table, rows, value)


@keras.saving.register_keras_serializable(package="ncf")
class LazyAdam(keras.optimizers.Adam):
    """Adam whose embedding-table steps touch only the rows in the batch (see module docstring).

    Args: those of ``keras.optimizers.Adam`` (``amsgrad`` is not supported).

    Example:

    ```python
    model.compile(optimizer=LazyAdam(learning_rate=0.004))
    ```
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.amsgrad:
            raise ValueError("LazyAdam does not support amsgrad")

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        if not _is_sparse(gradient):
            return super().update_step(gradient, variable, learning_rate)
        # The arithmetic of keras.optimizers.Adam, in its order: with every row touched the
        # two agree to the last bit.
        dtype = variable.dtype
        step = ops.cast(self.iterations + 1, dtype)
        beta_1_power = ops.power(ops.cast(self.beta_1, dtype), step)
        beta_2_power = ops.power(ops.cast(self.beta_2, dtype), step)
        alpha = ops.cast(learning_rate, dtype) * ops.sqrt(1 - beta_2_power) / (1 - beta_1_power)
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]

        def update(m_rows: Any, v_rows: Any, w_rows: Any, g: Any) -> tuple[Any, Any, Any]:
            m_rows = m_rows + (g - m_rows) * (1 - self.beta_1)
            v_rows = v_rows + (ops.square(g) - v_rows) * (1 - self.beta_2)
            return m_rows, v_rows, w_rows - m_rows * alpha / (ops.sqrt(v_rows) + self.epsilon)

        apply_to_touched_rows([m, v, variable], gradient, update)


@keras.saving.register_keras_serializable(package="ncf")
class SparseAdagrad(keras.optimizers.Adagrad):
    """Adagrad whose embedding-table steps touch only the rows in the batch (exact).

    Args: those of ``keras.optimizers.Adagrad``.

    Example:

    ```python
    model.compile(optimizer=SparseAdagrad(learning_rate=0.05))
    ```
    """

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        if not _is_sparse(gradient):
            return super().update_step(gradient, variable, learning_rate)
        rate = ops.cast(learning_rate, variable.dtype)
        accumulator = self._accumulators[self._get_variable_index(variable)]

        def update(a_rows: Any, w_rows: Any, g: Any) -> tuple[Any, Any]:
            a_rows = a_rows + ops.square(g)  # Keras' Adagrad arithmetic
            return a_rows, w_rows - rate * g / ops.sqrt(a_rows + self.epsilon)

        apply_to_touched_rows([accumulator, variable], gradient, update)

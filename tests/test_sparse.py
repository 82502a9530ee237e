"""Row-sparse optimisers against slow, obvious numpy references; resetting an optimizer."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from ncf.models.optim import reset_optimizer
from ncf.models.sparse import LazyAdam, SparseAdagrad, sort_keys, summed_in_table, summed_rows

ROWS, DIM = 7, 3
# Three steps of (row of each occurrence, gradient of each occurrence); rows repeat in a step.
STEPS = [
    ([1, 4, 1], [[1.0, -2.0, 0.5], [0.3, 0.3, -0.3], [0.5, 1.0, 1.0]]),
    ([4, 6], [[-1.0, 0.0, 2.0], [0.1, 0.2, 0.3]]),
    ([0, 1, 1, 1], [[0.2, 0.2, 0.2], [1.0, 1.0, 1.0], [-1.0, 0.5, 0.0], [0.1, 0.1, 0.1]]),
]


def slices(rows: list[int], values: list[list[float]]) -> tf.IndexedSlices:
    return tf.IndexedSlices(
        tf.constant(values, tf.float32), tf.constant(rows, tf.int32), tf.constant([ROWS, DIM])
    )


def numpy_lazy_adam(w, steps, lr=0.1, b1=0.9, b2=0.999, eps=1e-7):
    """Adam (Kingma & Ba 2015) applied to the touched rows only, one row at a time."""
    w, m, v = w.copy(), np.zeros_like(w), np.zeros_like(w)
    for t, (rows, values) in enumerate(steps, start=1):
        g = np.zeros_like(w)
        np.add.at(g, rows, np.asarray(values))
        for r in sorted(set(rows)):
            m[r] = b1 * m[r] + (1 - b1) * g[r]
            v[r] = b2 * v[r] + (1 - b2) * g[r] ** 2
            w[r] -= lr * np.sqrt(1 - b2**t) / (1 - b1**t) * m[r] / (np.sqrt(v[r]) + eps)
    return w, m, v


def apply(optimizer, variable, steps, jit: bool) -> None:
    @tf.function(jit_compile=jit)
    def step(gradient):
        optimizer.apply_gradients([(gradient, variable)])

    for rows, values in steps:
        step(slices(rows, values))


def start() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(ROWS, DIM)).astype(np.float32)


@pytest.mark.parametrize("context", ["eager", "graph", "xla"])
def test_sort_keys_is_numpys_sort(context) -> None:
    keys = np.random.default_rng(3).integers(-(2**40), 2**40, size=3000)
    keys[::7] = keys[0]  # duplicates
    run = {
        "eager": sort_keys,
        "graph": tf.function(sort_keys),
        "xla": tf.function(sort_keys, jit_compile=True),
    }[context]
    assert run(tf.constant(keys, tf.int64)).numpy().tolist() == np.sort(keys).tolist()


def test_summed_rows_gives_each_occurrence_its_rows_total() -> None:
    rows, totals = summed_rows(slices(*STEPS[2]))
    assert rows.numpy().tolist() == [0, 1, 1, 1]
    np.testing.assert_allclose(totals.numpy()[1:], [[0.1, 1.6, 1.1]] * 3, rtol=1e-6)
    np.testing.assert_allclose(totals.numpy()[0], [0.2, 0.2, 0.2])


def test_summed_in_table_gives_each_occurrence_its_rows_total_in_order() -> None:
    rows, totals = summed_in_table(slices(*STEPS[2]), ROWS)
    assert rows.numpy().tolist() == [0, 1, 1, 1]
    np.testing.assert_allclose(totals.numpy()[1:], [[0.1, 1.6, 1.1]] * 3, rtol=1e-6)
    rows, totals = summed_in_table(slices(*STEPS[0]), ROWS)
    assert rows.numpy().tolist() == [1, 4, 1]
    np.testing.assert_allclose(
        totals.numpy(), [[1.5, -1.0, 1.5], [0.3, 0.3, -0.3], [1.5, -1.0, 1.5]], rtol=1e-6
    )


@pytest.fixture(params=["sorted rows", "rows summed in the table", "whole small table"])
def path(request, monkeypatch) -> str:
    """Run a test through each of the three ways of stepping the touched rows."""
    from ncf.models import sparse

    dense, summed = {"s": (0, 0), "r": (0, 100), "w": (100, 0)}[request.param[0]]
    monkeypatch.setattr(sparse, "DENSE_ROWS_PER_OCCURRENCE", dense)
    monkeypatch.setattr(sparse, "SUMMED_ROWS_PER_OCCURRENCE", summed)
    return request.param


@pytest.mark.parametrize("jit", [False, True])
def test_lazy_adam_is_adam_on_the_touched_rows_only(jit: bool, path: str) -> None:
    variable = keras.Variable(start())
    optimizer = LazyAdam(learning_rate=0.1)
    optimizer.build([variable])
    apply(optimizer, variable, STEPS, jit)
    w, m, v = numpy_lazy_adam(start(), STEPS)
    np.testing.assert_allclose(variable.numpy(), w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(optimizer._momentums[0].numpy(), m, rtol=1e-5, atol=1e-7)
    # float32 holds 1 - 0.999 to 5e-5 relative; the reference works in float64
    np.testing.assert_allclose(optimizer._velocities[0].numpy(), v, rtol=1e-4, atol=1e-9)
    untouched = [2, 3, 5]
    np.testing.assert_array_equal(variable.numpy()[untouched], start()[untouched])
    assert int(optimizer.iterations) == len(STEPS)


def test_lazy_adam_equals_keras_adam_when_every_row_is_touched(path: str) -> None:
    steps = [(list(range(ROWS)), np.full((ROWS, DIM), 0.1 * (s + 1)).tolist()) for s in range(3)]
    steps[1][1][2] = [-3.0, 0.0, 1.0]
    lazy, dense = keras.Variable(start()), keras.Variable(start())
    apply(LazyAdam(learning_rate=0.05), lazy, steps, jit=False)
    keras_adam = keras.optimizers.Adam(learning_rate=0.05)
    for _, values in steps:
        keras_adam.apply_gradients([(tf.constant(values, tf.float32), dense)])
    np.testing.assert_array_equal(lazy.numpy(), dense.numpy())


@pytest.mark.parametrize("jit", [False, True])
def test_sparse_adagrad_equals_dense_adagrad(jit: bool, path: str) -> None:
    sparse, dense = keras.Variable(start()), keras.Variable(start())
    optimizer = SparseAdagrad(learning_rate=0.1)
    optimizer.build([sparse])
    apply(optimizer, sparse, STEPS, jit)
    keras_adagrad = keras.optimizers.Adagrad(learning_rate=0.1)
    for rows, values in STEPS:  # the same gradients, densified (duplicates summed)
        keras_adagrad.apply_gradients([(tf.convert_to_tensor(slices(rows, values)), dense)])
    np.testing.assert_allclose(sparse.numpy(), dense.numpy(), rtol=1e-6, atol=1e-7)


def test_dense_gradients_take_the_keras_step() -> None:
    mine, theirs = keras.Variable(start()), keras.Variable(start())
    gradient = tf.constant(np.linspace(-1, 1, ROWS * DIM).reshape(ROWS, DIM), tf.float32)
    LazyAdam(0.1).apply_gradients([(gradient, mine)])
    keras.optimizers.Adam(0.1).apply_gradients([(gradient, theirs)])
    np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    with pytest.raises(ValueError, match="amsgrad"):
        LazyAdam(amsgrad=True)


@pytest.mark.parametrize("cls", [LazyAdam, SparseAdagrad, keras.optimizers.RMSprop])
def test_reset_optimizer_gives_the_state_of_a_fresh_one(cls) -> None:
    variables = [keras.Variable(start()), keras.Variable(np.ones(4, np.float32))]
    optimizer = cls(learning_rate=0.1)
    optimizer.build(variables)
    before = [v.numpy().copy() for v in optimizer.variables]
    for _ in range(2):
        optimizer.apply_gradients([(slices(*STEPS[0]), variables[0]), (tf.ones(4), variables[1])])
    assert any(
        not np.array_equal(b, v.numpy()) for b, v in zip(before, optimizer.variables, strict=True)
    )
    reset_optimizer(optimizer, variables)
    for b, v in zip(before, optimizer.variables, strict=True):
        np.testing.assert_array_equal(v.numpy(), b)
    with pytest.raises(ValueError, match="other variables"):
        reset_optimizer(optimizer, variables[:1])

"""Uniform draws for training steps, from a Keras ``SeedGenerator``, by the Philox algorithm.

``keras.random.uniform`` calls ``tf.random.stateless_uniform`` with the algorithm left to
TensorFlow (``auto_select``). Outside XLA that is Philox; inside an XLA-compiled step it
becomes XLA's default random-bit generator, which on the CPU is about 25 times slower:
12,800 uniforms (the history model's dropout mask at batch 256) took 9.4-10.2 ms a call
there against 0.3-0.45 ms with ``alg="philox"`` (measured 2026-12-02, load 8, in one
process; docs/benchmarks.md, issue 23), more than half of the whole step. Naming Philox
changes no number: XLA's default draws the same Philox stream (tests/test_history.py checks
both, compiled and eager), only slowly.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


def uniform(shape: Any, generator: keras.random.SeedGenerator) -> Any:
    """``float32`` uniforms in ``[0, 1)`` of ``shape`` from ``generator``'s next seed, cast to
    int32 as Keras casts it: the draws of ``keras.random.uniform(shape, seed=generator)``.

    Example:

    ```python
    generator = keras.random.SeedGenerator(0)
    keep = uniform((256, 50), generator) >= 0.3
    ```
    """
    import tensorflow as tf

    seed = ops.convert_to_tensor(generator.next())
    if seed.dtype != tf.int32:
        seed = tf.cast(tf.math.floormod(seed, tf.int32.max - 1), tf.int32)
    return tf.random.stateless_uniform(shape, seed=seed, dtype=tf.float32, alg="philox")


def normal(shape: Any, generator: keras.random.SeedGenerator) -> Any:
    """``float32`` standard normal draws of ``shape`` from ``generator``'s next seed, by
    Philox (as :func:`uniform`, and for the same reason)."""
    import tensorflow as tf

    seed = ops.convert_to_tensor(generator.next())
    if seed.dtype != tf.int32:
        seed = tf.cast(tf.math.floormod(seed, tf.int32.max - 1), tf.int32)
    return tf.random.stateless_normal(shape, seed=seed, dtype=tf.float32, alg="philox")

"""The numpy weight histograms against TensorBoard's own bucketing (the slow reference)."""

from __future__ import annotations

import numpy as np
import pytest

from ncf.train.histograms import buckets


@pytest.mark.parametrize(
    "values",
    [
        np.random.default_rng(0).normal(size=(97, 13)).astype(np.float32),
        np.random.default_rng(1).integers(0, 5, size=400),  # many values on bucket edges
        np.full((7, 3), 0.25),  # one value
        np.zeros((0,)),  # none
        np.array([-3.0, 1e-9, 2.0]),
    ],
)
def test_buckets_match_tensorboards_bucketing(values):
    import tensorflow as tf
    from tensorboard.plugins.histogram.summary_v2 import _buckets

    expected = _buckets(tf.constant(values, dtype=tf.float64), tf.constant(30)).numpy()
    got = buckets(values)
    assert got.shape == expected.shape == (30, 3)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0)
    assert got[:, 2].sum() == np.asarray(values).size

"""TensorFlow building blocks of the servables: CSR matrices held in variables, expanded per
batch with ``tf.ragged.range``, and sparse products that touch only the non-zeros a batch uses.

A CSR matrix is three variables (row splits [rows + 2], columns [nnz], values [nnz]); the
extra empty row at the end stands for unknown ids.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

Csr = tuple[tf.Variable, tf.Variable, tf.Variable]  # row splits, columns, values


def variable(value: Any, dtype: tf.DType) -> tf.Variable:
    """A non-trainable variable holding ``value``."""
    return tf.Variable(tf.constant(value, dtype=dtype), trainable=False)


def csr_variables(matrix: Any) -> Csr:
    """Variables for a scipy CSR matrix, with one extra empty row at the end (unknown ids)."""
    splits = np.append(matrix.indptr, matrix.indptr[-1]).astype(np.int64)
    return (
        variable(splits, tf.int64),
        variable(matrix.indices, tf.int32),
        variable(matrix.data, tf.float32),
    )


def lookup_table(ids: np.ndarray) -> tf.lookup.StaticHashTable:
    keys = tf.constant(np.asarray(ids, dtype=object).astype(str), tf.string)
    values = tf.range(len(ids), dtype=tf.int32)
    init = tf.lookup.KeyValueTensorInitializer(keys, values)
    return tf.lookup.StaticHashTable(init, default_value=-1)


def expand_rows(csr: Csr, rows: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Entries of ``rows [B]`` of a CSR matrix as (position in rows [M], column [M], value [M])."""
    splits, cols, vals = csr
    rows = tf.cast(rows, tf.int64)
    positions = tf.ragged.range(tf.gather(splits, rows), tf.gather(splits, rows + 1))
    flat = positions.flat_values
    return tf.cast(positions.value_rowids(), tf.int32), tf.gather(cols, flat), tf.gather(vals, flat)


def dense_rows(csr: Csr, rows: tf.Tensor, width: int, fill: float = 0.0) -> tf.Tensor:
    """Rows ``rows [B]`` of a CSR matrix as a dense ``[B, width]`` block (absent: ``fill``)."""
    batch, cols, vals = expand_rows(csr, rows)
    base = tf.fill(tf.stack([tf.size(rows), width]), tf.constant(fill, tf.float32))
    return tf.tensor_scatter_nd_update(base, tf.stack([batch, cols], axis=1), vals)


def sparse_product_rows(a: Csr, b: Csr, rows: tf.Tensor, width: int) -> tf.Tensor:
    """``(A @ B)[rows]`` as a dense ``[B, width]`` block, touching only the non-zeros used."""
    owner, middle, weight = expand_rows(a, rows)  # [M]: row of the batch, column of A, value
    entry, cols, vals = expand_rows(b, middle)  # [P]: entry of M, column of B, value
    batch = tf.gather(owner, entry)
    updates = tf.gather(weight, entry) * vals
    shape = tf.stack([tf.size(rows), width])
    return tf.scatter_nd(tf.stack([batch, cols], axis=1), updates, shape)  # sums duplicates


def sparse_product_pairs(a: Csr, b: Csr, rows: tf.Tensor, cols: tf.Tensor) -> tf.Tensor:
    """``(A @ B)[rows[p], cols[p]]`` for each pair ``p``: ``[P]``, without a dense row."""
    owner, middle, weight = expand_rows(a, rows)
    entry, found, vals = expand_rows(b, middle)
    pair = tf.gather(owner, entry)
    hit = tf.equal(found, tf.gather(cols, pair))
    products = tf.boolean_mask(tf.gather(weight, entry) * vals, hit)
    return tf.math.unsorted_segment_sum(products, tf.boolean_mask(pair, hit), tf.size(rows))


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero): cosine similarity is their dot product."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def per_row_k(k: tf.Tensor, batch: tf.Tensor) -> tf.Tensor:
    """``k`` as one value per row ``[batch]``: given per row, or once for all rows."""
    k = tf.reshape(k, [-1])
    checks = [
        tf.debugging.assert_positive(k, message="k must be at least 1"),
        tf.debugging.Assert(
            (tf.size(k) == batch) | (tf.size(k) == 1),
            ["k must hold one value, or one per row; got", tf.size(k), "for rows:", batch],
        ),
    ]
    with tf.control_dependencies(checks):
        return tf.broadcast_to(k, tf.reshape(batch, [1]))

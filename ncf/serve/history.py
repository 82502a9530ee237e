"""Graph pieces of ``recommend_from_history`` (fold-in) and ``explain``, one per serving form.

**Fold-in.** A user unknown at training time arrives with the items they just interacted
with, ``h`` (a set of item indices per row). Each form scores the catalogue for that history
without retraining, by its own algebra:

- :class:`~ncf.scorer.ItemToItem` (item-kNN, EASE): ``s = x_h W`` with ``x_h`` the
  indicator row of ``h``: exactly the score a training user with those items gets.
- :class:`~ncf.scorer.UserToUser` (user-kNN): the shrunk cosine of ``x_h`` with every
  training user's row, pruned to the ``neighbours`` most similar, then ``s = sim X``.
- :class:`~ncf.scorer.Factors` (iALS, Hu et al. 2008): the user half-step of ALS, solved
  exactly: ``(Q^T Q + alpha Q_h^T Q_h + lambda I) p = (1 + alpha) Q_h^T 1``, ``s = Q p``;
  with ``alpha = 0`` it is ridge regression of the indicator on the item factors.
- :class:`~ncf.scorer.KerasModel` (mf, gmf, mlp, neumf): a fresh user representation
  (every user tower's output, and the user bias for mf), started at the mean training user
  and moved by ``FOLD_IN_STEPS`` Adam steps in the graph on the weighted log loss
  ``sum_{i in h} softplus(-s_i) + w sum_{i not in h} softplus(s_i)`` (``w`` gives the
  non-history items ``FOLD_IN_NEGATIVES`` times the history's total weight, as
  ``train.num_negatives`` does) plus ``FOLD_IN_L2 ||p - p_0||^2``; the item side and the
  head stay fixed. Works for every head, dot product or not.

A model that embeds a history directly (a history-pooled user tower) plugs in as one more
``history_rows`` implementation; the signature does not change.

**Explain.** For a recommended item ``i`` and each item ``j`` the user interacted with, a
weight ``c_ji``; the top ``EXPLAIN_ITEMS`` are returned. For ItemToItem the weights are
the exact additive parts of the score, ``c_ji = x_uj W[j, i]`` (they sum to ``s(u, i)``);
for Factors and Keras models, which have no additive decomposition over items, the cosine
of the item vectors ``cos(q_j, q_i)`` (the history item the recommended item is nearest to).
"""

from __future__ import annotations

import tensorflow as tf

FOLD_IN_STEPS = 50
FOLD_IN_LEARNING_RATE = 0.05
FOLD_IN_NEGATIVES = 4.0
FOLD_IN_L2 = 1e-3
EXPLAIN_ITEMS = 3
NEG_INF = float("-inf")


def indicator(owner: tf.Tensor, items: tf.Tensor, batch: tf.Tensor, width: int) -> tf.Tensor:
    """``[batch, width]`` float32 with 1 at each ``(owner[m], items[m])`` (duplicates: 1)."""
    shape = tf.stack([batch, width])
    hits = tf.scatter_nd(tf.stack([owner, items], axis=1), tf.ones_like(items, tf.float32), shape)
    return tf.minimum(hits, 1.0)


def ridge_fold_in(item_factors: tf.Tensor, x: tf.Tensor, l2: float, alpha: float) -> tf.Tensor:
    """User factors ``[B, d]`` solving the iALS user step for indicator rows ``x [B, N]``."""
    q = item_factors  # [N, d]
    d = tf.shape(q)[1]
    gram = tf.matmul(q, q, transpose_a=True)  # [d, d]
    weighted = tf.einsum("bn,nd,ne->bde", x, q, q)  # [B, d, d]: sum_{i in h} q_i q_i^T
    lhs = gram[None] + alpha * weighted + l2 * tf.eye(d)[None]
    rhs = (1.0 + alpha) * tf.matmul(x, q)  # [B, d]
    return tf.linalg.solve(lhs, rhs[:, :, None])[:, :, 0]


def fold_in_parts(score: object, start: list[tf.Tensor], positives: tf.Tensor) -> list[tf.Tensor]:
    """Adam steps on fresh user parts (list of ``[B, ...]``) for history indicator ``[B, N]``.

    ``score(parts) -> [B, N]`` logits; the loss is the module docstring's.
    """
    count = tf.reduce_sum(positives, axis=1, keepdims=True)  # [B, 1]
    num_items = tf.cast(tf.shape(positives)[1], tf.float32)
    weight = FOLD_IN_NEGATIVES * count / tf.maximum(num_items - count, 1.0)
    weight = tf.minimum(weight, 1.0)
    anchors = [tf.identity(p) for p in start]
    beta1, beta2, eps = 0.9, 0.999, 1e-7

    def loss_of(parts: list[tf.Tensor]) -> tf.Tensor:
        s = score(parts)  # type: ignore[operator]
        data = positives * tf.nn.softplus(-s) + weight * (1.0 - positives) * tf.nn.softplus(s)
        per_row = tf.reduce_sum(data, axis=1) / tf.maximum(count[:, 0], 1.0)
        penalty = sum(
            tf.reduce_sum(tf.reshape(tf.square(p - a), [tf.shape(p)[0], -1]), axis=1)
            for p, a in zip(parts, anchors, strict=True)
        )
        return tf.reduce_sum(per_row + FOLD_IN_L2 * penalty)

    def body(step, parts, m, v):
        with tf.GradientTape() as tape:
            tape.watch(parts)
            loss = loss_of(parts)
        grads = tape.gradient(loss, parts)
        t = tf.cast(step + 1, tf.float32)
        new_parts, new_m, new_v = [], [], []
        for p, g, m_i, v_i in zip(parts, grads, m, v, strict=True):
            m_i = beta1 * m_i + (1 - beta1) * g
            v_i = beta2 * v_i + (1 - beta2) * tf.square(g)
            m_hat, v_hat = m_i / (1 - beta1**t), v_i / (1 - beta2**t)
            new_parts.append(p - FOLD_IN_LEARNING_RATE * m_hat / (tf.sqrt(v_hat) + eps))
            new_m.append(m_i)
            new_v.append(v_i)
        return step + 1, new_parts, new_m, new_v

    zeros = [tf.zeros_like(p) for p in start]
    _, parts, _, _ = tf.while_loop(
        lambda step, *_: step < FOLD_IN_STEPS,
        body,
        (tf.constant(0), list(start), zeros, list(zeros)),
    )
    return parts


def top_contributions(
    owner: tf.Tensor,
    hist_items: tf.Tensor,
    contributions: tf.Tensor,
    batch: tf.Tensor,
) -> tuple[tf.Tensor, tf.Tensor]:
    """The ``EXPLAIN_ITEMS`` largest weights per recommended slot.

    Args:
        owner: [M] row of each history entry.
        hist_items: [M] item index of each entry.
        contributions: [M, W] weight of entry m for the slots of its row.
        batch: B.

    Returns:
        ``(items [B, W, E] int32 (-1: none), weights [B, W, E] float32 (-inf: none))``.
    """
    ragged = tf.RaggedTensor.from_value_rowids(contributions, owner, nrows=batch)
    dense = ragged.to_tensor(default_value=NEG_INF)  # [B, Mmax, W]
    ids = tf.RaggedTensor.from_value_rowids(hist_items, owner, nrows=batch).to_tensor(-1)
    width = tf.shape(contributions)[1]
    dense = tf.transpose(dense, [0, 2, 1])  # [B, W, Mmax]
    pad = tf.maximum(EXPLAIN_ITEMS - tf.shape(dense)[2], 0)
    dense = tf.pad(dense, [[0, 0], [0, 0], [0, pad]], constant_values=NEG_INF)
    ids = tf.pad(ids, [[0, 0], [0, pad]], constant_values=-1)  # [B, M']
    weights, where = tf.math.top_k(dense, EXPLAIN_ITEMS)  # [B, W, E]
    ids = tf.broadcast_to(ids[:, None, :], tf.stack([batch, width, tf.shape(ids)[1]]))
    items = tf.gather(ids, where, batch_dims=2)
    return tf.where(weights > NEG_INF, items, -1), weights

"""Training losses on logits, per example (the model reduces them).

- ``bce`` (He et al. 2017, eq. 7): pointwise log loss over observed positives (label 1) and
  sampled negatives (label 0), ``l = -y log σ(s) - (1 - y) log(1 - σ(s))``, computed stably
  as ``max(s, 0) - s y + log(1 + exp(-|s|))``.
- ``bpr`` (Rendle et al. 2009, "BPR: Bayesian Personalized Ranking from Implicit Feedback"):
  pairwise over a positive ``i`` and a sampled negative ``j`` of the same user,
  ``l = -log σ(s(u, i) - s(u, j)) = softplus(s(u, j) - s(u, i))``.
- ``softmax`` (full softmax cross-entropy over the catalogue, as in Covington et al. 2016
  without sampling): ``l = log Σ_j exp(s(u, j)) - s(u, i)``.
- ``sampled_softmax`` (importance sampling, Bengio & Senécal 2008; the log-Q correction of
  Yi et al. 2019): ``S`` items ``j_1..j_S`` drawn from a proposal ``q`` and shared by the
  batch estimate the partition function ``Σ_{j≠i} exp(s(u, j))`` by
  ``Σ_k exp(s(u, j_k) - log(S q_{j_k}))``; a draw equal to the example's own positive is
  masked (an "accidental hit")::

      o_k = s(u, j_k) - log(S q_{j_k})   (-inf where j_k = i)
      l   = log(exp(s(u, i)) + Σ_k exp(o_k)) - s(u, i)

  As ``S`` grows it tends to the full softmax loss (tests/test_history.py checks it); with
  a popularity proposal the correction stops popular items from being over-penalised.

The ``S`` draws come from :func:`draw_items`: inverse-CDF sampling by a binary search of
``S`` uniforms in the proposal's cumulative sum, ``O(N + S log N)`` a step. (Keras'
``random.categorical`` under XLA draws by a Gumbel argmax over ``[S, N]`` noise: 2.5 s a step
at 23.7k items and S = 1024, twenty times the whole full-softmax step.)

L2 regularisation is not here: it comes from Keras weight regularizers (``model.losses``).
"""

from __future__ import annotations

import math
from typing import Any

from keras import ops

from ncf.models.philox import uniform

LOSSES = ("bce", "bpr", "softmax", "sampled_softmax")


def bce_loss(labels: Any, logits: Any) -> Any:
    """Per-example binary cross-entropy on logits; ``labels`` and ``logits`` are ``[B]``."""
    labels = ops.cast(ops.reshape(labels, ops.shape(logits)), logits.dtype)
    return ops.relu(logits) - logits * labels + ops.log1p(ops.exp(-ops.abs(logits)))


def bpr_loss(positive_logits: Any, negative_logits: Any) -> Any:
    """Per-example BPR loss ``-log σ(s_pos - s_neg)``; both inputs ``[B]``."""
    return ops.softplus(negative_logits - positive_logits)


def reduce_mean(per_example: Any, sample_weight: Any = None) -> Any:
    """Mean over the batch, with optional per-example weights (Keras' sum-over-batch-size)."""
    if sample_weight is not None:
        weight = ops.cast(ops.reshape(sample_weight, ops.shape(per_example)), per_example.dtype)
        per_example = per_example * weight
    return ops.mean(per_example)


def softmax_loss(logits: Any, targets: Any, picked: Any = None) -> Any:
    """Per-example full softmax cross-entropy: ``logits [B, N]`` over the catalogue, ``targets
    [B]`` int item indices; ``logsumexp(logits) - logits[target]``.

    ``picked`` ``[B]``, where the caller has it, is ``logits[target]`` computed from the
    target's own row (a ``d``-wide dot product): reading it out of ``logits`` instead costs a
    gather from ``[B, N]`` and, in the gradient, a scatter into a zeroed ``[B, N]``."""
    if picked is None:
        targets = ops.cast(ops.reshape(targets, (-1,)), "int32")
        picked = ops.take_along_axis(logits, targets[:, None], axis=1)[:, 0]
    return ops.logsumexp(logits, axis=1) - picked


def sampled_softmax_loss(
    positive_logits: Any, sampled_logits: Any, sampled_log_q: Any, hits: Any
) -> Any:
    """Per-example sampled softmax with the log-Q correction (see the module docstring).

    Args:
        positive_logits: ``[B]`` ``s(u, i)``.
        sampled_logits: ``[B, S]`` ``s(u, j_k)``.
        sampled_log_q: ``[S]`` ``log(S q_{j_k})``.
        hits: ``[B, S]`` bool, ``j_k == i``: masked.

    Written to cost one fused pass over ``[B, S]`` each way (issue 23's profile): the mask is
    added (``-1e30`` where hit) rather than selected, so its gradient is the identity; the
    shift ``m`` of the log-sum-exp is a constant of the gradient (it cancels), so no argmax
    select is differentiated; and the positive joins as a ``[B]`` term, not by concatenating
    a ``[B, S + 1]`` copy.
    """
    sampled = sampled_logits - sampled_log_q[None, :] + ops.cast(hits, "float32") * -1e30
    shift = ops.stop_gradient(ops.maximum(ops.max(sampled, axis=1), positive_logits))  # [B]
    total = ops.exp(positive_logits - shift) + ops.sum(ops.exp(sampled - shift[:, None]), axis=1)
    return shift + ops.log(total) - positive_logits


def per_replica_share(loss: Any) -> Any:
    """``loss / R`` with ``R`` replicas in sync (1 outside a strategy): the convention of Keras'
    TensorFlow trainer, whose ``train_step`` sums the replicas' gradients and shows the loss
    times ``R``. A ``compute_loss`` override that skips it trains with ``R`` times the gradient
    and shows ``R`` times the loss (tests/test_distribute.py checks both against Keras)."""
    import tensorflow as tf

    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return loss if replicas == 1 else loss * (1.0 / replicas)


def draw_items(log_q: Any, count: int, seed: Any) -> Any:
    """``count`` item ids ``[count]`` int32 drawn with replacement from ``q = exp(log_q)``
    (``log_q [N]``, normalised or not): the first ``k`` with ``cdf[k] >= u`` for uniforms
    ``u`` in ``(0, cdf[-1])``, found by a binary search of ``ceil(log2 N)`` steps, so an item
    of zero probability is never drawn. ``seed`` is a Keras seed (a ``SeedGenerator``)."""
    cdf = ops.cumsum(ops.exp(ops.cast(log_q, "float32")))
    u = uniform((count,), seed) * cdf[-1]  # (not keras.random: slow under XLA)
    size = int(cdf.shape[0])
    low = ops.zeros((count,), dtype="int32")
    high = ops.full((count,), size - 1, dtype="int32")
    for _ in range(max(1, math.ceil(math.log2(size)))):
        middle = (low + high) // 2
        below = ops.take(cdf, middle) < u
        low = ops.where(below, middle + 1, low)
        high = ops.where(below, high, middle)
    return low

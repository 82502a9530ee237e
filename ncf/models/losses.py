"""Training losses on logits, per example (the model reduces them).

- ``bce`` (He et al. 2017, eq. 7): pointwise log loss over observed positives (label 1) and
  sampled negatives (label 0), ``l = -y log σ(s) - (1 - y) log(1 - σ(s))``, computed stably
  as ``max(s, 0) - s y + log(1 + exp(-|s|))``.
- ``bpr`` (Rendle et al. 2009, "BPR: Bayesian Personalized Ranking from Implicit Feedback"):
  pairwise over a positive ``i`` and a sampled negative ``j`` of the same user,
  ``l = -log σ(s(u, i) - s(u, j)) = softplus(s(u, j) - s(u, i))``.

L2 regularisation is not here: it comes from Keras weight regularizers (``model.losses``).
"""

from __future__ import annotations

from typing import Any

from keras import ops

LOSSES = ("bce", "bpr")


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

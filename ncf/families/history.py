"""The ``history`` family: a user tower pooled from the user's own latest items
(:class:`~ncf.models.history.HistoryModel`), trained with a softmax over the catalogue.

It reads ``model.history`` (``length``, ``dropout``, ``causal``) and ``model.embedding_dim``.
Each training example carries its own history (:mod:`ncf.data.histories`); before a phase
trains, :func:`prepare` fills the model's table of each user's latest items from the data
the phase fits on (it serves and evaluates from it) and sets the sampled softmax's proposal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import Field

from ncf.families.sizing import CHUNK_BATCHES, FLOAT_BYTES, parameter_bytes, pipeline_bytes
from ncf.families.towers import load_neural
from ncf.family import Capabilities, Family, MemoryParts, Needs
from ncf.schema import Section

if TYPE_CHECKING:
    from ncf.config import Config, ModelConfig
    from ncf.data.dataset import Dataset
    from ncf.data.split import Split

SOFTMAX_COPIES = 4  # [B, N] float tensors alive in a full-softmax step: logits, exp, grad, ...


class HistoryConfig(Section):
    """The history-pooled user tower (``model.type: history``)."""

    length: int = Field(50, gt=0, description="latest items of a user the tower reads (L)")
    dropout: float = Field(
        0.3, ge=0, lt=1, description="probability that a history item is dropped in training"
    )
    causal: bool = Field(
        True,
        description="a training example's history holds the user's items up to its own "
        "timestamp (ties included, itself excluded), as when the held-out latest item is "
        "ranked; false (or data without timestamps): every other item of the user",
    )


def _check(model: ModelConfig) -> None:
    if model.l2_embedding:
        raise ValueError(
            "model.l2_embedding is not used by model.type history (it regularises with "
            "model.history.dropout); remove it"
        )


def build(config: Config, dataset: Dataset) -> Any:
    from ncf.models.history import HistoryModel

    model = config.model
    return HistoryModel(
        dataset.split.num_users,
        dataset.split.num_items,
        embedding_dim=model.embedding_dim,
        history_length=model.history.length,
        dropout=model.history.dropout,
        loss=config.train.loss,
        sampled_items=config.train.sampled_items,
        seed=config.run.seed,
    )


def prepare(model: Any, config: Config, dataset: Dataset, split: Split) -> Any:
    """The phase's batches (each positive with its history); the model gets the table of each
    user's latest items and, for the sampled softmax, its proposal, from ``split``'s train."""
    from ncf.data.histories import Histories
    from ncf.data.pipeline import TrainingStream

    spec, train = config.model.history, config.train
    histories = Histories.of_split(split, dataset.interactions, spec.causal)
    model.set_histories(histories.table(spec.length))
    weights = None
    if train.negative_sampling == "popularity":
        counts = np.bincount(split.train_item, minlength=split.num_items)
        weights = counts.astype(np.float64) ** train.popularity_power
    model.set_proposal(weights)
    return TrainingStream(split, train, config.run.seed, histories, spec.length)


def parameter_count(model: ModelConfig, num_items: int) -> int:
    """Trainable parameters: input and output item tables (the input one has a padding row),
    the dense layer, the item biases and the recency weights."""
    d = model.embedding_dim
    return (2 * num_items + 1) * d + d * d + d + num_items + model.history.length


def _memory(config: Config, dataset: Dataset) -> MemoryParts:
    split, model, train = dataset.split, config.model, config.train
    length = model.history.length
    tables = (split.num_users * length + split.num_items) * 4  # histories, log-proposal
    params = parameter_count(model, split.num_items)
    width = split.num_items if train.loss == "softmax" else train.sampled_items
    histories = 4 * split.num_train * 4 + CHUNK_BATCHES * train.batch_size * length * 4
    return {
        "model": (parameter_bytes(params, train.optimizer) + tables, "model.embedding_dim"),
        "training examples": (
            pipeline_bytes(split.num_train, train.batch_size, 1) + histories,
            "train.batch_size",
        ),
        "logits": (
            SOFTMAX_COPIES * train.batch_size * width * FLOAT_BYTES,
            "train.batch_size" if train.loss == "softmax" else "train.sampled_items",
        ),
    }


def _note(config: Config, dataset: Dataset) -> str | None:
    if dataset.interactions.timestamp is not None:
        return None
    return (
        "note: the data has no timestamps, so the history model reads each user's items "
        f"unordered (at most model.history.length={config.model.history.length} per user, "
        "a fixed subset of longer histories); on order-free data EASE (model.type: ease) "
        "ranked better in docs/benchmarks.md: train both and compare them with ncf compare"
    )


SEARCH_SPACE = {
    # Sized for a mid-size data set (ML-100K: about 40 s a trial on 2 cores, fewer when
    # pruned): 20 trials or 20 minutes, whichever comes first, then one refit of the best.
    "trials": 20,
    "timeout_minutes": 20,
    "startup_trials": 6,
    "prune_after_trials": 4,
    "prune_warmup_epochs": 2,
    # best.yaml's schedule (chosen on a nested split for issue 23): a cosine over 8 epochs,
    # so a trial trains 8 epochs at most, and the refit keeps the model validation chose
    # instead of training it again.
    "fixed": {
        "train.epochs": 8,
        "train.loss": "softmax",
        "train.lr_schedule": "cosine",
        "train.early_stopping.patience": 2,
        "train.refit_from": "selected",
    },
    "params": {
        "model.embedding_dim": {"choices": [32, 64, 128]},
        "model.history.length": {"choices": [20, 50, 100, 200]},
        "model.history.dropout": {"low": 0.0, "high": 0.6},
        "model.history.causal": {"choices": [True, False]},
        "train.learning_rate": {"low": 0.0005, "high": 0.01, "log": True},
        "train.batch_size": {"choices": [128, 256, 512]},
    },
    # configs/ml-100k/best.yaml (tests/test_tune_models.py keeps them equal)
    "start": {
        "model.embedding_dim": 64,
        "model.history.length": 50,
        "model.history.dropout": 0.3,
        "model.history.causal": True,
        "train.learning_rate": 0.006,
        "train.batch_size": 256,
    },
}

FAMILIES = {
    "history": Family(
        name="history",
        summary="a user tower pooled from the user's latest items, full or sampled softmax "
        "(FISM / YouTube DNN)",
        neural=True,
        load=load_neural,
        section="history",
        settings=HistoryConfig,
        hyperparameters=("embedding_dim", "history.length", "history.dropout", "history.causal"),
        losses=("softmax", "sampled_softmax"),
        search_space=SEARCH_SPACE,
        needs=Needs(time_order=True),
        order_free={"model.history.causal": False},
        can=Capabilities(warm_start=False, from_history="native"),
        score_meaning="log-softmax score up to a constant (the user's history vector against "
        "the item's output embedding, plus item bias; only the order matters per user)",
        check=_check,
        build=build,
        prepare=prepare,
        memory=_memory,
        note=_note,
    )
}

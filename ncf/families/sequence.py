"""The ``sequence`` family: a causal self-attention tower over the user's latest items in time
order (:class:`~ncf.models.sequence.SequenceModel`), trained on every position of every
window with the full softmax (or a sampled one, log-Q corrected, for large catalogues).

It reads ``model.sequence`` and ``model.embedding_dim``. Before a phase trains,
:func:`prepare` fills the model's table of each user's latest items from the data the phase
fits on (it serves and evaluates from it), sets the sampled softmax's proposal and cuts the
fit-on interactions into windows (:mod:`ncf.data.sequences`). It is built for data whose
order in time means something: on data without timestamps a search across families leaves it
out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import Field

from ncf.families.sizing import FLOAT_BYTES, parameter_bytes
from ncf.families.towers import load_neural
from ncf.family import Capabilities, Family, MemoryParts, Needs
from ncf.schema import Section

if TYPE_CHECKING:
    from ncf.config import Config, ModelConfig
    from ncf.data.dataset import Dataset
    from ncf.data.split import Split

SOFTMAX_COPIES = 4  # [B L, N] float tensors alive in a full-softmax step: logits, exp, grad, ...
ACTIVATIONS = 24  # [B, L, d] float tensors kept per block for the backward pass (about)


class SequenceConfig(Section):
    """The self-attention sequence tower (``model.type: sequence``)."""

    length: int = Field(50, gt=0, le=1024, description="latest items of a user the tower reads (L)")
    blocks: int = Field(2, gt=0, le=8, description="transformer blocks")
    heads: int = Field(1, gt=0, description="attention heads (model.embedding_dim a multiple)")
    expansion: int = Field(1, gt=0, le=8, description="feed-forward width, in multiples of d")
    dropout: float = Field(
        0.2, ge=0, lt=1, description="dropout on the input slots, attention and block outputs"
    )


def _check(model: ModelConfig) -> None:
    if model.embedding_dim % model.sequence.heads:
        raise ValueError(
            f"model.embedding_dim ({model.embedding_dim}) must be a multiple of "
            f"model.sequence.heads ({model.sequence.heads})"
        )
    if model.l2_embedding:
        raise ValueError("model.l2_embedding is not used by model.type sequence; remove it")


def build(config: Config, dataset: Dataset) -> Any:
    from ncf.models.sequence import SequenceModel

    spec = config.model.sequence
    return SequenceModel(
        dataset.split.num_users,
        dataset.split.num_items,
        embedding_dim=config.model.embedding_dim,
        history_length=spec.length,
        blocks=spec.blocks,
        heads=spec.heads,
        expansion=spec.expansion,
        dropout=spec.dropout,
        loss=config.train.loss,
        sampled_items=config.train.sampled_items,
        seed=config.run.seed,
    )


def prepare(model: Any, config: Config, dataset: Dataset, split: Split) -> Any:
    """The phase's windows; the model gets each user's latest items and the proposal."""
    from ncf.data.histories import Histories
    from ncf.data.sequences import SequenceStream

    spec, train = config.model.sequence, config.train
    histories = Histories.of_split(split, dataset.interactions, causal=True)
    model.set_histories(histories.table(spec.length))
    weights = None
    if train.negative_sampling == "popularity":
        counts = np.bincount(split.train_item, minlength=split.num_items)
        weights = counts.astype(np.float64) ** train.popularity_power
    model.set_proposal(weights)
    return SequenceStream(histories, spec.length, train, config.run.seed)


def parameter_count(model: ModelConfig, num_items: int) -> int:
    """Trainable parameters: the item table (with its padding row), positions, the blocks
    (attention 4 d^2 + 4 d, feed-forward 2 f d^2 + f d + d, two layer norms 4 d), the final
    norm and the item biases."""
    d, spec = model.embedding_dim, model.sequence
    f = spec.expansion
    block = 4 * d * d + 4 * d + 2 * f * d * d + f * d + d + 4 * d
    return (num_items + 1) * d + spec.length * d + spec.blocks * block + 2 * d + num_items


def _memory(config: Config, dataset: Dataset) -> MemoryParts:
    split, model, train = dataset.split, config.model, config.train
    spec, d = model.sequence, model.embedding_dim
    slots = train.batch_size * spec.length
    width = split.num_items if train.loss == "softmax" else train.sampled_items
    tables = (split.num_users * spec.length + split.num_items) * 4
    windows = 2 * (split.num_train // spec.length + split.num_users) * spec.length * 4
    attention = spec.blocks * train.batch_size * spec.heads * spec.length**2 * FLOAT_BYTES * 3
    return {
        "model": (
            parameter_bytes(parameter_count(model, split.num_items), train.optimizer) + tables,
            "model.embedding_dim",
        ),
        "training examples": (windows, "model.sequence.length"),
        "activations": (
            spec.blocks * ACTIVATIONS * slots * d * FLOAT_BYTES + attention,
            "train.batch_size",
        ),
        "logits": (SOFTMAX_COPIES * slots * width * FLOAT_BYTES, "train.batch_size"),
    }


TIED_SHARE = 0.1  # of validation cases tied in time, above which the note says what it means


def _note(config: Config, dataset: Dataset) -> str | None:
    if dataset.interactions.timestamp is not None:
        return _ties_note(dataset)
    return (
        "note: the data has no timestamps, so the sequence model reads each user's items in "
        "the order of their ids; it is built for data in time order: on order-free data "
        "compare it with ease and vae (ncf tune --models sequence,vae,ease)"
    )


def _ties_note(dataset: Dataset) -> str | None:
    from ncf.data.dataset import tied_in_time

    split = dataset.split
    tied = tied_in_time(dataset.interactions, split.val_user, split.val_item)
    if not len(split.val_user) or tied / len(split.val_user) < TIED_SHARE:
        return None
    return (
        f"note: {tied:,} of {len(split.val_user):,} validation cases "
        f"({tied / len(split.val_user):.0%}) share their timestamp with another of the user's "
        "interactions; the split orders such ties by item id, and the sequence model learns "
        "that order, so on this data its figures partly measure how the ids were assigned "
        "(docs/benchmarks.md, 'Ties in time')"
    )


SEARCH_SPACE = {
    "trials": 20,
    "timeout_minutes": 20,
    "startup_trials": 6,
    "prune_after_trials": 3,
    "prune_warmup_epochs": 5,
    "fixed": {
        "train.epochs": 200,
        "train.loss": "softmax",
        "train.early_stopping.patience": 10,
        "train.refit_from": "selected",
    },
    "params": {
        "model.embedding_dim": {"choices": [32, 64, 128]},
        "model.sequence.length": {"choices": [50, 100, 200]},
        "model.sequence.blocks": {"choices": [1, 2, 3]},
        "model.sequence.dropout": {"low": 0.1, "high": 0.5},
        "train.learning_rate": {"low": 0.0005, "high": 0.005, "log": True},
        "train.batch_size": {"choices": [64, 128, 256]},
    },
    # configs/ml-100k/sequence.yaml (tests/test_tune_models.py keeps them equal)
    "start": {
        "model.embedding_dim": 64,
        "model.sequence.length": 50,
        "model.sequence.blocks": 2,
        "model.sequence.dropout": 0.2,
        "train.learning_rate": 0.002,
        "train.batch_size": 128,
    },
}

FAMILIES = {
    "sequence": Family(
        name="sequence",
        summary="causal self-attention over the user's latest items, every position trained "
        "with a full or sampled softmax (SASRec)",
        neural=True,
        load=load_neural,
        section="sequence",
        settings=SequenceConfig,
        hyperparameters=("embedding_dim", "sequence.length", "sequence.blocks", "sequence.dropout"),
        losses=("softmax", "sampled_softmax"),
        search_space=SEARCH_SPACE,
        needs=Needs(time_order=True),
        can=Capabilities(warm_start=False, from_history="native"),
        score_meaning="log-softmax score up to a constant (the last position's output for the "
        "user's latest items against the item's embedding, plus item bias; only the order "
        "matters per user)",
        check=_check,
        build=build,
        prepare=prepare,
        memory=_memory,
        note=_note,
    )
}

"""The ``vae`` family: an autoencoder over each user's whole item set, a softmax over the
catalogue (:class:`~ncf.models.vae.VAEModel`; Mult-VAE / Mult-DAE, Liang et al. 2018).

It reads ``model.vae`` and ``model.embedding_dim`` (the latent width ``d``). It needs no
order in time: a user is the set of their items, so it is the neural family for data without
timestamps (and a strong one with them). Before a phase trains, :func:`prepare` fills the
model's table of each user's items from the data the phase fits on (it trains on, evaluates
and serves from it); a training example is a user (:mod:`ncf.data.item_sets`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import Field

from ncf.families.sizing import FLOAT_BYTES, dense_parameters, parameter_bytes
from ncf.families.towers import load_neural
from ncf.family import Capabilities, Family, MemoryParts
from ncf.schema import Section

if TYPE_CHECKING:
    from ncf.config import Config, ModelConfig
    from ncf.data.dataset import Dataset
    from ncf.data.split import Split

BLEND_GRID = tuple(i / 10 for i in range(11))  # the autoencoder's share m, EASE's 1 - m
log = logging.getLogger(__name__)
ITEM_SET_COPIES = 6  # [B, N] float tensors alive in a step: sets, thinned, logits, softmax, grads


class VAEConfig(Section):
    """The item-set autoencoder (``model.type: vae``)."""

    length: int = Field(
        1000,
        gt=0,
        le=100_000,
        description="items of a user the model reads at most (the latest, with timestamps); "
        "the table holds min(length, the most items any user has)",
    )
    hidden: int = Field(
        600, gt=0, description="width H of the encoder's (and decoder's) tanh layer"
    )
    decoder_hidden: bool = Field(
        True, description="a tanh layer of width H in the decoder too (false: linear decoder)"
    )
    dropout: float = Field(
        0.7, ge=0, lt=1, description="probability that an input item is dropped in training"
    )
    beta: float = Field(
        0.0,
        ge=0,
        le=10,
        description="final weight of the KL term (0: the denoising autoencoder, Mult-DAE)",
    )
    anneal_steps: int = Field(
        2000, ge=0, description="optimiser steps over which the KL weight grows from 0 to beta"
    )
    ease_l2: float = Field(
        300.0,
        ge=0,
        description="score a blend with EASE's closed form fitted on the phase's train data "
        "with this L2 (lambda), the autoencoder's share chosen on validation after the "
        "selection (0 to 1 in steps of 0.1; 0 is EASE alone); 0: the autoencoder alone. An "
        "[items, items] table: catalogues up to some tens of thousands",
    )


def _check(model: ModelConfig) -> None:
    if model.l2_embedding:
        raise ValueError(
            "model.l2_embedding is not used by model.type vae (it regularises with "
            "model.vae.dropout and the KL term); remove it"
        )


def table_length(config: Config, dataset: Dataset) -> int:
    """``L``: ``model.vae.length``, or fewer where no user has that many items (counted over
    all the data, so the selection and the refit build the same model)."""
    counts = np.bincount(dataset.interactions.user, minlength=dataset.split.num_users)
    return int(max(1, min(config.model.vae.length, counts.max(initial=1))))


def build(config: Config, dataset: Dataset) -> Any:
    from ncf.models.vae import VAEModel

    spec = config.model.vae
    return VAEModel(
        dataset.split.num_users,
        dataset.split.num_items,
        history_length=table_length(config, dataset),
        hidden=spec.hidden,
        latent=config.model.embedding_dim,
        decoder_hidden=spec.decoder_hidden,
        dropout=spec.dropout,
        beta=spec.beta,
        anneal_steps=spec.anneal_steps,
        item_item=spec.ease_l2 > 0,
        seed=config.run.seed,
    )


def prepare(model: Any, config: Config, dataset: Dataset, split: Split) -> Any:
    """The phase's batches of users; the model gets each user's items (the latest ``L``)."""
    from ncf.data.histories import Histories
    from ncf.data.item_sets import UserStream

    histories = Histories.of_split(split, dataset.interactions, causal=True)
    model.set_histories(histories.table(model.history_length))
    if config.model.vae.ease_l2 > 0:
        from ncf.baselines.ease import ease_weights
        from ncf.baselines.knn import interaction_matrix

        x = interaction_matrix(split.num_users, split.num_items, split.train_user, split.train_item)
        model.set_item_item(ease_weights((x > 0).astype(np.float32), config.model.vae.ease_l2))
    counts = np.bincount(split.train_user, minlength=split.num_users)
    return UserStream(counts, config.train, config.run.seed)


def calibrate(
    model: Any, measure: Callable[[], float], chosen: dict[str, float] | None
) -> dict[str, float]:
    """The blend's share ``m`` (``model.vae.ease_l2``): each of :data:`BLEND_GRID` measured
    on validation, the best kept (the first of equals); nothing without the blend."""
    if not model.item_item:
        return {}
    if chosen is not None:
        model.set_blend(chosen["blend"])
        return chosen
    scores = []
    for share in BLEND_GRID:
        model.set_blend(share)
        scores.append(measure())
    best = BLEND_GRID[int(np.nanargmax(scores))]
    model.set_blend(best)
    log.info(
        "vae: the blend with EASE chosen on validation: autoencoder share %.1f (validation %s)",
        best,
        ", ".join(f"{m:.1f}: {v:.4f}" for m, v in zip(BLEND_GRID, scores, strict=True)),
    )
    return {"blend": best}


def parameter_count(model: ModelConfig, num_items: int) -> int:
    """Trainable parameters: encoder ``N -> H``, mean (and, with ``beta``, log-variance)
    ``H -> d``, decoder ``d -> H`` (if any) and output ``-> N``, each with its bias."""
    spec, d = model.vae, model.embedding_dim
    count = dense_parameters([num_items, spec.hidden, d]) * (2 if spec.beta else 1)
    count -= dense_parameters([num_items, spec.hidden]) if spec.beta else 0
    width = spec.hidden if spec.decoder_hidden else d
    if spec.decoder_hidden:
        count += dense_parameters([d, spec.hidden])
    return count + dense_parameters([width, num_items])


def _memory(config: Config, dataset: Dataset) -> MemoryParts:
    split, model, train = dataset.split, config.model, config.train
    length = table_length(config, dataset)
    params = parameter_count(model, split.num_items)
    parts: MemoryParts = {
        "model": (
            parameter_bytes(params, train.optimizer) + split.num_users * length * 4,
            "model.vae.hidden",
        ),
        "item sets": (
            ITEM_SET_COPIES * train.batch_size * split.num_items * FLOAT_BYTES
            + train.batch_size * length * 12,
            "train.batch_size",
        ),
    }
    if model.vae.ease_l2:  # the table, and EASE's float64 solve (ncf.baselines.ease)
        from ncf.baselines.ease import ease_memory

        parts["item-item term"] = (
            split.num_items**2 * FLOAT_BYTES + ease_memory(split.num_users, split.num_items),
            "model.vae.ease_l2",
        )
    return parts


SEARCH_SPACE = {
    # A trial on ML-100K: 2-3 s an epoch of 943 users; early stopping ends most within 60
    # epochs. The defaults (the start of a search) are configs/ml-100k/vae.yaml's, chosen on
    # validation there: a denoising autoencoder blended with EASE.
    "trials": 20,
    "timeout_minutes": 20,
    "startup_trials": 6,
    "prune_after_trials": 3,
    "prune_warmup_epochs": 20,
    "fixed": {
        "train.epochs": 300,
        "train.loss": "softmax",
        "train.refit_from": "selected",
        "train.batch_size": 128,
        "train.early_stopping.patience": 20,
    },
    "params": {
        "model.embedding_dim": {"choices": [100, 200, 400]},
        "model.vae.hidden": {"choices": [300, 600, 1200]},
        "model.vae.dropout": {"low": 0.3, "high": 0.8},
        "model.vae.beta": {"choices": [0.0, 0.2]},
        "model.vae.ease_l2": {"choices": [0.0, 100.0, 300.0, 1000.0, 3000.0]},
        "train.learning_rate": {"low": 0.0003, "high": 0.003, "log": True},
    },
    # configs/ml-100k/vae.yaml (tests/test_tune_models.py keeps them equal)
    "start": {
        "model.embedding_dim": 200,
        "model.vae.hidden": 600,
        "model.vae.dropout": 0.7,
        "model.vae.beta": 0.0,
        "model.vae.ease_l2": 300.0,
        "train.learning_rate": 0.001,
    },
}

FAMILIES = {
    "vae": Family(
        name="vae",
        summary="an autoencoder over the user's whole item set, multinomial softmax over the "
        "catalogue (Mult-DAE; beta > 0: the KL-annealed Mult-VAE), blended with EASE on "
        "validation",
        neural=True,
        load=load_neural,
        section="vae",
        settings=VAEConfig,
        hyperparameters=("embedding_dim", "vae.hidden", "vae.dropout", "vae.beta"),
        losses=("softmax",),
        search_space=SEARCH_SPACE,
        can=Capabilities(warm_start=False, from_history="native"),
        score_meaning="the decoder's log-softmax score up to a constant for the user's whole "
        "item set; with model.vae.ease_l2 > 0, a blend of it and EASE's score, each "
        "standardised over the user's row, the share chosen on validation (only the order "
        "matters per user)",
        check=_check,
        build=build,
        prepare=prepare,
        calibrate=calibrate,
        memory=_memory,
    )
}

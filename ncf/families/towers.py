"""The tower-and-head families: ``mf``, ``gmf``, ``mlp`` and ``neumf`` (:mod:`ncf.models.model`).

Each is an :class:`~ncf.models.model.NCFModel`: id-embedding towers (with optional side
features and dense layers) joined by an interaction head, trained pointwise (``bce``) or
pairwise (``bpr``) on sampled negatives. Their settings are the shared ones directly under
``model`` (``embedding_dim``, ``mlp_layers``, ``tower_layers``, ``dropout``, ``l2_*``,
``user_features``, ``item_features``); NeuMF also reads ``model.pretrained``, its GMF and
MLP runs (He et al. 2017, §3.4.1), which :mod:`ncf.train.neural` loads.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field

from ncf.errors import ConfigError, NcfError
from ncf.families.sizing import dense_parameters, parameter_bytes, pipeline_bytes
from ncf.family import Capabilities, Family, MemoryParts
from ncf.schema import Section

if TYPE_CHECKING:
    from ncf.config import Config, ModelConfig
    from ncf.data.dataset import Dataset
    from ncf.data.split import Split
    from ncf.scorer import Scorer


class PretrainedConfig(Section):
    """NeuMF initialised from a trained GMF run and a trained MLP run (He et al. 2017, 3.4.1)."""

    gmf: str | None = Field(None, description="run directory of a trained gmf model")
    mlp: str | None = Field(None, description="run directory of a trained mlp model")
    alpha: float = Field(
        0.5, ge=0, le=1, description="weight of the GMF part in the fused output layer"
    )


HYPERPARAMETERS = {
    "mf": ("embedding_dim", "l2_embedding"),
    "gmf": ("embedding_dim",),
    "mlp": ("mlp_layers",),
    "neumf": ("embedding_dim", "mlp_layers"),
}
SUMMARIES = {
    "mf": "dot product of user and item embeddings plus biases (Rendle et al. 2020)",
    "gmf": "generalised matrix factorisation (He et al. 2017)",
    "mlp": "an MLP over the concatenated user and item embeddings (He et al. 2017)",
    "neumf": "GMF and MLP fused (He et al. 2017)",
}


def widths(model: ModelConfig) -> list[int]:
    """The embedding width of each tower pair: mf/gmf ``embedding_dim``, mlp half of
    ``mlp_layers[0]``, neumf both."""
    half = model.mlp_layers[0] // 2 if model.mlp_layers else 0
    return {
        "mf": [model.embedding_dim],
        "gmf": [model.embedding_dim],
        "mlp": [half],
        "neumf": [model.embedding_dim, half],
    }[model.type]


def parameter_count(model: ModelConfig, num_users: int, num_items: int) -> int:
    """Trainable parameters of the model ``model`` describes (side features not counted);
    equal to Keras' ``count_params()`` (tests/test_faults.py)."""
    towers = model.tower_layers
    sizes = widths(model)
    count = sum((num_users + num_items) * w + 2 * dense_parameters([w, *towers]) for w in sizes)
    outs = [towers[-1] if towers else w for w in sizes]
    if model.type == "mf":
        return count + num_users + num_items + 1  # user, item and global biases
    if model.type == "gmf":
        return count + outs[0] + 1
    layers = model.mlp_layers
    mlp = dense_parameters([2 * outs[-1], *layers[1:]])
    last = layers[-1] if len(layers) > 1 else 2 * outs[-1]
    gmf = outs[0] if model.type == "neumf" else 0
    return count + mlp + gmf + last + 1


def _memory(config: Config, dataset: Dataset) -> MemoryParts:
    split, model, train = dataset.split, config.model, config.train
    params = parameter_count(model, split.num_users, split.num_items)
    sizes = widths(model)
    key = (
        "model.mlp_layers" if sizes[-1] > sizes[0] or model.type == "mlp" else "model.embedding_dim"
    )
    per_positive = 1 + train.num_negatives if train.loss == "bce" else train.num_negatives
    return {
        "model": (parameter_bytes(params, train.optimizer), key),
        "training examples": (
            pipeline_bytes(split.num_train, train.batch_size, per_positive),
            "train.batch_size",
        ),
    }


def _check(model: ModelConfig) -> None:
    if model.type in ("mlp", "neumf"):
        if not model.mlp_layers:
            raise ValueError(f"mlp_layers must list at least one size for {model.type}")
        if model.mlp_layers[0] % 2:
            raise ValueError(
                f"mlp_layers[0]={model.mlp_layers[0]} must be even: each tower embeds half of it"
            )
    if bool(model.pretrained.gmf) != bool(model.pretrained.mlp):
        raise ValueError("pretrained needs both gmf and mlp run directories")


def build(config: Config, dataset: Dataset) -> Any:
    """A fresh model as ``config.model`` describes it, with the side features it asks for
    (refused when the data has none)."""
    model, inter = config.model, dataset.interactions
    features = {"user": inter.user_features, "item": inter.item_features}
    for side, matrix in features.items():
        if getattr(model, f"{side}_features") and (matrix is None or matrix.size == 0):
            raise ConfigError(
                f"model.{side}_features is true but the data has no {side} side features; "
                "set it to false"
            )
    split = dataset.split
    return ncf_model(
        model, split.num_users, split.num_items, features["user"], features["item"],
        loss=config.train.loss,
    )  # fmt: skip


def ncf_model(
    model: ModelConfig,
    num_users: int,
    num_items: int,
    user_features: Any = None,
    item_features: Any = None,
    loss: str = "bce",
) -> Any:
    """The :class:`~ncf.models.model.NCFModel` that ``model`` describes (the one place this
    config meets that model). A feature matrix is used only when ``model.user_features``
    (``item_features``) is true, so the config alone decides the architecture."""
    from ncf.models.model import NCFModel

    return NCFModel(
        num_users,
        num_items,
        head=model.type,
        embedding_dim=model.embedding_dim,
        mlp_layers=model.mlp_layers,
        tower_layers=model.tower_layers,
        dropout=model.dropout,
        l2_embedding=model.l2_embedding,
        l2_dense=model.l2_dense,
        loss=loss,
        user_features=user_features if model.user_features else None,
        item_features=item_features if model.item_features else None,
    )


def prepare(model: Any, config: Config, dataset: Dataset, split: Split) -> Any:
    """Batches of positives and fresh negatives (:class:`~ncf.data.pipeline.TrainingStream`)."""
    from ncf.data.pipeline import TrainingStream

    return TrainingStream(split, config.train, config.run.seed)


def load_neural(run: Path) -> Scorer:
    """The run's final ``model.keras`` behind the Scorer interface (every neural family)."""
    from ncf.models.scorer import NeuralScorer, load_keras_model

    path = Path(run) / "model.keras"
    if not path.is_file():
        raise NcfError(
            f"{run}: no model.keras; has the run finished? (resume it with ncf train --resume)"
        )
    return NeuralScorer(load_keras_model(path))


def _reads_features(model: ModelConfig, side: str) -> bool:
    return bool(getattr(model, f"{side}_features"))


_COMMON_SPACE = {
    "trials": 30,
    "timeout_minutes": 20,
    "startup_trials": 8,
    "prune_after_trials": 4,
    "prune_warmup_epochs": 2,
    "fixed": {"train.epochs": 30, "train.lr_schedule": "exponential"},
}
_RATES = {
    "train.learning_rate": {"low": 0.0005, "high": 0.01, "log": True},
    "train.lr_decay_rate": {"low": 0.7, "high": 1.0},
    "train.num_negatives": {"low": 2, "high": 12},
}
_L2 = {"model.l2_embedding": {"low": 1.0e-8, "high": 1.0e-4, "log": True}}
_LAYERS = {"model.mlp_layers": {"choices": [[32, 16, 8], [64, 32, 16, 8], [128, 64, 32, 16]]}}
SEARCH_SPACES: dict[str, dict[str, Any]] = {
    "mf": {
        **_COMMON_SPACE,
        "params": {
            "model.embedding_dim": {"choices": [16, 32, 64, 128]},
            "model.l2_embedding": {"low": 1.0e-8, "high": 1.0e-3, "log": True},
            "train.learning_rate": {"low": 0.0005, "high": 0.02, "log": True},
            "train.lr_decay_rate": {"low": 0.7, "high": 1.0},
            "train.num_negatives": {"low": 2, "high": 16},
        },
    },
    "gmf": {
        **_COMMON_SPACE,
        "params": {"model.embedding_dim": {"choices": [8, 16, 32, 64]}, **_L2, **_RATES},
    },
    "mlp": {
        **_COMMON_SPACE,
        "params": {**_LAYERS, **_L2, "model.dropout": {"low": 0.0, "high": 0.5}, **_RATES},
    },
    "neumf": {
        **_COMMON_SPACE,
        "params": {"model.embedding_dim": {"choices": [8, 16, 32, 64]}, **_LAYERS, **_L2, **_RATES},
    },
}


FAMILIES = {
    head: Family(
        name=head,
        summary=SUMMARIES[head],
        neural=True,
        load=load_neural,
        section="pretrained" if head == "neumf" else None,
        settings=PretrainedConfig if head == "neumf" else None,
        exclusive=head == "neumf",
        hyperparameters=params,
        losses=("bce", "bpr"),
        search_space=SEARCH_SPACES[head],
        can=Capabilities(warm_start=True, from_history="fold-in"),
        check=_check,
        build=build,
        prepare=prepare,
        memory=_memory,
        reads_features=_reads_features,
    )
    for head, params in HYPERPARAMETERS.items()
}

"""The experiment config: a typed, validated schema, YAML loading and ``--set`` overrides.

One YAML file describes one experiment in six sections: ``data``, ``model``, ``train``,
``eval``, ``export`` and ``run``. Precedence is defaults < YAML file < ``--set a.b=value``.
Every model is frozen and forbids unknown keys, so a typo is an error that names the key
path and the file. Override values are parsed with ``yaml.safe_load`` (a scalar or a flow
list such as ``[64,32]``), never ``eval``.

What is refused, with one line naming the file, line or key: a key given twice in one
mapping (YAML would silently keep the last), nesting deeper than :data:`MAX_DEPTH` levels or
more than :data:`MAX_NODES` values (aliases counted as expanded), ``true``/``false`` for a
number (YAML booleans are not 1 and 0 here) or a number for a boolean, and an infinite or
NaN number (``.inf``, ``.nan``).

The resolved config is what a run saves (``config.yaml`` in the run directory); loading
that file gives back an equal object.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ncf.errors import ConfigError
from ncf.io import atomic_write_text

MAX_DEPTH = 16  # a config nests three levels; anything deeper is a mistake or an attack
MAX_NODES = 100_000


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _booleans_are_not_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        """Pydantic reads ``true`` as 1 and 1 as ``true``; a config means neither."""
        field = cls.model_fields[info.field_name or ""]
        takes_bool = _mentions(field.annotation, bool)
        values = value if isinstance(value, list) else [value]
        if not takes_bool and any(isinstance(v, bool) for v in values):
            raise ValueError(f"expected {_kind(field.annotation)}, got {str(value).lower()}")
        if field.annotation is bool and not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {value!r}")
        return value


def _mentions(annotation: Any, kind: type) -> bool:
    """Whether ``kind`` appears in the type ``annotation`` (unions, lists, literals)."""
    if annotation is kind:
        return True
    return any(_mentions(arg, kind) for arg in get_args(annotation) if not isinstance(arg, str))


def _kind(annotation: Any) -> str:
    number = _mentions(annotation, int) or _mentions(annotation, float)
    text = _mentions(annotation, str)
    return {(True, True): "text or a number", (True, False): "a number"}.get(
        (number, text), "text" if text else "a value of the documented type"
    )


class ColumnsConfig(_Section):
    """Column names of a CSV/Parquet interaction file."""

    user: str | int = Field(
        "user",
        description="column holding the user id (name, or 0-based position without a header)",
    )
    item: str | int = Field("item", description="column holding the item id")
    rating: str | int | None = Field(None, description="optional explicit rating column")
    timestamp: str | int | None = Field(
        None, description="optional timestamp column (unix seconds or any sortable number)"
    )


class SyntheticConfig(_Section):
    """Size and shape of the generated data set (``data.source: synthetic``)."""

    users: int = Field(2000, gt=1, description="number of users")
    items: int = Field(1000, gt=1, description="number of items")
    interactions: int = Field(
        100_000, gt=0, description="number of interactions before de-duplication"
    )
    factors: int = Field(16, gt=0, description="dimension of the hidden taste vectors")
    popularity_exponent: float = Field(
        1.0, ge=0, description="Zipf exponent of item popularity (0 = uniform)"
    )
    temperature: float = Field(
        0.5, gt=0, description="softmax temperature of the taste term (lower = more structure)"
    )


class SplitConfig(_Section):
    """How interactions are split into train / validation / test."""

    method: Literal["leave_one_out", "ratio", "temporal", "cold_items"] = Field(
        "leave_one_out",
        description="leave_one_out: latest interaction per user; ratio: latest fraction per user; "
        "temporal: one global time cut; cold_items: a share of items held out entirely (each "
        "user's latest interaction with one of them is the test case), leave_one_out on the rest",
    )
    cold_fraction: float = Field(
        0.1, gt=0, lt=1, description="cold_items: share of the items held out of training"
    )
    test_fraction: float = Field(
        0.2, gt=0, lt=1, description="share held out for test (ratio, temporal)"
    )
    val_fraction: float = Field(
        0.1, gt=0, lt=1, description="share of train held out for validation (ratio, temporal)"
    )
    validation: bool = Field(
        True, description="carve a validation split from train, the same way as test"
    )


class FeatureTableConfig(_Section):
    """Side features from a table keyed by id (``data.item_features`` / ``data.user_features``)."""

    path: str | None = Field(
        None,
        description="CSV or Parquet file with one row per id; null: the source's own info "
        "table (MovieLens: title and genres of u.item, age/gender/occupation of u.user)",
    )
    id: str = Field("id", description="column holding the raw id (file only)")
    numeric: list[str] = Field(
        default_factory=list, description="number columns: standardised (z-score), missing -> 0"
    )
    categorical: list[str] = Field(
        default_factory=list, description="category columns: one-hot over the values in the table"
    )
    text: list[str] = Field(
        default_factory=list,
        description="text columns (title, description): a hashed bag of words, unit length",
    )
    text_buckets: int = Field(
        1024, gt=0, le=1 << 20, description="hash buckets of the bag of words"
    )


class DataConfig(_Section):
    """Where the interactions come from and how they are prepared."""

    source: Literal["synthetic", "movielens", "tfds", "csv", "parquet", "ncf"] = Field(
        "synthetic", description="which reader builds the interaction table"
    )
    name: str | None = Field(
        None,
        description="data set name: movielens folder (ml-100k, ml-1m, ml-20m...), tfds name "
        "(movielens/100k-ratings) or ncf file prefix (ml-1m; '' for plain train.rating)",
    )
    path: str | None = Field(
        None,
        description="file or folder to read; relative paths are relative to the working directory",
    )
    columns: ColumnsConfig = Field(
        default_factory=ColumnsConfig, description="column mapping for csv/parquet"
    )
    separator: str = Field(",", description="field separator for csv files (\\t for tab)")
    header: bool = Field(True, description="whether the csv file has a header row")
    min_rating: float | None = Field(
        None, description="implicit label threshold: keep rating >= this; null keeps all"
    )
    duplicates: Literal["last", "first", "error"] = Field(
        "last",
        description="several interactions of one user with one item: keep the last (by time), the first, or fail",
    )
    min_user_interactions: int = Field(
        0,
        ge=0,
        description="k-core filter: drop users with fewer interactions (repeated with items until stable)",
    )
    min_item_interactions: int = Field(
        0, ge=0, description="k-core filter: drop items with fewer interactions"
    )
    synthetic: SyntheticConfig = Field(
        default_factory=SyntheticConfig, description="generator settings"
    )
    split: SplitConfig = Field(default_factory=SplitConfig, description="train/val/test split")
    item_features: FeatureTableConfig | None = Field(
        None,
        description="item side features beyond the source's own (genres): columns of a table; "
        "used by model.item_features and the content model",
    )
    user_features: FeatureTableConfig | None = Field(
        None, description="user side features beyond the source's own: columns of a table"
    )


class PretrainedConfig(_Section):
    """NeuMF initialised from a trained GMF run and a trained MLP run (He et al. 2017, 3.4.1)."""

    gmf: str | None = Field(None, description="run directory of a trained gmf model")
    mlp: str | None = Field(None, description="run directory of a trained mlp model")
    alpha: float = Field(
        0.5, ge=0, le=1, description="weight of the GMF part in the fused output layer"
    )


class EaseConfig(_Section):
    """EASE (Steck 2019): the closed-form item-item model (``model.type: ease``)."""

    l2: float = Field(500.0, gt=0, description="lambda, the L2 penalty on the item-item weights")
    form: Literal["auto", "primal", "dual"] = Field(
        "auto",
        description="invert the [items, items] Gram matrix (primal) or a [users, users] one "
        "(dual, Woodbury); auto: dual when there are fewer users than items",
    )


class IalsConfig(_Section):
    """iALS (Hu et al. 2008) by conjugate gradient (``model.type: ials``)."""

    factors: int = Field(64, gt=0, description="dimension of the user and item factors")
    l2: float = Field(1.0, gt=0, description="lambda, the L2 penalty on all factors")
    alpha: float = Field(
        10.0, ge=0, description="confidence of an observed pair: weight 1 + alpha (unobserved: 1)"
    )
    iterations: int = Field(15, gt=0, description="alternating sweeps (users, then items)")
    cg_steps: int = Field(
        3, gt=0, description="conjugate-gradient steps per sweep, warm-started (>= factors: exact)"
    )


class HistoryConfig(_Section):
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


class ModelConfig(_Section):
    """The model: a user tower, an item tower and an interaction head, or a classical baseline."""

    type: Literal[
        "mf",
        "gmf",
        "mlp",
        "neumf",
        "history",
        "itemknn",
        "userknn",
        "popularity",
        "ease",
        "ials",
        "content",
    ] = Field(
        "neumf",
        description="interaction head (mf, gmf, mlp, neumf), history-pooled user tower "
        "(history) or baseline (itemknn, userknn, popularity, ease, ials, content: cosine "
        "over item side features)",
    )
    embedding_dim: int = Field(
        8,
        gt=0,
        description="predictive factors: embedding size of mf/gmf (and the GMF branch of neumf)",
    )
    mlp_layers: list[int] = Field(
        default_factory=lambda: [64, 32, 16, 8],
        description="MLP tower sizes; the first is the concatenated embedding size (each tower embeds half)",
    )
    tower_layers: list[int] = Field(
        default_factory=list, description="dense layers after each id embedding in the towers"
    )
    user_features: bool = Field(
        False,
        description="join user side features (age, gender, occupation) when the data has them",
    )
    item_features: bool = Field(
        False, description="join item side features (genres) when the data has them"
    )
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout after each dense layer")
    l2_embedding: float = Field(
        0.0,
        ge=0,
        description="per-example L2 penalty on the embedding rows each training example looks "
        "up: the loss adds l2_embedding * (|p_u|^2 + |q_i|^2) per example (bpr: + |q_j|^2), "
        "averaged over the batch like the data loss",
    )
    l2_dense: float = Field(0.0, ge=0, description="L2 penalty on dense kernels")
    pretrained: PretrainedConfig = Field(
        default_factory=PretrainedConfig, description="neumf only: pretrained branches"
    )
    neighbours: int = Field(
        100, gt=0, description="itemknn/userknn/content: neighbours kept per item (user)"
    )
    shrinkage: float = Field(0.0, ge=0, description="itemknn/userknn: cosine shrinkage term")
    weighting: Literal["binary", "rating"] = Field(
        "binary", description="itemknn/userknn: matrix entries are 1 or the rating"
    )
    history: HistoryConfig = Field(default_factory=HistoryConfig, description="history only")
    ease: EaseConfig = Field(default_factory=EaseConfig, description="ease only")
    ials: IalsConfig = Field(default_factory=IalsConfig, description="ials only")

    @model_validator(mode="after")
    def _check(self) -> ModelConfig:
        if any(size <= 0 for size in self.mlp_layers + self.tower_layers):
            raise ValueError("layer sizes must be positive")
        if self.type in ("mlp", "neumf"):
            if not self.mlp_layers:
                raise ValueError("mlp_layers must list at least one size for mlp/neumf")
            if self.mlp_layers[0] % 2:
                raise ValueError(
                    f"mlp_layers[0]={self.mlp_layers[0]} must be even: each tower embeds half of it"
                )
        if (self.pretrained.gmf or self.pretrained.mlp) and self.type != "neumf":
            raise ValueError("pretrained applies to type neumf only")
        if bool(self.pretrained.gmf) != bool(self.pretrained.mlp):
            raise ValueError("pretrained needs both gmf and mlp run directories")
        return self


class EarlyStoppingConfig(_Section):
    metric: str = Field(
        "NDCG@10", description="validation metric to watch (sampled protocol), e.g. HR@10, NDCG@10"
    )
    patience: int = Field(
        5, ge=0, description="epochs without improvement before stopping (0 disables)"
    )
    min_delta: float = Field(0.0, ge=0, description="smallest change that counts as an improvement")


class DistributeConfig(_Section):
    """Data-parallel training on ``tf.distribute`` (see docs/distributed.md)."""

    strategy: Literal["none", "mirrored", "multi_worker"] = Field(
        "none",
        description="none: one process, one device; mirrored: every local GPU (or the CPU) of "
        "one process (MirroredStrategy); multi_worker: one process per host, cluster from "
        "TF_CONFIG (MultiWorkerMirroredStrategy; start them with ncf launch, or one ncf train "
        "--run-dir SHARED per host). Each global batch of train.batch_size is split evenly "
        "over the replicas",
    )
    timeout_seconds: float = Field(
        120.0,
        gt=0,
        description="multi_worker: a collective (gradient exchange) that waits longer than this "
        "fails, so a dead peer ends the job instead of hanging it; the cluster manager (or ncf "
        "launch) restarts it from the last epoch checkpoint",
    )


class TrainConfig(_Section):
    """The optimisation: loss, negatives, optimiser, schedule, early stopping."""

    epochs: int = Field(20, gt=0, description="maximum number of epochs")
    batch_size: int = Field(256, gt=0, description="training examples per step")
    loss: Literal["bce", "bpr", "softmax", "sampled_softmax"] = Field(
        "bce",
        description="bce: pointwise log loss on sampled negatives; bpr: pairwise; softmax: "
        "cross-entropy over the whole catalogue; sampled_softmax: over sampled_items drawn "
        "from negative_sampling's distribution, log-Q corrected (softmax losses: model.type "
        "history)",
    )
    num_negatives: int = Field(
        4, gt=0, description="sampled negatives per positive, fresh every epoch"
    )
    sampled_items: int = Field(
        1024, gt=0, description="sampled_softmax: items drawn per batch, shared by its examples"
    )
    negative_sampling: Literal["uniform", "popularity"] = Field(
        "uniform", description="distribution of training negatives"
    )
    popularity_power: float = Field(
        0.75, ge=0, description="popularity sampling: weight = count ** power"
    )
    optimizer: Literal["adam", "sgd", "adagrad", "rmsprop"] = Field(
        "adam", description="Keras optimiser"
    )
    sparse_updates: bool = Field(
        True,
        description="embedding tables take row-sparse steps: only the rows a batch looks up are "
        "read and written (adam: lazy Adam, adagrad: sparse Adagrad; sgd is sparse either way, "
        "rmsprop never), so a step's cost does not grow with the tables; false: Keras' dense "
        "optimisers, which update every row at every step",
    )
    learning_rate: float = Field(0.001, gt=0, description="initial learning rate")
    lr_schedule: Literal["constant", "exponential", "cosine"] = Field(
        "constant", description="learning rate schedule over steps"
    )
    lr_decay_rate: float = Field(0.96, gt=0, le=1, description="exponential: factor per epoch")
    early_stopping: EarlyStoppingConfig = Field(
        default_factory=EarlyStoppingConfig, description="on the validation split"
    )
    refit: bool = Field(
        False,
        description="once validation has chosen the epoch, train a fresh model on train + "
        "validation for that many epochs: it is the model tested and exported (baselines: "
        "fitted on train + validation)",
    )
    histograms: bool = Field(
        True, description="write weight histograms and the embedding projector to TensorBoard"
    )
    distribute: DistributeConfig = Field(
        default_factory=DistributeConfig, description="data-parallel training on tf.distribute"
    )


class EvalConfig(_Section):
    """Ranking evaluation: protocols, cut-offs and the sampled candidates."""

    protocols: list[Literal["sampled", "full"]] = Field(
        default_factory=lambda: ["sampled", "full"],  # type: ignore[arg-type]
        description="sampled (He et al. 2017) and/or full ranking",
    )
    k: list[int] = Field(
        default_factory=lambda: [5, 10, 20], description="cut-offs for the metrics"
    )
    sampled_negatives: int = Field(
        100, gt=0, description="negatives ranked with each held-out item (sampled protocol)"
    )
    batch_users: int = Field(1024, gt=0, description="users scored per batch in full ranking")
    val_every: int = Field(
        1,
        gt=0,
        description="rank the validation split after every N-th epoch (and the last): the "
        "chosen epoch is then one of those, and early-stopping patience counts validations",
    )
    val_users: int | None = Field(
        None,
        gt=0,
        description="rank only this many validation users each epoch (a fixed sample drawn "
        "from run.seed; null: all). The chosen model's reported validation metrics use all of "
        "them; a sample of n users adds noise of about 1/sqrt(n) to each epoch's figure",
    )

    @model_validator(mode="after")
    def _check(self) -> EvalConfig:
        if not self.protocols:
            raise ValueError("protocols must name at least one of sampled, full")
        if any(k <= 0 for k in self.k) or not self.k:
            raise ValueError("k must be a non-empty list of positive integers")
        return self


class ExportConfig(_Section):
    exclude_seen: bool = Field(
        True, description="recommend excludes the items each user interacted with in training"
    )
    default_k: int = Field(
        10,
        gt=0,
        description="k used when a request does not give one (at most the number of items)",
    )
    include_seen: bool = Field(
        True,
        description="the export holds each user's train and validation items (to exclude them "
        "from recommend); false leaves them out, and recommend then cannot exclude them",
    )


class RunConfig(_Section):
    seed: int = Field(42, ge=0, description="the one seed: split, negatives, candidates, weights")
    dir: str = Field("runs", description="parent folder of run directories")
    name: str | None = Field(None, description="run name (default: the config file's stem)")
    check_memory: bool = Field(
        True,
        description="refuse to start when the estimated memory (model, optimizer state and "
        "data; docs/notes-issue-13.md) exceeds the memory available",
    )


class Config(_Section):
    """One experiment."""

    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)
    run: RunConfig = Field(default_factory=RunConfig)

    @model_validator(mode="after")
    def _check(self) -> Config:
        if self.data.source == "synthetic":
            self.check_catalogue(self.data.synthetic.items)
        softmax = self.train.loss in ("softmax", "sampled_softmax")
        if softmax != (self.model.type == "history"):
            raise ValueError(
                f"train.loss {self.train.loss} does not fit model.type {self.model.type}: "
                "model.type history trains with train.loss softmax or sampled_softmax, the "
                "other neural types with bce or bpr"
            )
        if self.model.type == "history" and self.model.l2_embedding:
            raise ValueError(
                "model.l2_embedding is not used by model.type history (it regularises with "
                "model.history.dropout); remove it"
            )
        if self.train.refit and not self.data.split.validation:
            raise ValueError(
                "train.refit needs a validation split to choose the epoch; "
                "set data.split.validation: true or train.refit: false"
            )
        return self

    def check_export(self, num_items: int) -> None:
        """Raise ``ValueError`` where an export setting cannot fit a catalogue of ``num_items``.

        Called where an export is built (``export.*`` can change at export time), so that
        ``export.default_k`` never exceeds the catalogue: a request without ``k`` would fail.
        """
        if self.export.default_k > num_items:
            raise ValueError(
                f"export.default_k={self.export.default_k} is larger than the catalogue "
                f"({num_items} items): every request without k would fail; set "
                f"--set export.default_k={num_items} or less"
            )

    def check_catalogue(self, num_items: int) -> None:
        """Raise ``ValueError`` where an eval setting cannot fit a catalogue of ``num_items``."""
        if max(self.eval.k) > num_items:
            raise ValueError(
                f"eval.k={max(self.eval.k)} is larger than the catalogue ({num_items} items)"
            )
        if self.eval.sampled_negatives >= num_items:
            raise ValueError(
                f"eval.sampled_negatives={self.eval.sampled_negatives} needs a catalogue of more items "
                f"(it has {num_items})"
            )


def _format_errors(err: ValidationError, source: str) -> str:
    """One line: ``SOURCE: key.path: problem; other.key: problem``."""
    problems = []
    for e in err.errors():
        path = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; configs/README.md lists every key)"
            last = str(e["loc"][-1]) if e["loc"] else ""
            if ":" in last and e["input"] is None:  # {user:user_id} is the key "user:user_id"
                key, _, value = last.partition(":")
                msg = f"unknown key (YAML needs a space after the colon: {key}: {value})"
        problems.append(f"{path}: {msg}")
    return f"{source}: " + "; ".join(problems)


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # "<<: *base" entries may be overridden: that is what merging means
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            try:
                first = seen.get(key)
            except TypeError:
                continue  # an unhashable key: the base class reports it
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key {key!r} is given twice (first on line {first + 1}); keep one",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def _safe_load(text: str) -> Any:
    """YAML to Python with :class:`_StrictLoader`; too deep or too large raises ``ValueError``."""
    try:
        value = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader)
    except RecursionError:
        raise ValueError(f"nested too deeply (a config has at most {MAX_DEPTH} levels)") from None
    _check_size(value)
    return value


def _check_size(value: Any) -> None:
    """Raise ``ValueError`` past :data:`MAX_DEPTH` levels or :data:`MAX_NODES` values."""
    stack, nodes = [(value, 1)], 0
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if depth > MAX_DEPTH:
            raise ValueError(f"nested too deeply (a config has at most {MAX_DEPTH} levels)")
        if nodes > MAX_NODES:
            raise ValueError(f"too large (more than {MAX_NODES} values, aliases expanded)")
        children = node.values() if isinstance(node, dict) else node
        if isinstance(node, dict | list):
            stack.extend((child, depth + 1) for child in children)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"train.batch_size=512"`` -> ``(["train", "batch_size"], 512)``; values are YAML scalars or lists."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. --set train.epochs=5")
    try:
        value = _safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"--set {text!r}: value is not valid YAML ({exc.__class__.__name__})"
        ) from None
    except ValueError as exc:
        raise ConfigError(f"--set {text[:60]!r}: the value is {exc}") from None
    return key.strip().split("."), value


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of ``raw`` with each ``a.b.c=value`` override set (sections created as needed)."""
    result = _deep_copy(raw)
    for text in overrides:
        path, value = parse_override(text)
        node = result
        for i, part in enumerate(path[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(
                    f"--set {text!r}: {'.'.join(path[: i + 1])} is a value, not a section"
                )
            node = child
        node[path[-1]] = value
    return result


def _deep_copy(raw: dict[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in raw.items()}


def read_yaml(path: str | os.PathLike[str], what: str = "config file") -> dict[str, Any]:
    """Read a YAML mapping, turning every failure into a ConfigError that names the file and line
    (``what`` the file is: "config file", "search-space file")."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: {what} not found") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the {what} ({exc.__class__.__name__})") from None
    try:
        raw = _safe_load(text)
    except ValueError as exc:
        raise ConfigError(f"{path}: the YAML is {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        context, start = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and start:
            problem += (
                f" ({context} that starts at line {start.line + 1}, column {start.column + 1})"
            )
        raise ConfigError(f"{path}: {where}malformed YAML: {problem}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{path}: the top level must be a mapping with sections data, model, train, eval, export, run"
        )
    return raw


def build_config(raw: dict[str, Any], source: str = "config") -> Config:
    """Validate a raw mapping into a Config; errors name ``source`` and each key path."""
    try:
        return Config.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_format_errors(err, source)) from None


def load_config(path: str | os.PathLike[str], overrides: list[str] | None = None) -> Config:
    """Load ``path``, apply ``--set`` overrides and validate. Fills ``run.name`` from the file stem."""
    raw = apply_overrides(read_yaml(path), overrides or [])
    run = raw.get("run", {})
    if isinstance(run, dict) and run.get("name") is None:
        raw = {**raw, "run": {**run, "name": Path(path).stem}}
    source = str(path) + (" (with --set overrides)" if overrides else "")
    return build_config(raw, source)


def config_to_dict(config: Config) -> dict[str, Any]:
    return config.model_dump(mode="json")


def save_config(config: Config, path: str | os.PathLike[str]) -> None:
    """Write the resolved config as YAML, atomically."""
    text = yaml.safe_dump(config_to_dict(config), sort_keys=False)
    atomic_write_text(Path(path), text)


def describe_schema() -> str:
    """Every key with its type, default and meaning, as Markdown (source of configs/README.md)."""
    lines: list[str] = []

    def walk(model: type[BaseModel], prefix: str) -> None:
        sections = []
        for name, field in model.model_fields.items():
            ann = field.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                sections.append((name, ann))
                continue
            default = field.get_default(call_default_factory=True)
            type_name = str(ann).replace("typing.", "").replace("<class '", "").replace("'>", "")
            type_name = type_name.replace("ncf.config.", "")
            lines.append(
                f"- `{prefix}{name}` ({type_name}, default `{default!r}`): {field.description or ''}"
            )
            optional = [
                a for a in get_args(ann) if isinstance(a, type) and issubclass(a, BaseModel)
            ]
            if optional:  # an optional section (null: off): its keys too
                sections.append((name, optional[0]))
        for name, section in sections:
            lines.append(f"\n### `{prefix}{name}`\n")
            walk(section, f"{prefix}{name}.")

    walk(Config, "")
    return "\n".join(lines).strip() + "\n"

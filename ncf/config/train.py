"""The ``train`` section: loss, negatives, optimiser, schedule, early stopping, distribution."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from ncf.schema import Section

# A step's batch is one tensor dimension, and the input pipeline holds 64 of them at once:
# past a million examples a step, a batch is a typo (and past 2**31 not a shape at all).
MAX_BATCH = 2**20


class EarlyStoppingConfig(Section):
    metric: str = Field(
        "NDCG@10", description="validation metric to watch (sampled protocol), e.g. HR@10, NDCG@10"
    )
    patience: int = Field(
        5, ge=0, description="epochs without improvement before stopping (0 disables)"
    )
    min_delta: float = Field(0.0, ge=0, description="smallest change that counts as an improvement")


class DistributeConfig(Section):
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


class TrainConfig(Section):
    """The optimisation: loss, negatives, optimiser, schedule, early stopping."""

    @model_validator(mode="before")
    @classmethod
    def _sampled_proposal(cls, raw: Any) -> Any:
        """Without ``negative_sampling``, ``sampled_softmax`` draws by popularity (docs/
        benchmarks.md, issue 23: equal validation NDCG@10 to the full softmax, uniform 0.003
        lower); the resolved config in the run directory says so."""
        if isinstance(raw, dict) and raw.get("loss") == "sampled_softmax":
            raw = {"negative_sampling": "popularity", **raw}
        return raw

    epochs: int = Field(20, gt=0, description="maximum number of epochs")
    batch_size: int = Field(
        256, gt=0, le=MAX_BATCH, description="training examples per step (at most 2**20)"
    )
    loss: Literal["bce", "bpr", "softmax", "sampled_softmax"] = Field(
        "bce",
        description="bce: pointwise log loss on sampled negatives; bpr: pairwise; softmax: "
        "cross-entropy over the whole catalogue; sampled_softmax: over sampled_items drawn "
        "from negative_sampling's distribution, log-Q corrected. Left out of a config file: "
        "the model family's own first loss (the families table)",
    )
    num_negatives: int = Field(
        4, gt=0, description="sampled negatives per positive, fresh every epoch"
    )
    sampled_items: int = Field(
        1024,
        gt=0,
        description="sampled_softmax: items drawn per batch, shared by its examples (at a "
        "third of the catalogue or more the full softmax is computed instead: cheaper; at "
        "23.7k items 1024 popularity draws matched 2048 and the full softmax on validation)",
    )
    negative_sampling: Literal["uniform", "popularity"] = Field(
        "uniform",
        description="distribution of training negatives, and of sampled_softmax's draws (its "
        "proposal; left out with sampled_softmax: popularity, which matched the full softmax's "
        "validation NDCG@10 at 23.7k items where uniform draws fell 0.003 short)",
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
    refit_from: Literal["fresh", "selected"] = Field(
        "fresh",
        description="neural refit: fresh trains a new model on train + validation for the "
        "epochs validation chose; selected keeps the model validation chose, lets it read "
        "train + validation (the latest items the history and sequence towers pool) and trains "
        "it refit_epochs more epochs on them (docs/benchmarks.md measures both)",
    )
    refit_epochs: int = Field(
        0, ge=0, description="refit_from selected: epochs on train + validation (0: none)"
    )
    histograms: bool = Field(
        True, description="write weight histograms and the embedding projector to TensorBoard"
    )
    distribute: DistributeConfig = Field(
        default_factory=DistributeConfig, description="data-parallel training on tf.distribute"
    )

"""The neural families (mf, gmf, mlp, neumf, history) for :mod:`ncf.registry`.

They are trained by :mod:`ncf.train` (epochs, validation, checkpoints), saved as
``model.keras`` in the run directory and served through their Keras model.
"""

from __future__ import annotations

from pathlib import Path

from ncf.errors import NcfError
from ncf.registry import Family

HYPERPARAMETERS = {
    "mf": ("embedding_dim", "l2_embedding"),
    "gmf": ("embedding_dim",),
    "mlp": ("mlp_layers",),
    "neumf": ("embedding_dim", "mlp_layers"),
    "history": ("embedding_dim", "history.length", "history.dropout", "history.causal"),
}
MEANINGS = {
    "history": "log-softmax score up to a constant (the user's history vector against the "
    "item's output embedding, plus item bias; only the order matters per user)",
}


def load_neural(run: Path):
    """The run's final ``model.keras`` behind the Scorer interface."""
    from ncf.models.scorer import NeuralScorer, load_keras_model

    path = Path(run) / "model.keras"
    if not path.is_file():
        raise NcfError(
            f"{run}: no model.keras; has the run finished? (resume it with ncf train --resume)"
        )
    return NeuralScorer(load_keras_model(path))


FAMILIES = {
    head: Family(
        name=head,
        neural=True,
        hyperparameters=params,
        load=load_neural,
        score_meaning=MEANINGS.get(head, ""),
    )
    for head, params in HYPERPARAMETERS.items()
}

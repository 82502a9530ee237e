"""NeuMF initialised from a trained GMF model and a trained MLP model (He et al. 2017, §3.4.1).

The NeuMF GMF branch (towers) takes the GMF model's weights, the MLP branch (towers and ReLU
layers) the MLP model's. The output layer fuses the two prediction vectors with a trade-off
``α``:

    h ← [α h^GMF ; (1 - α) h^MLP],    b ← α b^GMF + (1 - α) b^MLP

so that right after initialisation ``s_NeuMF(u, i) = α s_GMF(u, i) + (1 - α) s_MLP(u, i)``.
Every shape is checked before anything is copied; a mismatch raises ``ValueError`` naming
the part and both shapes, and leaves the NeuMF model untouched. Reading the runs from disk is
the trainer's job.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from ncf.models.model import NCFModel


def _check_type(model: keras.Model, expected: str, role: str) -> NCFModel:
    if not isinstance(model, NCFModel) or model.head_type != expected:
        found = getattr(model, "head_type", type(model).__name__)
        raise ValueError(f"{role} must be an NCFModel of type {expected!r}, got {found!r}")
    return model


def _pairs(what: str, source: str, dst: keras.layers.Layer, src: keras.layers.Layer) -> list:
    dst_shapes = [tuple(w.shape) for w in dst.weights]
    src_shapes = [tuple(w.shape) for w in src.weights]
    if dst_shapes != src_shapes:
        names = [w.name for w in dst.weights]
        raise ValueError(
            f"{what}: the NeuMF model has weights {list(zip(names, dst_shapes, strict=False))} "
            f"but the {source} model has {src_shapes}; build NeuMF with the same sizes "
            "(embedding_dim, mlp_layers, tower_layers, side features, users, items)"
        )
    return list(zip(dst.weights, src.weights, strict=True))


def _fused_output(neumf: NCFModel, gmf: NCFModel, mlp: NCFModel, alpha: float) -> list:
    kernel_g, bias_g = (np.asarray(w) for w in gmf.head.output_layer.weights)
    kernel_m, bias_m = (np.asarray(w) for w in mlp.head.output_layer.weights)
    target = neumf.head.output_layer
    fused = np.concatenate([alpha * kernel_g, (1.0 - alpha) * kernel_m], axis=0)
    if tuple(target.kernel.shape) != fused.shape:
        raise ValueError(
            f"output layer: NeuMF has kernel {tuple(target.kernel.shape)} but GMF {kernel_g.shape} "
            f"+ MLP {kernel_m.shape} give {fused.shape}"
        )
    return [(target.kernel, fused), (target.bias, alpha * bias_g + (1.0 - alpha) * bias_m)]


def init_neumf_from_pretrained(
    neumf: keras.Model, gmf: keras.Model, mlp: keras.Model, alpha: float
) -> None:
    """Copy a trained GMF and a trained MLP into ``neumf`` in place (He et al. 2017, §3.4.1).

    Args:
        neumf: the NeuMF ``NCFModel`` to initialise.
        gmf: a trained ``NCFModel`` of type gmf with the same users, items and ``embedding_dim``.
        mlp: a trained ``NCFModel`` of type mlp with the same users, items and ``mlp_layers``.
        alpha: float in [0, 1]. Weight of the GMF part in the fused output layer.

    Example:

    ```python
    init_neumf_from_pretrained(neumf, gmf, mlp, alpha=0.5)
    ```
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    neumf = _check_type(neumf, "neumf", "neumf")
    gmf = _check_type(gmf, "gmf", "gmf")
    mlp = _check_type(mlp, "mlp", "mlp")
    copies: list[tuple[Any, Any]] = []
    copies += _pairs("user GMF tower", "GMF", neumf.user_towers[0], gmf.user_towers[0])
    copies += _pairs("item GMF tower", "GMF", neumf.item_towers[0], gmf.item_towers[0])
    copies += _pairs("user MLP tower", "MLP", neumf.user_towers[1], mlp.user_towers[0])
    copies += _pairs("item MLP tower", "MLP", neumf.item_towers[1], mlp.item_towers[0])
    neumf_layers, mlp_layers = neumf.head.mlp.dense_layers, mlp.head.dense_layers
    if len(neumf_layers) != len(mlp_layers):
        raise ValueError(
            f"MLP layers: NeuMF has {len(neumf_layers)} ReLU layers but the MLP model has "
            f"{len(mlp_layers)}; use the same mlp_layers"
        )
    for i, (dst, src) in enumerate(zip(neumf_layers, mlp_layers, strict=True)):
        copies += _pairs(f"MLP layer {i}", "MLP", dst, src)
    copies += _fused_output(neumf, gmf, mlp, alpha)
    for variable, value in copies:
        variable.assign(np.asarray(value))

"""Neural models: towers, interaction heads, the assembled Keras model, losses, optimisers.

``build_model(config, num_users, num_items)`` gives an :class:`NCFModel` whose ``call`` on
``{"user": [B], "item": [B]}`` returns logits ``[B]``; ``score_items`` / ``score_all`` serve
the evaluator; ``optimizer_from_config`` builds the optimiser; ``init_neumf_from_pretrained``
fuses trained GMF and MLP models into NeuMF (He et al. 2017, §3.4.1).
"""

from ncf.models.heads import DotHead, GMFHead, MLPBlock, MLPHead, NeuMFHead
from ncf.models.history import HistoryModel
from ncf.models.losses import bce_loss, bpr_loss
from ncf.models.model import NCFModel, build_model
from ncf.models.optim import learning_rate_from_config, optimizer_from_config
from ncf.models.pretrained import init_neumf_from_pretrained
from ncf.models.towers import Tower

__all__ = [
    "DotHead",
    "GMFHead",
    "HistoryModel",
    "MLPBlock",
    "MLPHead",
    "NCFModel",
    "NeuMFHead",
    "Tower",
    "bce_loss",
    "bpr_loss",
    "build_model",
    "init_neumf_from_pretrained",
    "learning_rate_from_config",
    "optimizer_from_config",
]

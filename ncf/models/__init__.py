"""Neural models: towers, interaction heads, the assembled Keras model, losses, optimisers.

:class:`NCFModel` (towers and a head) and :class:`HistoryModel` (a user pooled from their
items), :class:`SequenceModel` and :class:`VAEModel` (a user's whole item set) answer ``call`` on ``{"user": [B], "item": [B]}`` with scores ``[B]``; ``score_items`` /
``score_all`` serve the evaluator (a family builds them from a config: :mod:`ncf.families`); ``optimizer_from_config`` builds the optimiser; ``init_neumf_from_pretrained``
fuses trained GMF and MLP models into NeuMF (He et al. 2017, §3.4.1).
"""

from ncf.models.attention import CausalSelfAttention, TransformerBlock
from ncf.models.heads import DotHead, GMFHead, MLPBlock, MLPHead, NeuMFHead
from ncf.models.history import HistoryModel
from ncf.models.losses import bce_loss, bpr_loss
from ncf.models.model import NCFModel
from ncf.models.optim import learning_rate_from_config, optimizer_from_config
from ncf.models.pretrained import init_neumf_from_pretrained
from ncf.models.sequence import SequenceModel
from ncf.models.towers import Tower
from ncf.models.vae import VAEModel

__all__ = [
    "CausalSelfAttention",
    "SequenceModel",
    "TransformerBlock",
    "DotHead",
    "GMFHead",
    "HistoryModel",
    "MLPBlock",
    "MLPHead",
    "NCFModel",
    "NeuMFHead",
    "Tower",
    "VAEModel",
    "bce_loss",
    "bpr_loss",
    "init_neumf_from_pretrained",
    "learning_rate_from_config",
    "optimizer_from_config",
]

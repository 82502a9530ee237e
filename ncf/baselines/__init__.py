"""Classical baselines as :class:`~ncf.scorer.Scorer`\\ s: item-kNN, user-kNN, popularity.

Each has ``fit(num_users, num_items, train_user, train_item, ratings=None, ...)``,
``save(dir)`` / ``load(dir)`` and ``serving_form()``; its module's ``FAMILIES`` tell
:mod:`ncf.registry` how a ``ModelConfig`` maps to it. They are evaluated by the same code
as the neural models (``ncf.evaluation``).
"""

from ncf.baselines.knn import ItemKNN, UserKNN
from ncf.baselines.popularity import Popularity

__all__ = ["ItemKNN", "Popularity", "UserKNN"]

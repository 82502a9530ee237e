"""Train / validation / test splits and the saved evaluation candidates.

Methods (``data.split.method``):

- ``leave_one_out``: each user's latest interaction (by timestamp; ties broken by file
  order, the later row wins; without timestamps a random one drawn from the seed) is the
  test case. A user needs at least 2 interactions for a test case and 3 for a validation
  case as well; users with fewer stay in train only and are counted in ``stats``.
- ``ratio``: each user's latest ``test_fraction`` of interactions (at least one, never all)
  is test; the same again on what is left gives validation.
- ``temporal``: one global cut at the ``1 - test_fraction`` quantile of time; test rows
  of users or items absent from train are dropped and counted (they cannot be ranked).

Validation is carved from train by the same method, so early stopping and tuning never
see the test split. Sampled-protocol candidates are drawn once from the seed: for every
test (and validation) case, N distinct items the user never interacted with in any split.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Split:
    """Indexed train / val / test interactions and the sampled-protocol candidates.

    The arrays are int32 indices into the vocabularies of the :class:`Interactions` they
    were made from. Each of train, val and test is sorted by user. ``val_candidates`` and
    ``test_candidates`` hold only the sampled negatives of each case (row ``j`` belongs to
    case ``j``); the held-out item itself is not among them.
    """

    num_users: int
    num_items: int
    train_user: np.ndarray  # [n_train] int32
    train_item: np.ndarray  # [n_train] int32
    val_user: np.ndarray  # [n_val] int32
    val_item: np.ndarray  # [n_val] int32
    test_user: np.ndarray  # [n_test] int32
    test_item: np.ndarray  # [n_test] int32
    val_candidates: np.ndarray  # [n_val, N] int32
    test_candidates: np.ndarray  # [n_test, N] int32
    stats: dict[str, int] = field(default_factory=dict)

"""One int64 key per (user, item) pair: ``user * num_items + item``.

Sorting, de-duplicating and set tests over pairs all work on these keys; the encoding is
exact while ``num_users * num_items < 2**63``, far beyond any catalogue ncf handles.
"""

from __future__ import annotations

import numpy as np


def pair_keys(user: np.ndarray, item: np.ndarray, num_items: int) -> np.ndarray:
    """int64 keys of the pairs ``(user[j], item[j])`` (shapes broadcast)."""
    return np.asarray(user, dtype=np.int64) * num_items + np.asarray(item, dtype=np.int64)

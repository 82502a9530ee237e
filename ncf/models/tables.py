"""The data tables a model holds beside its weights (each user's latest items)."""

from __future__ import annotations

from typing import Any

import numpy as np


def assign_table(variable: Any, table: np.ndarray, what: str) -> None:
    """Give the int32 ``variable`` the contents of ``table``, which must have its shape."""
    table = np.asarray(table, np.int32)
    shape = tuple(variable.shape)
    if table.shape != shape:
        raise ValueError(f"{what} must be {shape}, got {table.shape}")
    variable.assign(table)

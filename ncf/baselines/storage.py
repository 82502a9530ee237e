"""Saving and loading fitted baselines: a small JSON header and ``.npz`` arrays, written atomically.

A baseline directory holds ``baseline.json`` (``{"type": ..., "params": {...}}``) and one
``baseline_<name>.npz`` per array (scipy.sparse ``save_npz`` for sparse matrices). Each file
goes through a temporary name and a rename, so a crash never leaves half a file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np
import scipy.sparse as sp

from ncf.errors import NcfError
from ncf.io import atomic_write

HEADER = "baseline.json"


def _npz_writer(value: Any) -> Callable[[IO[Any]], None]:
    if sp.issparse(value):
        return lambda fh: sp.save_npz(fh, sp.csr_matrix(value))
    return lambda fh: np.savez(fh, value=value)


def save_baseline(
    directory: str | os.PathLike[str], kind: str, params: dict[str, Any], arrays: dict
) -> None:
    """Write ``arrays`` (dense or scipy.sparse) and then the header naming ``kind``."""
    directory = Path(directory)
    for name, value in arrays.items():
        path = directory / f"baseline_{name}.npz"
        atomic_write(path, _npz_writer(value))
    header = json.dumps({"type": kind, "params": params}, indent=2).encode()
    atomic_write(directory / HEADER, lambda fh: fh.write(header))


def read_header(directory: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(directory) / HEADER
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NcfError(
            f"{path}: no saved baseline here; is this the run directory of a baseline?"
        ) from None


def load_arrays(
    directory: str | os.PathLike[str], kind: str, names: dict[str, bool]
) -> tuple[dict, dict]:
    """Check the header names ``kind`` and read ``names`` (name -> is sparse); returns (params, arrays)."""
    header = read_header(directory)
    if header.get("type") != kind:
        raise NcfError(f"{directory}: holds a {header.get('type')!r} baseline, not {kind!r}")
    arrays: dict[str, Any] = {}
    for name, sparse in names.items():
        path = Path(directory) / f"baseline_{name}.npz"
        if not path.is_file():
            raise NcfError(f"{path}: missing; the baseline directory is incomplete")
        if sparse:
            arrays[name] = sp.load_npz(path).tocsr()
        else:
            with np.load(path) as npz:
                arrays[name] = npz["value"]
    return header["params"], arrays

"""Saving and loading fitted baselines: a small JSON header and ``.npz`` arrays, written atomically.

A baseline directory holds ``baseline.json`` (``{"type": ..., "params": {...}}``) and one
``baseline_<name>.npz`` per array (scipy.sparse ``save_npz`` for sparse matrices). Each file
goes through a temporary name and a rename, so a crash never leaves half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from ncf.errors import NcfError

HEADER = "baseline.json"


def _atomic(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_baseline(
    directory: str | os.PathLike[str], kind: str, params: dict[str, Any], arrays: dict
) -> None:
    """Write ``arrays`` (dense or scipy.sparse) and then the header naming ``kind``."""
    directory = Path(directory)
    for name, value in arrays.items():
        path = directory / f"baseline_{name}.npz"
        if sp.issparse(value):
            _atomic(path, lambda fh, v=value: sp.save_npz(fh, sp.csr_matrix(v)))
        else:
            _atomic(path, lambda fh, v=value: np.savez(fh, value=v))
    header = json.dumps({"type": kind, "params": params}, indent=2).encode()
    _atomic(directory / HEADER, lambda fh: fh.write(header))


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

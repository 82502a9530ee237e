"""Memory needed to read the data, checked against what is available before reading starts.

Measured peaks (ncf 0.1.0, pandas 2, one process, above the interpreter and its imports):

- ``synthetic``: about 100 bytes per generated interaction (2 M interactions: 300 MB), plus
  the latent model, ``(users + items) × (factors + 8)`` float64 values;
- ``csv``: about 24 bytes per byte of file (a 24 MB file of 1 M rows with text ids: 534 MB),
  most of it pandas' Python string objects for the ids.

Other sources (MovieLens and NCF files read their integer ids as integers; Parquet and TFDS)
are not checked here; the training run's own check (:mod:`ncf.train.resources`) still applies
once the data is read. ``run.check_memory: false`` skips both.
"""

from __future__ import annotations

from pathlib import Path

from ncf.config import Config
from ncf.errors import DataError
from ncf.memory import available_memory, human

SYNTHETIC_BYTES_PER_INTERACTION = 100
CSV_BYTES_PER_FILE_BYTE = 24


def input_bytes(config: Config) -> tuple[int, str] | None:
    """Estimated bytes to read ``config.data`` and how the estimate was made; None if unknown."""
    data = config.data
    if data.source == "synthetic":
        s = data.synthetic
        model = (s.users + s.items) * (s.factors + 8) * 8
        return s.interactions * SYNTHETIC_BYTES_PER_INTERACTION + model, (
            f"{s.interactions} interactions x {SYNTHETIC_BYTES_PER_INTERACTION} bytes and a latent "
            "model of (users + items) x (factors + 8) x 8 bytes; lower data.synthetic.interactions, "
            "users, items or factors"
        )
    if data.source == "csv" and data.path and Path(data.path).is_file():
        size = Path(data.path).stat().st_size
        return size * CSV_BYTES_PER_FILE_BYTE, (
            f"{human(size)} of CSV x {CSV_BYTES_PER_FILE_BYTE}; filter the file first "
            "or use a machine with more memory"
        )
    return None


def check_input_memory(config: Config, available: int | None = None) -> None:
    """Raise :class:`DataError` when reading the data would need more memory than is free."""
    if not config.run.check_memory:
        return
    need = input_bytes(config)
    available = available_memory() if available is None else available
    if need is None or available is None or need[0] <= available:
        return
    raise DataError(
        f"not enough memory to read the data: it needs about {human(need[0])} ({need[1]}) but "
        f"{human(available)} is available; or set run.check_memory: false to try anyway"
    )

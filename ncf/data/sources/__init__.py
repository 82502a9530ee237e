"""Data sources: everything that turns a config into a :class:`~ncf.data.interactions.RawData`.

``data.source`` picks the reader:

- ``synthetic``: generated data with a known latent structure (:mod:`.synthetic`);
- ``movielens``: an unzipped GroupLens folder, 100K / 1M / 20M / 25M / latest (:mod:`.movielens`);
- ``tfds``: a MovieLens set already prepared by TensorFlow Datasets, offline (:mod:`.tfds_source`);
- ``csv`` / ``parquet``: any interaction file with a column mapping (:mod:`.tabular`);
- ``ncf``: the NCF paper's ``.train.rating`` / ``.test.rating`` / ``.test.negative`` (:mod:`.ncf_files`).

Every reader returns a frame with text ``user`` and ``item`` columns and, where the data has
them, float64 ``rating`` and int64 ``timestamp`` (unix seconds), in file order.
"""

from __future__ import annotations

from ncf.config import DataConfig
from ncf.data.interactions import RawData
from ncf.data.sources.movielens import read_movielens
from ncf.data.sources.ncf_files import read_ncf
from ncf.data.sources.synthetic import generate
from ncf.data.sources.tabular import read_csv_source, read_parquet_source
from ncf.data.sources.tfds_source import read_tfds
from ncf.errors import DataError

__all__ = ["read_raw"]


def read_raw(config: DataConfig, seed: int) -> RawData:
    """Read (or generate, with ``seed``) the raw interactions that ``config`` describes."""
    if config.source == "synthetic":
        return generate(config.synthetic, seed)
    readers = {
        "movielens": read_movielens,
        "tfds": read_tfds,
        "csv": read_csv_source,
        "parquet": read_parquet_source,
        "ncf": read_ncf,
    }
    if config.source not in readers:
        raise DataError(
            f"data.source {config.source!r}: use one of synthetic, {', '.join(readers)}"
        )
    return readers[config.source](config)

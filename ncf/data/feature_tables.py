"""Side features from columns of a table keyed by id (``data.item_features``,
``data.user_features``), appended to the source's own (genres; age, gender, occupation).

For the ids of a vocabulary, in its order, each named column becomes:

- ``numeric``: the value standardised over the table's ids, ``(x - mean) / std`` (std 0:
  ``x - mean``); a missing value or id gives 0 (the mean). Names ``<column>``.
- ``categorical``: one-hot over the values the table holds (sorted); missing: all zeros.
  Names ``<column>:<value>``.
- ``text``: a hashed bag of words: lower-cased runs of letters and digits, each counted in
  bucket ``crc32(token) mod text_buckets`` (the same bucket on every machine and Python
  version), the row scaled to unit length; several text columns share the buckets. Names
  ``text:<bucket>``. A text embedding from a small model was considered and left out: none
  ships inside a PyPI package without a download at first use, which this project cannot
  rely on (no network on serving machines).

:func:`encode_table` is also what ``ncf recommend --new-items`` uses to encode items unseen
at training time, with the statistics saved at training time (:class:`FeatureEncoder`), so
both sides encode identically.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ncf.config import FeatureTableConfig
from ncf.errors import DataError

TOKEN = re.compile(r"[a-z0-9]+")


@dataclass
class FeatureEncoder:
    """How to encode the columns of a table: the config plus statistics of the training table."""

    config: FeatureTableConfig
    means: dict[str, float] = field(default_factory=dict)
    stds: dict[str, float] = field(default_factory=dict)
    categories: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def fit(cls, config: FeatureTableConfig, table: pd.DataFrame) -> FeatureEncoder:
        found = cls(config)
        for column in config.numeric:
            values = pd.to_numeric(table[column], errors="coerce")
            mean, std = values.mean(), values.std(ddof=0)
            found.means[column] = float(mean) if pd.notna(mean) else 0.0
            found.stds[column] = float(std) if pd.notna(std) and std > 0 else 1.0
        for column in config.categorical:
            values = table[column].dropna().astype(str)
            found.categories[column] = sorted(values.unique().tolist())
        return found

    def names(self) -> list[str]:
        names = list(self.config.numeric)
        for column in self.config.categorical:
            names += [f"{column}:{value}" for value in self.categories[column]]
        if self.config.text:
            names += [f"text:{b}" for b in range(self.config.text_buckets)]
        return names

    def encode(self, table: pd.DataFrame) -> np.ndarray:
        """``[len(table), F]`` float32 for the rows of ``table`` (missing rows: NaN values)."""
        parts = []
        for column in self.config.numeric:
            values = pd.to_numeric(table[column], errors="coerce").to_numpy(np.float64)
            scaled = (values - self.means[column]) / self.stds[column]
            parts.append(np.nan_to_num(scaled, nan=0.0)[:, None])
        for column in self.config.categorical:
            cells = table[column].astype(object).where(table[column].notna(), None)
            index = {v: j for j, v in enumerate(self.categories[column])}
            block = np.zeros((len(table), len(index)))
            for row, value in enumerate(cells.tolist()):
                if value is not None and str(value) in index:
                    block[row, index[str(value)]] = 1.0
            parts.append(block)
        if self.config.text:
            parts.append(hashed_words(table, self.config.text, self.config.text_buckets))
        if not parts:
            return np.zeros((len(table), 0), np.float32)
        return np.hstack(parts).astype(np.float32)

    def to_json(self) -> dict[str, Any]:
        return {
            "config": self.config.model_dump(),
            "means": self.means,
            "stds": self.stds,
            "categories": self.categories,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FeatureEncoder:
        config = FeatureTableConfig(**data["config"])
        return cls(config, data["means"], data["stds"], data["categories"])


def hashed_words(table: pd.DataFrame, columns: list[str], buckets: int) -> np.ndarray:
    """Unit-length hashed bag of words over ``columns`` of ``table``: ``[rows, buckets]``."""
    out = np.zeros((len(table), buckets))
    for column in columns:
        texts = table[column].astype(object).where(table[column].notna(), "").astype(str)
        for row, text in enumerate(texts.tolist()):
            for token in TOKEN.findall(text.lower()):
                out[row, zlib.crc32(token.encode("utf-8")) % buckets] += 1.0
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.maximum(norms, 1e-12)


def read_table(config: FeatureTableConfig, info: pd.DataFrame | None, key: str) -> pd.DataFrame:
    """The table the config names (indexed by raw id, as text), or the source's own ``info``."""
    if config.path is None:
        if info is None:
            raise DataError(
                f"data.{key}.path is not set and the source has no {key.split('_')[0]} table; "
                "point it at a CSV or Parquet file"
            )
        table = info.copy()
    else:
        path = Path(config.path)
        if not path.is_file():
            raise DataError(f"{path}: file not found; check data.{key}.path")
        table = _read_frame(path, f"; data.{key}.path")
        if config.id not in table:
            raise DataError(
                f"{path}: no column {config.id!r} (data.{key}.id); columns: {', '.join(map(str, table))}"
            )
        table = table.set_index(table[config.id].astype(str))
    table.index = table.index.astype(str)
    wanted = [*config.numeric, *config.categorical, *config.text]
    missing = [c for c in wanted if c not in table]
    if missing:
        where = config.path or "the source's table"
        raise DataError(
            f"{where}: no column {missing[0]!r} (data.{key}); columns: {', '.join(map(str, table))}"
        )
    if not wanted:
        raise DataError(f"data.{key}: name at least one numeric, categorical or text column")
    return table[~table.index.duplicated(keep="first")]


def table_features(
    config: FeatureTableConfig, info: pd.DataFrame | None, ids: np.ndarray, key: str
) -> tuple[np.ndarray, list[str], FeatureEncoder]:
    """Features ``[len(ids), F]`` for vocabulary ``ids`` (absent ids: zeros), names, encoder."""
    table = read_table(config, info, key)
    encoder = FeatureEncoder.fit(config, table)
    aligned = table.reindex(pd.Index(np.asarray(ids, dtype=object).astype(str)))
    matrix = encoder.encode(aligned)
    matrix[~aligned.index.isin(table.index)] = 0.0
    return matrix, encoder.names(), encoder


def attach_feature_tables(inter: Any, raw: Any, data: Any) -> Any:
    """``inter`` (:class:`~ncf.data.interactions.Interactions`) with the table features of
    ``data.item_features`` / ``data.user_features`` appended to its own; their encoders go to
    ``inter.feature_encoders`` (``{"item": {"own": [...], "table": {...}}}``)."""
    from dataclasses import replace

    changes: dict[str, Any] = {}
    encoders: dict[str, Any] = {}
    for side, vocab, info in (
        ("item", inter.items, raw.item_info),
        ("user", inter.users, raw.user_info),
    ):
        config = getattr(data, f"{side}_features")
        if config is None:
            continue
        own = getattr(inter, f"{side}_features")
        own_names = list(getattr(inter, f"{side}_feature_names"))
        matrix, names, encoder = table_features(config, info, vocab.ids, f"{side}_features")
        if own is not None:
            matrix = np.hstack([own, matrix]).astype(np.float32)
        changes[f"{side}_features"] = matrix
        changes[f"{side}_feature_names"] = tuple([*own_names, *names])
        encoders[side] = {"own": own_names, "table": encoder.to_json()}
    if not changes:
        return inter
    return replace(inter, feature_encoders=encoders, **changes)


def encode_new(encoders: dict[str, Any], side: str, table: pd.DataFrame) -> np.ndarray:
    """Feature rows for ids unseen at training time (``table``: one row each), encoded as the
    run encoded its own: the source's own columns by name (0 where absent), then the table's."""
    spec = encoders[side]
    own = np.zeros((len(table), len(spec["own"])), np.float32)
    for j, name in enumerate(spec["own"]):
        if name in table:
            own[:, j] = pd.to_numeric(table[name], errors="coerce").fillna(0.0).to_numpy()
    encoder = FeatureEncoder.from_json(spec["table"])
    missing = [
        c
        for c in encoder.config.numeric + encoder.config.categorical + encoder.config.text
        if c not in table
    ]
    if missing:
        raise DataError(f"no column {missing[0]!r}: the model's {side} features need it")
    return np.hstack([own, encoder.encode(table)]).astype(np.float32)


def read_new_table(path: Path, id_column: str) -> pd.DataFrame:
    """A table of new ids (CSV or Parquet) indexed by ``id_column``, for :func:`encode_new`."""
    if not path.is_file():
        raise DataError(f"{path}: file not found (a CSV or Parquet table of new items)")
    table = _read_frame(path)
    if id_column not in table:
        raise DataError(f"{path}: no id column {id_column!r} (the run's data.item_features.id)")
    if not len(table):
        raise DataError(f"{path}: no rows")
    return table.set_index(table[id_column].astype(str))


def _read_frame(path: Path, hint: str = "") -> pd.DataFrame:
    """A feature table from CSV (every column as text) or Parquet, by the file's suffix."""
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path)
        return pd.read_csv(path, dtype=str)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read it ({exc}){hint}") from None

"""The tfds source: offline failure without a download, and the mapping on mocked data."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ncf.config import DataConfig
from ncf.data.sources import read_raw
from ncf.data.sources.tfds_source import load_tfds
from ncf.errors import DataError

tfds = pytest.importorskip("tensorflow_datasets")


def test_not_prepared_fails_at_once_offline(tmp_path: Path) -> None:
    start = time.monotonic()
    with pytest.raises(DataError) as err:
        load_tfds("movielens/100k-ratings", data_dir=str(tmp_path))
    assert time.monotonic() - start < 30  # no download attempt (that hangs for minutes)
    message = str(err.value)
    assert "not available offline" in message and str(tmp_path) in message
    assert "data.source: movielens" in message and "data.path: /path/to/ml-100k" in message


def test_unknown_name() -> None:
    with pytest.raises(DataError, match=r"'movielens/nope': not a tfds data set"):
        load_tfds("movielens/nope")


def test_mocked_100k_ratings() -> None:
    with tfds.testing.mock_data(num_examples=12):
        raw = read_raw(DataConfig(source="tfds", name="ml-100k"), seed=0)  # alias of the tfds name
    frame = raw.frame
    assert len(frame) == 12 and list(frame.columns) == ["user", "item", "rating", "timestamp"]
    assert pd.api.types.is_string_dtype(frame["user"]) and pd.api.types.is_string_dtype(
        frame["item"]
    )
    assert frame["rating"].dtype == np.float64 and frame["timestamp"].dtype == np.int64
    genres = [c for c in raw.item_info.columns if c.startswith("genre:")]
    assert (
        "genre:Action" in genres and "genre:(no genres listed)" not in genres and len(genres) == 20
    )
    assert set(raw.item_info.index) == set(frame["item"])
    assert raw.item_info[genres].isin([0, 1]).all().all()
    assert "title" in raw.item_info and raw.item_info["title"].map(type).eq(str).all()
    assert list(raw.user_info.columns) == ["age", "gender", "occupation"]
    assert set(raw.user_info["gender"]) <= {"M", "F"}
    assert set(raw.user_info.index) == set(frame["user"])
    assert raw.description == "tfds movielens/100k-ratings"


def test_mocked_20m_has_no_user_info() -> None:
    with tfds.testing.mock_data(num_examples=5):
        raw = read_raw(DataConfig(source="tfds", name="movielens/20m-ratings"), seed=0)
    assert len(raw.frame) == 5 and raw.user_info is None and raw.item_info is not None

"""Side features aligned with the vocabularies, worked out by hand on tiny tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ncf.config import DataConfig
from ncf.data.features import attach_side_features
from ncf.data.interactions import RawData, prepare
from ncf.data.sources import read_raw


def _raw(item_info: pd.DataFrame | None = None, user_info: pd.DataFrame | None = None) -> RawData:
    frame = pd.DataFrame({"user": ["u2", "u1", "u3"], "item": ["b", "a", "c"]})
    return RawData(frame, "tiny", item_info=item_info, user_info=user_info)


def test_item_titles_and_genres() -> None:
    item_info = pd.DataFrame(
        {"title": ["Alpha", "Beta", "Zed"], "genre:Drama": [1, 0, 1], "genre:War": [0, 1, 1]},
        index=pd.Index(["a", "b", "z"], name="item"),  # "c" has no row, "z" is not rated
    )
    raw = _raw(item_info=item_info)
    result = attach_side_features(prepare(raw, DataConfig()), raw)
    assert result.items.ids.tolist() == ["a", "b", "c"]
    assert result.item_titles.tolist() == ["Alpha", "Beta", ""]
    assert result.item_feature_names == ("genre:Drama", "genre:War")
    assert result.item_features.dtype == np.float32
    np.testing.assert_array_equal(result.item_features, [[1, 0], [0, 1], [0, 0]])
    assert result.user_features is None and result.user_feature_names == ()


def test_user_age_gender_occupation() -> None:
    user_info = pd.DataFrame(
        {
            "age": [20, 50, 40],
            "gender": ["F", "M", "F"],
            "occupation": ["writer", "artist", "writer"],
        },
        index=pd.Index(["u1", "u2", "u9"], name="user"),  # "u3" has no row
    )
    raw = _raw(user_info=user_info)
    result = attach_side_features(prepare(raw, DataConfig()), raw)
    assert result.users.ids.tolist() == ["u1", "u2", "u3"]
    assert result.user_feature_names == (
        "age",
        "gender:F",
        "gender:M",
        "occupation:artist",
        "occupation:writer",
    )
    expected = [
        [20 / 50, 1, 0, 0, 1],  # age divided by the largest age in the table (50)
        [50 / 50, 0, 1, 1, 0],
        [0, 0, 0, 0, 0],  # unknown user: zero row
    ]
    np.testing.assert_allclose(result.user_features, expected)
    assert result.user_features.dtype == np.float32
    assert result.item_titles is None and result.item_features is None


def test_no_info_tables_change_nothing() -> None:
    raw = _raw()
    interactions = prepare(raw, DataConfig())
    result = attach_side_features(interactions, raw)
    assert result.item_titles is None and result.item_features is None
    assert result.user_features is None and result.item_feature_names == ()
    assert result.num_users == interactions.num_users


def test_integer_index_and_duplicates() -> None:
    item_info = pd.DataFrame({"title": ["first", "second", "x"]}, index=[1, 1, 2])
    frame = pd.DataFrame({"user": ["u", "u"], "item": ["1", "2"]})
    raw = RawData(frame, "ints", item_info=item_info)
    result = attach_side_features(prepare(raw, DataConfig()), raw)
    assert result.item_titles.tolist() == ["first", "x"]
    assert result.item_features is None


@pytest.mark.realdata
def test_movielens_100k_features(ml100k_dir: Path) -> None:
    config = DataConfig(source="movielens", path=str(ml100k_dir))
    raw = read_raw(config, seed=0)
    result = attach_side_features(prepare(raw, config), raw)
    assert result.item_features.shape == (1682, 19)
    assert result.item_titles[result.items.index_of("1")] == "Toy Story (1995)"
    assert result.user_features.shape == (943, 1 + 2 + 21)  # age, 2 genders, 21 occupations
    assert result.user_features[:, 0].max() == 1.0
    assert (result.user_features[:, 1:3].sum(axis=1) == 1).all()


def test_synthetic_features() -> None:
    config = DataConfig()
    raw = read_raw(config, seed=0)
    result = attach_side_features(prepare(raw, config), raw)
    assert result.item_features.shape[0] == result.num_items
    assert (result.item_features.sum(axis=1) >= 1).all()
    assert result.user_feature_names[:3] == ("age", "gender:F", "gender:M")

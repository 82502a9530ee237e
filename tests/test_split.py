import numpy as np
import pandas as pd
import pytest

from ncf.config import DataConfig, SplitConfig
from ncf.data.interactions import RawData, prepare
from ncf.data.negatives import PositiveSet
from ncf.data.split import Split, make_split
from ncf.errors import DataError


def interactions(rows, with_time=True, **config):
    frame = pd.DataFrame(rows, columns=["user", "item", "timestamp"])
    frame["user"] = frame["user"].astype(str)
    frame["item"] = frame["item"].astype(str)
    if not with_time:
        frame = frame.drop(columns="timestamp")
    return prepare(RawData(frame, "test data"), DataConfig(**config))


HISTORY = [
    # user, item, time
    ("a", 1, 10), ("a", 2, 30), ("a", 3, 20), ("a", 4, 40),
    ("b", 1, 5), ("b", 5, 6), ("b", 2, 6),  # tie at t=6: the larger item id (5) is latest
    ("c", 3, 1), ("c", 4, 2),  # two interactions: a test case, no validation case
    ("d", 5, 1),  # one interaction: train only
]  # fmt: skip


def raw_pairs(data, users, items):
    return sorted(zip(data.users.ids[users].tolist(), data.items.ids[items].tolist(), strict=True))


def test_leave_one_out_latest_with_tie_rule():
    data = interactions(HISTORY)
    split = make_split(data, SplitConfig(), seed=0, num_candidates=1)
    assert raw_pairs(data, split.test_user, split.test_item) == [("a", "4"), ("b", "5"), ("c", "4")]
    assert raw_pairs(data, split.val_user, split.val_item) == [("a", "2"), ("b", "2")]
    assert split.stats["users_without_test"] == 1  # d
    assert split.num_train + len(split.val_user) + len(split.test_user) == len(data)
    assert raw_pairs(data, split.train_user, split.train_item) == [
        ("a", "1"), ("a", "3"), ("b", "1"), ("c", "3"), ("d", "5"),
    ]  # fmt: skip


def test_split_does_not_depend_on_file_order():
    shuffled = [HISTORY[i] for i in np.random.default_rng(0).permutation(len(HISTORY))]
    one = make_split(interactions(HISTORY), SplitConfig(), seed=0, num_candidates=1)
    two = make_split(interactions(shuffled), SplitConfig(), seed=0, num_candidates=1)
    assert one.fingerprint() == two.fingerprint()


def test_leave_one_out_without_time_is_random_but_seeded():
    rows = [(u, i + u, 0) for u in range(30) for i in range(10)]
    data = interactions(rows, with_time=False)
    one = make_split(data, SplitConfig(), seed=1, num_candidates=5)
    again = make_split(data, SplitConfig(), seed=1, num_candidates=5)
    other = make_split(data, SplitConfig(), seed=2, num_candidates=5)
    assert one.fingerprint() == again.fingerprint() != other.fingerprint()
    assert len(one.test_user) == 30 and len(set(one.test_item.tolist())) > 3


def test_candidates_exclude_all_of_the_users_items():
    rng = np.random.default_rng(0)
    rows = [
        (u, i, t)
        for t, (u, i) in enumerate(
            zip(rng.integers(0, 40, 800), rng.integers(0, 60, 800), strict=True)
        )
    ]
    data = interactions(rows)
    split = make_split(data, SplitConfig(), seed=0, num_candidates=20)
    everything = PositiveSet(data.user, data.item, data.num_users, data.num_items)
    assert split.test_candidates.shape == (len(split.test_user), 20)
    assert not everything.contains(split.test_user[:, None], split.test_candidates).any()
    assert not everything.contains(split.val_user[:, None], split.val_candidates).any()


def test_ratio_split_holds_out_latest_share_per_user():
    rows = [(u, i, i) for u in range(3) for i in range(10)] + [(9, i, 0) for i in range(10, 15)]
    data = interactions(rows)
    split = make_split(
        data, SplitConfig(method="ratio", test_fraction=0.2, val_fraction=0.25), 0, 3
    )
    for u in range(3):
        assert sorted(split.test_item[split.test_user == u].tolist()) == [
            data.items.index_of("8"),
            data.items.index_of("9"),
        ]
        assert len(split.val_item[split.val_user == u]) == 2  # 25 % of the 8 left


def test_temporal_split_drops_unrankable_rows():
    rows = [("a", 1, 1), ("a", 2, 2), ("b", 1, 3), ("b", 2, 4), ("a", 3, 9), ("c", 1, 10)]
    data = interactions(rows)
    split = make_split(
        data, SplitConfig(method="temporal", test_fraction=0.34, validation=False), 0, 1
    )
    # the last two rows in time are held out; item 3 and user c never appear in train
    assert len(split.test_user) == 0
    assert split.stats["test_rows_unrankable"] == 2


def test_temporal_needs_timestamps():
    data = interactions(HISTORY, with_time=False)
    with pytest.raises(DataError, match="needs timestamps"):
        make_split(data, SplitConfig(method="temporal"), 0, 1)


def test_save_load_round_trip(tmp_path):
    data = interactions(HISTORY)
    split = make_split(data, SplitConfig(), seed=0, num_candidates=1)
    split.save(tmp_path / "split.npz")
    loaded = Split.load(tmp_path / "split.npz")
    assert loaded.fingerprint() == split.fingerprint()
    assert loaded.stats == split.stats
    assert not list(tmp_path.glob(".*tmp*"))


def test_prepare_labels_duplicates_and_kcore():
    frame = pd.DataFrame(
        {
            "user": ["a", "a", "a", "b", "b", "c"],
            "item": ["1", "1", "2", "1", "3", "3"],
            "rating": [5.0, 2.0, 4.0, 5.0, 1.0, 5.0],
            "timestamp": [3, 1, 2, 1, 2, 3],
        }
    )
    raw = RawData(frame, "t")
    latest = prepare(raw, DataConfig(duplicates="last"))
    assert len(latest) == 5 and latest.dropped["duplicates"] == 1
    assert latest.rating[(latest.user == 0) & (latest.item == 0)][0] == 5.0  # the t=3 row
    first = prepare(raw, DataConfig(duplicates="first"))
    assert first.rating[(first.user == 0) & (first.item == 0)][0] == 2.0
    with pytest.raises(DataError, match="more than once"):
        prepare(raw, DataConfig(duplicates="error"))
    liked = prepare(raw, DataConfig(min_rating=4))
    assert liked.dropped["below_min_rating"] == 2
    core = prepare(raw, DataConfig(min_user_interactions=2))
    assert core.users.ids.tolist() == ["a", "b"] and core.dropped["k_core"] == 1
    # 2-core on both sides unravels this data completely (c goes, then item 2, then a, ...)
    with pytest.raises(DataError, match="no interactions left"):
        prepare(raw, DataConfig(min_user_interactions=2, min_item_interactions=2))


def test_with_validation_in_train_moves_validation_cases_and_keeps_test():
    split = make_split(interactions(HISTORY), SplitConfig(), seed=0, num_candidates=1)
    merged = split.with_validation_in_train()
    assert len(split.val_user) > 0
    assert sorted(
        zip(merged.train_user.tolist(), merged.train_item.tolist(), strict=True)
    ) == sorted(
        zip(
            np.concatenate([split.train_user, split.val_user]).tolist(),
            np.concatenate([split.train_item, split.val_item]).tolist(),
            strict=True,
        )
    )
    assert np.all(np.diff(merged.train_user) >= 0)
    assert len(merged.val_user) == len(merged.val_item) == len(merged.val_candidates) == 0
    np.testing.assert_array_equal(merged.test_item, split.test_item)
    np.testing.assert_array_equal(merged.test_candidates, split.test_candidates)

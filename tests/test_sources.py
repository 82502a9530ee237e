"""File sources: MovieLens layouts, CSV/Parquet, the NCF paper's files, and their errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ncf.config import ColumnsConfig, DataConfig
from ncf.data.interactions import RawData
from ncf.data.sources import movielens as movielens_module
from ncf.data.sources import read_raw
from ncf.errors import DataError


def _read(**fields) -> RawData:
    return read_raw(DataConfig(**fields), seed=0)


def _check_frame(frame: pd.DataFrame, rating: bool = True, timestamp: bool = True) -> None:
    assert pd.api.types.is_string_dtype(frame["user"]) and pd.api.types.is_string_dtype(
        frame["item"]
    )
    if rating:
        assert frame["rating"].dtype == np.float64
    if timestamp:
        assert frame["timestamp"].dtype == np.int64


# --- MovieLens -----------------------------------------------------------------------------


@pytest.mark.realdata
def test_movielens_100k_real(ml100k_dir: Path) -> None:
    raw = _read(source="movielens", path=str(ml100k_dir))
    frame = raw.frame
    _check_frame(frame)
    assert len(frame) == 100_000
    assert frame["user"].nunique() == 943 and frame["item"].nunique() == 1682
    assert frame.iloc[0].tolist() == ["196", "242", 3.0, 881250949]  # file order
    assert set(frame["rating"].unique()) == {1.0, 2.0, 3.0, 4.0, 5.0}
    items = raw.item_info
    assert len(items) == 1682 and items.loc["1", "title"] == "Toy Story (1995)"
    genres = [c for c in items.columns if c.startswith("genre:")]
    assert len(genres) == 19 and genres[0] == "genre:unknown" and genres[-1] == "genre:Western"
    toy_story = {g for g in genres if items.loc["1", g] == 1}
    assert toy_story == {"genre:Animation", "genre:Children's", "genre:Comedy"}
    users = raw.user_info
    assert len(users) == 943
    assert users.loc["1"].tolist() == [24.0, "M", "technician"]
    assert "MovieLens 100K" in raw.description


@pytest.mark.realdata
def test_movielens_found_through_ncf_data_dir(data_dir: Path, monkeypatch) -> None:
    monkeypatch.setenv("NCF_DATA_DIR", str(data_dir))
    raw = _read(source="movielens")  # data.name defaults to ml-100k
    assert len(raw.frame) == 100_000


def test_movielens_1m_layout(tmp_path: Path) -> None:
    (tmp_path / "ratings.dat").write_text(
        "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n"
    )
    movies = (
        "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n661::Amélie (2001)::Comedy|Romance\n"
    )
    (tmp_path / "movies.dat").write_bytes(movies.encode("latin-1"))
    (tmp_path / "users.dat").write_text("1::F::1::10::48067\n2::M::56::16::70072\n")
    raw = _read(source="movielens", path=str(tmp_path))
    _check_frame(raw.frame)
    assert raw.frame.values.tolist() == [
        ["1", "1193", 5.0, 978300760],
        ["1", "661", 3.0, 978302109],
        ["2", "1193", 4.0, 978298413],
    ]
    assert raw.item_info.loc["661", "title"] == "Amélie (2001)"
    assert raw.item_info.loc["661", ["genre:Comedy", "genre:Drama", "genre:Romance"]].tolist() == [
        1,
        0,
        1,
    ]
    assert raw.user_info.loc["1"].tolist() == [1.0, "F", "K-12 student"]
    assert raw.user_info.loc["2"].tolist() == [56.0, "M", "self-employed"]
    assert "1M" in raw.description


def test_movielens_20m_layout(tmp_path: Path) -> None:
    (tmp_path / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n1,2,3.5,1112486027\n1,29,4.0,1112484676\n"
    )
    (tmp_path / "movies.csv").write_text(
        "movieId,title,genres\n2,Jumanji (1995),Adventure|Children|Fantasy\n"
        '29,"City of Lost Children, The (1995)",(no genres listed)\n'
    )
    raw = _read(source="movielens", path=str(tmp_path))
    _check_frame(raw.frame)
    assert raw.frame["rating"].tolist() == [3.5, 4.0]
    assert raw.item_info.loc["29", "title"] == "City of Lost Children, The (1995)"
    assert "genre:(no genres listed)" not in raw.item_info.columns
    assert raw.item_info.loc["29"].drop("title").sum() == 0
    assert raw.item_info.loc["2", "genre:Fantasy"] == 1
    assert raw.user_info is None


def test_movielens_path_may_name_the_ratings_file(tmp_path: Path) -> None:
    (tmp_path / "u.data").write_text("1\t10\t4\t100\n")
    raw = _read(source="movielens", path=str(tmp_path / "u.data"))
    assert raw.frame.values.tolist() == [["1", "10", 4.0, 100]] and raw.item_info is None


def test_movielens_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nowhere.*folder not found.*data\.path"):
        _read(source="movielens", path=str(tmp_path / "nowhere"))


def test_movielens_unknown_layout(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(
        DataError, match=r"not a MovieLens folder.*u\.data.*ratings\.dat.*found notes\.txt"
    ):
        _read(source="movielens", path=str(tmp_path))


def test_movielens_falls_back_to_tfds(tmp_path: Path, monkeypatch) -> None:
    calls = []

    def fake_load(name: str, context: str = "", data_dir: str | None = None) -> None:
        calls.append((name, context))
        raise DataError(f"{context}not available offline")

    monkeypatch.setattr(movielens_module, "load_tfds", fake_load)
    monkeypatch.setenv("NCF_DATA_DIR", str(tmp_path))
    with pytest.raises(
        DataError, match=r"no folder at \$NCF_DATA_DIR/ml-1m.*not available offline"
    ):
        _read(source="movielens", name="ml-1m")
    assert calls[0][0] == "movielens/1m-ratings"
    assert movielens_module.TFDS_NAMES["ml-latest-small"] == "movielens/latest-small-ratings"


def test_movielens_unknown_name_without_folder(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("NCF_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match=r"'ml-10m' has no tfds copy.*data\.path"):
        _read(source="movielens", name="ml-10m")


def test_movielens_bad_rating_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "u.data").write_text("1\t10\t4\t100\n2\t11\tfive\t101\n")
    with pytest.raises(DataError, match=r"u\.data line 2: rating 'five' is not a number"):
        _read(source="movielens", path=str(tmp_path))


# --- CSV -----------------------------------------------------------------------------------


def _csv(tmp_path: Path, text: str, name: str = "ratings.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def test_csv_named_columns(tmp_path: Path) -> None:
    path = _csv(tmp_path, "uid,iid,stars,when,extra\n007,a,4.5,10,x\n7,b,3,11,y\n")
    columns = ColumnsConfig(user="uid", item="iid", rating="stars", timestamp="when")
    raw = _read(source="csv", path=str(path), columns=columns)
    _check_frame(raw.frame)
    assert raw.frame.values.tolist() == [["007", "a", 4.5, 10], ["7", "b", 3.0, 11]]


def test_csv_positions_without_header_and_tab(tmp_path: Path) -> None:
    path = _csv(tmp_path, "1\t5\t100\n2\t6\t101\n", name="r.tsv")
    columns = ColumnsConfig(user=0, item=1, timestamp=2)
    raw = _read(source="csv", path=str(path), columns=columns, header=False, separator="\\t")
    assert raw.frame.values.tolist() == [["1", "5", 100], ["2", "6", 101]]
    assert "rating" not in raw.frame


def test_csv_crlf_and_byte_order_mark(tmp_path: Path) -> None:
    path = _csv(tmp_path, "\ufeffuser,item,rating\r\nu1,i1,1\r\nu2,i2,2\r\n")
    raw = _read(source="csv", path=str(path), columns=ColumnsConfig(rating="rating"))
    assert raw.frame.values.tolist() == [["u1", "i1", 1.0], ["u2", "i2", 2.0]]


def test_csv_iso_timestamps_become_unix_seconds(tmp_path: Path) -> None:
    path = _csv(tmp_path, "user,item,time\nu,a,1970-01-02\nu,b,1970-01-01T00:01:00+00:00\n")
    raw = _read(source="csv", path=str(path), columns=ColumnsConfig(timestamp="time"))
    assert raw.frame["timestamp"].tolist() == [86_400, 60]


def test_csv_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope\.csv: file not found; check data\.path"):
        _read(source="csv", path=str(tmp_path / "nope.csv"))


def test_csv_path_not_set() -> None:
    with pytest.raises(DataError, match=r"data\.path is not set"):
        _read(source="csv")


def test_csv_missing_column(tmp_path: Path) -> None:
    path = _csv(tmp_path, "userId,movieId\n1,2\n")
    with pytest.raises(DataError) as err:
        _read(source="csv", path=str(path), columns=ColumnsConfig(user="userId", item="item"))
    message = str(err.value)
    assert "ratings.csv" in message and "'item'" in message and "data.columns.item" in message
    assert "'userId', 'movieId'" in message


def test_csv_non_numeric_rating_names_line(tmp_path: Path) -> None:
    rows = "".join(f"u{i},i{i},4\n" for i in range(14)) + "\nu,i,abc\n"  # a blank line counts
    path = _csv(tmp_path, "user,item,rating\n" + rows)
    with pytest.raises(DataError, match=r"ratings\.csv line 17: rating 'abc' is not a number"):
        _read(source="csv", path=str(path), columns=ColumnsConfig(rating="rating"))


def test_csv_non_numeric_timestamp(tmp_path: Path) -> None:
    path = _csv(tmp_path, "user,item,ts\nu,i,100\nu,j,soon\n")
    with pytest.raises(DataError, match=r"line 3: timestamp 'soon' is not a number.*ISO 8601"):
        _read(source="csv", path=str(path), columns=ColumnsConfig(timestamp="ts"))


def test_csv_empty_file(tmp_path: Path) -> None:
    path = _csv(tmp_path, "")
    with pytest.raises(DataError, match=r"ratings\.csv: the file is empty"):
        _read(source="csv", path=str(path))


def test_csv_header_only(tmp_path: Path) -> None:
    path = _csv(tmp_path, "user,item\n")
    with pytest.raises(DataError, match=r"no interactions"):
        _read(source="csv", path=str(path))


def test_csv_empty_user(tmp_path: Path) -> None:
    path = _csv(tmp_path, "user,item\nu,i\n,j\n")
    with pytest.raises(DataError, match=r"line 3: the user id is empty"):
        _read(source="csv", path=str(path))


def test_csv_name_without_header(tmp_path: Path) -> None:
    path = _csv(tmp_path, "1,2\n")
    with pytest.raises(
        DataError, match=r"data\.columns\.user is the name 'user'.*data\.header is false"
    ):
        _read(source="csv", path=str(path), header=False)


def test_csv_position_out_of_range(tmp_path: Path) -> None:
    path = _csv(tmp_path, "1,2\n")
    with pytest.raises(DataError, match=r"data\.columns\.rating is position 5.*2 columns"):
        _read(
            source="csv",
            path=str(path),
            header=False,
            columns=ColumnsConfig(user=0, item=1, rating=5),
        )


def test_csv_multi_character_separator(tmp_path: Path) -> None:
    path = _csv(tmp_path, "1::2::3\n4::5::6\n", name="r.dat")
    columns = ColumnsConfig(user=0, item=1, rating=2)
    raw = _read(source="csv", path=str(path), header=False, separator="::", columns=columns)
    assert raw.frame.values.tolist() == [["1", "2", 3.0], ["4", "5", 6.0]]


# --- Parquet -------------------------------------------------------------------------------


def test_parquet_types(tmp_path: Path) -> None:
    path = tmp_path / "r.parquet"
    pd.DataFrame(
        {
            "u": [1, 2],
            "i": ["a", "b"],
            "r": np.array([4, 5], dtype=np.int8),
            "t": pd.to_datetime(["1970-01-01 00:00:10", "1970-01-01 00:00:20"]),
        }
    ).to_parquet(path)
    columns = ColumnsConfig(user="u", item="i", rating="r", timestamp="t")
    raw = _read(source="parquet", path=str(path), columns=columns)
    _check_frame(raw.frame)
    assert raw.frame.values.tolist() == [["1", "a", 4.0, 10], ["2", "b", 5.0, 20]]


def test_parquet_errors(tmp_path: Path) -> None:
    path = tmp_path / "r.parquet"
    pd.DataFrame({"user": ["a", "b"], "item": ["x", "y"], "rating": ["4", "bad"]}).to_parquet(path)
    with pytest.raises(DataError, match=r"r\.parquet row 2: rating 'bad' is not a number"):
        _read(source="parquet", path=str(path), columns=ColumnsConfig(rating="rating"))
    with pytest.raises(DataError, match=r"no column 'stars'.*'user', 'item', 'rating'"):
        _read(source="parquet", path=str(path), columns=ColumnsConfig(rating="stars"))
    (tmp_path / "text.parquet").write_text("not parquet")
    with pytest.raises(DataError, match=r"cannot read it as Parquet"):
        _read(source="parquet", path=str(tmp_path / "text.parquet"))


# --- NCF paper files -----------------------------------------------------------------------


def _ncf_files(folder: Path, negative: str | None = None) -> None:
    (folder / "toy.train.rating").write_text("0\t1\t5\t100\n0\t2\t4\t101\n1\t1\t3\t102\n")
    (folder / "toy.test.rating").write_text("0\t3\t4\t103\n1\t2\t5\t104\n")
    text = negative if negative is not None else "(0,3)\t4\t5\n(1,2)\t3\t4\n"
    (folder / "toy.test.negative").write_text(text)


def test_ncf_files(tmp_path: Path) -> None:
    _ncf_files(tmp_path)
    raw = _read(source="ncf", path=str(tmp_path), name="toy")
    _check_frame(raw.frame)
    assert raw.frame[["user", "item"]].values.tolist() == [
        ["0", "1"],
        ["0", "2"],
        ["1", "1"],
        ["0", "3"],
        ["1", "2"],
    ]
    split = raw.fixed_split
    assert split.test.values.tolist() == [["0", "3"], ["1", "2"]]
    assert split.negatives == [["4", "5"], ["3", "4"]]
    assert (
        _read(source="ncf", path=str(tmp_path)).fixed_split.negatives == split.negatives
    )  # prefix found


def test_ncf_files_mismatch(tmp_path: Path) -> None:
    _ncf_files(tmp_path, negative="(0,3)\t4\n(1,9)\t3\n")
    with pytest.raises(DataError, match=r"toy\.test\.negative line 2: \(1,9\) does not match"):
        _read(source="ncf", path=str(tmp_path), name="toy")
    _ncf_files(tmp_path, negative="(0,3)\t4\n")
    with pytest.raises(DataError, match=r"1 lines, but the \.test\.rating file has 2"):
        _read(source="ncf", path=str(tmp_path), name="toy")


def test_ncf_files_missing(tmp_path: Path) -> None:
    _ncf_files(tmp_path)
    with pytest.raises(DataError, match=r"ml-1m\.train\.rating: file not found.*data\.name"):
        _read(source="ncf", path=str(tmp_path), name="ml-1m")
    with pytest.raises(DataError, match=r"folder not found"):
        _read(source="ncf", path=str(tmp_path / "missing"))


def test_read_raw_synthetic() -> None:
    raw = _read(source="synthetic")
    _check_frame(raw.frame)
    assert len(raw.frame) > 90_000
    items = raw.item_info
    assert items is not None and set(raw.frame["item"]) <= set(items.index)
    assert items["title"].str.fullmatch(r"Item \d+").all()
    genres = items.filter(like="genre:").sum(axis=1)  # the taste genre, a second for some
    assert genres.between(1, 2).all() and 0.1 < (genres == 2).mean() < 0.5


@pytest.mark.parametrize("fields", [4, 3, 2])
def test_ncf_files_plain_layout_and_fewer_fields(tmp_path: Path, fields: int) -> None:
    def rows(text: str) -> str:
        return "".join("\t".join(line.split("\t")[:fields]) + "\n" for line in text.splitlines())

    (tmp_path / "train.rating").write_text(rows("0\t1\t5\t100\n0\t2\t4\t101\n1\t1\t3\t102"))
    (tmp_path / "test.rating").write_text(rows("0\t3\t4\t103\n1\t2\t5\t104"))
    (tmp_path / "test.negative").write_text("(0,3)\t4\t5\n(1,2)\t3\t4\n")
    raw = _read(source="ncf", path=str(tmp_path))
    _check_frame(raw.frame, rating=fields >= 3, timestamp=fields >= 4)
    expected = ["user", "item", "rating", "timestamp"][:fields]
    assert list(raw.frame.columns) == expected
    assert raw.fixed_split.negatives == [["4", "5"], ["3", "4"]]
    assert raw.description == f"NCF files {tmp_path}/{{train,test}}.rating"


def test_ncf_files_plain_and_prefixed_together_need_a_name(tmp_path: Path) -> None:
    _ncf_files(tmp_path)
    (tmp_path / "train.rating").write_text("0\t1\t5\t100\n")
    with pytest.raises(DataError, match=r"set data.name.*found: train\.rating, toy\.train\.rating"):
        _read(source="ncf", path=str(tmp_path))
    toy = _read(source="ncf", path=str(tmp_path), name="toy")
    assert toy.description == f"NCF files {tmp_path}/toy.{{train,test}}.rating"
    assert len(toy.frame) == 5 and len(toy.fixed_split.test) == 2  # not train.rating's one row

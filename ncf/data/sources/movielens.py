"""MovieLens folders in the official GroupLens layouts (``data.source: movielens``).

The layout is detected from the files in the folder:

- 100K (``ml-100k``): ``u.data`` is ``user \\t item \\t rating \\t unix time``, no header;
  ``u.item`` is ``id|title|release date|video release date|url|`` then 19 genre flags (0/1)
  in the order of :data:`GENRES_100K`; ``u.user`` is ``id|age|gender|occupation|zip``.
  The info files are latin-1.
- 1M and 10M (``ml-1m``, ``ml-10M100K``): ``ratings.dat`` is ``UserID::MovieID::Rating::Timestamp``;
  ``movies.dat`` is ``MovieID::Title::Genres`` with genre names joined by ``|``;
  ``users.dat`` is ``UserID::Gender::Age::Occupation::Zip`` (age a bucket such as 18 or 25,
  occupation a code 0-20, turned into its name from :data:`OCCUPATIONS_1M`; 10M has no
  ``users.dat``). Latin-1.
- 20M, 25M and latest (``ml-20m``, ``ml-25m``, ``ml-latest-small``): ``ratings.csv`` with
  the header ``userId,movieId,rating,timestamp``; ``movies.csv`` is ``movieId,title,genres``
  (genres ``|``-joined; ``(no genres listed)`` means none). No user information.

The folder is ``data.path`` when set, else ``$NCF_DATA_DIR/<data.name>`` (``data.name``
defaults to ``ml-100k``); when neither exists the tfds copy of the same data set is tried
(:data:`TFDS_NAMES`), which works only where it was downloaded and prepared before.

``item_info`` has a ``title`` column and ``genre:<Name>`` 0/1 columns; ``user_info`` has
``age``, ``gender`` and ``occupation`` where the files have them.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ncf.config import DataConfig
from ncf.data.interactions import RawData
from ncf.data.sources.fields import check_field_counts, check_width
from ncf.data.sources.tabular import read_delimited, read_table
from ncf.data.sources.tfds_source import TFDS_NAMES, load_tfds
from ncf.errors import DataError

GENRES_100K = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
OCCUPATIONS_1M = (
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student",
    "customer service", "doctor/health care", "executive/managerial", "farmer", "homemaker",
    "K-12 student", "lawyer", "programmer", "retired", "sales/marketing", "scientist",
    "self-employed", "technician/engineer", "tradesman/craftsman", "unemployed", "writer",
)  # fmt: skip
LAYOUTS = {"u.data": "100K", "ratings.dat": "1M/10M", "ratings.csv": "20M/25M/latest"}
_NO_GENRE = "(no genres listed)"
_POSITIONS = {"user": 0, "item": 1, "rating": 2, "timestamp": 3}


def read_movielens(config: DataConfig) -> RawData:
    """Read the MovieLens folder named by the config (see the module docstring)."""
    folder = movielens_folder(config)
    if folder is None:
        return _from_tfds(config.name or "ml-100k")
    layout = detect_layout(folder)
    reader = {"100K": _read_100k, "1M/10M": _read_1m, "20M/25M/latest": _read_csv_layout}[layout]
    frame, item_info, user_info = reader(folder)
    return RawData(
        frame=frame,
        description=f"MovieLens {layout} from {folder}",
        item_info=item_info,
        user_info=user_info,
    )


def movielens_folder(config: DataConfig) -> Path | None:
    """``data.path``, else ``$NCF_DATA_DIR/<data.name>`` if it exists, else None."""
    if config.path is not None:
        path = Path(config.path)
        if path.is_file() and path.name in LAYOUTS:
            return path.parent  # data.path named the ratings file: use its folder
        if not path.exists():
            raise DataError(
                f"{path}: folder not found; set data.path to a MovieLens folder "
                f"(such as ml-100k, holding u.data)"
            )
        if not path.is_dir():
            raise DataError(f"{path}: data.path must be a MovieLens folder, not a file")
        return path
    root = os.environ.get("NCF_DATA_DIR")
    if root and (Path(root) / (config.name or "ml-100k")).is_dir():
        return Path(root) / (config.name or "ml-100k")
    return None


def detect_layout(folder: Path) -> str:
    """``"100K"``, ``"1M/10M"`` or ``"20M/25M/latest"`` from the ratings file in the folder."""
    for filename, layout in LAYOUTS.items():
        if (folder / filename).is_file():
            return layout
    found = sorted(p.name for p in folder.iterdir())[:15]
    raise DataError(
        f"{folder}: not a MovieLens folder: expected u.data (100K), ratings.dat (1M/10M) or "
        f"ratings.csv (20M/25M/latest), found {', '.join(found) or 'nothing'}; "
        f"point data.path at the unzipped MovieLens folder"
    )


def _from_tfds(name: str) -> RawData:
    root = os.environ.get("NCF_DATA_DIR")
    where = f"$NCF_DATA_DIR/{name} ({Path(root) / name})" if root else "NCF_DATA_DIR (not set)"
    context = f"data.source movielens: no data.path and no folder at {where}, so tried tfds. "
    if name not in TFDS_NAMES:
        raise DataError(
            f"{context.removesuffix('so tried tfds. ')}and {name!r} has no tfds copy "
            f"(known: {', '.join(TFDS_NAMES)}); set data.path to the MovieLens folder"
        )
    return load_tfds(TFDS_NAMES[name], context=context)


def _read_ratings(path: Path, sep: str, header: bool, columns: dict) -> pd.DataFrame:
    return read_delimited(
        path,
        sep=sep,
        header=header,
        columns=columns,
        integer_ids=True,
        quoting=csv.QUOTE_NONE,
        hint="is this an unmodified MovieLens file?",
    )


def _read_100k(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame | None]:
    frame = _read_ratings(folder / "u.data", "\t", False, _POSITIONS)
    item_info = user_info = None
    if (folder / "u.item").is_file():
        raw = _info_table(folder / "u.item", "|", 5 + len(GENRES_100K))
        flags = raw.iloc[:, 5:].apply(pd.to_numeric, errors="coerce").fillna(0).astype(np.int8)
        flags.columns = [f"genre:{g}" for g in GENRES_100K]
        item_info = pd.concat([raw[[1]].set_axis(["title"], axis=1), flags], axis=1)
        item_info.index = pd.Index(raw[0], name="item")
    if (folder / "u.user").is_file():
        raw = _info_table(folder / "u.user", "|", 5)
        user_info = _user_table(raw[0], raw[1], raw[2], raw[3])
    return frame, _unique(item_info), _unique(user_info)


def _read_1m(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame | None]:
    frame = _read_ratings(folder / "ratings.dat", "::", False, _POSITIONS)
    item_info = user_info = None
    if (folder / "movies.dat").is_file():
        raw = _info_table(folder / "movies.dat", "::", 3)
        item_info = _movie_table(raw[0], raw[1], raw[2])
    if (folder / "users.dat").is_file():
        raw = _info_table(folder / "users.dat", "::", 5)
        codes = pd.to_numeric(raw[3], errors="coerce")
        known = codes.between(0, len(OCCUPATIONS_1M) - 1)
        names = np.asarray(OCCUPATIONS_1M, dtype=object)[codes.where(known, 0).astype(int)]
        occupation = pd.Series(names, index=raw.index).where(known, raw[3])
        user_info = _user_table(raw[0], raw[2], raw[1], occupation)
    return frame, _unique(item_info), _unique(user_info)


def _read_csv_layout(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame | None, None]:
    columns = {"user": "userId", "item": "movieId", "rating": "rating", "timestamp": "timestamp"}
    frame = _read_ratings(folder / "ratings.csv", ",", True, columns)
    item_info = None
    path = folder / "movies.csv"
    if path.is_file():
        raw = read_table(path, ",", "utf-8-sig", header=0, dtype=str)
        missing = {"movieId", "title", "genres"} - set(raw.columns)
        if missing:
            raise DataError(
                f"{path}: expected the columns movieId,title,genres, missing "
                f"{', '.join(sorted(missing))}; is this an unmodified MovieLens file?"
            )
        item_info = _movie_table(raw["movieId"], raw["title"], raw["genres"])
    return frame, _unique(item_info), None


def _info_table(path: Path, sep: str, fields: int) -> pd.DataFrame:
    """A headerless latin-1 info file, every field text; the field count of every line is
    checked (pandas would read a line of fewer fields as an entry of its own)."""
    advice = "is this an unmodified MovieLens file?"
    check_width(path, sep)
    check_field_counts(path, sep, False, "latin-1", csv.QUOTE_NONE, advice)
    raw = read_table(path, sep, "latin-1", header=None, dtype=str, quoting=csv.QUOTE_NONE)
    if raw.shape[1] != fields:
        raise DataError(
            f"{path}: expected {fields} fields separated by {sep!r} on each line, found "
            f"{raw.shape[1]}; is this an unmodified MovieLens file?"
        )
    return raw


def _movie_table(ids: pd.Series, titles: pd.Series, genres: pd.Series) -> pd.DataFrame:
    flags = genres.astype(str).str.get_dummies(sep="|").astype(np.int8)
    flags = flags.drop(columns=[c for c in flags.columns if c in (_NO_GENRE, "")])
    flags.columns = [f"genre:{name}" for name in flags.columns]
    table = pd.concat([titles.rename("title"), flags], axis=1)
    table.index = pd.Index(ids.astype(str).str.strip(), name="item")
    return table


def _user_table(
    ids: pd.Series, age: pd.Series, gender: pd.Series, occupation: pd.Series
) -> pd.DataFrame:
    table = pd.DataFrame(
        {
            "age": pd.to_numeric(age, errors="coerce").to_numpy(np.float64),
            "gender": gender.astype(str).str.strip().to_numpy(),
            "occupation": occupation.astype(str).str.strip().to_numpy(),
        }
    )
    table.index = pd.Index(ids.astype(str).str.strip(), name="user")
    return table


def _unique(table: pd.DataFrame | None) -> pd.DataFrame | None:
    """The first row of each id (the official files have one already)."""
    if table is None:
        return None
    return table[~table.index.duplicated(keep="first")]

"""MovieLens through TensorFlow Datasets (``data.source: tfds``), offline only.

``data.name`` is a tfds name such as ``movielens/100k-ratings`` (the default) or
``movielens/1m-ratings``; the MovieLens folder names ``ml-100k``, ``ml-1m``, ``ml-20m``,
``ml-25m`` and ``ml-latest-small`` are accepted too. The data set must already be prepared
in the tfds data folder (``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``): this reader never
downloads, because a download attempt without network hangs for minutes; it fails at once
with a message that says how to use local MovieLens files instead.

Features read from each example: ``user_id``, ``movie_id``, ``user_rating``, ``timestamp``
(the interaction); ``movie_title`` and ``movie_genres`` (``item_info``: ``title`` and
``genre:<Name>`` 0/1 columns; ``(no genres listed)`` means none); ``user_gender`` (True is
male: ``M``/``F``), ``bucketized_user_age`` and ``user_occupation_text`` (``user_info``:
``age``, ``gender``, ``occupation``) where the data set has them (100K and 1M).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ncf.config import DataConfig
from ncf.data.interactions import RawData
from ncf.errors import DataError

DEFAULT_NAME = "movielens/100k-ratings"
TFDS_NAMES = {  # MovieLens folder names -> tfds names
    "ml-100k": "movielens/100k-ratings",
    "ml-1m": "movielens/1m-ratings",
    "ml-20m": "movielens/20m-ratings",
    "ml-25m": "movielens/25m-ratings",
    "ml-latest-small": "movielens/latest-small-ratings",
}
BATCH = 65_536
_ITEM_KEYS = ("movie_title",)
_USER_KEYS = ("user_gender", "bucketized_user_age", "user_occupation_text")
_NO_GENRE = "(no genres listed)"


def read_tfds(config: DataConfig) -> RawData:
    """``data.source: tfds``: the prepared tfds data set named by ``data.name``."""
    name = config.name or DEFAULT_NAME
    return load_tfds(TFDS_NAMES.get(name, name))


def load_tfds(name: str, context: str = "", data_dir: str | None = None) -> RawData:
    """Load the ``train`` split of a prepared tfds MovieLens ratings set (never downloads).

    ``context`` is put in front of the advice when the data is not available offline;
    ``data_dir`` overrides the tfds data folder.
    """
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as exc:  # tfds raises several types for unknown or malformed names
        raise DataError(
            f"data.name {name!r}: not a tfds data set ({exc.__class__.__name__}); use e.g. "
            f"movielens/100k-ratings or movielens/1m-ratings"
        ) from None
    features = builder.info.features
    if "user_id" not in features or "movie_id" not in features:
        raise DataError(f"tfds {name}: has no user_id/movie_id features; use a *-ratings set")
    try:
        dataset = builder.as_dataset(split="train")
    except AssertionError:  # tfds' way of saying "not prepared in data_dir"
        raise DataError(_offline_message(name, str(builder.data_dir), context)) from None
    genre_names = list(features["movie_genres"].feature.names) if "movie_genres" in features else []
    parts = _collect(dataset, genre_names, set(features))
    return _raw_data(parts, genre_names, name)


def _offline_message(name: str, data_dir: str, context: str) -> str:
    folder = name.split("/")[-1].removesuffix("-ratings")
    return (
        f"{context}tfds data set {name} is not available offline: it was never downloaded and "
        f"prepared in {data_dir}, and ncf does not download. Download the MovieLens zip "
        f"(ml-{folder}) from https://grouplens.org/datasets/movielens/, unzip it and set "
        f"data.source: movielens and data.path: /path/to/ml-{folder} "
        f"(or set NCF_DATA_DIR to the folder that holds ml-{folder})"
    )


Arrays = dict[str, np.ndarray]


def _collect(dataset: Any, genre_names: list[str], available: set[str]) -> tuple[Arrays, ...]:
    """The interactions, item rows and user rows as numpy arrays, read in large batches.

    Item and user rows keep the first example of each id per batch, so the genre matrix
    stays small on the 20M sets.
    """
    import tensorflow as tf
    import tensorflow_datasets as tfds

    wanted = ["user_id", "movie_id", "user_rating", "timestamp", *_ITEM_KEYS, *_USER_KEYS]
    wanted = [key for key in wanted if key in available]
    n = len(genre_names)

    def select(example: dict) -> dict:
        out = {key: example[key] for key in wanted}
        if n:
            genres = tf.cast(example["movie_genres"], tf.int32)
            out["genres"] = tf.minimum(tf.math.bincount(genres, minlength=n, maxlength=n), 1)
        return out

    groups: tuple[dict[str, list[np.ndarray]], ...] = ({}, {}, {})
    batches = dataset.map(select, num_parallel_calls=tf.data.AUTOTUNE).batch(BATCH)
    for batch in tfds.as_numpy(batches):
        _, first_item = np.unique(batch["movie_id"], return_index=True)
        _, first_user = np.unique(batch["user_id"], return_index=True)
        groups[1].setdefault("id", []).append(batch["movie_id"][first_item])
        groups[2].setdefault("id", []).append(batch["user_id"][first_user])
        for key, value in batch.items():
            kind = 1 if key in (*_ITEM_KEYS, "genres") else 2 if key in _USER_KEYS else 0
            rows = (slice(None), first_item, first_user)[kind]
            groups[kind].setdefault(key, []).append(value[rows])
    return tuple({key: np.concatenate(v) for key, v in group.items()} for group in groups)


def _raw_data(parts: tuple[Arrays, ...], genre_names: list[str], name: str) -> RawData:
    columns, items, users = parts
    if "user_id" not in columns:
        raise DataError(f"tfds {name}: the train split is empty")
    frame = pd.DataFrame({"user": _text(columns["user_id"]), "item": _text(columns["movie_id"])})
    if "user_rating" in columns:
        frame["rating"] = columns["user_rating"].astype(np.float64)
    if "timestamp" in columns:
        frame["timestamp"] = columns["timestamp"].astype(np.int64)
    return RawData(
        frame,
        f"tfds {name}",
        item_info=_item_info(items, genre_names),
        user_info=_user_info(users),
    )


def _item_info(items: Arrays, genre_names: list[str]) -> pd.DataFrame | None:
    ids = _text(items["id"])
    first = ~ids.duplicated().to_numpy()
    table = pd.DataFrame(index=pd.Index(ids[first], name="item"))
    if "movie_title" in items:
        table["title"] = _text(items["movie_title"][first]).to_numpy()
    if "genres" in items:
        flags = items["genres"][first].astype(np.int8)
        for j, genre in enumerate(genre_names):
            if genre != _NO_GENRE:
                table[f"genre:{genre}"] = flags[:, j]
    return table if len(table.columns) else None


def _user_info(users: Arrays) -> pd.DataFrame | None:
    ids = _text(users["id"])
    first = ~ids.duplicated().to_numpy()
    table = pd.DataFrame(index=pd.Index(ids[first], name="user"))
    if "bucketized_user_age" in users:
        table["age"] = users["bucketized_user_age"][first].astype(np.float64)
    if "user_gender" in users:
        table["gender"] = np.where(users["user_gender"][first], "M", "F")
    if "user_occupation_text" in users:
        table["occupation"] = _text(users["user_occupation_text"][first]).to_numpy()
    return table if len(table.columns) else None


def _text(values: np.ndarray) -> pd.Series:
    """UTF-8 bytes (what tfds gives for strings) as a pandas string column."""
    return pd.Series(pa.array(values, type=pa.binary()).cast(pa.string()).to_pandas())

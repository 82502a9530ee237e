"""The ``data`` section: where the interactions come from and how they are prepared and split."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ncf.schema import Section


class ColumnsConfig(Section):
    """Column names of a CSV/Parquet interaction file."""

    user: str | int = Field(
        "user",
        description="column holding the user id (name, or 0-based position without a header)",
    )
    item: str | int = Field("item", description="column holding the item id")
    rating: str | int | None = Field(None, description="optional explicit rating column")
    timestamp: str | int | None = Field(
        None, description="optional timestamp column (unix seconds or any sortable number)"
    )


class SyntheticConfig(Section):
    """Size and shape of the generated data set (``data.source: synthetic``)."""

    users: int = Field(2000, gt=1, description="number of users")
    items: int = Field(1000, gt=1, description="number of items")
    interactions: int = Field(
        100_000, gt=0, description="number of interactions before de-duplication"
    )
    factors: int = Field(16, gt=0, description="dimension of the hidden taste vectors")
    popularity_exponent: float = Field(
        1.0, ge=0, description="Zipf exponent of item popularity (0 = uniform)"
    )
    temperature: float = Field(
        0.5, gt=0, description="softmax temperature of the taste term (lower = more structure)"
    )


class SplitConfig(Section):
    """How interactions are split into train / validation / test."""

    method: Literal["leave_one_out", "ratio", "temporal", "cold_items"] = Field(
        "leave_one_out",
        description="leave_one_out: latest interaction per user; ratio: latest fraction per user; "
        "temporal: one global time cut; cold_items: a share of items held out entirely (each "
        "user's latest interaction with one of them is the test case), leave_one_out on the rest",
    )
    cold_fraction: float = Field(
        0.1, gt=0, lt=1, description="cold_items: share of the items held out of training"
    )
    test_fraction: float = Field(
        0.2, gt=0, lt=1, description="share held out for test (ratio, temporal)"
    )
    val_fraction: float = Field(
        0.1, gt=0, lt=1, description="share of train held out for validation (ratio, temporal)"
    )
    validation: bool = Field(
        True, description="carve a validation split from train, the same way as test"
    )


class FeatureTableConfig(Section):
    """Side features from a table keyed by id (``data.item_features`` / ``data.user_features``)."""

    path: str | None = Field(
        None,
        description="CSV or Parquet file with one row per id; null: the source's own info "
        "table (MovieLens: title and genres of u.item, age/gender/occupation of u.user)",
    )
    id: str = Field("id", description="column holding the raw id (file only)")
    numeric: list[str] = Field(
        default_factory=list, description="number columns: standardised (z-score), missing -> 0"
    )
    categorical: list[str] = Field(
        default_factory=list, description="category columns: one-hot over the values in the table"
    )
    text: list[str] = Field(
        default_factory=list,
        description="text columns (title, description): a hashed bag of words, unit length",
    )
    text_buckets: int = Field(
        1024, gt=0, le=1 << 20, description="hash buckets of the bag of words"
    )


class DataConfig(Section):
    """Where the interactions come from and how they are prepared."""

    source: Literal["synthetic", "movielens", "tfds", "csv", "parquet", "ncf"] = Field(
        "synthetic", description="which reader builds the interaction table"
    )
    name: str | None = Field(
        None,
        description="data set name: movielens folder (ml-100k, ml-1m, ml-20m...), tfds name "
        "(movielens/100k-ratings) or ncf file prefix (ml-1m; '' for plain train.rating)",
    )
    path: str | None = Field(
        None,
        description="file or folder to read; relative paths are relative to the working directory",
    )
    columns: ColumnsConfig = Field(
        default_factory=ColumnsConfig, description="column mapping for csv/parquet"
    )
    separator: str = Field(",", description="field separator for csv files (\\t for tab)")
    header: bool = Field(True, description="whether the csv file has a header row")
    min_rating: float | None = Field(
        None, description="implicit label threshold: keep rating >= this; null keeps all"
    )
    duplicates: Literal["last", "first", "error"] = Field(
        "last",
        description="several interactions of one user with one item: keep the last (by time), the first, or fail",
    )
    min_user_interactions: int = Field(
        0,
        ge=0,
        description="k-core filter: drop users with fewer interactions (repeated with items until stable)",
    )
    min_item_interactions: int = Field(
        0, ge=0, description="k-core filter: drop items with fewer interactions"
    )
    synthetic: SyntheticConfig = Field(
        default_factory=SyntheticConfig, description="generator settings"
    )
    split: SplitConfig = Field(default_factory=SplitConfig, description="train/val/test split")
    item_features: FeatureTableConfig | None = Field(
        None,
        description="item side features beyond the source's own (genres): columns of a table; "
        "used by model.item_features and the content model",
    )
    user_features: FeatureTableConfig | None = Field(
        None, description="user side features beyond the source's own: columns of a table"
    )

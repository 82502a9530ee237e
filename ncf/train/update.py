"""``ncf update RUN_DIR --data NEW_FILE``: a new run that has also seen new interactions.

The new file (CSV or Parquet by its suffix) has the columns the run's data had
(``data.columns``; ``user`` and ``item`` headers when the run read another kind of source),
and the run's ``data.min_rating`` applies when it has a rating column. Unknown user and item
ids extend the vocabularies (appended: every old id keeps its index, so old exports'
indices stay valid); pairs the run already had, and repeats within the file, are dropped.

The new interactions join the train split (validation and test cases, and their
candidates, stay the source run's, so the new run's test metrics compare with the old
ones). A neural model is fine-tuned from its last state (:mod:`ncf.train.derive`) on the
new interactions plus ``replay`` old ones per new one (train and validation interactions
drawn once from the run's seed), which keeps it from forgetting the old data; new ids get
freshly initialised embedding rows. Negatives are drawn against the fine-tuning data only,
so an old positive that is not replayed can be drawn as a negative (as rarely as any other
item). ``--exact`` (and every baseline) fits on all the data instead.

When the model reads side features (``model.item_features`` / ``model.user_features``, or
the ``content`` model), new ids need their feature rows: ``--item-features FILE`` /
``--user-features FILE`` give a table (CSV or Parquet) with the columns of the run's
``data.item_features`` / ``data.user_features``, one row per new id (other rows are
ignored), encoded as the run encoded its own (:func:`ncf.data.feature_tables.encode_new`).
Without it, new ids are refused rather than given empty features.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ncf.data.interactions import Interactions
from ncf.data.pairs import pair_keys
from ncf.data.split import Split
from ncf.data.vocab import Vocabulary
from ncf.errors import NcfError
from ncf.registry import family
from ncf.rng import rng_for
from ncf.train.derive import Change, dataset_of_run, rebuild
from ncf.train.rundir import RunDir


def read_new_interactions(run: RunDir, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Raw user and item ids of the file's interactions (labels as the run's data had)."""
    from ncf.config import ColumnsConfig
    from ncf.data.sources.tabular import read_csv_source, read_parquet_source

    data = run.config.data
    columns = data.columns if data.source in ("csv", "parquet") else ColumnsConfig()
    parquet = path.suffix.lower() in (".parquet", ".pq")
    update = {"path": str(path), "columns": columns}
    if not parquet and data.source != "csv":
        update.update(separator=",", header=True)
    frame = (read_parquet_source if parquet else read_csv_source)(
        data.model_copy(update=update)
    ).frame
    if data.min_rating is not None and "rating" in frame:
        frame = frame[frame["rating"] >= data.min_rating]
    if not len(frame):
        raise NcfError(f"{path}: no interactions (after data.min_rating={data.min_rating})")
    return frame["user"].astype(str).to_numpy(), frame["item"].astype(str).to_numpy()


def add_interactions(
    run: RunDir, path: Path, replay: float, features: dict[str, Path] | None = None
) -> Change:
    """The run's data plus the file's new interactions (see the module docstring);
    ``features`` maps "item" / "user" to a table of the new ids' feature rows."""
    if replay < 0:
        raise NcfError(f"--replay {replay}: must be zero or more (old interactions per new one)")
    dataset = dataset_of_run(run)
    inter, split = dataset.interactions, dataset.split
    raw_users, raw_items = read_new_interactions(run, path)
    users, user_index = _extended(inter.users, raw_users)
    items, item_index = _extended(inter.items, raw_items)
    config = run.config.model
    rows: dict[str, np.ndarray] = {}
    for side, vocab, old in (("user", users, inter.users), ("item", items, inter.items)):
        new_ids = vocab.ids[len(old) :].astype(str).tolist()
        table = (features or {}).get(side)
        if table is not None:
            if not len(new_ids):
                raise NcfError(
                    f"--{side}-features {table}: {path} has no new {side}s, so there is "
                    "nothing to encode; leave the option out"
                )
            rows[side] = _feature_rows(run, side, table, new_ids)
        elif len(new_ids) and _reads_features(config, side):
            shown = ", ".join(repr(i) for i in new_ids[:3]) + (" ..." if len(new_ids) > 3 else "")
            raise NcfError(
                f"{path}: new {side}s ({shown}), and the model uses {side} side features: give "
                f"their rows with --{side}-features FILE (a CSV or Parquet table with the "
                f"columns of the run's data.{side}_features), or retrain with ncf train"
            )
    old_keys = pair_keys(inter.user, inter.item, len(items))
    keys = pair_keys(user_index, item_index, len(items))
    keys, first = np.unique(keys, return_index=True)
    fresh = ~np.isin(keys, old_keys)
    if not fresh.any():
        raise NcfError(f"{path}: every interaction in it is already in {run.path}; nothing new")
    new_user = user_index[first[fresh]].astype(np.int32)
    new_item = item_index[first[fresh]].astype(np.int32)
    grown = _with_train(split, new_user, new_item, len(users), len(items))
    result = rebuild(dataset, grown, users, items)
    result = replace(result, interactions=_padded_features(result.interactions, users, items, rows))
    tune = _tune_split(grown, split, new_user, new_item, replay, run.config.run.seed)
    info = {
        "new_interactions": int(fresh.sum()),
        "new_users": len(users) - len(inter.users),
        "new_items": len(items) - len(inter.items),
        "replayed_interactions": tune.num_train - int(fresh.sum()),
    }
    user_map = np.r_[np.arange(len(inter.users)), np.full(len(users) - len(inter.users), -1)]
    item_map = np.r_[np.arange(len(inter.items)), np.full(len(items) - len(inter.items), -1)]
    return Change(result, user_map, item_map, tune, info)


def _extended(vocab: Vocabulary, raws: np.ndarray) -> tuple[Vocabulary, np.ndarray]:
    """``vocab`` with the unknown ids of ``raws`` appended (first appearance order); indices."""
    index = vocab.lookup(raws)
    unknown = list(dict.fromkeys(raws[index < 0].tolist()))
    if not unknown:
        return vocab, index
    grown = Vocabulary._checked(np.concatenate([vocab.ids.astype(str), np.array(unknown, str)]))
    return grown, grown.lookup(raws)


def _with_train(split: Split, user: np.ndarray, item: np.ndarray, users: int, items: int) -> Split:
    all_user = np.concatenate([split.train_user, user])
    all_item = np.concatenate([split.train_item, item])
    order = np.argsort(all_user, kind="stable")
    return replace(
        split,
        num_users=users,
        num_items=items,
        train_user=all_user[order],
        train_item=all_item[order],
        stats={},
    )


def _tune_split(
    grown: Split, old: Split, user: np.ndarray, item: np.ndarray, replay: float, seed: int
) -> Split:
    """New interactions plus ``replay`` old train/validation ones per new one (no validation)."""
    merged = old.with_validation_in_train()
    count = min(merged.num_train, int(round(replay * len(user))))
    pick = rng_for(seed, "update-replay").choice(merged.num_train, count, replace=False)
    tune_user = np.concatenate([user, merged.train_user[pick]])
    tune_item = np.concatenate([item, merged.train_item[pick]])
    order = np.argsort(tune_user, kind="stable")
    return replace(grown, train_user=tune_user[order], train_item=tune_item[order])


def _reads_features(config: Any, side: str) -> bool:
    """Whether the run's model (``config`` its model section) reads ``side`` side features."""
    return family(config.type).reads_features(config, side)


def _feature_rows(run: RunDir, side: str, path: Path, ids: list[str]) -> np.ndarray:
    """The feature rows of the new ``ids``, read from the table at ``path`` and encoded with
    the run's own encoders (vocab/feature_encoders.json)."""
    from ncf.data.feature_tables import encode_new, read_new_table
    from ncf.io import read_json

    encoders_path = run.path / "vocab" / "feature_encoders.json"
    encoders = read_json(encoders_path) if encoders_path.is_file() else {}
    if side not in encoders:
        raise NcfError(
            f"--{side}-features {path}: the run's {side} features do not come from "
            f"data.{side}_features (a table ncf can encode again); retrain with ncf train"
        )
    table = read_new_table(path, encoders[side]["table"]["config"]["id"])
    twice = table.index[table.index.duplicated() & table.index.isin(ids)]
    if len(twice):
        raise NcfError(f"{path}: the {side} {twice[0]!r} has more than one row; keep one")
    missing = [i for i in ids if i not in table.index]
    if missing:
        shown = ", ".join(repr(i) for i in missing[:3]) + (" ..." if len(missing) > 3 else "")
        raise NcfError(f"{path}: no row for the new {side}s {shown}; add them")
    try:
        return encode_new(encoders, side, table.loc[ids])
    except NcfError as exc:
        raise NcfError(f"{path}: {exc}") from None


def _padded_features(
    inter: Interactions, users: Vocabulary, items: Vocabulary, rows: dict[str, np.ndarray]
) -> Interactions:
    """Side-feature matrices grown for new ids: their encoded ``rows`` where given, else zero
    rows (only for a model that ignores them)."""
    found: dict[str, Any] = {}
    for side, vocab in (("user", users), ("item", items)):
        matrix = getattr(inter, f"{side}_features")
        if matrix is not None and len(matrix) < len(vocab):
            pad = rows.get(side)
            if pad is None:
                pad = np.zeros((len(vocab) - len(matrix), matrix.shape[1]), matrix.dtype)
            found[f"{side}_features"] = np.vstack([matrix, pad.astype(matrix.dtype)])
    titles = inter.item_titles
    if titles is not None and len(titles) < len(items):
        found["item_titles"] = np.r_[titles, np.full(len(items) - len(titles), "", object)]
    return replace(inter, **found)

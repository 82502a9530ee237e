"""``ncf forget RUN_DIR --user ID ...``: a new run without some users (right to erasure).

What is removed from the new run: the users' interactions (train, validation, test and
their sampled evaluation candidates), their ids from the user vocabulary, their rows of the
user side-feature matrix, and their rows of every user embedding table (neural) or of the
kNN / EASE / iALS matrices (refitted without them). Their contribution to popularity counts
goes with their interactions. An export of the new run holds nothing of them: no id, no
seen list, no embedding row.

What "forgotten" does not mean by default for a neural model: the other weights (item
embeddings, dense layers) were trained with these users' interactions and then fine-tuned
for a few epochs without them, so traces of their data remain in those weights. Only a
retrain from scratch on the remaining data removes every influence (``--exact``; baselines
are always refitted, which is exact). The source run, its checkpoints and any export made
from it still hold everything: delete them yourself.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ncf.data.split import Split
from ncf.data.vocab import Vocabulary
from ncf.errors import NcfError
from ncf.train.derive import Change, dataset_of_run, rebuild
from ncf.train.rundir import RunDir


def forget_users(run: RunDir, user_ids: list[str]) -> Change:
    """The run's data without the users ``user_ids`` (raw ids; each must be in the run)."""
    dataset = dataset_of_run(run)
    users = dataset.interactions.users
    gone = []
    for raw in dict.fromkeys(user_ids):
        index = users.lookup(np.array([raw]))[0]
        if index < 0:
            raise NcfError(
                f"--user {raw!r}: not a user of {run.path} (vocab/users.txt); nothing to forget"
            )
        gone.append(int(index))
    keep = np.ones(len(users), dtype=bool)
    keep[gone] = False
    if not keep.any():
        raise NcfError("--user: that is every user of the run; nothing would be left to train on")
    user_map = np.flatnonzero(keep)  # new index -> old index
    new_index = np.full(len(users), -1, dtype=np.int64)
    new_index[user_map] = np.arange(len(user_map))
    split = _without_users(dataset.split, keep, new_index)
    inter = dataset.interactions
    new_users = Vocabulary(users.ids[user_map])
    result = rebuild(dataset, split, new_users, inter.items)
    if inter.user_features is not None:
        features = inter.user_features[user_map]
        result = replace(result, interactions=replace(result.interactions, user_features=features))
    removed = int(np.isin(dataset.interactions.user, gone).sum())
    info = {"forgotten_users": len(gone), "removed_interactions": removed}
    return Change(
        result, user_map, np.arange(inter.num_items), split.with_validation_in_train(), info
    )


def _without_users(split: Split, keep: np.ndarray, new_index: np.ndarray) -> Split:
    parts = {}
    for side in ("train", "val", "test"):
        user, item = getattr(split, f"{side}_user"), getattr(split, f"{side}_item")
        rows = keep[user]
        parts[f"{side}_user"] = new_index[user[rows]].astype(np.int32)
        parts[f"{side}_item"] = item[rows]
        if side != "train":
            parts[f"{side}_candidates"] = getattr(split, f"{side}_candidates")[rows]
    return replace(split, num_users=int(keep.sum()), stats={}, **parts)

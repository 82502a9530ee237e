"""Train / validation / test splits and the saved evaluation candidates.

Methods (``data.split.method``):

- ``leave_one_out``: each user's latest interaction (by timestamp; among interactions with
  the same timestamp the one with the largest item id, in the vocabulary's natural order,
  so the split does not depend on the order of the file; without timestamps a random one
  drawn from the seed) is the test case. A user needs at least 2 interactions for a test case and 3 for a validation
  case as well; users with fewer stay in train only and are counted in ``stats``.
- ``ratio``: each user's latest ``test_fraction`` of interactions (at least one, never all)
  is test; the same again on what is left gives validation.
- ``temporal``: one global cut at the ``1 - test_fraction`` quantile of time; test rows
  of users or items absent from train are dropped and counted (they cannot be ranked).
- ``cold_items``: a share of the items held out of training entirely (:mod:`ncf.data.cold`).

Which rows each method holds out is :func:`ncf.data.holdout.held_out_rows`; this module
turns the chosen rows into a :class:`Split` and draws the candidates.

Validation is carved from train by the same method, so early stopping and tuning never
see the test split. Sampled-protocol candidates are drawn once from the seed: for every
test (and validation) case, N distinct items the user never interacted with in any split.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ncf.config import SplitConfig
from ncf.data.cold import cold_items_cut
from ncf.data.holdout import held_out_rows
from ncf.data.interactions import FixedSplit, Interactions
from ncf.data.negatives import PositiveSet, sample_candidates
from ncf.data.pairs import pair_keys
from ncf.errors import DataError, NcfError
from ncf.io import atomic_write
from ncf.rng import rng_for


@dataclass(frozen=True)
class Split:
    """Indexed train / val / test interactions and the sampled-protocol candidates.

    The arrays are int32 indices into the vocabularies of the :class:`Interactions` they
    were made from. Each of train, val and test is sorted by user. ``val_candidates`` and
    ``test_candidates`` hold only the sampled negatives of each case (row ``j`` belongs to
    case ``j``); the held-out item itself is not among them.
    """

    num_users: int
    num_items: int
    train_user: np.ndarray  # [n_train] int32
    train_item: np.ndarray  # [n_train] int32
    val_user: np.ndarray  # [n_val] int32
    val_item: np.ndarray  # [n_val] int32
    test_user: np.ndarray  # [n_test] int32
    test_item: np.ndarray  # [n_test] int32
    val_candidates: np.ndarray  # [n_val, N] int32
    test_candidates: np.ndarray  # [n_test, N] int32
    stats: dict[str, int] = field(default_factory=dict)
    cold_items: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))  # cold_items

    @property
    def num_train(self) -> int:
        return len(self.train_user)

    def fingerprint(self) -> str:
        """A digest of every index array: two runs with the same fingerprint saw the same split."""
        digest = hashlib.sha256(f"{self.num_users}:{self.num_items}".encode())
        for name in _ARRAYS:
            arr = np.ascontiguousarray(getattr(self, name), dtype=np.int32)
            digest.update(name.encode() + str(arr.shape).encode() + arr.tobytes())
        if self.cold_items.size:  # (absent from older splits' digests, which stay as they were)
            digest.update(b"cold_items" + np.asarray(self.cold_items, np.int32).tobytes())
        return digest.hexdigest()[:16]

    def with_validation_in_train(self) -> Split:
        """This split with the validation cases moved into train (for a refit on both).

        The result has no validation cases, so nothing can be validated on interactions the
        model was trained on; test and its candidates are unchanged.
        """
        user = np.concatenate([self.train_user, self.val_user])
        item = np.concatenate([self.train_item, self.val_item])
        order = np.argsort(user, kind="stable")
        empty = np.zeros(0, dtype=np.int32)
        return replace(
            self,
            train_user=user[order],
            train_item=item[order],
            val_user=empty,
            val_item=empty,
            val_candidates=np.zeros((0, self.val_candidates.shape[1]), dtype=np.int32),
        )

    def with_validation_sample(self, num_users: int, rng: np.random.Generator) -> Split:
        """This split with the validation cases of ``num_users`` users drawn by ``rng`` (every
        case of each drawn user); the split itself when it has no more users than that."""
        users = np.unique(self.val_user)
        if num_users >= len(users):
            return self
        keep = np.isin(self.val_user, rng.choice(users, num_users, replace=False))
        return replace(
            self,
            val_user=self.val_user[keep],
            val_item=self.val_item[keep],
            val_candidates=self.val_candidates[keep],
        )

    def save(self, path: str | Path) -> None:
        """Write every array to one ``.npz`` file (atomically)."""
        arrays = {name: getattr(self, name) for name in _ARRAYS}
        if self.cold_items.size:
            arrays["cold_items"] = self.cold_items
        shape = np.array([self.num_users, self.num_items])
        atomic_write(
            path, lambda fh: np.savez(fh, shape=shape, stats=json.dumps(self.stats), **arrays)
        )

    @classmethod
    def load(cls, path: str | Path) -> Split:
        try:
            with np.load(path) as npz:
                arrays = {name: npz[name] for name in _ARRAYS}
                if "cold_items" in npz:
                    arrays["cold_items"] = npz["cold_items"]
                num_users, num_items = (int(v) for v in npz["shape"])
                stats = json.loads(str(npz["stats"]))
        except FileNotFoundError:
            raise NcfError(
                f"{path}: split file not found; is this a complete run directory?"
            ) from None
        return cls(num_users, num_items, stats=stats, **arrays)


_ARRAYS = (
    "train_user", "train_item", "val_user", "val_item", "test_user", "test_item",
    "val_candidates", "test_candidates",
)  # fmt: skip


def make_split(
    data: Interactions,
    config: SplitConfig,
    seed: int,
    num_candidates: int,
    fixed: FixedSplit | None = None,
) -> Split:
    """Split ``data`` into train / val / test and draw the sampled-protocol candidates."""
    if config.method == "cold_items":
        cut = cold_items_cut(data, config, seed, num_candidates)
        return split_from_masks(
            data, cut.train, cut.val, cut.test, cut.val_candidates, cut.test_candidates,
            cut.stats, cut.cold_items,
        )  # fmt: skip
    user, item, ts = data.user, data.item, data.timestamp
    stats: dict[str, int] = {}
    rng = rng_for(seed, "split")
    if fixed is not None:
        test_mask, test_candidates = _fixed_test(data, fixed)
        stats["test_cases_from_files"] = int(test_mask.sum())
    else:
        test_mask = held_out_rows(user, ts, config, data.num_users, rng, stats, "test")
        test_candidates = None
    train = ~test_mask
    if config.validation:
        val_rows = held_out_rows(
            user[train],
            None if ts is None else ts[train],
            config,
            data.num_users,
            rng,
            stats,
            "val",
        )
        val_mask = np.zeros_like(train)
        val_mask[np.flatnonzero(train)[val_rows]] = True
        train &= ~val_mask
    else:
        val_mask = np.zeros_like(train)
    if config.method == "temporal":
        test_mask = _drop_unrankable(user, item, train, test_mask, stats, "test")
        val_mask = _drop_unrankable(user, item, train, val_mask, stats, "val")
    everything = PositiveSet(user, item, data.num_users, data.num_items)
    cand_rng = rng_for(seed, "candidates")
    val_candidates = sample_candidates(everything, user[val_mask], num_candidates, cand_rng)
    if test_candidates is None:
        test_candidates = sample_candidates(everything, user[test_mask], num_candidates, cand_rng)
    return split_from_masks(
        data, train, val_mask, test_mask, val_candidates, test_candidates, stats
    )


def split_from_masks(
    data: Interactions,
    train: np.ndarray,
    val: np.ndarray,
    test: np.ndarray,
    val_candidates: np.ndarray,
    test_candidates: np.ndarray,
    stats: dict[str, int],
    cold_items: np.ndarray | None = None,
) -> Split:
    """The :class:`Split` of ``data``'s rows chosen by the boolean masks ``train``, ``val``
    and ``test`` (every split method ends here)."""
    user, item = data.user, data.item
    return Split(
        num_users=data.num_users,
        num_items=data.num_items,
        train_user=user[train],
        train_item=item[train],
        val_user=user[val],
        val_item=item[val],
        test_user=user[test],
        test_item=item[test],
        val_candidates=val_candidates,
        test_candidates=test_candidates,
        stats=stats,
        **({} if cold_items is None else {"cold_items": cold_items}),
    )


def check_cases(split: Split, config: SplitConfig, description: str) -> None:
    """Raise :class:`DataError` when the test split, or the validation split that
    ``config.validation`` asks for, has no cases: nothing could be ranked (metrics would be NaN).
    """
    parts = [("test", split.test_user)]
    if config.validation:
        parts.append(("validation", split.val_user))
    for part, users in parts:
        if len(users):
            continue
        if config.method == "temporal":
            why = "every held-out row's user or item is absent from train"
        else:
            need = 3 if part == "validation" else 2
            why = f"a user needs at least {need} interactions for one, and no user has"
        advice = (
            "set data.split.validation: false (and train.refit: false), or use data with more "
            "interactions per user"
            if part == "validation"
            else "use data with more interactions per user, or another data.split.method"
        )
        raise DataError(
            f"{description}: the split has no {part} cases (data.split.method "
            f"{config.method}: {why}); {advice}"
        )


def _drop_unrankable(user, item, train, held, stats, part) -> np.ndarray:
    """Temporal split: held-out rows whose user or item never appears in train cannot be ranked."""
    seen_users = np.zeros(user.max() + 1, dtype=bool)
    seen_items = np.zeros(item.max() + 1, dtype=bool)
    seen_users[user[train]] = True
    seen_items[item[train]] = True
    ok = seen_users[user] & seen_items[item]
    stats[f"{part}_rows_unrankable"] = int((held & ~ok).sum())
    return held & ok


def _fixed_test(data: Interactions, fixed: FixedSplit) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``data`` that are the given test cases, and their given negatives as indices."""
    t_user = data.users.lookup(fixed.test["user"].to_numpy())
    t_item = data.items.lookup(fixed.test["item"].to_numpy())
    neg = np.array([data.items.lookup(np.asarray(row)) for row in fixed.negatives], dtype=np.int32)
    if (t_user < 0).any() or (t_item < 0).any() or (neg < 0).any():
        raise DataError(
            f"{data.description}: the test or negative file names a user or item that was filtered out; "
            "remove data.min_rating and the k-core settings for the ncf source"
        )
    if len(np.unique(t_user)) != len(t_user):
        raise DataError(
            f"{data.description}: the test file must hold exactly one test case per user"
        )
    keys = pair_keys(data.user, data.item, data.num_items)
    test_keys = pair_keys(t_user, t_item, data.num_items)
    mask = np.isin(keys, test_keys)
    if mask.sum() != len(t_user):
        raise DataError(
            f"{data.description}: {len(t_user)} test cases but {int(mask.sum())} matching interactions; "
            "a test pair also appears in the train file"
        )
    order = np.argsort(t_user, kind="stable")
    return mask, neg[order]

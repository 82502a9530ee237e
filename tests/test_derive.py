"""``ncf forget`` and ``ncf update``: runs derived from a finished run.

One tiny mf run and one item-kNN run are shared by the module. Forgetting is checked in the
export a user would ship (ids, seen lists, embedding rows); updating by the grown
vocabularies and split; baselines against a fresh fit on the changed data (exact).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from test_export import shared_tiny_run

from ncf.baselines.knn import ItemKNN
from ncf.cli import main
from ncf.models.model import NCFModel
from ncf.serve.client import Export
from ncf.train.derive import transplant
from ncf.train.rundir import RunDir


@pytest.fixture(scope="module")
def runs(shared_dir) -> dict[str, RunDir]:
    """Runs of tests/test_export.py (trained once per session): only read here."""
    return {kind: shared_tiny_run(shared_dir, kind) for kind in ("mf", "itemknn")}


def ncf(*args: str) -> subprocess.CompletedProcess:
    exe = str(Path(sys.executable).with_name("ncf"))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([exe, *args], capture_output=True, text=True, env=env, timeout=300)


def seen_counts(run: RunDir) -> np.ndarray:
    split = run.split()
    return np.bincount(np.r_[split.train_user, split.val_user], minlength=split.num_users)


def test_forget_leaves_nothing_of_the_users_in_the_next_export(runs, tmp_path):
    source = runs["mf"]
    old_users = source.users().ids.astype(str).tolist()
    gone, left = old_users[:3], len(old_users) - 3
    out = tmp_path / "forgotten"
    args = [a for u in gone for a in ("--user", u)]
    proc = ncf("forget", str(source.path), *args, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "forgot 3 users" in proc.stdout and "warm start" in proc.stdout
    assert "still hold these users" in proc.stdout
    export_path = tmp_path / "exports"
    assert main(["export", str(out), "--out", str(export_path)]) == 0
    ex = Export(export_path)
    assert ex.user_ids() == old_users[3:]  # ids gone, every other user in its old order
    assert ex.info["num_users"] == left
    assert not ex.call("recommend", user_id=gone, k=[3])["known_user"].any()
    split = RunDir(out).split()
    assert split.num_users == left and not (split.test_user >= left).any()
    assert len(split.test_user) == len(source.split().test_user) - 3
    # The SavedModel's variables: no table of the old user count; user tables of the new one;
    # the seen lists' row splits (users + 2 entries) end at the remaining users' seen count.
    checkpoint = str(ex.path / "variables" / "variables")
    reader = tf.train.load_checkpoint(checkpoint)
    shapes = {n: s for n, s in tf.train.list_variables(checkpoint) if s}
    assert not [n for n, s in shapes.items() if s[0] == len(old_users)], shapes
    assert [n for n, s in shapes.items() if s[0] == left and len(s) == 2]  # embedding, bias
    splits = [reader.get_tensor(n) for n, s in shapes.items() if s == [left + 2]]
    assert [int(v[-1]) for v in splits] == [int(seen_counts(source)[3:].sum())]
    model = RunDir(out).load_scorer().model
    assert model.num_users == left
    derived = json.loads((out / "derived.json").read_text())
    assert derived["forgotten_users"] == 3 and derived["method"] == "warm start"
    keys = {"source", "method", "command", "epochs", "forgotten_users", "removed_interactions"}
    assert set(derived) == keys  # counts only, never the ids


def assert_same_as_a_fresh_fit(source: RunDir, derived: RunDir, model) -> None:
    split = derived.split()
    if source.config.train.refit:
        split = split.with_validation_in_train()
    config = source.config.model
    fresh = ItemKNN.fit(
        split.num_users, split.num_items, split.train_user, split.train_item,
        neighbours=config.knn.neighbours, shrinkage=config.knn.shrinkage,
    )  # fmt: skip
    np.testing.assert_allclose(model.similarity.toarray(), fresh.similarity.toarray(), rtol=1e-6)
    assert (model.interactions != fresh.interactions).nnz == 0


def test_forget_baseline_is_an_exact_refit(runs, tmp_path):
    source = runs["itemknn"]
    gone = source.users().ids.astype(str)[[3, 7]].tolist()
    out = tmp_path / "knn-forgotten"
    assert (
        main(["forget", str(source.path), "--user", gone[0], "--user", gone[1], "--out", str(out)])
        == 0
    )
    refit = RunDir(out).load_scorer()
    assert refit.interactions.shape[0] == source.split().num_users - 2
    assert_same_as_a_fresh_fit(source, RunDir(out), refit)
    assert json.loads((out / "derived.json").read_text())["method"] == "refit (closed form)"


def test_forget_exact_retrains_from_scratch(runs, tmp_path):
    out = tmp_path / "exact"
    user = str(runs["mf"].users().ids[5])
    assert main(["forget", str(runs["mf"].path), "--user", user, "--exact", "--out", str(out)]) == 0
    assert json.loads((out / "derived.json").read_text())["method"] == "retrain"
    assert (
        RunDir(out).complete
        and (out / "selected.keras").is_file() is RunDir(out).config.train.refit
    )


def test_forget_and_update_mistakes_leave_nothing_behind(runs, tmp_path, capsys):
    source = str(runs["mf"].path)
    out = tmp_path / "never"
    assert main(["forget", source, "--user", "no-such-user", "--out", str(out)]) == 2
    assert "'no-such-user': not a user of" in capsys.readouterr().err
    everyone = [a for u in runs["mf"].users().ids.astype(str) for a in ("--user", u)]
    assert main(["forget", source, *everyone, "--out", str(out)]) == 2
    assert "every user of the run" in capsys.readouterr().err
    assert main(["update", source, "--data", str(tmp_path / "missing.csv"), "--out", str(out)]) == 2
    assert "file not found" in capsys.readouterr().err
    old = tmp_path / "old.csv"
    split = runs["mf"].split()
    users, items = runs["mf"].users().ids, runs["mf"].items().ids
    old.write_text(f"user,item\n{users[split.train_user[0]]},{items[split.train_item[0]]}\n")
    assert main(["update", source, "--data", str(old), "--out", str(out)]) == 2
    assert "already in" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("who,what\n1,2\n")
    assert main(["update", source, "--data", str(bad), "--out", str(out)]) == 2
    assert "data.columns" in capsys.readouterr().err
    assert not out.exists()


def new_interactions(run: RunDir, path: Path) -> list[tuple[str, str]]:
    """Two new pairs of old ids, a new user, a new item, a repeat and an old pair."""
    split = run.split()
    users, items = run.users().ids.astype(str), run.items().ids.astype(str)
    user = np.r_[split.train_user, split.val_user, split.test_user].tolist()
    had = set(
        zip(user, np.r_[split.train_item, split.val_item, split.test_item].tolist(), strict=True)
    )
    fresh = [(u, i) for u in range(3) for i in range(len(items)) if (u, i) not in had][:2]
    rows = [(users[u], items[i]) for u, i in fresh]
    rows += [("newcomer", items[0]), ("newcomer", "new-item"), (users[0], "new-item")]
    rows += [rows[0], (users[split.train_user[0]], items[split.train_item[0]])]
    path.write_text("user,item\n" + "".join(f"{u},{i}\n" for u, i in rows))
    return rows


def test_update_extends_vocabularies_and_exports_a_new_version(runs, tmp_path):
    source = runs["mf"]
    new = tmp_path / "new.csv"
    new_interactions(source, new)
    out = tmp_path / "updated"
    proc = ncf("update", str(source.path), "--data", str(new), "--out", str(out), "--epochs", "2")
    assert proc.returncode == 0, proc.stderr
    assert "added 5 interactions (1 new user, 1 new item) by warm start" in proc.stdout
    run = RunDir(out)
    old_users, old_items = source.users().ids.tolist(), source.items().ids.tolist()
    assert run.users().ids.tolist() == [*old_users, "newcomer"]
    assert run.items().ids.tolist() == [*old_items, "new-item"]
    split, old_split = run.split(), source.split()
    assert split.num_train == old_split.num_train + 5
    np.testing.assert_array_equal(split.test_item, old_split.test_item)
    derived = json.loads((out / "derived.json").read_text())
    assert derived["replayed_interactions"] == 20 and derived["new_interactions"] == 5  # 4 each
    base = tmp_path / "exports"
    assert main(["export", str(source.path), "--out", str(base)]) == 0
    assert main(["export", str(out), "--out", str(base)]) == 0
    ex = Export(base)
    assert ex.version == 2 and ex.info["num_items"] == len(old_items) + 1
    assert ex.call("recommend", user_id=["newcomer"], k=[3])["known_user"].all()
    model = run.load_scorer().model
    assert model.num_users == len(old_users) + 1 and model.num_items == len(old_items) + 1


def test_update_baseline_refits_on_all_the_data(runs, tmp_path):
    source = runs["itemknn"]
    new = tmp_path / "new.csv"
    new_interactions(source, new)
    out = tmp_path / "knn-updated"
    assert main(["update", str(source.path), "--data", str(new), "--out", str(out)]) == 0
    assert_same_as_a_fresh_fit(source, RunDir(out), RunDir(out).load_scorer())


def test_transplant_moves_rows_with_their_ids():
    old = NCFModel(4, 3, head="mf", embedding_dim=2)
    new = NCFModel(3, 4, head="mf", embedding_dim=2)
    fresh_items = new.item_towers[0].embedding.embeddings.numpy().copy()
    transplant(old, new, np.array([0, 2, 3]), np.array([0, 1, 2, -1]))
    old_users = old.user_towers[0].embedding.embeddings.numpy()
    np.testing.assert_array_equal(
        new.user_towers[0].embedding.embeddings.numpy(), old_users[[0, 2, 3]]
    )
    items = new.item_towers[0].embedding.embeddings.numpy()
    np.testing.assert_array_equal(items[:3], old.item_towers[0].embedding.embeddings.numpy())
    np.testing.assert_array_equal(items[3], fresh_items[3])  # a new item keeps its fresh row
    np.testing.assert_array_equal(
        new.user_bias.embeddings.numpy(), old.user_bias.embeddings.numpy()[[0, 2, 3]]
    )

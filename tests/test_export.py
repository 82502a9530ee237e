"""SavedModel export: signatures, score equality, seen-item exclusion, fallbacks, atomic versions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import build_once, tiny_config
from tf1_loader import run_signatures

from ncf.cli import main
from ncf.config import load_config
from ncf.errors import NcfError
from ncf.serve.export import export_run
from ncf.train import train
from ncf.train.rundir import RunDir

SMALLER = [  # exports of four model types: the tiny data, smaller again
    "data.synthetic.users=120",
    "data.synthetic.items=80",
    "data.synthetic.interactions=2500",
    "train.epochs=1",
    "train.histograms=false",
    "eval.protocols=[sampled]",
    "eval.k=[10]",
    "eval.sampled_negatives=20",
]


KINDS = (
    "mf", "gmf", "mlp", "neumf", "history", "sequence", "vae",
    "itemknn", "userknn", "popularity", "ease", "ials",
)  # fmt: skip
EXTRA = {"history": ("train.loss=softmax", "model.history.length=8")}


def tiny_run(tmp: Path, kind: str, *extra: str) -> RunDir:
    config = tiny_config(tmp, f"model.type={kind}", *SMALLER, *EXTRA.get(kind, ()), *extra)
    return RunDir(train(config, verbose=0).run_dir)


def shared_tiny_run(shared: Path, kind: str) -> RunDir:
    """``tiny_run(kind)`` trained once per test session: tests/test_fold_in.py and
    tests/test_derive.py read the same runs. Nothing may write into them."""
    return RunDir(build_once(shared, f"run-{kind}", lambda tmp: tiny_run(tmp, kind).path))


def shared_export(shared: Path, kind: str) -> Path:
    """The default export of ``shared_tiny_run(kind)``, exported once per test session
    (tests/test_fold_in.py and tests/test_metadata.py read the same exports)."""
    run = shared_tiny_run(shared, kind)
    return build_once(shared, f"export-{kind}", lambda base: export_run(run.path, base))


class Exported:
    """A finished run, an export of it and the loaded SavedModel."""

    def __init__(self, run: RunDir, path: Path) -> None:
        self.run, self.path = run, path
        self.module = tf.saved_model.load(str(self.path))
        self.users, self.items = run.users().ids.astype(str), run.items().ids.astype(str)
        split = run.split()
        self.split = split
        self.seen = [set() for _ in range(split.num_users)]
        for u, i in zip(
            np.r_[split.train_user, split.val_user],
            np.r_[split.train_item, split.val_item],
            strict=True,
        ):
            self.seen[u].add(int(i))

    @classmethod
    def of(cls, run: RunDir, base: Path, overrides: list[str] | None = None) -> Exported:
        """``run`` exported as a new version under ``base`` (``export.*`` ``overrides``)."""
        return cls(run, export_run(run.path, base, overrides=overrides))

    @classmethod
    def shared(cls, shared: Path, kind: str) -> Exported:
        """The default export of ``shared_tiny_run(kind)`` (:func:`shared_export`)."""
        return cls(shared_tiny_run(shared, kind), shared_export(shared, kind))

    def call(self, name: str, **inputs):
        tensors = {
            k: tf.constant(
                np.reshape(v, [-1]) if k == "k" else v, tf.int32 if k == "k" else tf.string
            )
            for k, v in inputs.items()
        }
        return {k: v.numpy() for k, v in self.module.signatures[name](**tensors).items()}

    def index(self, ids) -> list[int]:
        where = {item: n for n, item in enumerate(self.items)}
        return [where[i.decode()] for i in ids]


@pytest.fixture(scope="module")
def runs(shared_dir) -> dict[str, RunDir]:
    return {kind: shared_tiny_run(shared_dir, kind) for kind in KINDS}


@pytest.fixture(scope="module")
def exports(runs, shared_dir, tmp_path_factory) -> dict[str, Exported]:
    base = tmp_path_factory.mktemp("exports")
    found = {kind: Exported.shared(shared_dir, kind) for kind in runs}
    found["popularity-seen"] = Exported.of(
        runs["popularity"], base / "popularity-seen", ["export.exclude_seen=false"]
    )
    found["neumf-private"] = Exported.of(
        runs["neumf"], base / "neumf-private", ["export.include_seen=false"]
    )
    return found


TF_ONLY = """
import json, sys
import tensorflow as tf
m = tf.saved_model.load(sys.argv[1])
out = {"signatures": sorted(m.signatures)}
rec = m.signatures["recommend"](user_id=tf.constant([sys.argv[2], "no-such-user"]), k=tf.constant([3]))
out["recommend"] = {k: v.shape.as_list() for k, v in rec.items()}
s = m.signatures["serving_default"](user_id=tf.constant([sys.argv[2]]), item_id=tf.constant([sys.argv[3]]))
out["score"] = s["score"].shape.as_list()
sim = m.signatures["similar_items"](item_id=tf.constant([sys.argv[3]]), k=tf.constant([2]))
out["similar"] = sim["item_ids"].shape.as_list()
out["ncf_imported"] = any(name == "ncf" or name.startswith("ncf.") for name in sys.modules)
print(json.dumps(out))
"""


def test_loads_with_tensorflow_alone_and_saved_model_cli_lists_signatures(exports, tmp_path):
    ex = exports["neumf"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    args = [str(ex.path), ex.users[0], ex.items[0]]
    script = [sys.executable, "-c", TF_ONLY, *args]
    cli = [
        str(Path(sys.executable).with_name("saved_model_cli")),
        "show",
        "--dir",
        str(ex.path),
        "--all",
    ]
    procs = [
        subprocess.Popen(
            c, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for c in (script, cli)
    ]
    (out, err), (shown, cli_err) = (p.communicate(timeout=120) for p in procs)
    assert procs[0].returncode == 0, err[-2000:]
    result = json.loads(out.strip().splitlines()[-1])
    assert result["signatures"] == [
        "explain", "recommend", "recommend_from_history", "score", "serving_default", "similar_items"
    ]  # fmt: skip
    assert result["recommend"] == {"item_ids": [2, 3], "scores": [2, 3], "known_user": [2]}
    assert result["score"] == [1] and result["similar"] == [1, 2]
    assert not result["ncf_imported"]
    assert procs[1].returncode == 0, cli_err[-2000:]
    for name in ("serving_default", "score", "recommend", "similar_items"):
        assert f"signature_def['{name}']" in shown
    assert "inputs['user_id']" in shown and "DT_STRING" in shown and "outputs['scores']" in shown


@pytest.mark.parametrize("kind", KINDS)
def test_scores_equal_the_trained_model(kind, exports, runs):
    ex, scorer = exports[kind], runs[kind].load_scorer()
    rng = np.random.default_rng(0)
    users = rng.integers(0, len(ex.users), 64)
    items = rng.integers(0, len(ex.items), 64)
    expected = scorer.score_items(users.astype(np.int32), items[:, None].astype(np.int32))[:, 0]
    got = ex.call("score", user_id=ex.users[users], item_id=ex.items[items])["score"]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert np.array_equal(
        ex.call("serving_default", user_id=ex.users[users], item_id=ex.items[items])["score"], got
    )


@pytest.mark.parametrize("kind", ["neumf", "itemknn"])
def test_recommend_is_the_top_of_score_all_without_seen_items(kind, exports, runs):
    ex, scorer = exports[kind], runs[kind].load_scorer()
    users = np.arange(0, len(ex.users), 7)
    out = ex.call("recommend", user_id=ex.users[users], k=5)
    rows = scorer.score_all(users.astype(np.int32))
    for row, user, ids, scores in zip(rows, users, out["item_ids"], out["scores"], strict=True):
        got = ex.index(ids)
        assert not set(got) & ex.seen[user]
        masked = row.astype(np.float64)
        masked[list(ex.seen[user])] = -np.inf
        np.testing.assert_allclose(scores, np.sort(masked)[::-1][:5], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(row[got], scores, rtol=1e-5, atol=1e-5)
    assert out["known_user"].all()


def test_include_seen_lets_seen_items_back(exports):
    ex, excluding = exports["popularity-seen"], exports["popularity"]
    assert json.loads((ex.path / "assets" / "model.json").read_text())["exclude_seen"] is False
    out = ex.call("recommend", user_id=ex.users, k=10)
    hits = sum(bool(set(ex.index(ids)) & ex.seen[u]) for u, ids in enumerate(out["item_ids"]))
    assert hits > len(ex.users) // 2  # popular items are the ones most users have seen
    counts = np.bincount(ex.split.train_item, minlength=len(ex.items))
    assert (out["scores"] == np.sort(counts)[::-1][:10]).all()  # one ranking for everyone
    kept = excluding.call("recommend", user_id=ex.users, k=10)["item_ids"]
    assert not any(set(excluding.index(ids)) & ex.seen[u] for u, ids in enumerate(kept))


@pytest.mark.parametrize("kind", ["neumf", "itemknn", "popularity"])
def test_unknown_user_gets_the_most_popular_items(kind, exports):
    ex = exports[kind]
    counts = np.bincount(ex.split.train_item, minlength=len(ex.items))
    out = ex.call("recommend", user_id=["no-such-user", ex.users[0]], k=6)
    order = np.lexsort((np.arange(len(counts)), -counts))[:6]  # count desc, lower index first
    assert ex.index(out["item_ids"][0]) == order.tolist()
    np.testing.assert_array_equal(out["scores"][0], counts[order])
    assert out["known_user"].tolist() == [False, True]


def test_unknown_ids_score_minus_inf(exports):
    ex = exports["neumf"]
    out = ex.call(
        "score",
        user_id=["nobody", ex.users[0], ex.users[0]],
        item_id=[ex.items[0], "nothing", ex.items[0]],
    )
    assert out["score"][:2].tolist() == [-np.inf, -np.inf] and np.isfinite(out["score"][2])


def test_similar_items_is_brute_force_cosine_on_item_embeddings(exports, runs):
    ex = exports["neumf"]
    vectors = runs["neumf"].load_scorer().model.item_embeddings().astype(np.float64)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cosine = unit @ unit.T
    np.fill_diagonal(cosine, -np.inf)
    queries = [0, 5, 17]
    out = ex.call("similar_items", item_id=ex.items[queries], k=4)
    for q, ids, scores in zip(queries, out["item_ids"], out["scores"], strict=True):
        expected = np.argsort(-cosine[q], kind="stable")[:4]
        assert ex.index(ids) == expected.tolist()
        np.testing.assert_allclose(scores, cosine[q, expected], atol=1e-5)
    unknown = ex.call("similar_items", item_id=["nothing"], k=3)
    assert unknown["item_ids"].tolist() == [[b"", b"", b""]] and not unknown["known_item"][0]


def test_itemknn_similar_items_are_the_similarity_rows(exports, runs):
    ex = exports["itemknn"]
    sim = runs["itemknn"].load_scorer().similarity.toarray()
    out = ex.call("similar_items", item_id=ex.items[:10], k=3)
    for q, ids, scores in zip(range(10), out["item_ids"], out["scores"], strict=True):
        expected = np.argsort(-sim[q], kind="stable")[:3]
        expected = [int(i) for i in expected if sim[q, i] > 0]
        assert ex.index([i for i in ids if i]) == expected
        np.testing.assert_allclose(scores[: len(expected)], sim[q, expected], rtol=1e-6)


@pytest.mark.parametrize("kind", ["userknn", "popularity"])
def test_no_similar_items_where_it_does_not_apply(kind, exports, capsys):
    ex = exports[kind]
    assert "similar_items" not in ex.module.signatures
    info = json.loads((ex.path / "assets" / "model.json").read_text())
    assert "similar_items" not in info["signatures"] and info["no_similar_items"]
    assert main(["similar", str(ex.path), "--item", ex.items[0]]) == 2
    assert "no 'similar_items' signature" in capsys.readouterr().err


def test_k_is_clamped_to_the_catalogue_and_must_be_positive(exports):
    ex = exports["popularity"]
    out = ex.call("recommend", user_id=[ex.users[0]], k=10_000)
    assert out["item_ids"].shape == (1, len(ex.items))
    assert (out["item_ids"][0, -len(ex.seen[0]) :] == b"").all()  # seen items: padding
    with pytest.raises(tf.errors.InvalidArgumentError, match="k must be at least 1"):
        ex.call("recommend", user_id=[ex.users[0]], k=0)


def test_assets_describe_the_export(exports, runs):
    assets = exports["neumf"].path / "assets"
    info = json.loads((assets / "model.json").read_text())
    assert info["model_type"] == "neumf" and info["version"] == 1
    assert info["fingerprint"] == runs["neumf"].data_info()["fingerprint"]
    run = runs["neumf"].path
    assert info["run_name"] == f"{run.parent.name}/{run.name}"
    saved = load_config(assets / "config.yaml")
    assert saved.run.dir == "runs" and info["paths_cut"] == ["run.dir"]  # was absolute
    assert saved.model_copy(update={"run": runs["neumf"].config.run}) == runs["neumf"].config
    assert info["score"].startswith("logit") and info["about_users"]["seen_items"] is True
    assert json.loads((assets / "metrics.json").read_text()) == runs["neumf"].metrics()
    titles = (assets / "item_titles.txt").read_text().splitlines()
    assert len(titles) == len(exports["neumf"].items)


def test_versions_are_numbered_and_never_overwritten(runs, tmp_path):
    base = tmp_path / "exports"
    run = runs["popularity"].path
    assert export_run(run, base).name == "1"
    assert export_run(run, base, version=7).name == "7"
    assert export_run(run, base).name == "8"
    with pytest.raises(NcfError, match="already exists"):
        export_run(run, base, version=7)
    assert main(["export", str(run), "--out", str(base), "--version", "1"]) == 2


def test_a_crash_mid_export_leaves_no_partial_version(runs, tmp_path, monkeypatch):
    base = tmp_path / "exports"
    run = runs["popularity"].path
    first = export_run(run, base)
    before = sorted(p.name for p in first.rglob("*"))
    real_save = tf.saved_model.save

    def crash(module, path, **kwargs):
        real_save(module, path, **kwargs)  # half-way: files on disk, then a crash
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(tf.saved_model, "save", crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        export_run(run, base)
    assert sorted(p.name for p in base.iterdir()) == ["1"]
    assert sorted(p.name for p in first.rglob("*")) == before
    stale = base / ".tmp-export-999999999-abc"  # left by a killed process (pid long gone)
    stale.mkdir()
    monkeypatch.setattr(tf.saved_model, "save", real_save)
    assert export_run(run, base).name == "2" and not stale.exists()


def test_export_cli_flags(runs, tmp_path, capsys):
    base = tmp_path / "exports"
    run = str(runs["popularity"].path)
    assert (
        main(["export", run, "--out", str(base), "--include-seen", "--set", "export.default_k=3"])
        == 0
    )
    assert "exported" in capsys.readouterr().out
    info = json.loads((base / "1" / "assets" / "model.json").read_text())
    assert info["exclude_seen"] is False and info["default_k"] == 3
    assert main(["export", run, "--out", str(base), "--set", "train.epochs=3"]) == 2
    assert "only export.* keys" in capsys.readouterr().err
    too_big = ["--set", "export.default_k=100000"]
    assert main(["export", run, "--out", str(tmp_path / "other"), *too_big]) == 2
    assert "export.default_k=100000 is larger than the catalogue" in capsys.readouterr().err
    assert not list((tmp_path / "other").glob("*"))  # nothing half-written


# -- TensorFlow Serving's loader (the TF1 session loader) ------------------------------------


def test_every_model_type_runs_in_the_tf1_session_loader(exports, runs, tmp_path):
    """The loader TF Serving uses: every signature of every model type, scores as trained."""
    rng = np.random.default_rng(1)
    jobs, expected = {}, {}
    for kind in KINDS:
        ex, scorer = exports[kind], runs[kind].load_scorer()
        users = rng.integers(0, len(ex.users), 24)
        items = rng.integers(0, len(ex.items), 24)
        jobs[str(ex.path)] = [
            ("serving_default", {"user_id": ex.users[users], "item_id": ex.items[items]}),
            ("recommend", {"user_id": ex.users[users[:5]], "k": np.array([4], np.int32)}),
            ("similar_items", {"item_id": ex.items[items[:3]], "k": np.array([2, 3, 1], np.int32)}),
        ]
        pairs = scorer.score_items(users.astype(np.int32), items[:, None].astype(np.int32))[:, 0]
        expected[str(ex.path)] = (
            kind,
            pairs,
            ex.call("recommend", user_id=ex.users[users[:5]], k=4),
        )
    found = run_signatures(jobs, cwd=tmp_path)
    for path, (kind, pairs, rec) in expected.items():
        score, got, similar = found[path]["results"]
        np.testing.assert_allclose(score["score"], pairs, rtol=1e-5, atol=1e-5, err_msg=kind)
        assert got["item_ids"].tolist() == [[i.decode() for i in row] for row in rec["item_ids"]]
        np.testing.assert_allclose(got["scores"], rec["scores"], rtol=1e-5, atol=1e-5)
        has_similar = kind not in ("userknn", "popularity")
        assert ("similar_items" in found[path]["signatures"]) == has_similar, kind
        assert (similar is not None) == has_similar, kind
        if has_similar:
            assert [len(row) for row in similar["item_ids"]] == [3, 3, 3]
            assert similar["item_ids"][2][1:].tolist() == ["", ""]  # k=1: padding after


def test_saved_model_cli_runs_recommend(exports, tmp_path):
    """The command of the issue that failed with 'Could not find variable ...'."""
    ex = exports["neumf"]
    cli = str(Path(sys.executable).with_name("saved_model_cli"))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    user = ex.users[3]
    args = ["run", "--dir", str(ex.path), "--tag_set", "serve", "--signature_def", "recommend"]
    args += ["--input_exprs", f'user_id=["{user}"];k=[5]']
    proc = subprocess.run(
        [cli, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    expected = ex.call("recommend", user_id=[user], k=5)["item_ids"][0]
    assert "Result for output key item_ids" in proc.stdout
    for item in expected:
        assert repr(item) in proc.stdout  # b'...' as numpy prints bytes


def test_k_is_per_row_and_rows_are_padded_after_their_own_k(exports):
    ex = exports["neumf"]
    both = ex.call("recommend", user_id=ex.users[:2], k=[2, 4])
    assert both["item_ids"].shape == (2, 4)
    assert (both["item_ids"][0, 2:] == b"").all() and (both["scores"][0, 2:] == -np.inf).all()
    alone = ex.call("recommend", user_id=ex.users[:1], k=[2])
    assert both["item_ids"][0, :2].tolist() == alone["item_ids"][0].tolist()
    with pytest.raises(tf.errors.InvalidArgumentError, match="one per row"):
        ex.call("recommend", user_id=ex.users[:3], k=[2, 4])


def test_no_optimizer_state_in_the_export(exports, runs):
    """Only what serving reads: model weights, unit item vectors, vocab, popularity, seen."""
    ex = exports["neumf"]
    model = runs["neumf"].load_scorer().model
    saved = sum(
        int(np.prod(shape))
        for name, shape in tf.train.list_variables(str(ex.path / "variables" / "variables"))
        if name != "_CHECKPOINTABLE_OBJECT_GRAPH"
    )
    weights = sum(int(np.prod(w.shape)) for w in model.weights)
    split = ex.split
    nnz = len(
        set(
            zip(
                np.r_[split.train_user, split.val_user],
                np.r_[split.train_item, split.val_item],
                strict=True,
            )
        )
    )
    n = len(ex.items)
    serving = n * sum(t.output_dim for t in model.item_towers) + 2 * n + 2 * nnz + len(ex.users) + 2
    serving += sum(t.output_dim for t in model.user_towers)  # the fold-in's start: mean user
    assert saved == weights + serving  # Adam's two slots per weight would double it


def test_include_seen_false_leaves_the_seen_items_out(exports):
    private, full = exports["neumf-private"], exports["neumf"]
    info = json.loads((private.path / "assets" / "model.json").read_text())
    assert info["include_seen"] is False and info["exclude_seen"] is False
    assert info["about_users"]["seen_items"] is False
    assert not any("train and validation items" in line for line in info["about_users"]["holds"])

    def variables(ex):
        return len(tf.train.list_variables(str(ex.path / "variables" / "variables")))

    assert variables(private) == variables(full) - 3  # the seen-items CSR: splits, columns, values
    out = private.call("recommend", user_id=private.users, k=10)
    hits = sum(
        bool(set(private.index(ids)) & private.seen[u]) for u, ids in enumerate(out["item_ids"])
    )
    assert hits > 0  # nothing left to exclude them with


def test_no_absolute_path_in_any_exported_file(exports, runs):
    root = str(runs["neumf"].path.parents[2])  # the test's temporary folder
    for path in exports["neumf"].path.rglob("*"):
        if path.is_file():
            assert root.encode() not in path.read_bytes(), path


def modes(version: Path) -> tuple[set[int], set[int]]:
    """The permission bits of the folders and of the files of an export version."""
    folders = {p.stat().st_mode & 0o777 for p in [version, *version.rglob("*")] if p.is_dir()}
    files = {p.stat().st_mode & 0o777 for p in version.rglob("*") if p.is_file()}
    return folders, files


def test_export_files_follow_the_umask(runs, tmp_path):
    """umask 077 through the ncf command (only the owner can read), 022 in process."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    ncf = str(Path(sys.executable).with_name("ncf"))
    proc = subprocess.run(
        [ncf, "export", str(runs["popularity"].path), "--out", str(tmp_path / "private")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: os.umask(0o077),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert modes(tmp_path / "private" / "1") == ({0o700}, {0o600})
    old = os.umask(0o022)
    try:
        version = export_run(runs["popularity"].path, tmp_path / "shared")
    finally:
        os.umask(old)
    assert modes(version) == ({0o755}, {0o644})


@pytest.mark.parametrize("kind", KINDS)
def test_recommend_all_works_for_every_model_type(kind, exports, tmp_path):
    """Batched (50 users a call) and read back: the same lists as one call for everyone."""
    import pandas as pd

    from ncf.serve.batch import recommend_batch
    from ncf.serve.client import Export

    ex = exports[kind]
    users = [*ex.users.tolist(), "stranger"]
    result = recommend_batch(Export(ex.path), users, 3, tmp_path / "recs.parquet", batch_size=50)
    table = pd.read_parquet(result.path)
    assert result.users == len(users) and result.unknown_users == 1
    rows = []
    for lo in range(0, len(users), 50):  # the same calls, made here
        chunk = users[lo : lo + 50]
        expected = ex.call("recommend", user_id=chunk, k=3)["item_ids"]
        for user, items in zip(chunk, expected, strict=True):
            rows += [(user, rank + 1, item.decode()) for rank, item in enumerate(items) if item]
    assert list(zip(table["user_id"], table["rank"], table["item_id"], strict=True)) == rows
    assert table.loc[table["user_id"] == "stranger", "known_user"].eq(False).all()

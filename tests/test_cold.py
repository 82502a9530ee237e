"""Cold start: feature tables, the cold-item split, the content model, score_items_by_features.

The data: 60 users and 40 items in four genres (category ``kind``, a number ``year`` and a
title whose words name the genre); each user likes one genre. Module-scoped: one mf run with
item features and one content run on the cold-item split, and their exports.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from servers import Server
from tf1_loader import run_signatures

from ncf.cli import main
from ncf.config import FeatureTableConfig, load_config
from ncf.data.dataset import load_dataset
from ncf.data.feature_tables import FeatureEncoder, encode_new
from ncf.data.pipeline import TrainingStream
from ncf.serve.client import Export
from ncf.serve.export import export_run
from ncf.train import train
from ncf.train.rundir import RunDir

GENRES = ("space", "love", "ghost", "toon")
FEATURES = (
    "data.item_features={path: %s, id: item, numeric: [year], categorical: [kind], text: [title]}"
)


def write_data(folder: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    items = pd.DataFrame(
        {
            "item": [f"i{n}" for n in range(40)],
            "kind": [GENRES[n % 4] for n in range(40)],
            "year": [1990 + n % 7 for n in range(40)],
            "title": [f"{GENRES[n % 4]} story number {n}" for n in range(40)],
        }
    )
    rows = []
    for u in range(60):
        liked = [n for n in range(40) if n % 4 == u % 4]
        for n in rng.choice(liked, 7, replace=False):
            rows.append((f"u{u}", f"i{n}", int(rng.integers(1, 10**6))))
    inter = pd.DataFrame(rows, columns=["user", "item", "timestamp"])
    (folder / "items.csv").write_text(items.to_csv(index=False))
    (folder / "ratings.csv").write_text(inter.to_csv(index=False))
    return folder / "ratings.csv", folder / "items.csv"


def cold_config(folder: Path, *extra: str):
    ratings, items = folder / "ratings.csv", folder / "items.csv"
    return load_config(
        Path(__file__).resolve().parents[1] / "configs" / "quickstart.yaml",
        [
            "data.source=csv", f"data.path={ratings}", "data.columns.timestamp=timestamp",
            FEATURES % items, "data.split.method=cold_items", "data.split.cold_fraction=0.25",
            f"run.dir={folder / 'runs'}", "train.epochs=10", "train.learning_rate=0.02", "train.histograms=false",
            "model.embedding_dim=8", "model.mlp_layers=[16,8]", "eval.k=[3]",
            "train.early_stopping.metric=NDCG@3",
            "eval.sampled_negatives=20", "train.batch_size=128", *extra,
        ],
    )  # fmt: skip


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cold")
    write_data(path)
    return path


@pytest.fixture(scope="module")
def runs(folder) -> dict[str, RunDir]:
    found = {}
    for name, extra in (
        ("mf", ["model.type=mf", "model.item_features=true"]),
        ("content", ["model.type=content"]),
    ):
        found[name] = RunDir(
            train(cold_config(folder, *extra, f"run.name={name}"), verbose=0).run_dir
        )
    return found


@pytest.fixture(scope="module")
def exports(runs, folder) -> dict[str, Path]:
    return {name: export_run(run.path, folder / "exports" / name) for name, run in runs.items()}


def test_feature_tables_by_hand(folder):
    data = load_dataset(cold_config(folder)).interactions
    names = data.item_feature_names
    assert names[:1] == ("year",) and names[1:5] == tuple(f"kind:{g}" for g in sorted(GENRES))
    assert names[5] == "text:0" and len(names) == 5 + 1024
    table = pd.read_csv(folder / "items.csv").set_index("item")
    years = table["year"].to_numpy(float)
    row = data.items.lookup(np.array(["i5"]))[0]
    features = data.item_features[row]
    assert features[0] == pytest.approx((1995 - years.mean()) / years.std(), rel=1e-5)
    assert features[1:5].tolist() == [0, 1, 0, 0]  # "love", second of the sorted kinds
    words = ["love", "story", "number", "5"]
    expected = np.zeros(1024)
    for word in words:
        expected[zlib.crc32(word.encode()) % 1024] += 1
    np.testing.assert_allclose(features[5:], expected / np.linalg.norm(expected), rtol=1e-6)


def test_feature_table_mistakes_are_one_line_errors(folder, capsys):
    config = ["data.source=csv", f"data.path={folder / 'ratings.csv'}"]
    bad = f"data.item_features={{path: {folder / 'items.csv'}, id: item, numeric: [budget]}}"
    args = [
        "data",
        "stats",
        str(Path(__file__).resolve().parents[1] / "configs" / "quickstart.yaml"),
    ]
    assert main([*args, *[a for c in (*config, bad) for a in ("--set", c)]]) == 2
    assert "no column 'budget' (data.item_features)" in capsys.readouterr().err
    missing = "data.item_features={path: nowhere.csv, numeric: [year]}"
    assert main([*args, *[a for c in (*config, missing) for a in ("--set", c)]]) == 2
    assert "nowhere.csv: file not found" in capsys.readouterr().err


def test_encoder_round_trip_encodes_new_rows_like_training():
    config = FeatureTableConfig(numeric=["x"], categorical=["c"], text=["t"], text_buckets=8)
    table = pd.DataFrame({"x": [1.0, 3.0], "c": ["a", "b"], "t": ["red fox", "blue"]})
    encoder = FeatureEncoder.fit(config, table)
    again = FeatureEncoder.from_json(json.loads(json.dumps(encoder.to_json())))
    np.testing.assert_array_equal(again.encode(table), encoder.encode(table))
    new = pd.DataFrame({"x": [None], "c": ["zebra"], "t": [""]})
    assert again.encode(new).tolist() == [[0.0] + [0.0] * 2 + [0.0] * 8]  # mean, no category


def test_cold_items_are_held_out_entirely(runs):
    split = runs["mf"].split()
    cold = set(split.cold_items.tolist())
    assert len(cold) == 10  # a quarter of 40
    assert not cold & set(split.train_item.tolist()) and not cold & set(split.val_item.tolist())
    assert set(split.test_item.tolist()) <= cold
    assert len(np.unique(split.test_user)) == len(split.test_user)  # one case per user
    assert set(split.test_candidates.ravel().tolist()) <= cold
    assert not cold & set(split.val_candidates.ravel().tolist())
    stream = TrainingStream(split, runs["mf"].config.train, seed=1)
    _, _, negatives = stream.tensors()
    drawn = negatives.sample(
        tf.constant(np.repeat(split.train_user[:50], 40)), tf.constant([1, 2], tf.int64)
    )
    assert not cold & set(drawn.numpy().tolist())  # never a negative


def test_content_scores_are_the_hand_loop_over_feature_cosines(runs, exports):
    run = runs["content"]
    scorer = run.load_scorer()
    features = run.side_features()["item_features"]
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    x = scorer.interactions.toarray()
    cos = unit @ unit.T
    np.fill_diagonal(cos, 0)
    keep = np.zeros_like(cos, dtype=bool)
    for i in range(len(cos)):  # each item's neighbours: its top `neighbours` positive cosines
        order = sorted(range(len(cos)), key=lambda j: (-cos[i, j], j))[: scorer.neighbours]
        keep[i, [j for j in order if cos[i, j] > 0]] = True
    reference = x @ np.where(keep, cos, 0).T
    np.testing.assert_allclose(scorer.score_all(np.arange(len(x))), reference, rtol=1e-4, atol=1e-5)
    ex = Export(exports["content"])
    users = ex.user_ids()[:5]
    got = ex.call_features(np.array(users, object), features[:5])
    want = [
        sum(x[u, j] * (unit[j] @ unit[i]) for j in range(len(x[u])))
        for u, i in zip(range(5), range(5), strict=True)
    ]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_features_help_cold_items(runs):
    """On this data (one genre per user) features find the held-out items; ids cannot."""
    for name in ("mf", "content"):
        hr = RunDir(runs[name].path).metrics()["test"]["sampled"]["HR@3"]
        assert hr > 0.75, (name, hr)
    config = cold_config(runs["mf"].path.parents[2], "model.type=itemknn", "run.name=plain")
    without = train(config, verbose=0).metrics["test"]["sampled"]["HR@3"]
    assert without < 0.6


def test_neural_score_by_features_is_the_item_with_a_zero_id_row(runs, exports):
    model = runs["mf"].load_scorer().model
    features = runs["mf"].side_features()["item_features"]
    ex = Export(exports["mf"])
    users = np.arange(6, dtype=np.int32)
    items = np.arange(6, dtype=np.int32)
    got = ex.call_features(np.array(ex.user_ids()[:6], object), features[items])
    table = model.item_towers[0].embedding.embeddings
    table.assign(np.zeros(table.shape, np.float32))  # every id row zero: only features remain
    model.item_bias.embeddings.assign(np.zeros(model.item_bias.embeddings.shape, np.float32))
    want = np.asarray(model.score_items(users, items[:, None]))[:, 0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    unknown = ex.call_features(np.array(["nobody"], object), features[:1])
    assert unknown.tolist() == [float("-inf")]


def test_score_items_by_features_in_the_tf1_loader_cli_and_http(runs, exports, folder):
    jobs, want = {}, {}
    for name, path in exports.items():
        ex = Export(path)
        features = runs[name].side_features()["item_features"][:3]
        users, items = ex.user_ids()[:3], runs[name].items().ids.astype(str)[:4].tolist()
        k = np.array([3], np.int32)
        jobs[str(ex.path)] = [
            ("score_items_by_features", {"user_id": users, "item_features": features.astype(np.float32)}),
            ("recommend_from_history", {"history": [items], "k": k}),
            ("explain", {"user_id": users, "k": k}),
            ("recommend", {"user_id": users, "k": k}),
        ]  # fmt: skip
        decode = np.vectorize(lambda b: b.decode())
        want[str(ex.path)] = {
            "features": ex.call_features(np.array(users, object), features),
            "history": decode(
                ex.call("recommend_from_history", history=[items], k=[3])["item_ids"]
            ),
            "explain": decode(ex.call("explain", user_id=users, k=[3])["because_ids"]),
            "recommend": decode(ex.call("recommend", user_id=users, k=[3])["item_ids"]),
        }
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    for path, found in run_signatures(jobs).items():
        assert {"score_items_by_features", "explain"} <= set(found["signatures"])
        features, history, explain, recommend = found["results"]
        np.testing.assert_allclose(features["score"], want[path]["features"], rtol=1e-5, atol=1e-5)
        assert history["item_ids"].tolist() == want[path]["history"].tolist(), path
        assert explain["because_ids"].tolist() == want[path]["explain"].tolist(), path
        assert recommend["item_ids"].tolist() == want[path]["recommend"].tolist(), path
    new = folder / "new-items.csv"
    new.write_text("item,kind,year,title\nn1,space,2001,space odyssey\nn2,love,1999,love letters\n")
    ex = Export(exports["content"])
    user = ex.user_ids()[0]  # u0 likes "space"
    ncf = str(Path(sys.executable).with_name("ncf"))
    proc = subprocess.run(
        [ncf, "recommend", str(exports["content"]), "--user", user, "--new-items", str(new), "--json"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    ranked = json.loads(proc.stdout)["items"]
    assert [r["item_id"] for r in ranked] == ["n1", "n2"]
    server = Server(exports["mf"], folder / "serve.log", "--quiet")
    try:
        features = runs["mf"].side_features()["item_features"][:2].tolist()
        users = Export(exports["mf"]).user_ids()[:2]
        body = {
            "signature_name": "score_items_by_features",
            "inputs": {"user_id": users, "item_features": features},
        }
        status, answer = server.predict(body)
        assert status == 200, answer
        expected = Export(exports["mf"]).call_features(
            np.array(users, object), np.array(features, np.float32)
        )
        np.testing.assert_allclose(answer["outputs"], expected, rtol=1e-5)
    finally:
        assert server.stop() == 0


def test_user_feature_tables_join_the_users(folder):
    users = folder / "users.csv"
    users.write_text("uid,age,job\nu0,30,artist\nu1,50,\nu2,,doctor\n")
    table = f"data.user_features={{path: {users}, id: uid, numeric: [age], categorical: [job]}}"
    data = load_dataset(cold_config(folder, table)).interactions
    assert data.user_feature_names == ("age", "job:artist", "job:doctor")
    rows = data.user_features[data.users.lookup(np.array(["u0", "u1", "u2", "u3"]))]
    np.testing.assert_allclose(rows, [[-1, 1, 0], [1, 0, 0], [0, 0, 1], [0, 0, 0]], atol=1e-6)
    assert data.feature_encoders["user"]["table"]["means"] == {"age": 40.0}


def test_update_with_new_items_takes_their_feature_rows(runs, folder, tmp_path):
    """A model that reads item features refuses new items without their rows, and encodes
    them from --item-features as the run encoded its own (the content model ranks them)."""
    new = tmp_path / "new.csv"
    new.write_text("user,item,timestamp\nu1,n1,5\nu2,n2,6\n")  # u1 likes "love", u2 "ghost"
    table = tmp_path / "new-items.csv"
    table.write_text("item,kind,year,title\nn1,space,1993,space story\nn2,love,1994,love story\n")
    ncf = [sys.executable, "-m", "ncf.cli"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = tmp_path / "refused"
    refused = subprocess.run(
        [*ncf, "update", str(runs["mf"].path), "--data", str(new), "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert refused.returncode == 2, refused.stderr
    assert "new items ('n1', 'n2')" in refused.stderr and "--item-features FILE" in refused.stderr
    assert not out.exists()
    doubled = tmp_path / "doubled.csv"
    doubled.write_text(table.read_text() + "n1,love,1990,love again\n")
    twice = subprocess.run(
        [*ncf, "update", str(runs["mf"].path), "--data", str(new), "--out", str(out),
         "--item-features", str(doubled)],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert twice.returncode == 2 and "the item 'n1' has more than one row" in twice.stderr
    assert not out.exists()
    encoders = json.loads((runs["content"].path / "vocab" / "feature_encoders.json").read_text())
    expected = encode_new(encoders, "item", pd.read_csv(table, dtype=str).set_index("item"))
    for name in ("mf", "content"):
        out = tmp_path / name
        done = subprocess.run(
            [*ncf, "update", str(runs[name].path), "--data", str(new), "--out", str(out),
             "--item-features", str(table)],
            env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        updated = RunDir(out)
        assert updated.items().ids.tolist()[-2:] == ["n1", "n2"]
        grown, before = updated.side_features(), runs[name].side_features()
        np.testing.assert_array_equal(grown["item_features"][:-2], before["item_features"])
        rows = grown["item_features"][-2:]
        np.testing.assert_allclose(rows, expected, rtol=1e-6)
        assert np.abs(rows).sum(axis=1).min() > 0  # encoded, not zero-padded
    # the content model scores a new item by its features: u0 likes "space"
    exported = export_run(tmp_path / "content", tmp_path / "exports")
    scores = Export(exported).call("serving_default", user_id=["u0", "u0"], item_id=["n1", "n2"])
    assert scores["score"][0] > scores["score"][1]

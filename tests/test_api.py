"""The public Python API (docs/api.md), used as a notebook or a script would: only ``ncf.*``.

Nothing here imports an ncf module by its path: the config, the runs, the evaluator, the
export and its recommendations, the comparison, the item vectors, and each neural family's
Keras model trained by a plain ``model.fit`` of the user's own.
"""

from __future__ import annotations

import subprocess
import sys

import keras
import numpy as np
import pytest
from conftest import QUICKSTART, TINY

import ncf

NEURAL = ("mf", "gmf", "mlp", "neumf", "history")
EXTRA = {"history": {"train.loss": "softmax", "model.history.length": 8}}


def test_import_ncf_and_help_import_no_tensorflow():
    script = (
        "import sys, ncf\n"
        "assert callable(ncf.load_config) and 'tensorflow' not in sys.modules\n"
        "from ncf.cli import build_parser\n"
        "build_parser().format_help()\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)


def test_load_config_takes_a_list_or_a_dict_of_overrides(tmp_path):
    listed = ncf.load_config(QUICKSTART, ["train.epochs=3", "model.mlp_layers=[16,8]"])
    mapped = ncf.load_config(QUICKSTART, {"train.epochs": 3, "model.mlp_layers": [16, 8]})
    assert listed == mapped and mapped.train.epochs == 3 and mapped.model.mlp_layers == [16, 8]
    assert ncf.load_config(QUICKSTART, {"model.type": "itemknn"}).model.type == "itemknn"
    with pytest.raises(ncf.ConfigError, match="train.epochs"):
        ncf.load_config(QUICKSTART, {"train.epochs": "many"})


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("api")
    common = [f"run.dir={tmp / 'runs'}", *TINY, "train.epochs=2"]
    neumf = ncf.train(ncf.load_config(QUICKSTART, common))
    knn = ncf.train(QUICKSTART, overrides=[*common, "model.type=itemknn"])  # a path works too
    return {"neumf": neumf, "itemknn": knn, "tmp": tmp}


def test_train_evaluate_and_compare(runs):
    neumf, knn = runs["neumf"], runs["itemknn"]
    assert neumf.run_dir.is_dir() and [h["epoch"] for h in neumf.metrics["history"]] == [1, 2]
    again = ncf.evaluate(neumf.run_dir)
    for protocol in ("sampled", "full"):
        saved = neumf.metrics["test"][protocol]
        assert again[protocol]["NDCG@10"] == pytest.approx(saved["NDCG@10"], abs=1e-6)
    assert "Coverage@10" in again["full"] and "MeanPopularity@10" in again["full"]
    assert set(ncf.evaluate(knn, protocols=["full"], k=[5])) == {"full"}
    rows = ncf.compare([neumf, knn])
    assert [r["model"] for r in rows] == ["neumf", "itemknn"] and rows[0]["full HR@10"] >= 0
    figure = ncf.compare_chart(rows)
    assert [ax.get_title() for ax in figure.axes if ax.get_title()] == [
        "sampled protocol (test split)", "full protocol (test split)"
    ]  # fmt: skip


def test_export_and_recommend_with_titles(runs):
    base = runs["tmp"] / "exports" / "quickstart"
    version = ncf.export(runs["neumf"], base)
    assert version.name == "1" and ncf.export(runs["neumf"].run_dir, base).name == "2"
    export = ncf.Export(base)  # the newest version
    assert export.version == 2 and {"recommend", "similar_items"} <= set(export.signatures)
    user = export.user_ids()[0]
    (ranked,) = export.recommend([user], k=5)
    assert isinstance(ranked, ncf.Ranked) and ranked.known and len(ranked.rows) == 5
    assert all(row["title"].startswith("Item ") for row in ranked.rows)  # synthetic titles
    assert [row["rank"] for row in ranked.rows] == [1, 2, 3, 4, 5]
    (stranger,) = export.recommend(["someone-new"], k=3)
    assert not stranger.known and len(stranger.rows) == 3
    with pytest.raises(ncf.NcfError, match="k=0"):
        export.recommend([user], k=0)


def test_item_embeddings_and_their_neighbourhood(runs):
    vectors = ncf.item_embeddings(runs["neumf"])
    assert isinstance(vectors, ncf.ItemVectors)
    assert vectors.vectors.shape[0] == len(vectors.ids) == len(vectors.titles)
    query = vectors.ids[0]
    near = vectors.nearest(query, k=5)
    assert len(near) == 5 and query not in [i for i, _, _ in near]
    cosines = [c for _, _, c in near]
    assert cosines == sorted(cosines, reverse=True) and all(-1 <= c <= 1 + 1e-6 for c in cosines)
    unit = vectors.vectors / np.linalg.norm(vectors.vectors, axis=1, keepdims=True)
    best = int(np.argsort(-(unit @ unit[0]))[1])  # brute force: the nearest other item
    assert near[0][0] == vectors.ids[best]
    with pytest.raises(ncf.NcfError, match="no item vectors"):
        ncf.item_embeddings(runs["itemknn"])


@pytest.mark.slow
@pytest.mark.parametrize("kind", NEURAL)
def test_each_neural_family_trains_in_a_plain_keras_fit(kind, tmp_path):
    extra = [f"{key}={value}" for key, value in EXTRA.get(kind, {}).items()]
    setup = ncf.keras_setup(
        QUICKSTART, [*TINY, f"model.type={kind}", f"run.dir={tmp_path}", *extra]
    )
    assert isinstance(setup, ncf.KerasSetup) and isinstance(setup.model, keras.Model)
    before = setup.evaluate(protocols=["sampled"], k=[10])["sampled"]["NDCG@10"]
    setup.model.compile(optimizer=keras.optimizers.Adam(0.01))
    history = setup.model.fit(
        setup.batches(3), epochs=3, steps_per_epoch=setup.steps_per_epoch, shuffle=False, verbose=0
    )
    losses = history.history["loss"]
    assert len(losses) == 3 and all(np.isfinite(losses)) and losses[-1] < losses[0]
    after = setup.evaluate(protocols=["sampled"], k=[10])["sampled"]["NDCG@10"]
    assert after > before  # trained on the batches: validation ranks better than at start


def test_keras_setup_refuses_a_baseline():
    with pytest.raises(ncf.NcfError, match="not a neural model"):
        ncf.keras_setup(QUICKSTART, {"model.type": "itemknn"})


def test_docs_page_lists_every_public_name_with_its_signature():
    import inspect
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "api.md").read_text()
    headings = [line for line in text.splitlines() if line.startswith("### ")]
    documented = dict(re.findall(r"`ncf\.(\w+)\((.*?)\)(?: -> [^`]*)?`", "\n".join(headings)))
    functions = [n for n in ncf.__all__ if n[0].islower()]
    assert sorted(documented) == sorted([*functions, "Export"])
    for name in functions:
        wanted = [p for p in inspect.signature(getattr(ncf, name)).parameters]
        if name == "train":  # the callable package: its signature is ncf.api.train's
            wanted = ["config", "run_dir", "overrides", "resume", "verbose", "extra_callbacks"]
        flat = re.sub(r"\([^()]*\)", "", documented[name])  # defaults such as ("a", "b")
        shown = re.findall(r"(?:^|,\s*)(?:\*,\s*)?(\w+)", flat)
        assert shown == wanted, name
    for name in ("ConfigError", "DataError", "NcfError", "Ranked", "ItemVectors", "KerasSetup"):
        assert re.search(rf"\b{name}\b", text), name

"""Servables of the serving forms no family here produces yet (Factors, dense ItemToItem),
built from small random matrices, written through ExportArchive and run in the TF1 session
loader; expected values by brute-force numpy."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import tensorflow as tf

from ncf.scorer import Factors, ItemToItem
from ncf.serve.servables import SERVABLES, load_servable_class, servable_for, write_saved_model
from ncf.serve.servables.base import Servable
from ncf.serve.session import ServingError, SessionModel

USERS, ITEMS = 7, 9


def common(rng: np.random.Generator) -> tuple[dict, sp.csr_matrix]:
    seen = sp.csr_matrix((rng.random((USERS, ITEMS)) < 0.3).astype(np.float32))
    return {
        "users": np.array([f"u{i}" for i in range(USERS)]),
        "items": np.array([f"i{i}" for i in range(ITEMS)]),
        "popularity": np.asarray(seen.sum(axis=0)).ravel(),
        "seen": seen,
        "exclude_seen": True,
    }, seen


def load(form, tmp_path, rng) -> tuple[SessionModel, sp.csr_matrix]:
    kwargs, seen = common(rng)
    names = write_saved_model(servable_for(form, **kwargs), str(tmp_path / "m"))
    model = SessionModel(tmp_path / "m")
    assert sorted(model.signature_defs) == names
    return model, seen


def strings(*ids: str) -> np.ndarray:
    return np.array([s.encode() for s in ids], dtype=object)


def expected_top(scores: np.ndarray, seen: sp.csr_matrix, k: int) -> list[list[int]]:
    masked = np.where(seen.toarray() > 0, -np.inf, scores)
    return [list(np.argsort(-row, kind="stable")[:k]) for row in masked]


def check_recommend(model: SessionModel, scores: np.ndarray, seen: sp.csr_matrix) -> None:
    users = strings(*[f"u{i}" for i in range(USERS)])
    out = model.run("recommend", {"user_id": users, "k": np.array([3], np.int32)})
    got = [[int(i.decode()[1:]) for i in row] for row in out["item_ids"]]
    assert got == expected_top(scores, seen, 3)
    rows = np.arange(USERS)[:, None]
    np.testing.assert_allclose(out["scores"], scores[rows, np.array(got)], rtol=1e-5)
    pairs = model.run(
        "score", {"user_id": strings("u1", "u6", "x"), "item_id": strings("i2", "i0", "i0")}
    )
    np.testing.assert_allclose(pairs["score"][:2], [scores[1, 2], scores[6, 0]], rtol=1e-5)
    assert pairs["score"][2] == -np.inf


def check_similar(model: SessionModel, similarity: np.ndarray) -> None:
    out = model.run("similar_items", {"item_id": strings("i0", "i4"), "k": np.array([2], np.int32)})
    for query, row in zip((0, 4), out["item_ids"], strict=True):
        others = similarity[query].copy()
        others[query] = -np.inf
        assert [int(i.decode()[1:]) for i in row] == list(np.argsort(-others, kind="stable")[:2])


def test_factors(tmp_path):
    rng = np.random.default_rng(0)
    p, q, b = rng.normal(size=(USERS, 4)), rng.normal(size=(ITEMS, 4)), rng.normal(size=ITEMS)
    model, seen = load(
        Factors(p.astype(np.float32), q.astype(np.float32), b.astype(np.float32)), tmp_path, rng
    )
    check_recommend(model, p @ q.T + b, seen)
    unit = q / np.linalg.norm(q, axis=1, keepdims=True)
    check_similar(model, unit @ unit.T)


def test_factors_without_bias(tmp_path):
    rng = np.random.default_rng(1)
    p, q = rng.normal(size=(USERS, 3)), rng.normal(size=(ITEMS, 3))
    model, seen = load(Factors(p.astype(np.float32), q.astype(np.float32)), tmp_path, rng)
    check_recommend(model, p @ q.T, seen)


def test_dense_item_to_item(tmp_path):
    """EASE's form: a dense [items, items] B; scores = X[u] @ B; similar items from S."""
    rng = np.random.default_rng(2)
    x = sp.csr_matrix((rng.random((USERS, ITEMS)) < 0.4).astype(np.float32))
    weights = rng.normal(size=(ITEMS, ITEMS)).astype(np.float32)
    similarity = rng.random((ITEMS, ITEMS)).astype(np.float32)
    model, seen = load(ItemToItem(x, weights, similarity), tmp_path, rng)
    check_recommend(model, x.toarray() @ weights, seen)
    check_similar(model, similarity)


def test_dense_item_to_item_without_similarity_has_no_similar_items(tmp_path):
    rng = np.random.default_rng(3)
    x = sp.csr_matrix((rng.random((USERS, ITEMS)) < 0.4).astype(np.float32))
    model, _ = load(ItemToItem(x, rng.normal(size=(ITEMS, ITEMS))), tmp_path, rng)
    assert "similar_items" not in model.signature_defs


def test_every_serving_form_names_its_servable_by_a_reference_string():
    from ncf.serve.servables.item_to_item import ItemToItemServable

    assert (
        load_servable_class("ncf.serve.servables.item_to_item:ItemToItemServable")
        is ItemToItemServable
    )
    for ref in SERVABLES.values():
        found = load_servable_class(ref)
        assert issubclass(found, Servable) and found is not Servable
        assert f"{found.__module__}:{found.__qualname__}" == ref  # the stable name
    assert len(set(SERVABLES.values())) == len(SERVABLES)


@pytest.mark.parametrize(
    "ref",
    [
        "ncf.serve.servables.item_to_item.ItemToItemServable",  # no colon
        "ncf.serve.servables.item_to_item:",
        ":ItemToItemServable",
        "ncf.serve.servables.item_to_item:NoSuchServable",
        "ncf.serve.servables.base:Endpoint",  # a class, not a servable
        "ncf.serve.servables.base:NEG_INF",
    ],
)
def test_a_bad_servable_reference_is_refused_by_name(ref):
    with pytest.raises(ValueError, match="servable reference"):
        load_servable_class(ref)


def test_a_servable_reference_to_a_missing_module_raises_its_import_error():
    with pytest.raises(ModuleNotFoundError, match="no_such_module"):
        load_servable_class("ncf.serve.servables.no_such_module:Servable")


def test_session_errors_keep_tensorflow_status(tmp_path):
    rng = np.random.default_rng(4)
    model, _ = load(
        Factors(rng.normal(size=(USERS, 2)), rng.normal(size=(ITEMS, 2))), tmp_path, rng
    )
    with pytest.raises(ServingError, match="k must be at least 1") as err:
        model.run("recommend", {"user_id": strings("u0"), "k": np.array([0], np.int32)})
    assert err.value.status == 400
    with pytest.raises(ServingError, match=r"Missing but required: \{k\}"):
        model.run("recommend", {"user_id": strings("u0")})
    assert tf.executing_eagerly()  # the session lives in a graph of its own


def test_batcher_merges_waiting_requests_and_isolates_a_faulty_one(tmp_path):
    """One worker: the first request runs alone, the ones that queued behind it run as one
    call (one by one when one of them is faulty); answers equal the lone calls."""
    import asyncio

    from ncf.serve.batching import Batcher

    rng = np.random.default_rng(5)
    model, _ = load(
        Factors(rng.normal(size=(USERS, 3)), rng.normal(size=(ITEMS, 3))), tmp_path, rng
    )
    calls = []
    real_run = model.run

    def counting_run(name, feeds):
        calls.append(len(feeds["user_id"]))
        return real_run(name, feeds)

    requests = [
        (strings(f"u{i % USERS}", "nobody"), np.array([1 + i % 4], np.int32)) for i in range(20)
    ]
    requests.append((strings("u1", "u2"), np.array([2, 5], np.int32)))  # k per row
    expected = [real_run("recommend", {"user_id": u, "k": k}) for u, k in requests]

    async def all_at_once(faulty: bool):
        model.run = counting_run
        batcher = Batcher(model, ITEMS, workers=1, max_rows=1024, max_queue=100)
        jobs = [batcher.submit("recommend", {"user_id": u, "k": k}) for u, k in requests]
        if faulty:
            rank_two = np.array([[b"u0"]], dtype=object)  # merges, then fails
            jobs.append(batcher.submit("recommend", {"user_id": rank_two, "k": np.array([1])}))
        try:
            return await asyncio.gather(*jobs, return_exceptions=True)
        finally:
            batcher.shutdown()
            model.run = real_run

    got = asyncio.run(all_at_once(faulty=False))
    assert calls == [2, 40]  # the first alone, then the 20 that waited (2 rows each) as one
    for answer, want in zip(got, expected, strict=True):
        assert answer.keys() == want.keys()
        for name in want:
            if want[name].dtype.kind == "f":  # another batch size may sum in another order
                np.testing.assert_allclose(answer[name], want[name], rtol=1e-6)
            else:
                np.testing.assert_array_equal(answer[name], want[name])
    calls.clear()
    got = asyncio.run(all_at_once(faulty=True))
    assert isinstance(got[-1], ServingError) and got[-1].status == 400
    assert all(isinstance(a, dict) for a in got[:-1])
    assert calls[0] == 2 and len(calls) == 1 + 21  # the merge failed: each of the 21 alone

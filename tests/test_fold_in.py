"""``recommend_from_history`` (fold-in of a user unknown at training time) and ``explain``.

Every form's fold-in is checked against a slow, obvious reference: item-kNN and EASE against
a hand loop over ``W``, user-kNN against a hand loop over users, iALS against numpy's
``lstsq`` of the user step, the neural fold-in against the same Adam steps in numpy (mf).
Then the rules (padding, unknown ids, duplicates, fallback), explanations, TF Serving's TF1
session loader, the ``ncf`` command and a real ``ncf serve``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from servers import Server
from test_export import Exported
from tf1_loader import run_signatures

from ncf.cli import main
from ncf.serve import history as fold
from ncf.serve.batching import Batcher, Job, concatenate_rows
from ncf.serve.session import SessionModel

KINDS = ("itemknn", "userknn", "ease", "ials", "popularity", "mf", "neumf", "history")
EXPLAINED = ("itemknn", "ease", "ials", "mf", "neumf", "history")


@pytest.fixture(scope="module")
def exports(shared_dir) -> dict[str, Exported]:
    """The runs and exports of tests/test_export.py (built once per session)."""
    return {kind: Exported.shared(shared_dir, kind) for kind in KINDS}


def histories(ex: Exported, n: int = 4, seed: int = 0) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    return [
        rng.choice(ex.items, size=int(rng.integers(1, 8)), replace=False).tolist() for _ in range(n)
    ]


def padded(rows: list[list[str]]) -> np.ndarray:
    width = max(len(r) for r in rows)
    return np.array([r + [""] * (width - len(r)) for r in rows], dtype=object)


def check_ranking(ex: Exported, out: dict, rows: list[list[str]], reference: np.ndarray) -> None:
    """Returned scores equal ``reference [B, N]`` at the returned items, which are its top
    among the items not in the history (ties may fall either way)."""
    for b, row in enumerate(rows):
        ref = reference[b].astype(np.float64).copy()
        ref[[int(np.flatnonzero(ex.items == i)[0]) for i in row]] = -np.inf
        got = ex.index(out["item_ids"][b])
        np.testing.assert_allclose(out["scores"][b], ref[got], rtol=1e-4, atol=1e-5)
        rest = np.delete(ref, got)
        assert out["scores"][b][-1] >= rest.max() - 1e-5


def indicator(ex: Exported, rows: list[list[str]]) -> np.ndarray:
    x = np.zeros((len(rows), len(ex.items)))
    for b, row in enumerate(rows):
        x[b, [int(np.flatnonzero(ex.items == i)[0]) for i in row]] = 1.0
    return x


@pytest.mark.parametrize("kind", ["itemknn", "ease"])
def test_item_to_item_fold_in_is_the_history_times_w(kind, exports):
    ex = exports[kind]
    scorer = ex.run.load_scorer()
    w = scorer.scoring_matrix.toarray() if kind == "itemknn" else scorer.weights
    rows = histories(ex)
    out = ex.call("recommend_from_history", history=padded(rows), k=5)
    reference = np.zeros((len(rows), len(ex.items)))
    for b, row in enumerate(rows):  # the hand loop: each history item votes with its row of W
        for item in row:
            reference[b] += w[int(np.flatnonzero(ex.items == item)[0])]
    check_ranking(ex, out, rows, reference)
    assert out["known_items"].tolist() == [len(r) for r in rows]


def test_user_knn_fold_in_is_the_hand_loop_over_users(exports):
    ex = exports["userknn"]
    scorer = ex.run.load_scorer()
    x = scorer.interactions.toarray()
    rows = histories(ex, seed=1)
    out = ex.call("recommend_from_history", history=padded(rows), k=5)
    reference = np.zeros((len(rows), len(ex.items)))
    for b, h in enumerate(indicator(ex, rows)):
        sims = []
        for v in range(len(x)):
            denom = np.sqrt(h.sum()) * np.linalg.norm(x[v]) + scorer.shrinkage
            sims.append(h @ x[v] / denom if denom else 0.0)
        order = sorted(range(len(x)), key=lambda v: (-sims[v], v))[: scorer.neighbours]
        for v in order:
            if sims[v] > 0:
                reference[b] += sims[v] * x[v]
    check_ranking(ex, out, rows, reference)


def test_ials_fold_in_is_the_exact_user_step(exports):
    """``(Q^T C Q + l2 I) p = Q^T C 1_h`` as weighted least squares, solved by numpy."""
    ex = exports["ials"]
    scorer = ex.run.load_scorer()
    q = scorer.item_factors.astype(np.float64)
    l2, alpha = scorer.params["l2"], scorer.params["alpha"]
    rows = histories(ex, seed=2)
    out = ex.call("recommend_from_history", history=padded(rows), k=5)
    reference = []
    for h in indicator(ex, rows):
        weight = np.sqrt(1.0 + alpha * h)  # confidence c_i = 1 + alpha x_i
        a = np.vstack([weight[:, None] * q, np.sqrt(l2) * np.eye(q.shape[1])])
        y = np.concatenate([weight * h, np.zeros(q.shape[1])])
        p = np.linalg.lstsq(a, y, rcond=None)[0]
        reference.append(q @ p)
    check_ranking(ex, out, rows, np.array(reference))


def test_neural_fold_in_is_the_same_adam_steps_in_numpy(exports):
    """mf: s = p.q_i + b_u + b_i + g; the fold-in's loss and Adam, written out in numpy."""
    ex = exports["mf"]
    model = ex.run.load_scorer().model
    q, item_bias = (np.asarray(t, np.float64) for t in model.item_parts(np.arange(len(ex.items))))
    g = float(np.asarray(model.head.global_bias))
    starts = [
        np.asarray(t, np.float64).mean(axis=0) for t in model.user_parts(np.arange(len(ex.users)))
    ]
    rows = histories(ex, seed=3)
    out = ex.call("recommend_from_history", history=padded(rows), k=5)
    reference = []
    for h in indicator(ex, rows):
        count, n = h.sum(), len(h)
        w = min(1.0, fold.FOLD_IN_NEGATIVES * count / (n - count))
        params = [starts[0].copy(), np.array(starts[1])]
        m = [np.zeros_like(p) for p in params]
        v = [np.zeros_like(p) for p in params]
        for step in range(1, fold.FOLD_IN_STEPS + 1):
            s = q @ params[0] + params[1] + item_bias + g
            sig = 1 / (1 + np.exp(-s))
            ds = (h * (sig - 1) + w * (1 - h) * sig) / count
            grads = [q.T @ ds, ds.sum()]
            grads = [
                gr + 2 * fold.FOLD_IN_L2 * (p - s0)
                for gr, p, s0 in zip(grads, params, starts, strict=True)
            ]
            for j in range(2):
                m[j] = 0.9 * m[j] + 0.1 * grads[j]
                v[j] = 0.999 * v[j] + 0.001 * grads[j] ** 2
                m_hat, v_hat = m[j] / (1 - 0.9**step), v[j] / (1 - 0.999**step)
                params[j] = params[j] - fold.FOLD_IN_LEARNING_RATE * m_hat / (np.sqrt(v_hat) + 1e-7)
        reference.append(q @ params[0] + params[1] + item_bias + g)
    check_ranking(ex, out, rows, np.array(reference))


@pytest.mark.parametrize("kind", KINDS)
def test_history_rules_padding_unknown_ids_duplicates_and_fallback(kind, exports):
    ex = exports[kind]
    a, b, c = ex.items[:3].tolist()
    plain = ex.call("recommend_from_history", history=[[a, b]], k=6)
    noisy = ex.call("recommend_from_history", history=[["", a, "no-such-item", b, a]], k=6)
    assert noisy["item_ids"].tolist() == plain["item_ids"].tolist(), kind
    np.testing.assert_allclose(noisy["scores"], plain["scores"], rtol=1e-5, atol=1e-5)
    assert noisy["known_items"].tolist() == [2]
    assert not {a, b} & {i.decode() for i in plain["item_ids"][0]}  # never the history itself
    unknown = ex.call("recommend_from_history", history=[["no-such-item", ""], [c, ""]], k=[3, 1])
    assert unknown["known_items"].tolist() == [0, 1]
    popular = ex.call("recommend", user_id=["no-such-user"], k=3)
    assert unknown["item_ids"][0].tolist() == popular["item_ids"][0].tolist()
    assert unknown["item_ids"][1].tolist()[1:] == [b"", b""]  # k=1 for the second row


@pytest.mark.parametrize("kind", ["itemknn", "ease"])
def test_knn_explanations_are_the_users_items_by_their_share_of_the_score(kind, exports):
    ex = exports[kind]
    scorer = ex.run.load_scorer()
    x = scorer.interactions.toarray()
    w = scorer.scoring_matrix.toarray() if kind == "itemknn" else scorer.weights
    users = ex.users[:6]
    out = ex.call("explain", user_id=users, k=4)
    rec = ex.call("recommend", user_id=users, k=4)
    assert out["item_ids"].tolist() == rec["item_ids"].tolist()
    for u in range(len(users)):  # ex.users[:6] are indices 0..5
        b = u
        own = {ex.items[j] for j in np.flatnonzero(x[u])}
        for slot, item in enumerate(ex.index(out["item_ids"][b])):
            parts = {ex.items[j]: x[u, j] * w[j, item] for j in np.flatnonzero(x[u])}
            expected = sorted((p for p in parts.items() if p[1] > 0), key=lambda p: -p[1])[:3]
            ids = [i.decode() for i in out["because_ids"][b, slot] if i]
            assert set(ids) <= own
            np.testing.assert_allclose(
                out["because_weights"][b, slot][: len(ids)], [p[1] for p in expected], rtol=1e-5
            )
            assert ids[: len(expected)] and len(ids) == len(expected)
            assert ids[0] in {e[0] for e in expected if e[1] == expected[0][1]}


def test_removing_the_top_reason_lowers_the_items_score(exports):
    """item-kNN: the item's score from the history without its top reason drops by that weight."""
    ex = exports["itemknn"]
    x = ex.run.load_scorer().interactions.toarray()
    user = 0
    own = [ex.items[j] for j in np.flatnonzero(x[user])]
    out = ex.call("explain", user_id=[ex.users[user]], k=3)
    item = out["item_ids"][0, 0].decode()
    top, weight = out["because_ids"][0, 0, 0].decode(), out["because_weights"][0, 0, 0]
    everything = len(ex.items)

    def score(history):
        got = ex.call("recommend_from_history", history=[history], k=everything)
        return float(got["scores"][0][[i.decode() for i in got["item_ids"][0]].index(item)])

    with_it, without = score(own), score([i for i in own if i != top])
    assert with_it == pytest.approx(out["scores"][0, 0], rel=1e-5)
    assert without < with_it
    assert with_it - without == pytest.approx(weight, rel=1e-4)


def test_history_model_pools_the_given_items_natively(exports):
    """No fold-in: the list (oldest first) is the history the tower pools, latest first."""
    ex = exports["history"]
    model = ex.run.load_scorer().model
    rows = histories(ex, n=5, seed=3) + [ex.items[:20].tolist()]  # the last: longer than L
    out = ex.call("recommend_from_history", history=padded(rows), k=4)
    length, pad = model.history_length, len(ex.items)
    table = np.full((len(rows), length), pad, np.int32)
    for b, row in enumerate(rows):
        latest = [int(np.flatnonzero(ex.items == i)[0]) for i in row][::-1][:length]
        table[b, : len(latest)] = latest
    check_ranking(ex, out, rows, np.asarray(model.score_histories(table)))
    # a known user's own latest items, as a list, score as the user does
    user_row = np.asarray(model.histories)[0]
    own = [ex.items[i] for i in user_row[user_row < pad][::-1]]
    mine = ex.call("recommend_from_history", history=padded([own]), k=3)
    reference = np.asarray(model.score_all(np.array([0], np.int32)))
    check_ranking(ex, mine, [own], reference)


@pytest.mark.parametrize("kind", ["ials", "neumf", "history"])
def test_factor_and_neural_explanations_are_embedding_cosines_of_seen_items(kind, exports):
    ex = exports[kind]
    scorer = ex.run.load_scorer()
    vectors = scorer.item_factors if kind == "ials" else scorer.model.item_embeddings()
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    out = ex.call("explain", user_id=ex.users[:3], k=3)
    for b in range(3):
        seen = sorted(ex.seen[b])
        for slot, item in enumerate(ex.index(out["item_ids"][b])):
            cos = unit[seen] @ unit[item]
            order = np.argsort(-cos, kind="stable")[:3]
            expected = [ex.items[seen[j]] for j in order]
            assert [i.decode() for i in out["because_ids"][b, slot]] == expected
            np.testing.assert_allclose(
                out["because_weights"][b, slot], cos[order], rtol=1e-4, atol=1e-5
            )


def test_no_explain_without_the_users_items(exports, tmp_path):
    assert "explain" not in exports["userknn"].module.signatures
    assert "explain" not in exports["popularity"].module.signatures
    private = Exported.of(exports["ials"].run, tmp_path / "private", ["export.include_seen=false"])
    assert "explain" not in private.module.signatures
    assert "recommend_from_history" in private.module.signatures


def test_new_signatures_run_in_the_tf1_session_loader(exports, tmp_path):
    jobs, expected = {}, {}
    for kind, ex in exports.items():
        rows = padded(histories(ex, n=3, seed=5))
        users = ex.users[:3]
        calls = [("recommend_from_history", {"history": rows, "k": np.array([4], np.int32)})]
        want = [ex.call("recommend_from_history", history=rows.tolist(), k=4)]
        if kind in EXPLAINED:
            calls.append(("explain", {"user_id": users, "k": np.array([3], np.int32)}))
            want.append(ex.call("explain", user_id=users.tolist(), k=3))
        jobs[str(ex.path)], expected[str(ex.path)] = calls, want
    found = run_signatures(jobs, cwd=tmp_path)
    for path, want in expected.items():
        assert ("explain" in found[path]["signatures"]) == (len(want) == 2), path
        for got, outputs in zip(found[path]["results"], want, strict=True):
            assert set(got) == set(outputs), path
            for key, value in outputs.items():
                if value.dtype == object:
                    decoded = np.vectorize(lambda b: b.decode(), otypes=[object])(value)
                    assert got[key].tolist() == decoded.tolist(), (path, key)
                else:
                    np.testing.assert_allclose(got[key], value, rtol=1e-4, atol=1e-5)


def ncf(*args: str) -> subprocess.CompletedProcess:
    exe = str(Path(sys.executable).with_name("ncf"))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([exe, *args], capture_output=True, text=True, env=env, timeout=120)


def test_cli_recommend_history_and_explain(exports):
    ex = exports["itemknn"]
    a, b = ex.items[:2].tolist()
    proc = ncf(
        "recommend", str(ex.path), "--history", f"{a},{b},no-such-item", "--k", "3", "--json"
    )
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    want = ex.call("recommend_from_history", history=[[a, b]], k=3)
    assert [r["item_id"] for r in got["items"]] == [i.decode() for i in want["item_ids"][0]]
    assert got["known"] and got["unknown_items"] == ["no-such-item"] and got["fallback"] is None
    proc = ncf("recommend", str(ex.path), "--user", str(ex.users[0]), "--k", "2", "--explain")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("because: ") == 2
    reasons = ex.call("explain", user_id=[ex.users[0]], k=2)["because_ids"][0, 0]
    assert all(r.decode() in proc.stdout for r in reasons if r)


def test_cli_history_and_explain_mistakes(exports, capsys):
    ex = exports["itemknn"]
    assert main(["recommend", str(ex.path), "--history", "no-such-item"]) == 0
    assert "showing the most popular items" in capsys.readouterr().out
    user = str(ex.users[0])
    assert main(["recommend", str(exports["userknn"].path), "--user", user, "--explain"]) == 2
    assert "no 'explain' signature" in capsys.readouterr().err
    assert main(["recommend", str(ex.path), "--all", "--explain"]) == 2
    assert "--explain goes with --user" in capsys.readouterr().err
    assert main(["recommend", str(ex.path), "--history", f"{ex.items[0]},,{ex.items[1]}"]) == 2
    assert "empty item id" in capsys.readouterr().err


def test_ncf_serve_answers_history_and_explain_over_http(exports, tmp_path):
    ex = exports["ease"]
    a, b, c = ex.items[:3].tolist()
    server = Server(ex.path, tmp_path / "serve.log", "--quiet")
    try:
        status, body = server.predict(
            {
                "signature_name": "recommend_from_history",
                "inputs": {"history": [[a, b], [c, ""]], "k": [3]},
            }
        )
        assert status == 200, body
        want = ex.call("recommend_from_history", history=[[a, b], [c, ""]], k=3)
        assert body["outputs"]["item_ids"] == [[i.decode() for i in r] for r in want["item_ids"]]
        status, body = server.predict(
            {"signature_name": "explain", "instances": [{"user_id": str(ex.users[1]), "k": 2}]}
        )
        assert status == 200, body
        want = ex.call("explain", user_id=[ex.users[1]], k=2)
        row = body["predictions"][0]
        assert row["because_ids"] == [[i.decode() for i in r] for r in want["because_ids"][0]]
        np.testing.assert_allclose(row["because_weights"], want["because_weights"][0], rtol=1e-5)
    finally:
        assert server.stop() == 0


def test_merged_histories_of_different_lengths_answer_as_alone(exports):
    ex = exports["itemknn"]
    model = SessionModel(ex.path)
    batcher = Batcher(model, len(ex.items), workers=1, max_rows=64, max_queue=8)
    try:
        feeds = [
            {
                "history": np.array([[a.encode()] for a in ex.items[:2]], object),
                "k": np.array([3], np.int32),
            },
            {
                "history": np.array([[i.encode() for i in ex.items[2:6]]], object),
                "k": np.array([5], np.int32),
            },
        ]
        jobs = [Job("recommend_from_history", f, len(f["history"]), None) for f in feeds]  # type: ignore[arg-type]
        merged = batcher._merged(jobs)
        for job, got in zip(jobs, merged, strict=True):
            alone = model.run("recommend_from_history", job.feeds)
            assert got.keys() == alone.keys()
            for key in alone:
                np.testing.assert_array_equal(got[key], alone[key])
        assert concatenate_rows(
            [np.array([[b"a"]], object), np.array([[b"b", b"c"]], object)]
        ).tolist() == [
            [b"a", b""],
            [b"b", b"c"],
        ]
    finally:
        batcher.shutdown()
        model.close()

"""Using an export: ``ncf recommend`` / ``ncf similar`` and the TF Serving REST API over loopback."""

from __future__ import annotations

import http.client
import json
import threading

import numpy as np
import pytest
from conftest import tiny_config

from ncf.cli import main
from ncf.serve.client import Export, resolve_export
from ncf.serve.export import export_run
from ncf.serve.http import MAX_BODY, make_server
from ncf.train import train

SMALLER = [
    "model.type=mf",
    "data.synthetic.users=100",
    "data.synthetic.items=60",
    "data.synthetic.interactions=2000",
    "train.epochs=1",
    "train.histograms=false",
    "eval.protocols=[sampled]",
    "eval.k=[10]",
    "eval.sampled_negatives=20",
]


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> Export:
    tmp = tmp_path_factory.mktemp("serving")
    config = tiny_config(tmp, *SMALLER)
    run = train(config, verbose=0).run_dir
    export_run(run, tmp / "exports" / "movies")
    export_run(run, tmp / "exports" / "movies")  # version 2: the newest
    return Export(tmp / "exports" / "movies")


@pytest.fixture(scope="module")
def users(export) -> list[str]:
    return (export.path / "assets" / "users.txt").read_text().splitlines()


@pytest.fixture(scope="module")
def items(export) -> list[str]:
    return (export.path / "assets" / "items.txt").read_text().splitlines()


@pytest.fixture(scope="module")
def server(export):
    srv = make_server(export, "127.0.0.1", 0, quiet=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def request(server, method: str, path: str, body=None, headers=None) -> tuple[int, object]:
    conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=30)
    try:
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        conn.request(method, path, data, headers or {})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def predict(server, body, path="/v1/models/movies:predict"):
    return request(server, "POST", path, body)


# -- loading and the CLI ---------------------------------------------------------------------


def test_base_folder_means_newest_version(export):
    assert export.version == 2 and resolve_export(export.path.parent) == export.path
    assert resolve_export(export.path.parent / "1").name == "1"


def test_cli_recommend_prints_ranks_items_scores_titles(export, users, capsys):
    assert main(["recommend", str(export.path.parent), "--user", users[3], "--k", "4"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == f"recommendations for user '{users[3]}':"
    assert [line.split()[0] for line in lines[1:]] == ["1", "2", "3", "4"]
    assert all("Item " in line for line in lines[1:])  # the synthetic data's titles
    assert main(["recommend", str(export.path), "--user", users[3], "--k", "4", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["known"] and payload["fallback"] is None
    assert [r["rank"] for r in payload["items"]] == [1, 2, 3, 4]
    assert [r["item_id"] for r in payload["items"]] == [line.split()[1] for line in lines[1:]]


def test_cli_unknown_user_gets_popularity_and_says_so(export, capsys):
    assert main(["recommend", str(export.path), "--user", "stranger", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["fallback"] == "popularity" and len(payload["items"]) == export.default_k
    assert main(["recommend", str(export.path), "--user", "stranger"]) == 0
    assert "unknown: showing the most popular items" in capsys.readouterr().out


def test_cli_similar(export, items, capsys):
    assert main(["similar", str(export.path), "--item", items[0], "--k", "3", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert len(payload["items"]) == 3 and items[0] not in [r["item_id"] for r in payload["items"]]
    assert main(["similar", str(export.path), "--item", "no-such-item"]) == 2
    assert "unknown item 'no-such-item'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["recommend", "/nonexistent", "--user", "1"], "no export here"),
        (["recommend", "EXPORT", "--user", "1", "--k", "0"], "k=0"),
        (["recommend", "EXPORT", "--user", "1", "--k", "100000"], "catalogue size"),
    ],
)
def test_cli_mistakes_exit_2(args, message, export, capsys):
    args = [str(export.path) if a == "EXPORT" else a for a in args]
    assert main(args) == 2
    assert message in capsys.readouterr().err


# -- REST API: happy paths -------------------------------------------------------------------


def test_model_status_and_metadata(server):
    status, body = request(server, "GET", "/v1/models/movies")
    assert status == 200
    assert body == {
        "model_version_status": [
            {
                "version": "2",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }
    assert request(server, "GET", "/v1/models/movies/versions/2")[0] == 200
    status, meta = request(server, "GET", "/v1/models/movies/metadata")
    assert status == 200 and meta["model_spec"] == {
        "name": "movies",
        "signature_name": "",
        "version": "2",
    }
    defs = meta["metadata"]["signature_def"]["signature_def"]
    assert set(defs) == {"serving_default", "score", "recommend", "similar_items"}
    assert defs["recommend"]["inputs"]["user_id"]["dtype"] == "DT_STRING"
    assert defs["recommend"]["outputs"]["scores"]["dtype"] == "DT_FLOAT"


def test_predict_row_and_columnar_agree_with_the_export(server, export, users, items):
    expected = export.recommend(users[:2], 3)
    status, rows = predict(
        server,
        {"signature_name": "recommend", "instances": [{"user_id": u, "k": 3} for u in users[:2]]},
    )
    assert status == 200 and len(rows["predictions"]) == 2
    for pred, ranked in zip(rows["predictions"], expected, strict=True):
        assert (
            pred["item_ids"] == [r["item_id"] for r in ranked.rows] and pred["known_user"] is True
        )
        np.testing.assert_allclose(pred["scores"], [r["score"] for r in ranked.rows], rtol=1e-6)
    status, cols = predict(
        server, {"signature_name": "recommend", "inputs": {"user_id": users[:2], "k": 3}}
    )
    assert status == 200 and cols["outputs"]["item_ids"] == [
        p["item_ids"] for p in rows["predictions"]
    ]
    status, bare = predict(
        server, {"signature_name": "recommend", "instances": users[:2]}
    )  # k: default_k
    assert status == 200 and len(bare["predictions"][0]["item_ids"]) == export.default_k


def test_predict_score_single_output_is_bare(server, users, items):
    body = {
        "instances": [
            {"user_id": users[0], "item_id": items[0]},
            {"user_id": "nobody", "item_id": items[0]},
        ]
    }
    status, out = predict(server, body, "/v1/models/movies/versions/2:predict")
    assert status == 200 and isinstance(out["predictions"][0], float)
    assert out["predictions"][1] == float("-inf")  # unknown user
    status, cols = predict(
        server,
        {"signature_name": "score", "inputs": {"user_id": [users[0]], "item_id": [items[0]]}},
    )
    assert status == 200 and cols["outputs"] == out["predictions"][:1]


def test_predict_similar_items(server, items):
    status, out = predict(
        server,
        {"signature_name": "similar_items", "inputs": {"item_id": [items[1], "nothing"], "k": 2}},
    )
    assert status == 200 and len(out["outputs"]["item_ids"][0]) == 2
    assert out["outputs"]["known_item"] == [True, False] and out["outputs"]["item_ids"][1] == [
        "",
        "",
    ]


# -- REST API: error paths -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "JSON Parse error"),
        ([1, 2], "must be a JSON object"),
        ({"signature_name": "nope", "instances": ["1"]}, 'signature name: "nope" not found'),
        ({"signature_name": "recommend"}, "exactly one of"),
        ({"signature_name": "recommend", "instances": [], "inputs": {}}, "exactly one of"),
        ({"signature_name": "recommend", "instances": []}, "non-empty list"),
        ({"signature_name": "recommend", "inputs": {"user_id": [1, 2]}}, "list of strings"),
        (
            {"signature_name": "recommend", "inputs": {"user_id": ["1"], "k": "3"}},
            "k must be an integer",
        ),
        ({"signature_name": "recommend", "inputs": {"user_id": ["1"], "k": 0}}, "out of range"),
        ({"signature_name": "recommend", "inputs": {"user_id": ["1"], "k": 10**6}}, "out of range"),
        ({"signature_name": "recommend", "inputs": {"k": 3}}, "missing input 'user_id'"),
        (
            {"signature_name": "recommend", "inputs": {"user_id": ["1"], "bogus": 1}},
            "unknown input 'bogus'",
        ),
        (
            {
                "signature_name": "recommend",
                "instances": [{"user_id": "1", "k": 2}, {"user_id": "2", "k": 3}],
            },
            "same value",
        ),
        ({"instances": [{"user_id": "1"}]}, "every instance needs the input 'item_id'"),
        ({"inputs": {"user_id": ["1", "2"], "item_id": ["1"]}}, "same length"),
        ({"signature_name": "recommend", "inputs": {"user_id": ["1"] * 2000}}, "at most 1024 rows"),
    ],
)
def test_bad_predict_requests_get_400(server, body, message):
    status, out = predict(server, body)
    assert status == 400, out
    assert set(out) == {"error"} and message in out["error"]


@pytest.mark.parametrize(
    ("method", "path", "code"),
    [
        ("GET", "/v1/models/other", 404),
        ("POST", "/v1/models/other:predict", 404),
        ("GET", "/v1/models/movies/versions/1", 404),
        ("GET", "/v2/whatever", 404),
        ("POST", "/v1/models/movies:classify", 400),
    ],
)
def test_unknown_models_versions_and_routes(server, method, path, code):
    status, out = request(server, method, path, {"instances": ["1"]} if method == "POST" else None)
    assert status == code and "error" in out


def raw_post(server, headers: dict[str, str]) -> tuple[int, dict]:
    """A POST with the given headers and no body sent (the server must not wait for one)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=30)
    try:
        conn.putrequest("POST", "/v1/models/movies:predict")
        for key, value in headers.items():
            conn.putheader(key, value)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_oversized_and_missing_bodies(server, users):
    status, out = raw_post(server, {"Content-Length": str(MAX_BODY + 1)})
    assert status == 413 and "over the limit" in out["error"]
    status, out = raw_post(server, {})
    assert status == 411 and "error" in out
    status, _ = predict(server, {"signature_name": "recommend", "instances": users[:1]})
    assert status == 200  # still serving


def test_keep_alive_connection_serves_several_requests(server, users):
    conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=30)
    try:
        for user in users[:5]:
            conn.request(
                "POST",
                "/v1/models/movies:predict",
                json.dumps({"signature_name": "recommend", "instances": [user]}),
            )
            response = conn.getresponse()
            assert response.status == 200 and json.loads(response.read())["predictions"]
    finally:
        conn.close()

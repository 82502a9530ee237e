"""Using an export: ``ncf recommend`` / ``ncf similar`` (one list or a whole file of users) and
``ncf serve`` over real HTTP: TF Serving's request rules, the bad-request suite, limits,
health, OpenAPI, a property-based test, many connections and a graceful SIGTERM."""

from __future__ import annotations

import base64
import http.client
import json
import re
import signal
import socket
import threading
import time

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, tiny_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from servers import Server, parse_response, raw_exchange

from ncf.cli import main
from ncf.serve.client import Export, resolve_export
from ncf.serve.export import export_run
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
    return export.user_ids()


@pytest.fixture(scope="module")
def items(export) -> list[str]:
    return (export.path / "assets" / "items.txt").read_text().splitlines()


@pytest.fixture(scope="module")
def server(export, tmp_path_factory):
    log = tmp_path_factory.mktemp("server") / "serve.log"
    limits = ["--request-timeout", "1.5", "--max-k", "50", "--max-results", "1000"]
    srv = Server(export.path.parent, log, *limits)
    yield srv
    assert srv.stop() == 0
    assert "stopped: every request in flight was answered" in log.read_text()


# -- the CLI: one list -----------------------------------------------------------------------


def test_base_folder_means_newest_version(export):
    assert export.version == 2 and resolve_export(export.path.parent) == export.path
    assert resolve_export(export.path.parent / "1").name == "1"


def test_cli_recommend_prints_a_header_and_what_the_score_is(export, users, capsys):
    assert main(["recommend", str(export.path.parent), "--user", users[3], "--k", "4"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == f"recommendations for user '{users[3]}':"
    assert lines[1].split() == ["rank", "item", "score", "title"]
    assert [line.split()[0] for line in lines[2:6]] == ["1", "2", "3", "4"]
    assert all("Item " in line for line in lines[2:6])  # the synthetic data's titles
    assert lines[6].startswith("score: logit")
    assert main(["recommend", str(export.path), "--user", users[3], "--k", "4", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["known"] and payload["fallback"] is None and payload["score"].startswith("logit")
    assert [r["item_id"] for r in payload["items"]] == [line.split()[1] for line in lines[2:6]]


def test_cli_unknown_user_gets_popularity_and_says_so(export, capsys):
    assert main(["recommend", str(export.path), "--user", "stranger", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["fallback"] == "popularity" and len(payload["items"]) == export.default_k
    assert payload["score"].startswith("popularity count")
    assert main(["recommend", str(export.path), "--user", "stranger"]) == 0
    out = capsys.readouterr().out
    assert "unknown: showing the most popular items" in out and "score: popularity count" in out


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
        (["recommend", "EXPORT", "--all"], "need --out"),
        (["recommend", "EXPORT", "--all", "--out", "recs.txt"], ".parquet or .csv"),
        (["recommend", "EXPORT", "--user", "1", "--out", "r.csv"], "--out goes with --all"),
        (["recommend", "EXPORT", "--users", "/nonexistent", "--out", "r.csv"], "cannot read"),
        (["serve", "EXPORT", "--workers", "0"], "--workers 0: must be at least 1"),
        (["serve", "EXPORT", "--request-timeout", "0"], "must be positive"),
        (["serve", "EXPORT", "--port", "99999"], "--port 99999: must lie between 1 and 65535"),
        (["serve", "EXPORT", "--port", "-1"], "--port -1: must lie between 1 and 65535"),
    ],
)
def test_cli_mistakes_exit_2(args, message, export, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = [str(export.path) if a == "EXPORT" else a for a in args]
    assert main(args) == 2
    assert message in capsys.readouterr().err


# -- the CLI: batch recommendations ----------------------------------------------------------


def test_recommend_all_writes_a_parquet_file(export, users, tmp_path, capsys):
    out = tmp_path / "recs.parquet"
    assert (
        main(
            [
                "recommend",
                str(export.path),
                "--all",
                "--k",
                "5",
                "--out",
                str(out),
                "--batch-size",
                "32",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert f"for {len(users)} users (0 unknown" in printed and "score: logit" in printed
    table = pd.read_parquet(out)
    assert list(table.columns) == ["user_id", "rank", "item_id", "score", "known_user", "title"]
    assert table["user_id"].drop_duplicates().tolist() == users  # every user, in order
    assert (table.groupby("user_id")["rank"].apply(list) == [[1, 2, 3, 4, 5]] * len(users)).all()
    for user in users[::17]:
        expected = export.recommend([user], 5)[0].rows
        mine = table[table["user_id"] == user]
        assert mine["item_id"].tolist() == [r["item_id"] for r in expected]
        np.testing.assert_allclose(mine["score"], [r["score"] for r in expected], rtol=1e-6)
        assert mine["title"].tolist() == [r["title"] for r in expected]
    assert not list(tmp_path.glob(".*"))  # no temporary left behind


def test_recommend_users_file_to_csv_with_an_unknown_user(export, users, tmp_path, capsys):
    wanted = tmp_path / "users.txt"
    wanted.write_text(f"{users[1]}\n\nstranger\n{users[0]}\n")
    out = tmp_path / "recs.csv"
    assert main(["recommend", str(export.path), "--users", str(wanted), "--out", str(out)]) == 0
    assert "(1 unknown" in capsys.readouterr().out
    table = pd.read_csv(out, dtype={"user_id": str, "item_id": str})
    assert table["user_id"].drop_duplicates().tolist() == [users[1], "stranger", users[0]]
    assert table.groupby("user_id").size().tolist() == [export.default_k] * 3
    assert table.loc[table["user_id"] == "stranger", "known_user"].eq(False).all()


# -- REST: TF Serving's request rules --------------------------------------------------------


def b64(text: str) -> dict:
    return {"b64": base64.b64encode(text.encode()).decode()}


U, U2, I = "<user>", "<user2>", "<item>"  # noqa: E741 (replaced by real ids below)

# (body, expected status, a check: an error substring, or the keys of the answer). The first
# rows are the README's requests; every row follows TF Serving's json_tensor.cc rules.
TF_SERVING_TABLE = [
    ({"signature_name": "recommend", "instances": [{"user_id": U, "k": 5}]}, 200, "predictions"),
    ({"signature_name": "recommend", "inputs": {"user_id": [U, U2], "k": [5]}}, 200, "outputs"),
    ({"instances": [{"user_id": U, "item_id": I}]}, 200, "predictions"),
    ({"signature_name": "score", "inputs": {"user_id": [U], "item_id": [I]}}, 200, "outputs"),
    (
        {"signature_name": "serving_default", "instances": [{"user_id": U, "item_id": I}]},
        200,
        "predictions",
    ),
    (
        {
            "signature_name": "recommend",
            "instances": [{"user_id": U, "k": 2}, {"user_id": U2, "k": 3}],
        },
        200,
        "predictions",
    ),
    (
        {"signature_name": "recommend", "inputs": {"user_id": [U], "k": [2], "ignored": 1}},
        200,
        "outputs",
    ),
    (
        {"signature_name": "recommend", "instances": [{"user_id": {"b64": U}, "k": 2}]},
        200,
        "predictions",
    ),
    (
        {"signature_name": "similar_items", "inputs": {"item_id": [I, "nothing"], "k": [2]}},
        200,
        "outputs",
    ),
    (
        {"signature_name": "recommend", "instances": [{"user_id": "nobody", "k": 1}]},
        200,
        "predictions",
    ),
    # rejected by TF Serving, with its wording
    (
        {"signature_name": "recommend", "instances": [{"user_id": U}]},
        400,
        "keys must be equal to: k,user_id",
    ),
    (
        {"signature_name": "recommend", "instances": [U]},
        400,
        "instances is a plain list, but expecting list of objects",
    ),
    (
        {"signature_name": "recommend", "inputs": [U]},
        400,
        "inputs is a plain value/list, but expecting an object",
    ),
    (
        {"signature_name": "recommend", "inputs": {"user_id": [U]}},
        400,
        "Missing named input: k in 'inputs' object.",
    ),
    (
        {"signature_name": "recommend", "inputs": {"user_id": [U], "k": 5}},
        400,
        'input k must have shape [B], got a single value (write "k": [5])',
    ),  # scalar k
    (
        {"signature_name": "recommend", "instances": [{"user_id": U, "k": 2}], "inputs": {}},
        400,
        "expecting only one of 'inputs' or 'instances' keys to exist",
    ),
    (
        {"signature_name": "recommend", "instances": {"user_id": U}},
        400,
        "Excepting 'instances' to be an list/array",
    ),
    ({"signature_name": "recommend", "instances": []}, 400, "No values in 'instances' array"),
    ({"signature_name": "recommend"}, 400, "Missing 'inputs' or 'instances' key"),
    ({"signature_name": 7, "instances": [U]}, 400, "'signature_name' key must be a string value."),
    (
        {"signature_name": "nope", "instances": [U]},
        400,
        'Serving signature name: "nope" not found in signature def',
    ),
    ([1, 2], 400, "Is not object"),
    (
        {"signature_name": "recommend", "instances": [{"user_id": U, "k": "5"}]},
        400,
        'JSON Value: "5" Type: String is not of expected type: int32',
    ),
    (
        {"signature_name": "recommend", "instances": [{"user_id": U, "k": 5.0}]},
        400,
        "Type: Number is not of expected type: int32",
    ),
    (
        {"signature_name": "recommend", "instances": [{"user_id": U, "k": True}]},
        400,
        "Type: True is not of expected type: int32",
    ),
    (
        {"signature_name": "recommend", "instances": [{"user_id": U, "k": 2**31}]},
        400,
        "is not of expected type: int32",
    ),
    (
        {"signature_name": "recommend", "instances": [{"user_id": 42, "k": 5}]},
        400,
        "JSON Value: 42 Type: Number is not of expected type: string",
    ),
    (
        {"signature_name": "recommend", "instances": [{"user_id": U, "k": 5, "x": 1}]},
        400,
        "does not have named input: x",
    ),
    (
        {"signature_name": "recommend", "instances": [{"user_id": U, "k": 5}, [U]]},
        400,
        "Expecting object but got list at item 1 of input list",
    ),
    (
        {
            "signature_name": "recommend",
            "instances": [{"user_id": U, "k": 5}, {"user_id": [U, U], "k": 5}],
        },
        400,
        "Failed to process element: 1 key: user_id of 'instances' list. Error: INVALID_ARGUMENT: Expecting tensor size: 1 but got: 2",
    ),
    (
        {"signature_name": "recommend", "instances": [{"user_id": {"b64": "%%%"}, "k": 5}]},
        400,
        "Unable to base64 decode",
    ),
    (
        {"signature_name": "recommend", "instances": [{"user_id": {"x": 1}, "k": 5}]},
        400,
        "not formatted correctly for base64 data",
    ),
    (
        {"signature_name": "recommend", "inputs": {"user_id": [[U]], "k": [[1]]}},
        400,
        "must have shape [B], got [1, 1]",
    ),  # rank 2
    (
        {"signature_name": "recommend", "instances": [{"user_id": U, "k": 0}]},
        400,
        "k must be at least 1",
    ),
    (
        {"signature_name": "recommend", "inputs": {"user_id": [U, U2, U], "k": [1, 2]}},
        400,
        "k must hold one value per row (3) or one for all rows; got 2",
    ),
    ({"inputs": {"user_id": [U, U2], "item_id": [I]}}, 400, "must have one entry per row"),
    (b"", 400, "JSON Parse error: The document is empty"),
    (b"{not json", 400, "JSON Parse error"),
]


def fill_ids(value, users, items):
    if isinstance(value, dict) and value.get("b64") == U:
        return b64(users[0])
    if isinstance(value, dict):
        return {k: fill_ids(v, users, items) for k, v in value.items()}
    if isinstance(value, list):
        return [fill_ids(v, users, items) for v in value]
    if isinstance(value, str):
        return {U: users[0], U2: users[1], I: items[0]}.get(value, value.replace(U, users[0]))
    return value


@pytest.mark.parametrize(("body", "status", "check"), TF_SERVING_TABLE)
def test_tf_serving_request_table(server, users, items, body, status, check):
    got_status, answer = server.predict(
        body if isinstance(body, bytes) else fill_ids(body, users, items)
    )
    assert got_status == status, answer
    if status == 200:
        assert set(answer) == {check}
    else:
        assert set(answer) == {"error"} and check in answer["error"], answer


def documented_requests() -> list[tuple[str, dict]]:
    """Every ``curl ... -d '{...}'`` body in the README and docs/serving.md."""
    found = []
    for doc in (REPO / "README.md", REPO / "docs" / "serving.md"):
        for body in re.findall(r"-d '(\{.*?\})'", doc.read_text(), flags=re.S):
            found.append((doc.name, json.loads(body)))
    return found


def test_documented_requests_are_in_the_table_and_work(server, users, items):
    """The README's and docs' requests: answered 200 by ncf serve, with TF Serving's rules."""
    documented = documented_requests()
    assert len(documented) >= 6
    for name, body in documented:
        assert "42" in users and "7" in users and "7" in items  # the ids the docs use
        status, answer = server.predict(body)
        assert status == 200, (name, body, answer)
        assert set(answer) == ({"predictions"} if "instances" in body else {"outputs"})
    table = [json.dumps(body) for body, status, _ in TF_SERVING_TABLE if status == 200]
    readme = [b for name, b in documented if name == "README.md"]
    for body in readme:  # the README's requests, with placeholder ids, are rows of the table
        shape = json.dumps(body).replace('"42"', f'"{U}"').replace('"7"', f'"{U2}"')
        assert shape in table, shape


def test_row_and_columnar_answers_agree_with_the_export(server, export, users, items):
    expected = export.recommend(users[:2], 3)
    status, rows = server.predict(
        {"signature_name": "recommend", "instances": [{"user_id": u, "k": 3} for u in users[:2]]}
    )
    assert status == 200
    for pred, ranked in zip(rows["predictions"], expected, strict=True):
        assert pred["item_ids"] == [r["item_id"] for r in ranked.rows] and pred["known_user"]
        np.testing.assert_allclose(pred["scores"], [r["score"] for r in ranked.rows], rtol=1e-6)
    status, cols = server.predict(
        {"signature_name": "recommend", "inputs": {"user_id": users[:2], "k": [3]}}
    )
    assert cols["outputs"]["item_ids"] == [p["item_ids"] for p in rows["predictions"]]
    status, mixed = server.predict(
        {
            "signature_name": "recommend",
            "instances": [{"user_id": users[0], "k": 1}, {"user_id": users[1], "k": 3}],
        }
    )
    first = mixed["predictions"][0]
    assert first["item_ids"][1:] == ["", ""] and first["scores"][1:] == [float("-inf")] * 2
    status, score = server.predict(
        {
            "instances": [
                {"user_id": users[0], "item_id": items[0]},
                {"user_id": "x", "item_id": items[0]},
            ]
        }
    )
    assert isinstance(score["predictions"][0], float) and score["predictions"][1] == float("-inf")


def test_model_status_and_metadata(server):
    status, body = server.request("GET", "/v1/models/movies")
    ok = {"error_code": "OK", "error_message": ""}
    assert status == 200
    assert body == {"model_version_status": [{"version": "2", "state": "AVAILABLE", "status": ok}]}
    assert server.request("GET", "/v1/models/movies/versions/2")[0] == 200
    status, meta = server.request("GET", "/v1/models/movies/versions/2/metadata")
    assert status == 200 and meta["model_spec"] == {
        "name": "movies",
        "signature_name": "",
        "version": "2",
    }
    defs = meta["metadata"]["signature_def"]["signature_def"]
    assert set(defs) == {
        "serving_default", "score", "recommend", "similar_items", "recommend_from_history", "explain",
        "__saved_model_init_op",
    }  # fmt: skip
    # TF Serving prints every field, set or not (tests/test_metadata.py: all of it)
    batched = {"dim": [{"size": "-1", "name": ""}], "unknown_rank": False}
    assert defs["recommend"]["inputs"]["k"]["tensor_shape"] == batched
    assert defs["recommend"]["outputs"]["scores"]["dtype"] == "DT_FLOAT"


def test_health_readiness_and_openapi(server):
    assert server.request("GET", "/healthz") == (200, {"status": "alive"})
    assert server.request("GET", "/readyz") == (200, {"status": "ready"})
    status, spec = server.request("GET", "/openapi.json")
    assert status == 200 and spec["openapi"].startswith("3.")
    for path in (
        "/v1/models/{name}",
        "/v1/models/{name}/metadata",
        "/v1/models/{name}:predict",
        "/v1/models/{name}/versions/{version}:predict",
        "/healthz",
        "/readyz",
    ):
        assert path in spec["paths"]
    assert "recommend(k: [batch] int32, user_id: [batch] string)" in json.dumps(spec)


# -- REST: the bad-request suite: JSON errors, never a 5xx -----------------------------------


def post_bytes(path: str, body: bytes, extra: bytes = b"") -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n".encode()
    return head + extra + b"\r\n" + body


BAD_REQUESTS = [
    (
        "too many results",
        lambda b: [
            post_bytes(
                b + ":predict",
                json.dumps(
                    {"signature_name": "recommend", "inputs": {"user_id": ["1"] * 100, "k": [20]}}
                ).encode(),
            )
        ],
        400,
        "rows x k = 2000 is over",
    ),
    (
        "POST on a health check",
        lambda b: [b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"],
        405,
        "only GET",
    ),
    (
        "malformed JSON",
        lambda b: [post_bytes(b + ":predict", b'{"instances": [')],
        400,
        "JSON Parse error",
    ),
    (
        "nested 100,000 deep",
        lambda b: [post_bytes(b + ":predict", b"[" * 100_000)],
        400,
        "nested too deeply",
    ),
    (
        "nested inputs",
        lambda b: [
            post_bytes(
                b + ":predict",
                b'{"signature_name": "recommend", "inputs": {"k": [1], "user_id": '
                + b"[" * 500
                + b"]" * 500
                + b"}}",
            )
        ],
        400,
        "nested deeper",
    ),
    ("huge body", lambda b: [post_bytes(b + ":predict", b" " * (1 << 20) + b"{}")], 413, "over"),
    (
        "huge announced body",
        lambda b: [
            f"POST {b}:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n".encode()
        ],
        413,
        "over",
    ),
    ("garbage request line", lambda b: [b"\x00\x01 garbage\r\n\r\n"], 400, "bad request"),
    (
        "wrong method",
        lambda b: [f"DELETE {b} HTTP/1.1\r\nHost: x\r\n\r\n".encode()],
        400,
        "Malformed request: DELETE",
    ),
    (
        "GET on predict",
        lambda b: [f"GET {b}:predict HTTP/1.1\r\nHost: x\r\n\r\n".encode()],
        400,
        "Malformed request: GET",
    ),
    (
        "unknown verb",
        lambda b: [f"PUT {b}:explode HTTP/1.1\r\nHost: x\r\n\r\n".encode()],
        400,
        "Malformed request",
    ),
    (
        "traversal",
        lambda b: [b"GET /v1/models/../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n"],
        400,
        "Malformed request",
    ),
    (
        "encoded traversal",
        lambda b: [b"GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n"],
        404,
        "no route",
    ),
    (
        "unknown model",
        lambda b: [b"GET /v1/models/other HTTP/1.1\r\nHost: x\r\n\r\n"],
        404,
        "Servable not found for request: Latest(other)",
    ),
    (
        "unknown version",
        lambda b: [f"GET {b}/versions/1 HTTP/1.1\r\nHost: x\r\n\r\n".encode()],
        404,
        "Specific(movies, 1)",
    ),
    (
        "long URL",
        lambda b: [b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"],
        414,
        "URL is longer",
    ),
    (
        "huge headers",
        lambda b: [b"GET /healthz HTTP/1.1\r\n" + b"X-Pad: " + b"a" * 20_000 + b"\r\n\r\n"],
        431,
        "headers are larger",
    ),
    (
        "too many rows",
        lambda b: [
            post_bytes(
                b + ":predict",
                json.dumps(
                    {"signature_name": "recommend", "inputs": {"user_id": ["1"] * 2000, "k": [1]}}
                ).encode(),
            )
        ],
        400,
        "at most 1024",
    ),
    (
        "k over the limit",
        lambda b: [
            post_bytes(
                b + ":predict",
                json.dumps(
                    {"signature_name": "recommend", "inputs": {"user_id": ["1"], "k": [51]}}
                ).encode(),
            )
        ],
        400,
        "k=51 is over",
    ),
]


@pytest.mark.parametrize(
    ("name", "parts", "status", "message"), BAD_REQUESTS, ids=[r[0] for r in BAD_REQUESTS]
)
def test_bad_requests_get_json_errors(server, name, parts, status, message):
    got, headers, body = parse_response(raw_exchange(server.port, *parts(server.base)))
    assert got == status, body
    assert headers["content-type"] == "application/json"
    assert set(body) == {"error"} and message in body["error"], body


def test_slow_clients_get_408_and_the_server_keeps_serving(server):
    """Headers dribbled in, then a body that never completes: both cut off after 1.5 s."""
    slow_head = raw_exchange(server.port, b"GET /healthz HTTP/1.1\r\n", b"Host: x\r\n", pause=2.0)
    status, _, body = parse_response(slow_head)
    assert status == 408 and "headers did not arrive" in body["error"]
    partial = (
        f"POST {server.base}:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{{".encode()
    )
    status, headers, body = parse_response(raw_exchange(server.port, partial))
    assert (
        status == 408
        and "body did not arrive" in body["error"]
        and headers["connection"] == "close"
    )
    assert server.request("GET", "/healthz")[0] == 200


def test_many_connections_at_once_get_their_own_answers(server, export, users):
    """48 keep-alive connections, 4 requests each, users and k differing: the server merges
    waiting requests into one model call; every answer is still the request's own."""
    jobs = [(users[n % len(users)], 1 + n % 5) for n in range(48)]
    expected = {(u, k): export.recommend([u], k)[0].rows for u, k in set(jobs)}
    answers: list[tuple[str, int, int, object]] = []

    def client(user: str, k: int) -> None:
        body = json.dumps({"signature_name": "recommend", "instances": [{"user_id": user, "k": k}]})
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        try:
            for _ in range(4):
                conn.request("POST", server.base + ":predict", body)
                response = conn.getresponse()
                answers.append((user, k, response.status, json.loads(response.read())))
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=job) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(answers) == 192
    for user, k, status, answer in answers:
        assert status == 200
        want = expected[(user, k)]
        assert answer["predictions"][0]["item_ids"] == [r["item_id"] for r in want]
        np.testing.assert_allclose(
            answer["predictions"][0]["scores"], [r["score"] for r in want], rtol=1e-5
        )


def test_every_request_is_logged(server):
    server.request("GET", "/v1/models/movies")
    lines = [ln for ln in server.log.read_text().splitlines() if '"GET /v1/models/movies"' in ln]
    assert lines and " 200 " in lines[-1] and lines[-1].startswith("127.0.0.1")


# -- REST: property-based ---------------------------------------------------------------------

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False)
    | st.text(max_size=6),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
NAMES = st.sampled_from(["user_id", "item_id", "k", "b64", "x"])
VALUES = JSON | st.sampled_from(["1", "2", 1, 3, [1], ["1"], ["1", "2"], [0], [2, 3]])
BODIES = st.one_of(
    JSON,
    st.fixed_dictionaries(
        {
            "signature_name": st.sampled_from(
                ["recommend", "score", "similar_items", "serving_default", "no"]
            )
        },
        optional={
            "instances": st.lists(st.dictionaries(NAMES, VALUES, max_size=3) | VALUES, max_size=4),
            "inputs": st.dictionaries(NAMES, VALUES, max_size=3) | VALUES,
        },
    ),
)
PATHS = st.sampled_from(
    [
        "/v1/models/movies:predict",
        "/v1/models/movies/versions/2:predict",
        "/v1/models/movies",
        "/v1/models/movies/metadata",
        "/v1/models/x:predict",
        "/v1/models",
        "/v1/",
        "/",
        "/readyz",
    ]
)


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]), path=PATHS, body=BODIES)
def test_property_any_request_gets_json_and_no_5xx(server, method, path, body):
    data = json.dumps(body).encode() if method in ("POST", "PUT") else None
    status, answer = server.request(method, path, data)
    assert status < 500, (status, answer)
    assert isinstance(answer, dict)
    if status != 200:
        assert set(answer) == {"error"} and isinstance(answer["error"], str)
    elif path.endswith(":predict"):
        assert set(answer) in ({"predictions"}, {"outputs"})


# -- graceful shutdown --------------------------------------------------------------------------


SLOW_CLIENT_S = 0.5


def test_sigterm_finishes_requests_in_flight_then_exits(export, users, tmp_path):
    """A request whose headers arrived before SIGTERM is answered; the listener closes at
    SIGTERM (new connections are refused); then the process exits 0.

    The client asks for ``100 Continue``, which the server sends when the app first waits
    for the body: the event that the request is in flight. The rest of the body is held
    back ``SLOW_CLIENT_S`` after the listener closed (a slow client, the stimulus: a server
    that gave in-flight requests a short fixed grace, as uvicorn's 0.1 s settle before it
    waits for connections, would cut this one off)."""
    srv = Server(export.path.parent, tmp_path / "serve.log", "--quiet")
    body = json.dumps({"signature_name": "recommend", "inputs": {"user_id": users, "k": [5]}})
    head = (
        f"POST {srv.base}:predict HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
        "Expect: 100-continue\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", srv.port), timeout=60) as sock:
        sock.sendall(head.encode() + body[:10].encode())
        assert _read_until(sock, b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
        srv.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        while (status := server_ready(srv)) is not None:  # until new connections are refused
            assert status in (200, 503), status  # 503 once the server is draining
            assert time.monotonic() < deadline, "still accepting connections 30 s after SIGTERM"
            time.sleep(0.02)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", srv.port), timeout=10).close()
        time.sleep(SLOW_CLIENT_S)
        sock.sendall(body[10:].encode())
        data = _read_until(sock, None)  # the server closes the connection after its answer
    assert data, "the server closed the connection of the request in flight without an answer"
    status, headers, answer = parse_response(data)
    assert status == 200 and len(answer["outputs"]["item_ids"]) == len(users)
    assert int(headers["content-length"]) == len(data.partition(b"\r\n\r\n")[2])
    assert srv.stop() == 0
    assert "stopped: every request in flight was answered" in (tmp_path / "serve.log").read_text()


def _read_until(sock: socket.socket, end: bytes | None) -> bytes:
    """Bytes read from ``sock`` up to and including ``end`` (None: until the peer closes)."""
    data = b""
    while end is None or end not in data:
        chunk = sock.recv(1 if end is not None else 65536)  # nothing past ``end`` is taken
        if not chunk:
            assert end is None, f"connection closed before {end!r}: {data!r}"
            break
        data += chunk
    return data


def server_ready(srv: Server) -> int | None:
    """The status of /readyz, or None when the server refuses connections."""
    try:
        return srv.request("GET", "/readyz")[0]
    except OSError:
        return None


def test_exports_of_an_older_format_are_refused_with_a_clear_message(export, tmp_path, capsys):
    import shutil

    old = tmp_path / "old" / "1"
    shutil.copytree(export.path, old)
    info = json.loads((old / "assets" / "model.json").read_text())
    (old / "assets" / "model.json").write_text(json.dumps({**info, "format": 1}))
    assert main(["recommend", str(old), "--user", "1"]) == 2
    assert "older ncf" in capsys.readouterr().err
    assert main(["serve", str(old), "--port", "0"]) == 2
    assert "older ncf" in capsys.readouterr().err

"""``GET /v1/models/NAME/metadata`` is TF Serving's answer, for every signature of every family.

One tiny run of every model family is exported, served by :class:`ncf.serve.http.ServingApp`
(in-process, over ASGI) and its metadata compared with:

- TF Serving's own construction, rebuilt here from the ``tensorflow-serving-api`` protos:
  ``saved_model.pb`` read as a ``SavedModel`` message (what ``saved_model_cli`` reads), every
  SignatureDef of its ``serve`` MetaGraphDef packed into the ``Any`` of a
  ``GetModelMetadataResponse`` (``get_model_metadata_impl.cc``), unpacked and rendered as
  ``http_rest_api_util.cc``'s ``ToJsonString`` renders it;
- the answer parsed back with the serving protos (unknown fields refused), field by field
  against the MetaGraphDef;
- what ``saved_model_cli show --all`` prints for each signature: its inputs and outputs with
  dtype, shape and tensor name, and the method name.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import test_export
from google.protobuf import json_format
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, model_pb2

from ncf import registry
from ncf.serve.export import export_run
from ncf.serve.http import ServingApp
from ncf.serve.session import SessionModel

KINDS = registry.names()
OPTIONS = {"always_print_fields_with_no_presence": True, "preserving_proto_field_name": True}


@pytest.fixture(scope="module")
def exports(tmp_path_factory, shared_dir) -> dict[str, Path]:
    """Every family's export: tests/test_export.py's shared one where it has the family (built
    once per session, whichever module asks first), else a tiny run trained here."""
    tmp = tmp_path_factory.mktemp("metadata")
    found = {}
    for kind in KINDS:
        if kind in test_export.KINDS:
            found[kind] = test_export.shared_export(shared_dir, kind)
            continue
        run = test_export.tiny_run(tmp / kind, kind)
        found[kind] = export_run(run.path, tmp / "exports" / kind)
    return found


def served_metadata(version: Path, name: str) -> tuple[int, dict[str, Any]]:
    """``GET /v1/models/NAME/metadata`` of ``ncf serve``'s application, over ASGI."""
    app = ServingApp(SessionModel(version), int(version.name), name, num_items=1)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": f"/v1/models/{name}/metadata",
             "headers": [], "query_string": b"", "client": ("127.0.0.1", 1)}  # fmt: skip
    asyncio.run(app(scope, receive, send))
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], json.loads(body)


def meta_graph(version: Path) -> Any:
    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((version / "saved_model.pb").read_bytes())
    (meta,) = [m for m in saved.meta_graphs if "serve" in m.meta_info_def.tags]
    return meta


def tf_serving_answer(version: Path, name: str) -> dict[str, Any]:
    """GetModelMetadata as TF Serving builds it, rendered as its REST layer renders it."""
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = name
    response.model_spec.version.value = int(version.name)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    for key, signature in meta_graph(version).signature_def.items():
        signatures.signature_def[key].CopyFrom(signature)
    response.metadata["signature_def"].Pack(signatures)
    unpacked = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(unpacked)
    return {
        "model_spec": json_format.MessageToDict(response.model_spec, **OPTIONS),
        "metadata": {"signature_def": json_format.MessageToDict(unpacked, **OPTIONS)},
    }


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_metadata_is_tf_servings_answer(kind, exports):
    version = exports[kind]
    status, answer = served_metadata(version, "movies")
    assert status == 200
    assert answer == tf_serving_answer(version, "movies")
    # Parsed back with the serving protos (no unknown field), it is the MetaGraphDef's map.
    spec = json_format.ParseDict(answer["model_spec"], model_pb2.ModelSpec())
    assert (spec.name, spec.version.value, spec.signature_name) == ("movies", int(version.name), "")
    parsed = json_format.ParseDict(
        answer["metadata"]["signature_def"], get_model_metadata_pb2.SignatureDefMap()
    )
    expected = meta_graph(version).signature_def
    assert set(parsed.signature_def) == set(expected) and "__saved_model_init_op" in expected
    for key, signature in expected.items():
        assert parsed.signature_def[key] == signature, key
    # TF Serving's rendering: every field printed, set or not.
    for key, signature in answer["metadata"]["signature_def"]["signature_def"].items():
        assert set(signature) == {"inputs", "outputs", "method_name", "defaults"}, key
        for info in [*signature["inputs"].values(), *signature["outputs"].values()]:
            assert set(info) == {"name", "dtype", "tensor_shape"}
            assert set(info["tensor_shape"]) == {"dim", "unknown_rank"}
            assert all(
                set(d) == {"size", "name"} and d["name"] == "" for d in info["tensor_shape"]["dim"]
            )
    init = answer["metadata"]["signature_def"]["signature_def"]["__saved_model_init_op"]
    assert init["outputs"]["__saved_model_init_op"]["tensor_shape"] == {
        "dim": [],
        "unknown_rank": True,
    }


# ``saved_model_cli show --dir D --all`` is ``_show_all(D)`` after its flags are parsed: one
# process prints it for every export (one TensorFlow import, not one per family);
# tests/test_export.py runs the command itself.
SHOW_ALL = """
import sys
from tensorflow.python.tools import saved_model_cli
for folder in sys.argv[1:]:
    print("=== " + folder, flush=True)
    saved_model_cli._show_all(folder)
    sys.stdout.flush()
"""


def cli_signatures(versions: list[Path]) -> dict[Path, dict[str, dict[str, Any]]]:
    """What ``saved_model_cli show --all`` prints of each export: signature -> {"inputs" /
    "outputs": {key: (dtype, shape, name)}, "method": ...}."""
    text = subprocess.run(
        [sys.executable, "-c", SHOW_ALL, *map(str, versions)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    parts = re.split(r"^=== (.+)$", text, flags=re.MULTILINE)[1:]
    return {
        Path(folder): _signatures(shown)
        for folder, shown in zip(parts[::2], parts[1::2], strict=True)
    }


def _signatures(text: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for block in re.split(r"\n(?=signature_def\[')", text)[1:]:
        name = re.match(r"signature_def\['([^']+)'\]", block).group(1)  # type: ignore[union-attr]
        tensors: dict[str, dict[str, tuple[str, str, str]]] = {"inputs": {}, "outputs": {}}
        for side, key, dtype, shape, tensor in re.findall(
            r"(inputs|outputs)\['([^']+)'\] tensor_info:\s+dtype: (\S+)\s+shape: ([^\n]+)\s+name: (\S+)",
            block,
        ):
            tensors[side][key] = (dtype, shape.strip(), tensor)
        method = re.search(r"Method name is: ?([^\n]*)", block).group(1).strip()  # type: ignore[union-attr]
        found[name] = {**tensors, "method": method}
    return found


def cli_shape(shape: dict[str, Any]) -> str:
    """A rendered tensor_shape as saved_model_cli prints it: ``(-1, -1)``, ``unknown_rank``."""
    if shape["unknown_rank"]:
        return "unknown_rank"
    sizes = [d["size"] for d in shape["dim"]]
    return "(" + ", ".join(sizes) + ")" if len(sizes) != 1 else f"({sizes[0]})"


@pytest.mark.slow
def test_metadata_agrees_with_saved_model_cli_for_every_family(exports):
    printed = cli_signatures(list(exports.values()))
    assert set(printed) == set(exports.values())
    for kind, version in exports.items():
        _, answer = served_metadata(version, kind)
        served = answer["metadata"]["signature_def"]["signature_def"]
        shown = printed[version]
        assert shown, f"saved_model_cli printed no signature of {kind}"
        assert set(served) == set(shown), kind
        for name, signature in served.items():
            assert signature["method_name"] == shown[name]["method"], (kind, name)
            for side in ("inputs", "outputs"):
                got = {
                    key: (info["dtype"], cli_shape(info["tensor_shape"]), info["name"])
                    for key, info in signature[side].items()
                }
                assert got == shown[name][side], (kind, name, side)

"""``ncf serve``: the TensorFlow Serving REST API for one export, on ``ThreadingHTTPServer``.

Routes (``NAME`` is ``--model-name``, ``V`` the loaded version; ``/versions/V`` is optional):

- ``GET /v1/models/NAME[/versions/V]`` -> ``{"model_version_status": [{"version": "V",
  "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}``
- ``GET /v1/models/NAME[/versions/V]/metadata`` -> ``{"model_spec": {...}, "metadata":
  {"signature_def": {"signature_def": {...}}}}`` (the SignatureDefs of ``saved_model.pb``)
- ``POST /v1/models/NAME[/versions/V]:predict`` with ``{"signature_name": S, "instances":
  [...]}`` (row format -> ``{"predictions": [...]}``) or ``{"signature_name": S, "inputs":
  {...}}`` (columnar -> ``{"outputs": {...}}``). A single-output signature answers bare
  values, as TF Serving does. ``k`` is a scalar: in row format every instance that gives it
  must give the same value; left out, it is the export's ``default_k``.

Every failure is ``{"error": "..."}``: 400 for a bad request (malformed JSON, wrong types,
missing inputs, unknown signature, ``k`` outside ``1..num_items``, too many rows), 404 for
an unknown model, version or path, 411/413 for a missing or oversized (> ``MAX_BODY``)
body, 500 for a bug. A request never takes the server down.
"""

from __future__ import annotations

import json
import re
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ncf.errors import NcfError
from ncf.serve.client import Export

MAX_BODY = 1 << 20  # bytes
MAX_RANKED_ROWS = 1024  # users (items) per recommend (similar_items) request: [B, N] scores
ROUTE = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+))?(?P<tail>/metadata|:[a-z]+)?$"
)


class HttpError(Exception):
    """A request that cannot be answered: HTTP status and the message for ``{"error": ...}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def predict(export: Export, body: Any) -> dict[str, Any]:
    """Answer a ``:predict`` body in row (``instances``) or columnar (``inputs``) format."""
    import tensorflow as tf

    if not isinstance(body, dict):
        raise HttpError(400, "the request body must be a JSON object")
    name = body.get("signature_name", "serving_default")
    if not isinstance(name, str) or name not in export.signatures:
        raise HttpError(400, f'Serving signature name: "{name}" not found in signature def')
    if ("instances" in body) == ("inputs" in body):
        raise HttpError(
            400, 'the body must hold exactly one of "instances" (row) and "inputs" (columnar)'
        )
    fn = export.signatures[name]
    specs = fn.structured_input_signature[1]  # name -> TensorSpec
    row = "instances" in body
    values = _from_rows(body["instances"], specs) if row else _from_columns(body["inputs"], specs)
    tensors = {key: _tensor(key, values.get(key), spec, export) for key, spec in specs.items()}
    _check_rows(name, tensors)
    try:
        out = {key: _jsonable(t.numpy()) for key, t in sorted(fn(**tensors).items())}
    except tf.errors.InvalidArgumentError as exc:
        raise HttpError(400, exc.message) from None
    if row:
        rows = len(next(iter(out.values())))
        if len(out) == 1:
            return {"predictions": next(iter(out.values()))}
        return {"predictions": [{key: col[i] for key, col in out.items()} for i in range(rows)]}
    return {"outputs": next(iter(out.values())) if len(out) == 1 else out}


def _batched(specs: dict[str, Any]) -> list[str]:
    return [key for key, spec in specs.items() if spec.shape.rank == 1]


def _from_rows(instances: Any, specs: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(instances, list) or not instances:
        raise HttpError(400, '"instances" must be a non-empty list')
    batched = _batched(specs)
    if not all(isinstance(i, dict) for i in instances):
        if len(batched) != 1 or len(specs) > 2 or any(isinstance(i, dict) for i in instances):
            raise HttpError(400, f"each instance must be an object with the inputs {sorted(specs)}")
        return {batched[0]: instances}
    values: dict[str, Any] = {}
    for key in specs:
        given = [i[key] for i in instances if key in i]
        if key in batched:
            if len(given) != len(instances):
                raise HttpError(400, f"every instance needs the input {key!r}")
            values[key] = given
        elif given:
            if any(g != given[0] or type(g) is not type(given[0]) for g in given):
                raise HttpError(
                    400, f"{key!r} is a scalar input: every instance must give the same value"
                )
            values[key] = given[0]
    unknown = {k for i in instances for k in i} - set(specs)
    if unknown:
        raise HttpError(
            400, f"unknown input {sorted(unknown)[0]!r}; this signature takes {sorted(specs)}"
        )
    return values


def _from_columns(inputs: Any, specs: dict[str, Any]) -> dict[str, Any]:
    batched = _batched(specs)
    if not isinstance(inputs, dict):
        if len(batched) != 1:
            raise HttpError(400, f'"inputs" must be an object with the inputs {sorted(specs)}')
        return {batched[0]: inputs}
    unknown = set(inputs) - set(specs)
    if unknown:
        raise HttpError(
            400, f"unknown input {sorted(unknown)[0]!r}; this signature takes {sorted(specs)}"
        )
    return dict(inputs)


def _tensor(key: str, value: Any, spec: Any, export: Export) -> Any:
    import tensorflow as tf

    if spec.dtype == tf.int32 and spec.shape.rank == 0 and key == "k":
        k = export.default_k if value is None else value
        if not isinstance(k, int) or isinstance(k, bool):
            raise HttpError(400, f"k must be an integer, got {json.dumps(k)}")
        if not 1 <= k <= export.num_items:
            raise HttpError(
                400, f"k={k} is out of range: 1 <= k <= {export.num_items} (the catalogue)"
            )
        return tf.constant(k, tf.int32)
    if value is None:
        raise HttpError(400, f"missing input {key!r}")
    if spec.dtype != tf.string or spec.shape.rank != 1:
        raise HttpError(400, f"input {key!r} of type {spec.dtype.name} is not supported")
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise HttpError(400, f"input {key!r} must be a non-empty list of strings (ids are strings)")
    return tf.constant(value, tf.string)


def _check_rows(name: str, tensors: dict[str, Any]) -> None:
    sizes = {int(t.shape[0]) for t in tensors.values() if t.shape.rank == 1}
    if len(sizes) > 1:
        raise HttpError(
            400, f"inputs of {name!r} must all have the same length, got {sorted(sizes)}"
        )
    if name in ("recommend", "similar_items") and max(sizes) > MAX_RANKED_ROWS:
        raise HttpError(400, f"at most {MAX_RANKED_ROWS} rows per {name} request, got {max(sizes)}")


def _jsonable(array: Any) -> Any:
    if array.dtype == object:
        return (
            [_jsonable(a) for a in array] if array.ndim > 1 else [v.decode("utf-8") for v in array]
        )
    return array.tolist()


def metadata(export: Export, model_name: str) -> dict[str, Any]:
    """TF Serving's metadata answer, with the SignatureDefs read from ``saved_model.pb``."""
    from google.protobuf import json_format
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((export.path / "saved_model.pb").read_bytes())
    defs = proto.meta_graphs[0].signature_def
    signature_def = {
        key: json_format.MessageToDict(value, preserving_proto_field_name=True)
        for key, value in defs.items()
        if not key.startswith("__")
    }
    spec = {"name": model_name, "signature_name": "", "version": str(export.version)}
    return {"model_spec": spec, "metadata": {"signature_def": {"signature_def": signature_def}}}


class Handler(BaseHTTPRequestHandler):
    """One request; the export and model name live on the server object."""

    protocol_version = "HTTP/1.1"
    timeout = 30
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall
    server: ModelServer

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        self._answer(self._get)

    def do_POST(self) -> None:  # noqa: N802
        self._answer(self._post)

    def _get(self) -> dict[str, Any]:
        tail = self._route()
        if tail == "/metadata":
            return metadata(self.server.export, self.server.model_name)
        if tail:
            raise HttpError(405, f"{tail} needs POST")
        status = {"error_code": "OK", "error_message": ""}
        version = str(self.server.export.version)
        return {
            "model_version_status": [{"version": version, "state": "AVAILABLE", "status": status}]
        }

    def _post(self) -> dict[str, Any]:
        tail = self._route()
        if tail != ":predict":
            raise HttpError(
                404 if tail in (None, "/metadata") else 400,
                f"POST {self.path}: only :predict is served",
            )
        return predict(self.server.export, self._json_body())

    def _route(self) -> str | None:
        match = ROUTE.match(self.path.split("?", 1)[0])
        if not match:
            raise HttpError(
                404, f"no route for {self.path}; try /v1/models/{self.server.model_name}"
            )
        name, version = match["name"], match["version"]
        if name != self.server.model_name:
            raise HttpError(404, f"Servable not found for request: Latest({name})")
        if version is not None and version != str(self.server.export.version):
            raise HttpError(404, f"Servable not found for request: Specific({name}, {version})")
        return match["tail"]

    def _json_body(self) -> Any:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self.close_connection = True
            raise HttpError(411, "a JSON body with a Content-Length header is required")
        if int(length) > MAX_BODY:
            self.close_connection = True  # the body is left unread
            raise HttpError(413, f"request body of {length} bytes is over the limit of {MAX_BODY}")
        raw = self.rfile.read(int(length))
        try:
            return json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise HttpError(400, f"JSON Parse error: {exc}") from None

    def _answer(self, handler: Any) -> None:
        try:
            status, payload = 200, handler()
        except HttpError as exc:
            status, payload = exc.status, {"error": exc.message}
        except Exception as exc:  # a bug: answer it, keep serving
            self.log_error("internal error: %r", exc)
            status, payload = 500, {"error": f"internal error: {type(exc).__name__}: {exc}"}
        body = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        if not self.server.quiet:
            super().log_message(format, *args)


class ModelServer(ThreadingHTTPServer):
    """A threaded HTTP server holding one loaded :class:`Export`."""

    daemon_threads = True

    def __init__(self, export: Export, host: str, port: int, model_name: str, quiet: bool) -> None:
        self.export, self.model_name, self.quiet = export, model_name, quiet
        super().__init__((host, port), Handler)


def make_server(
    export: Export,
    host: str = "127.0.0.1",
    port: int = 8501,
    model_name: str | None = None,
    quiet: bool = False,
) -> ModelServer:
    """A server ready for ``serve_forever()``; port 0 picks a free port (``server.server_port``)."""
    name = model_name or default_model_name(export)
    try:
        return ModelServer(export, host, port, name, quiet)
    except OSError as exc:
        raise NcfError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def default_model_name(export: Export) -> str:
    """The export base folder's name (``exports/ml100k/3`` -> ``ml100k``), as in TF Serving setups."""
    parent = export.path.parent.name if export.path.name.isdigit() else export.path.name
    return re.sub(r"[^A-Za-z0-9_.-]", "_", parent) or "model"

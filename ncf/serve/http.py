"""``ncf serve``: the TensorFlow Serving REST API for one export, on uvicorn.

The model runs as TF Serving runs it (:class:`~ncf.serve.session.SessionModel`, the TF1
session loader) and request bodies follow TF Serving's JSON rules (:mod:`ncf.serve.rest`).
Routes (``NAME`` is ``--model-name``, ``V`` the loaded version; ``/versions/V`` optional):

- ``GET /v1/models/NAME[/versions/V]``: the model status, as TF Serving;
- ``GET /v1/models/NAME[/versions/V]/metadata``: the SignatureDefs, as TF Serving;
- ``POST /v1/models/NAME[/versions/V]:predict``: row or columnar requests;
- ``GET /healthz`` (alive), ``GET /readyz`` (200 ready; 503 while shutting down),
  ``GET /openapi.json`` (:mod:`ncf.serve.openapi`).

Every answer is JSON; every failure is ``{"error": "..."}``: 400 for a bad request (TF
Serving's wording; also ``Malformed request: METHOD PATH`` for a method a route does not
take, as TF Serving), 404 for an unknown model, version or path, 408 for a request not
received within ``request_timeout_s``, 413 for a body over ``max_body_bytes``, 414/431 for an
over-long URL or header block, 503 when ``max_queue`` model calls already wait, 500 for a bug
(logged; the server keeps serving). Model calls run in a pool of ``workers`` threads;
requests beyond the pool wait in a queue of at most ``max_queue``, and waiting requests of a
row-wise signature are merged into one call (:mod:`ncf.serve.batching`). Requests with more
than ``max_rows`` rows, a ``k`` over ``max_k`` or more than ``max_results`` rows x k are refused
(TF Serving has no such limits).
JSON is parsed and written on the event loop; only model calls run in the pool.

:class:`ServingApp` is the ASGI application; :func:`run_server` runs it on a listening socket
with uvicorn (backlog ``backlog``; SIGTERM: stop accepting, finish what is in flight, exit).
Each request logs one line to the ``ncf.serve.http`` logger.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import time
from typing import Any

import numpy as np
import uvicorn

from ncf.errors import NcfError
from ncf.serve.batching import Batcher
from ncf.serve.limits import Limits
from ncf.serve.metadata import model_metadata
from ncf.serve.openapi import openapi
from ncf.serve.protocol import JsonErrorsProtocol, draining_server
from ncf.serve.rest import parse_predict, predict_response
from ncf.serve.session import ServingError, SessionModel

logger = logging.getLogger(__name__)

MODEL_PATH = re.compile(
    r"^/v1/models(?:/(?P<name>[^/:]+))?"
    r"(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
    r"(?P<tail>/metadata|:[A-Za-z]+)?$",
    re.IGNORECASE,
)


class ServingApp:
    """The ASGI application serving one :class:`SessionModel` as ``model_name``."""

    def __init__(
        self,
        model: SessionModel,
        version: int,
        model_name: str,
        num_items: int,
        limits: Limits | None = None,
    ) -> None:
        self.model, self.version, self.model_name = model, version, model_name
        self.limits = limits = limits or Limits()
        self.batcher = Batcher(model, num_items, limits.workers, limits.max_rows, limits.max_queue)
        self.draining = False
        self.spec = openapi(model_name, model.signature_defs, self.limits)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        start = time.perf_counter()
        method, path = scope["method"], scope["path"]
        headers: list[tuple[bytes, bytes]] = []
        try:
            status, body = await self._route(method, path, scope, receive, headers)
        except ServingError as exc:
            status, body = exc.status, _error(exc.message)
            if status in (408, 413):
                headers.append((b"connection", b"close"))  # the body was not read
        except Exception as exc:  # a bug: answer it, keep serving
            logger.exception("internal error on %s %s", method, path)
            status, body = 500, _error(f"internal error: {type(exc).__name__}: {exc}")
        headers += [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        client = scope.get("client") or ("-", 0)
        logger.info(
            '%s "%s %s" %d %dB %.1fms',
            client[0],
            method,
            path,
            status,
            len(body),
            (time.perf_counter() - start) * 1000,
        )

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.draining = True
                self.batcher.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _route(
        self, method: str, path: str, scope: dict, receive: Any, headers: list
    ) -> tuple[int, bytes]:
        if path in ("/healthz", "/readyz", "/openapi.json"):
            if method not in ("GET", "HEAD"):
                headers.append((b"allow", b"GET, HEAD"))
                raise ServingError(405, f"{method} {path}: only GET is served here")
            if path == "/healthz":
                return 200, _json({"status": "alive"})
            if path == "/readyz":
                if self.draining:
                    raise ServingError(503, "shutting down")
                return 200, _json({"status": "ready"})
            return 200, _json(self.spec)
        if not path.lower().startswith("/v1/"):
            raise ServingError(404, f"no route for {path}; try /v1/models/{self.model_name}")
        match = MODEL_PATH.match(path)
        tail = (match["tail"] or "").lower() if match else None
        if match is None or not match["name"]:
            raise ServingError(400, f"Malformed request: {method} {path}")
        self._check_model(match)
        if method == "POST" and tail == ":predict":
            body = await self._read_body(scope, receive)
            return 200, await self._predict(body, headers)
        if method == "POST" and tail in (":classify", ":regress"):
            raise ServingError(400, f"{tail[1:]}: ncf serve answers :predict only")
        if method == "GET" and tail == "/metadata":
            return 200, _json(self.metadata())
        if method == "GET" and tail == "":
            status = {"error_code": "OK", "error_message": ""}
            version = {"version": str(self.version), "state": "AVAILABLE", "status": status}
            return 200, _json({"model_version_status": [version]})
        raise ServingError(400, f"Malformed request: {method} {path}")

    def _check_model(self, match: re.Match) -> None:
        name, version, label = match["name"], match["version"], match["label"]
        if name != self.model_name:
            raise ServingError(404, f"Servable not found for request: Latest({name})")
        if version is not None and int(version) != self.version:
            raise ServingError(
                404, f"Servable not found for request: Specific({name}, {int(version)})"
            )
        if label is not None:
            raise ServingError(404, f"Unrecognized servable version label: {label}")

    async def _read_body(self, scope: dict, receive: Any) -> bytes:
        limit = self.limits.max_body_bytes
        for key, value in scope["headers"]:
            if key == b"content-length" and value.isdigit() and int(value) > limit:
                raise ServingError(413, f"request body of {int(value)} bytes is over {limit}")
        try:
            return await asyncio.wait_for(
                self._receive_body(receive, limit), self.limits.request_timeout_s
            )
        except asyncio.TimeoutError:
            raise ServingError(
                408, f"the request body did not arrive within {self.limits.request_timeout_s}s"
            ) from None

    @staticmethod
    async def _receive_body(receive: Any, limit: int) -> bytes:
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ServingError(400, "the client went away before the body arrived")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise ServingError(413, f"request body over {limit} bytes")
            chunks.append(chunk)
            more = message.get("more_body", False)
        return b"".join(chunks)

    async def _predict(self, body: bytes, headers: list) -> bytes:
        request = parse_predict(body, self._inputs_of)
        self._check_limits(request.feeds)
        try:
            outputs = await self.batcher.submit(request.signature, request.feeds)
        except ServingError as exc:
            if exc.status == 503:
                headers.append((b"retry-after", b"1"))
            raise
        return _json(predict_response(outputs, request.row))

    def _check_limits(self, feeds: dict[str, np.ndarray]) -> None:
        for name, tensor in feeds.items():
            if tensor.ndim and tensor.shape[0] > self.limits.max_rows:
                raise ServingError(
                    400,
                    f"{name} has {tensor.shape[0]} rows; this server takes at most "
                    f"{self.limits.max_rows} per request (ncf serve --max-rows)",
                )
            if name == "k" and tensor.size and int(np.max(tensor)) > self.limits.max_k:
                raise ServingError(
                    400,
                    f"k={int(np.max(tensor))} is over this server's limit of "
                    f"{self.limits.max_k} (ncf serve --max-k)",
                )
        k, ids = feeds.get("k"), [t for n, t in feeds.items() if n != "k" and t.ndim]
        if k is not None and k.size and ids:
            results = int(np.max(k)) * max(int(t.shape[0]) for t in ids)
            if results > self.limits.max_results:
                raise ServingError(
                    400,
                    f"rows x k = {results} is over this server's limit of "
                    f"{self.limits.max_results} results per request (ncf serve --max-results); "
                    "ask for fewer rows or a smaller k",
                )

    def _inputs_of(self, name: str) -> dict[str, np.dtype]:
        if name not in self.model.signature_defs:
            raise ServingError(400, f'Serving signature name: "{name}" not found in signature def')
        return self.model.inputs(name)

    def metadata(self) -> dict[str, Any]:
        """TF Serving's metadata answer: every SignatureDef of ``saved_model.pb``, rendered as
        TF Serving renders them (:mod:`ncf.serve.metadata`)."""
        return model_metadata(self.model_name, self.version, self.model.meta_signature_defs)


def _json(payload: Any) -> bytes:
    return json.dumps(payload).encode("utf-8")


def _error(message: str) -> bytes:
    return _json({"error": message})


def listen(host: str, port: int, backlog: int) -> socket.socket:
    """A listening TCP socket (port 0: a free one); a failure is an :class:`NcfError`."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family = infos[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(infos[0][4])
        sock.listen(backlog)
    except OSError as exc:
        raise NcfError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def run_server(app: ServingApp, sock: socket.socket) -> None:
    """Serve ``app`` on ``sock`` until SIGTERM or SIGINT, then finish in-flight requests."""
    JsonErrorsProtocol.limits = app.limits
    config = uvicorn.Config(
        app,
        http=JsonErrorsProtocol,
        backlog=app.limits.backlog,
        timeout_keep_alive=30,
        timeout_graceful_shutdown=30,
        log_config=None,
        access_log=False,
        server_header=False,
        lifespan="on",
    )
    draining_server(config, app).run(sockets=[sock])

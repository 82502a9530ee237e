"""uvicorn's HTTP protocol with JSON errors and limits on what a client may send before the app.

uvicorn answers a request it cannot parse with a plain-text 400; :class:`JsonErrorsProtocol`
answers ``{"error": ...}`` instead and adds three limits that uvicorn lacks: the URL (414) and
the header block (431) have a maximum size, and a request's headers must arrive within
``request_timeout_s`` of the first byte (or of the connection) or the connection is answered
408 and closed (slow clients cannot hold connections open). The body's own limits are the
app's (:mod:`ncf.serve.http`, which runs its server with this protocol; the limits are
:class:`~ncf.serve.limits.Limits`). :func:`draining_server` is a uvicorn server that marks
the app as draining (``/readyz`` 503) as soon as SIGTERM or SIGINT arrives.

Draining answers every request whose bytes reached the server before it stopped listening,
which uvicorn alone does not: under load the event loop reads a socket some time after its
bytes arrive, and uvicorn's graceful stop closes every connection that is between two
requests at once (and, closing the listening socket, resets connections the kernel accepted
but the loop had not taken yet); those clients get a reset for a request they sent in time.
Here the connections waiting in the listen queue are taken first, and a connection that
holds bytes of its next request (parsed in part, or still unread in the socket) is kept
until that request is answered, with ``connection: close``; an idle one closes at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import http
import json
import signal
import socket
import struct
from typing import Any, Protocol

try:
    import fcntl
    import termios
except ImportError:  # pragma: no cover - Windows: connections between requests close at once
    fcntl = termios = None  # type: ignore[assignment]

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ncf.serve.limits import Limits


class Drainable(Protocol):
    """An app that stops reporting ready (``/readyz`` 503) once ``draining`` is set."""

    draining: bool


class _Rejected(Exception):
    """Raised inside a parser callback to stop reading the request."""


class JsonErrorsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol with JSON error answers and URL, header and time limits."""

    limits = Limits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rejection: tuple[int, str] | None = None
        self._url_bytes = self._header_bytes = 0
        self._deadline: asyncio.TimerHandle | None = None
        self._draining = self._partial = False  # partial: a request begun, headers not complete

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._url_bytes = self._header_bytes = 0
        self._partial = True
        self._arm()

    def on_url(self, url: bytes) -> None:
        self._url_bytes += len(url)
        if self._url_bytes > self.limits.max_url_bytes:
            self._rejection = (414, f"the URL is longer than {self.limits.max_url_bytes} bytes")
            raise _Rejected
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value) + 4
        if self._header_bytes > self.limits.max_header_bytes:
            self._rejection = (
                431,
                f"the request headers are larger than {self.limits.max_header_bytes} bytes",
            )
            raise _Rejected
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm()
        self._partial = False
        super().on_headers_complete()
        if self._draining and self.cycle is not None:
            self.cycle.keep_alive = False  # answered, then closed

    def shutdown(self) -> None:
        """uvicorn's graceful stop of this connection, except that one holding bytes of its
        next request keeps them: that request is answered, then the connection closes (the
        rest of the request must arrive within the request timeout, as always)."""
        self._draining = True
        idle = self.cycle is None or self.cycle.response_complete
        if idle and (self._partial or unread_bytes(self.transport) > 0):
            self._arm()
            return
        super().shutdown()

    def send_400_response(self, msg: str) -> None:
        status, message = self._rejection or (400, f"bad request: {msg}")
        self._rejection = None
        body = json.dumps({"error": message}).encode()
        head = (
            f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n"
            "content-type: application/json\r\n"
            f"content-length: {len(body)}\r\n"
            "connection: close\r\n\r\n"
        )
        if not self.transport.is_closing():
            self.transport.write(head.encode("ascii") + body)
            self.transport.close()

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.limits.request_timeout_s, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if self.cycle is not None and not self.cycle.response_complete:
            return  # the request is being answered; the app owns the body's deadline
        waited = self.limits.request_timeout_s
        self._rejection = (408, f"the request headers did not arrive within {waited}s")
        self.send_400_response("")


def unread_bytes(transport: Any) -> int:
    """Bytes received on the transport's socket that the event loop has not read yet."""
    sock = transport.get_extra_info("socket")
    if sock is None or fcntl is None or termios is None:
        return 0
    try:
        answer = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
    except (OSError, ValueError):
        return 0
    return int(struct.unpack("i", answer)[0])


def draining_server(config: uvicorn.Config, app: Drainable) -> uvicorn.Server:
    """A uvicorn server that sets ``app.draining`` when asked to exit, takes the connections
    waiting in the listen queue before it stops listening (module docstring), and returns
    normally after the graceful stop (uvicorn would raise the signal again, ending the
    process with it; ``ncf serve`` instead says it stopped and exits 0). A second SIGINT
    forces the exit."""

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            app.draining = True
            if self.should_exit and sig == signal.SIGINT:
                self.force_exit = True
            self.should_exit = True

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            waiting = [conn for sock in sockets or [] for conn in _accept_waiting(sock)]
            for server in self.servers:
                server.close()  # no new connections from here on
            loop = asyncio.get_running_loop()
            protocol_class: Any = self.config.http_protocol_class  # what uvicorn's startup uses
            protocol = functools.partial(
                protocol_class,
                config=self.config,
                server_state=self.server_state,
                app_state=self.lifespan.state,
            )
            for conn in waiting:
                with contextlib.suppress(OSError):
                    await loop.connect_accepted_socket(protocol, conn)
            await super().shutdown(sockets)

    return Server(config)


def _accept_waiting(sock: socket.socket) -> list[socket.socket]:
    """The connections in ``sock``'s listen queue, accepted without waiting."""
    found = []
    try:
        sock.setblocking(False)
        while True:
            conn, _ = sock.accept()
            conn.setblocking(False)
            found.append(conn)
    except OSError:  # BlockingIOError: the queue is empty
        pass
    return found

"""Helpers for tests that talk to a real ``ncf serve`` process over loopback."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


class Server:
    """``ncf serve EXPORT --port 0 ARGS`` in a subprocess; its log goes to a file."""

    def __init__(self, export: Path, log: Path, *args: str) -> None:
        ncf = str(Path(sys.executable).with_name("ncf"))
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        self.log = log
        self.proc = subprocess.Popen(
            [ncf, "serve", str(export), "--port", "0", *args],
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            env=env,
        )
        deadline = time.monotonic() + 120
        while True:
            text = log.read_text() if log.exists() else ""
            if "serving version" in text:
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"ncf serve did not start:\n{text[-3000:]}")
            time.sleep(0.1)
        line = next(ln for ln in text.splitlines() if "serving version" in ln)
        self.url = line.split(" at ", 1)[1].strip()
        self.port = int(self.url.split(":")[2].split("/")[0])
        self.base = "/" + self.url.split("/", 3)[3]  # /v1/models/NAME

    def request(self, method: str, path: str, body=None, headers=None) -> tuple[int, object]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
            conn.request(method, path, data, headers or {})
            response = conn.getresponse()
            return response.status, json.loads(response.read())
        finally:
            conn.close()

    def predict(self, body) -> tuple[int, object]:
        return self.request("POST", self.base + ":predict", body)

    def stop(self, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)


def raw_exchange(port: int, *parts: bytes, pause: float = 0.0, timeout: float = 30) -> bytes:
    """Send ``parts`` on one connection (``pause`` seconds between them), read to the close."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        for n, part in enumerate(parts):
            if n and pause:
                time.sleep(pause)
            try:
                sock.sendall(part)
            except OSError:
                break  # the server may answer and close before everything is sent
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            chunks.append(chunk)
            if _complete(b"".join(chunks)):
                break
    return b"".join(chunks)


def _complete(data: bytes) -> bool:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def parse_response(data: bytes) -> tuple[int, dict[str, str], object]:
    """Status, headers (lower-case names) and the JSON body of a raw HTTP response."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, json.loads(body)

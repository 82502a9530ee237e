"""What one ``ncf serve`` request may ask and how much work the server takes on at once.

:class:`Limits` is read by the ASGI app (:mod:`ncf.serve.http`: body size, rows, ``k``,
workers, queue), by the HTTP protocol (:mod:`ncf.serve.protocol`: URL and header sizes, the
request deadline) and by the OpenAPI description (:mod:`ncf.serve.openapi`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """What one request may ask and how much work the server takes on at once."""

    max_body_bytes: int = 1 << 20
    max_rows: int = 1024  # first dimension of any input tensor
    max_k: int = 1000
    max_results: int = 1 << 18  # rows x k of one request: bounds the answer's size
    max_url_bytes: int = 8 << 10
    max_header_bytes: int = 16 << 10
    request_timeout_s: float = 10.0  # to receive a whole request
    workers: int = max(2, os.cpu_count() or 2)  # model calls at once
    max_queue: int = 1024  # model calls waiting for a worker
    backlog: int = 2048

"""The HTTP plumbing the fake provider servers share (GitLab, ServiceNow, PagerDuty, Opsgenie).

Why one module: each fake used to carry its own copy of the same machinery (a threaded server
on 127.0.0.1 started and stopped around a test, a request log that keeps the auth *scheme* but
never the secret, and fault injection: 5xx, 429 with ``Retry-After``, a dropped connection, a
truncated body, scripted with ``fail()`` or drawn at a seeded ``fault_rate``). The copies had
started to drift; a fix to one (say, flushing a truncated body before closing) belongs to all.
Here lives the plumbing only: what a provider answers (its routes, bodies, headers, error
shapes and rate-limit headers) stays in that provider's module.

- :class:`FakeServer`: lifecycle (``start``/``stop``, context manager, ``url``), the request
  log (``requests``, ``clear_log``) and the fault queue (``fail``, ``fault_rate``, ``injected``).
- :class:`JSONHandler`: a quiet keep-alive handler that sends JSON, drops connections and
  truncates bodies; each fake subclasses it for its routes.
"""

from __future__ import annotations

import json
import random
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

RANDOM_FAULTS = ("500", "502", "503", "429", "drop", "truncate")


@dataclass
class Fault:
    """Answer the next ``times`` requests whose path matches ``pattern`` with ``kind``: a
    status (``"500"``, ``"503"``, ``"401"``...), ``"429"``, ``"drop"`` or ``"truncate"``."""

    pattern: str
    kind: str
    times: int = 1
    retry_after: str = "2"


class FakeServer:
    """A threaded HTTP server on 127.0.0.1 with a request log and fault injection.

    Subclasses call :meth:`_init_server` from their constructor with the function that makes
    their request handler class (bound to the fake). ``fault_rate`` answers
    that share of requests with a random fault from ``RANDOM_FAULTS`` (seeded by ``seed``);
    the kinds drawn are appended to ``injected``.
    """

    faults: list[Any]
    log: list[Any]

    def _init_server(
        self,
        make_handler: Callable[[Any], type[BaseHTTPRequestHandler]],
        *,
        fault_rate: float = 0.0,
        seed: int = 0,
    ) -> None:
        self._make_handler = make_handler
        self.fault_rate = fault_rate
        self.rng = random.Random(seed)
        self.faults = []
        self.log = []
        self.injected: list[str] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> Any:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._make_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # --- request log and faults ----------------------------------------------------------

    def fail(self, pattern: str, kind: str, times: int = 1, *, retry_after: str = "2") -> None:
        with self._lock:
            self.faults.append(Fault(pattern, kind, times, retry_after))

    def requests(self, pattern: str = "") -> list[Any]:
        with self._lock:
            return [r for r in self.log if re.search(pattern, r.path)]

    def clear_log(self) -> None:
        with self._lock:
            self.log.clear()

    def _take_fault(self, path: str) -> Any:
        with self._lock:
            for fault in self.faults:
                if fault.times > 0 and re.search(fault.pattern, path):
                    fault.times -= 1
                    return fault
            if self.fault_rate and self.rng.random() < self.fault_rate:
                kind = self.rng.choice(RANDOM_FAULTS)
                self.injected.append(kind)
                return Fault(".", kind)
        return None

    def _record(self, entry: Any) -> None:
        with self._lock:
            self.log.append(entry)


def split_request(path: str) -> tuple[str, dict[str, str]]:
    """The path and the query (the last value of each parameter) of a request target."""
    split = urlsplit(path)
    return split.path, {k: v[-1] for k, v in parse_qs(split.query).items()}


def auth_scheme(header: str) -> str:
    """The scheme of an ``Authorization`` header, lower-case (never its secret)."""
    return header.split(" ", 1)[0].lower() if header else ""


class JSONHandler(BaseHTTPRequestHandler):
    """A quiet HTTP/1.1 handler that answers JSON; ``content_type`` is the fake's media type."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # no 40 ms delayed-ACK stalls on keep-alive connections
    content_type = "application/json"
    truncated_type = ""  # the Content-Type of a truncated body, if not ``content_type``

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def drop(self) -> None:
        """Close the socket without a response."""
        self.close_connection = True
        self.connection.shutdown(2)

    def send_json(
        self,
        status: int,
        data: bytes,
        headers: Iterable[tuple[str, str]],
        *,
        length: int = -1,
        content_type: str = "",
    ) -> None:
        """Send ``data`` (already JSON) with ``headers`` after the content headers;
        ``length`` overrides the declared Content-Length."""
        self.send_response(status)
        self.send_header("Content-Type", content_type or self.content_type)
        self.send_header("Content-Length", str(len(data) if length < 0 else length))
        for key, value in headers:
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def send_truncated(self, status: int, body: Any, *, declare_full: bool = False) -> None:
        """Send the first half of ``body`` and close; ``declare_full`` announces the whole
        length (a short read) instead of the half's."""
        data = json.dumps(body).encode()
        cut = data[: max(1, len(data) // 2)]
        length = len(data) if declare_full else len(cut)
        self.send_json(status, cut, (), length=length, content_type=self.truncated_type)
        self.wfile.flush()
        self.close_connection = True

    def transport_fault(
        self, kind: str, record: Callable[[int], None], route: Callable[[], tuple[int, Any]]
    ) -> bool:
        """Carry out a ``drop`` or ``truncate`` fault (``record`` logs the status sent,
        ``route`` gives the real answer); False for any other kind."""
        if kind == "drop":
            record(0)
            self.drop()
            return True
        if kind == "truncate":
            status, body = route()
            record(status)
            self.send_truncated(status, body)
            return True
        return False


__all__ = [
    "RANDOM_FAULTS",
    "FakeServer",
    "Fault",
    "JSONHandler",
    "auth_scheme",
    "split_request",
]

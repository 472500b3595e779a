"""A fake Opsgenie API on 127.0.0.1: a real threaded HTTP server that answers the Incident API's
list (``GET /v1/incidents``) and the Alert API's list (``GET /v2/alerts``) with exactly the
shapes of Opsgenie's OpenAPI description (``opsgenie/opsgenie-oas``: ``ListIncidentsResponse``
of ``BaseIncident``, ``ListAlertsResponse`` of ``BaseAlert``, ``PageDetails``, ``ErrorResponse``),
its paging, auth and faults, for the Opsgenie connector's tests.

- ``Authorization: GenieKey <key>``; anything else is 401 with ``ErrorResponse``
  (``{"message": ..., "took": ..., "requestId": ...}``);
- ``query`` (required for incidents): terms joined by ``AND``; ``createdAt`` compared with
  ``<``, ``<=``, ``>``, ``>=`` or ``=`` against epoch milliseconds, ``status``, ``priority``,
  ``tag`` with ``:`` or ``=``; an unknown field or a bad term is a 422;
- ``offset``, ``limit`` (default 20, at most 100), ``sort`` (``createdAt``, ``updatedAt``,
  ``tinyId``, ``status``), ``order`` (``desc`` by default);
- ``paging`` in the body and ``X-Paging-Next`` / ``X-Paging-First`` / ``X-Paging-Last`` headers;
  ``X-Request-ID`` on every response; ``offset + limit`` above ``max_offset`` is a 422;
- 429 ``ErrorResponse`` with ``X-RateLimit-State: THROTTLED``, ``X-RateLimit-Reason`` and
  ``X-RateLimit-Period-In-Sec`` (the fault adds ``Retry-After``).

Faults: :meth:`FakeOpsgenie.fail` and ``fault_rate`` as in the other fake servers: 5xx, 429, a
dropped connection, a truncated body. ``log`` records every request (its scheme, never its key).

- https://docs.opsgenie.com/docs/incident-api#list-incidents
- https://docs.opsgenie.com/docs/alert-api#list-alerts
- https://docs.opsgenie.com/docs/pagination
- https://docs.opsgenie.com/docs/api-rate-limiting
"""

from __future__ import annotations

import itertools
import json
import random
import re
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

JSON = dict[str, Any]
_TERM = re.compile(r"^\s*(\w+)\s*(<=|>=|<|>|=|:)\s*(\S+)\s*$")


def og_time(value: datetime) -> str:
    """Opsgenie's time text: ISO-8601 UTC with milliseconds and ``Z``."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _millis(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


class Account:
    """The incidents and alerts of one Opsgenie account."""

    def __init__(self, seed: int = 1) -> None:
        self.incidents: dict[str, JSON] = {}
        self.alerts: dict[str, JSON] = {}
        self.lock = threading.RLock()
        self._tiny = itertools.count(1)
        self._rng = random.Random(seed)

    def _id(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def incident(
        self,
        at: datetime,
        *,
        message: str,
        priority: str = "P3",
        tags: tuple[str, ...] = (),
        team: str | None = None,
        resolved_at: datetime | None = None,
    ) -> str:
        """Open an incident (``BaseIncident``); returns its id."""
        with self.lock:
            incident_id = self._id()
            self.incidents[incident_id] = {
                "id": incident_id,
                "tinyId": str(next(self._tiny)),
                "message": message,
                "status": "open",
                "isSeen": True,
                "tags": list(tags),
                "createdAt": og_time(at),
                "updatedAt": og_time(at),
                "source": "deliverypulse-demo",
                "owner": "",
                "priority": priority,
                "responders": [{"type": "team", "id": self._id()}],
                "ownerTeam": team or "",
                "extraProperties": {},
            }
            if resolved_at is not None:
                self.resolve(incident_id, resolved_at)
            return incident_id

    def resolve(self, incident_id: str, at: datetime, *, close: bool = False) -> None:
        with self.lock:
            record = self.incidents[incident_id]
            record.update(status="closed" if close else "resolved", updatedAt=og_time(at))

    def alert(
        self,
        at: datetime,
        *,
        message: str,
        priority: str = "P3",
        tags: tuple[str, ...] = (),
        closed_at: datetime | None = None,
    ) -> str:
        """Create an alert (``BaseAlert``); returns its id."""
        with self.lock:
            alert_id = self._id()
            self.alerts[alert_id] = {
                "id": alert_id,
                "tinyId": str(next(self._tiny)),
                "alias": alert_id[:8],
                "message": message,
                "status": "open",
                "acknowledged": False,
                "isSeen": False,
                "tags": list(tags),
                "snoozed": False,
                "count": 1,
                "lastOccurredAt": og_time(at),
                "createdAt": og_time(at),
                "updatedAt": og_time(at),
                "source": "monitoring",
                "owner": "",
                "priority": priority,
                "responders": [],
                "integration": {"id": self._id(), "name": "Datadog", "type": "Datadog"},
                "report": {},
            }
            if closed_at is not None:
                self.close_alert(alert_id, closed_at)
            return alert_id

    def close_alert(self, alert_id: str, at: datetime) -> None:
        with self.lock:
            record = self.alerts[alert_id]
            close_ms = _millis(og_time(at)) - _millis(record["createdAt"])
            record.update(status="closed", updatedAt=og_time(at))
            record["report"] = {"closeTime": close_ms, "closedBy": "alice"}

    def query(self, kind: str, text: str) -> list[JSON] | str:
        """The items of ``kind`` the search query selects; or why it is invalid."""
        tests = []
        for term in re.split(r"\s+AND\s+", text.strip(), flags=re.IGNORECASE) if text else []:
            match = _TERM.match(term)
            if not match:
                return f"Invalid query term: {term}"
            name, op, value = match.groups()
            if name not in ("createdAt", "status", "priority", "tag"):
                return f"Unknown query field: {name}"
            tests.append((name, op, value))
        with self.lock:
            items = list((self.incidents if kind == "incidents" else self.alerts).values())
        return [dict(i) for i in items if all(_matches(i, *t) for t in tests)]


def _matches(item: JSON, name: str, op: str, value: str) -> bool:
    if name == "createdAt":
        mine, given = _millis(item["createdAt"]), int(value)
        return {
            "<": mine < given,
            "<=": mine <= given,
            ">": mine > given,
            ">=": mine >= given,
        }.get(op, mine == given)
    if name == "tag":
        return value in item["tags"]
    return str(item[name]).lower() == value.lower()


@dataclass
class Fault:
    pattern: str
    kind: str
    times: int = 1
    retry_after: str = "2"


@dataclass
class LoggedRequest:
    path: str
    query: dict[str, str]
    status: int
    authorization: str  # "geniekey" or "" (never the key)


RANDOM_FAULTS = ("500", "502", "503", "429", "drop", "truncate")


class FakeOpsgenie:
    """The server; ``url`` is its API root. ``key`` is the API key it accepts."""

    def __init__(
        self,
        account: Account | None = None,
        *,
        key: str | None = None,
        max_offset: int = 20_000,
        fault_rate: float = 0.0,
        seed: int = 19,
    ) -> None:
        self.account = account or Account()
        self.key = key
        self.max_offset = max_offset
        self.fault_rate = fault_rate
        self.rng = random.Random(seed)
        self.faults: list[Fault] = []
        self.log: list[LoggedRequest] = []
        self.injected: list[str] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def __enter__(self) -> FakeOpsgenie:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def fail(self, pattern: str, kind: str, times: int = 1, *, retry_after: str = "2") -> None:
        with self._lock:
            self.faults.append(Fault(pattern, kind, times, retry_after))

    def clear_log(self) -> None:
        with self._lock:
            self.log.clear()

    def _take_fault(self, path: str) -> Fault | None:
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

    def _record(self, entry: LoggedRequest) -> None:
        with self._lock:
            self.log.append(entry)


def error_response(message: str, request_id: str) -> JSON:
    """Opsgenie's ``ErrorResponse``."""
    return {"message": message, "took": 0.002, "requestId": request_id}


def _make_handler(fake: FakeOpsgenie) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

        def do_GET(self) -> None:
            split = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(split.query).items()}
            auth = self.headers.get("Authorization", "")
            entry = LoggedRequest(split.path, query, 0, auth.split(" ", 1)[0].lower())
            request_id = str(uuid.uuid4())
            fault = fake._take_fault(split.path)
            if fault is not None and self._fault(fault, entry, request_id):
                return
            if fake.key is not None and auth != f"GenieKey {fake.key}":
                body = error_response("Could not authenticate", request_id)
                return self._send(401, body, {}, entry, request_id)
            status, body, headers = self._route(split.path, query, request_id)
            self._send(status, body, headers, entry, request_id)

        def _route(
            self, path: str, query: dict[str, str], request_id: str
        ) -> tuple[int, Any, dict[str, str]]:
            kinds = {"/v1/incidents": "incidents", "/v2/alerts": "alerts"}
            kind = kinds.get(path.rstrip("/"))
            if kind is None:
                return 404, error_response("Not found", request_id), {}
            if kind == "incidents" and "query" not in query:
                return 422, error_response("Query is required", request_id), {}
            try:
                offset = int(query.get("offset", "0"))
                limit = int(query.get("limit", "20"))
            except ValueError:
                return 422, error_response("Invalid offset or limit", request_id), {}
            if not 1 <= limit <= 100 or offset < 0:
                return 422, error_response("Invalid offset or limit", request_id), {}
            if offset + limit > fake.max_offset:
                message = f"offset + limit cannot exceed {fake.max_offset}"
                return 422, error_response(message, request_id), {}
            found = fake.account.query(kind, query.get("query", ""))
            if isinstance(found, str):
                return 422, error_response(found, request_id), {}
            sort = query.get("sort", "createdAt")
            if sort not in ("createdAt", "updatedAt", "tinyId", "status"):
                return 422, error_response(f"Invalid sort field: {sort}", request_id), {}
            key = (lambda i: int(i["tinyId"])) if sort == "tinyId" else (lambda i: i[sort])
            found.sort(key=key, reverse=query.get("order", "desc") != "asc")
            page = found[offset : offset + limit]
            base = f"http://{self.headers.get('Host')}{path}"

            def at(start: int) -> str:
                return f"{base}?{urlencode({**query, 'offset': start, 'limit': limit})}"

            paging = {"first": at(0), "last": at(max(0, (len(found) - 1) // limit * limit))}
            if offset + limit < len(found):
                paging["next"] = at(offset + limit)
            if offset > 0:
                paging["prev"] = at(max(0, offset - limit))
            headers = {f"X-Paging-{k.title()}": v for k, v in paging.items()}
            body = {"data": page, "paging": paging, "took": 0.011, "requestId": request_id}
            return 200, body, headers

        def _fault(self, fault: Fault, entry: LoggedRequest, request_id: str) -> bool:
            if fault.kind == "drop":
                fake._record(entry)
                self.close_connection = True
                self.connection.shutdown(2)
                return True
            if fault.kind == "truncate":
                status, body, headers = self._route(entry.path, entry.query, request_id)
                data = json.dumps(body).encode()
                cut = data[: max(1, len(data) // 2)]
                entry.status = status
                fake._record(entry)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(cut)))
                self.end_headers()
                self.wfile.write(cut)
                self.wfile.flush()
                self.close_connection = True
                return True
            if fault.kind == "429":
                headers = {
                    "X-RateLimit-State": "THROTTLED",
                    "X-RateLimit-Reason": "ACCOUNT",
                    "X-RateLimit-Period-In-Sec": "60",
                    "Retry-After": fault.retry_after,
                }
                body = error_response("You are making too many requests!", request_id)
                self._send(429, body, headers, entry, request_id)
                return True
            status = int(fault.kind)
            body = error_response("Internal Server Error", request_id)
            self._send(status, body, {}, entry, request_id)
            return True

        def _send(
            self,
            status: int,
            body: Any,
            headers: dict[str, str],
            entry: LoggedRequest,
            request_id: str,
        ) -> None:
            data = json.dumps(body).encode()
            entry.status = status
            fake._record(entry)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-Request-ID", request_id)
            self.send_header("X-Response-Time", "0.011")
            if status != 429:
                self.send_header("X-RateLimit-State", "OK")
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler


def demo_account(now: datetime, days: int = 90) -> Account:
    """A few incidents and alerts over the last ``days`` days, for the demo."""
    account = Account()
    for day in range(0, days, 6):
        opened = now - timedelta(days=days - day)
        account.incident(opened, message=f"Checkout errors {day}", priority="P2", tags=("web",))
        account.alert(opened, message="High latency", tags=("web",), closed_at=opened)
    return account


__all__ = [
    "Account",
    "FakeOpsgenie",
    "Fault",
    "LoggedRequest",
    "demo_account",
    "error_response",
    "og_time",
]

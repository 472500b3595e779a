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
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlencode

from deliverypulse.demo.fakeserver import FakeServer, Fault, JSONHandler, auth_scheme, split_request

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
class LoggedRequest:
    path: str
    query: dict[str, str]
    status: int
    authorization: str  # "geniekey" or "" (never the key)


class FakeOpsgenie(FakeServer):
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
        self._init_server(_make_handler, fault_rate=fault_rate, seed=seed)


def error_response(message: str, request_id: str) -> JSON:
    """Opsgenie's ``ErrorResponse``."""
    return {"message": message, "took": 0.002, "requestId": request_id}


def _make_handler(fake: FakeOpsgenie) -> type[BaseHTTPRequestHandler]:
    class Handler(JSONHandler):
        def do_GET(self) -> None:
            path, query = split_request(self.path)
            auth = self.headers.get("Authorization", "")
            entry = LoggedRequest(path, query, 0, auth_scheme(auth))
            request_id = str(uuid.uuid4())
            fault = fake._take_fault(path)
            if fault is not None and self._fault(fault, entry, request_id):
                return
            if fake.key is not None and auth != f"GenieKey {fake.key}":
                body = error_response("Could not authenticate", request_id)
                return self._send(401, body, {}, entry, request_id)
            status, body, headers = self._route(path, query, request_id)
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
            def record(status: int) -> None:
                entry.status = status
                fake._record(entry)

            def route() -> tuple[int, Any]:
                return self._route(entry.path, entry.query, request_id)[:2]

            if self.transport_fault(fault.kind, record, route):
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
            entry.status = status
            fake._record(entry)
            ok = [] if status == 429 else [("X-RateLimit-State", "OK")]
            own = [("X-Request-ID", request_id), ("X-Response-Time", "0.011"), *ok]
            self.send_json(status, json.dumps(body).encode(), [*own, *headers.items()])

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

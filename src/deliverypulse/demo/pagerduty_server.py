"""A fake PagerDuty REST API v2 on 127.0.0.1: a real threaded HTTP server that answers
``GET /incidents`` with PagerDuty's shapes, limits, auth and faults, for the PagerDuty
connector's tests and the demo.

Shapes and rules follow PagerDuty's OpenAPI description (``reference/REST/openapiv3.json`` in
github.com/PagerDuty/api-schema, operation ``listIncidents``) and its pagination and rate-limit
pages:

- ``Authorization: Token token=<key>`` (``Bearer <token>`` for OAuth apps); anything else is
  401 with PagerDuty's error body ``{"error": {"message": ..., "code": ...}}``;
- ``since`` / ``until``: the creation range; when both are missing the range is the last month,
  one given alone is paired with now (or a month before ``until``); a range longer than 6
  months is a 400 (``ArgumentError``); ``date_range=all`` ignores both;
- ``statuses[]``, ``service_ids[]``, ``urgencies[]``, ``sort_by`` (``created_at``,
  ``incident_number``, ``resolved_at``, ``urgency`` with ``:asc`` / ``:desc``), ``total``;
- classic (offset) pagination: ``limit`` (at most 100), ``offset``, and ``more`` in the body;
  ``offset + limit`` above ``max_offset`` (10,000 like the API) is a 400;
- 429 with ``ratelimit-limit``, ``ratelimit-remaining: 0`` and ``ratelimit-reset`` (seconds).

Faults: :meth:`FakePagerDuty.fail` (the next N matching requests) and ``fault_rate`` (that share
of all requests, seeded): 5xx, 429 (with ``Retry-After`` as well), a dropped connection, a
truncated body. ``log`` records every request (its auth scheme, never its key).

- https://developer.pagerduty.com/api-reference/9d0b4b12e36f9-list-incidents
- https://developer.pagerduty.com/docs/rest-api-v2/pagination/
- https://support.pagerduty.com/main/docs/rest-api-rate-limits
"""

from __future__ import annotations

import calendar
import itertools
import json
import random
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from deliverypulse.demo.fakeserver import FakeServer, Fault, JSONHandler, auth_scheme

JSON = dict[str, Any]
API = "https://api.pagerduty.com"
WEB = "https://acme.pagerduty.com"
ACCEPT = "application/vnd.pagerduty+json;version=2"


def pd_time(value: datetime) -> str:
    """PagerDuty's time text: ISO-8601 UTC to the second, with ``Z``."""
    return value.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _parse(text: str) -> datetime:
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def add_months(value: datetime, months: int) -> datetime:
    month = value.month - 1 + months
    year, month = value.year + month // 12, month % 12 + 1
    day = min(value.day, calendar.monthrange(year, month)[1])
    return value.replace(year=year, month=month, day=day)


def _reference(kind: str, object_id: str, summary: str, path: str) -> JSON:
    return {
        "id": object_id,
        "type": f"{kind}_reference",
        "summary": summary,
        "self": f"{API}/{path}/{object_id}",
        "html_url": f"{WEB}/{path}/{object_id}",
    }


class Account:
    """The incidents of one PagerDuty account, written the way PagerDuty writes them."""

    def __init__(self) -> None:
        self.incidents: dict[str, JSON] = {}
        self.services: dict[str, str] = {}  # name -> id
        self.lock = threading.RLock()
        self._numbers = itertools.count(1)
        self._ids = itertools.count(1)

    def _id(self) -> str:
        return f"P{next(self._ids):06X}"

    def service(self, name: str) -> str:
        """The id of the service called ``name`` (created if new)."""
        with self.lock:
            if name not in self.services:
                self.services[name] = self._id()
            return self.services[name]

    def incident(
        self,
        at: datetime,
        *,
        title: str,
        service: str,
        urgency: str = "high",
        priority: str | None = None,
        teams: tuple[str, ...] = (),
        resolved_at: datetime | None = None,
    ) -> str:
        """Trigger an incident on ``service`` (a name) at ``at``; returns its id."""
        with self.lock:
            number = next(self._numbers)
            incident_id = self._id()
            service_id = self.service(service)
            self.incidents[incident_id] = {
                "id": incident_id,
                "type": "incident",
                "summary": f"[#{number}] {title}",
                "self": f"{API}/incidents/{incident_id}",
                "html_url": f"{WEB}/incidents/{incident_id}",
                "incident_number": number,
                "title": title,
                "created_at": pd_time(at),
                "updated_at": pd_time(at),
                "status": "triggered",
                "incident_key": f"{number:032x}",
                "service": _reference("service", service_id, service, "services"),
                "assignments": [],
                "assigned_via": "escalation_policy",
                "last_status_change_at": pd_time(at),
                "resolved_at": None,
                "first_trigger_log_entry": {
                    "id": f"R{number:013d}",
                    "type": "trigger_log_entry_reference",
                    "summary": "Triggered through the API",
                    "self": f"{API}/log_entries/R{number:013d}?incident_id={incident_id}",
                    "html_url": f"{WEB}/incidents/{incident_id}/log_entries/R{number:013d}",
                },
                "alert_counts": {"all": 1, "triggered": 1, "resolved": 0},
                "is_mergeable": True,
                "incident_type": {"name": "incident_default"},
                "escalation_policy": _reference(
                    "escalation_policy", "PEP0001", "Default", "escalation_policies"
                ),
                "teams": [
                    _reference("team", f"PT{i:05d}", name, "teams") for i, name in enumerate(teams)
                ],
                "pending_actions": [],
                "acknowledgements": [],
                "alert_grouping": None,
                "last_status_change_by": _reference("service", service_id, service, "services"),
                "priority": (
                    {
                        "id": f"PRI{priority}",
                        "type": "priority_reference",
                        "summary": priority,
                        "self": f"{API}/priorities/PRI{priority}",
                    }
                    if priority
                    else None
                ),
                "resolve_reason": None,
                "incidents_responders": [],
                "responder_requests": [],
                "urgency": urgency,
            }
            if resolved_at is not None:
                self.resolve(incident_id, resolved_at)
            return incident_id

    def acknowledge(self, incident_id: str, at: datetime) -> None:
        with self.lock:
            record = self.incidents[incident_id]
            record.update(status="acknowledged", updated_at=pd_time(at))
            record["last_status_change_at"] = pd_time(at)

    def resolve(self, incident_id: str, at: datetime) -> None:
        with self.lock:
            record = self.incidents[incident_id]
            record.update(status="resolved", resolved_at=pd_time(at), updated_at=pd_time(at))
            record["last_status_change_at"] = pd_time(at)
            record["alert_counts"] = {"all": 1, "triggered": 0, "resolved": 1}

    def query(self, query: dict[str, list[str]], now: datetime) -> list[JSON] | str:
        """The incidents ``query`` selects, sorted; or the reason it is invalid."""
        one = {k: v[-1] for k, v in query.items()}
        if one.get("date_range") == "all":
            since, until = None, None
        else:
            try:
                since = _parse(one["since"]) if one.get("since") else None
                until = _parse(one["until"]) if one.get("until") else None
            except ValueError:
                return "since and until must be ISO-8601 times"
            if since is None and until is None:
                since, until = add_months(now, -1), now
            elif until is None:
                assert since is not None
                until = now
            elif since is None:
                since = add_months(until, -1)
            assert since is not None and until is not None
            if until < since:
                return "until must be after since"
            if until > add_months(since, 6):
                return "The date range cannot be longer than 6 months."
        statuses = set(query.get("statuses[]", ()))
        services = set(query.get("service_ids[]", ()))
        urgencies = set(query.get("urgencies[]", ()))
        with self.lock:
            found = [
                dict(i)
                for i in self.incidents.values()
                if (since is None or _parse(i["created_at"]) >= since)
                and (until is None or _parse(i["created_at"]) < until)
                and (not statuses or i["status"] in statuses)
                and (not services or i["service"]["id"] in services)
                and (not urgencies or i["urgency"] in urgencies)
            ]
        for spec in reversed((one.get("sort_by") or "created_at").split(",")):
            name, _, order = spec.partition(":")
            if name not in ("created_at", "incident_number", "resolved_at", "urgency"):
                return f"sort_by {name} is not supported"
            found.sort(key=_sort_key(name), reverse=order == "desc")
        return found


def _sort_key(name: str) -> Any:
    def key(incident: JSON) -> tuple[bool, str]:
        value = incident[name]
        return value is None, "" if value is None else f"{value:>20}"

    return key


@dataclass
class LoggedRequest:
    path: str
    query: dict[str, list[str]]
    status: int
    authorization: str  # "token", "bearer" or "" (never the key)
    accept: str = ""
    headers: dict[str, str] = field(default_factory=dict)


def error_body(message: str, code: int, errors: list[str] | None = None) -> JSON:
    """PagerDuty's error body."""
    body: JSON = {"message": message, "code": code}
    if errors:
        body["errors"] = errors
    return {"error": body}


class FakePagerDuty(FakeServer):
    """The server. Use as a context manager; ``url`` is its API root.

    ``token`` is the API key it accepts (None: any request). ``fault_rate`` answers that share
    of requests with a random fault from ``RANDOM_FAULTS`` (seeded by ``seed``); ``max_offset``
    is the largest ``offset + limit`` it serves; ``now`` (default: the real time) ends the
    default range.
    """

    def __init__(
        self,
        account: Account | None = None,
        *,
        token: str | None = None,
        max_offset: int = 10_000,
        max_limit: int = 100,
        fault_rate: float = 0.0,
        seed: int = 17,
    ) -> None:
        self.account = account or Account()
        self.token = token
        self.max_offset = max_offset
        self.max_limit = max_limit
        self._request_ids = itertools.count(1)
        self._init_server(_make_handler, fault_rate=fault_rate, seed=seed)

    def authorised(self, header: str) -> bool:
        if self.token is None:
            return True
        return header in (f"Token token={self.token}", f"Bearer {self.token}")


def _make_handler(fake: FakePagerDuty) -> type[BaseHTTPRequestHandler]:
    class Handler(JSONHandler):
        content_type = "application/json; charset=utf-8"

        def do_GET(self) -> None:
            split = urlsplit(self.path)
            query = parse_qs(split.query)
            auth = self.headers.get("Authorization", "")
            entry = LoggedRequest(
                split.path,
                query,
                0,
                auth_scheme(auth),
                self.headers.get("Accept", ""),
                {k: v for k, v in self.headers.items() if k.lower() != "authorization"},
            )
            fault = fake._take_fault(split.path)
            if fault is not None and self._fault(fault, entry):
                return
            if not fake.authorised(auth):
                return self._send(401, error_body("Unauthorized", 2006), {}, entry)
            status, body = self._route(split.path, query)
            self._send(status, body, {}, entry)

        def _route(self, path: str, query: dict[str, list[str]]) -> tuple[int, Any]:
            if path.rstrip("/") != "/incidents":
                return 404, error_body("Not Found", 2100)
            try:
                limit = int(query.get("limit", ["25"])[-1])
                offset = int(query.get("offset", ["0"])[-1])
            except ValueError:
                return 400, error_body("Invalid Input Provided", 2001, ["limit/offset"])
            limit = max(1, min(limit, fake.max_limit))
            if offset + limit > fake.max_offset:
                return 400, error_body(
                    "Invalid Input Provided",
                    2001,
                    [f"Offset must be less than or equal to {fake.max_offset - limit}."],
                )
            found = fake.account.query(query, datetime.now(UTC))
            if isinstance(found, str):
                return 400, error_body("Invalid Input Provided", 2001, [found])
            page = found[offset : offset + limit]
            total = len(found) if query.get("total", ["false"])[-1] == "true" else None
            return 200, {
                "incidents": page,
                "limit": limit,
                "offset": offset,
                "more": offset + len(page) < len(found),
                "total": total,
            }

        def _fault(self, fault: Fault, entry: LoggedRequest) -> bool:
            def record(status: int) -> None:
                entry.status = status
                fake._record(entry)

            def route() -> tuple[int, Any]:
                return self._route(entry.path, entry.query)

            if self.transport_fault(fault.kind, record, route):
                return True
            if fault.kind == "429":
                headers = {
                    "ratelimit-limit": "960",
                    "ratelimit-remaining": "0",
                    "ratelimit-reset": fault.retry_after,
                    "Retry-After": fault.retry_after,
                }
                self._send(429, error_body("Rate Limit Exceeded", 2020), headers, entry)
                return True
            status = int(fault.kind)
            message = {401: "Unauthorized", 403: "Forbidden"}.get(status, "Internal Server Error")
            self._send(status, error_body(message, 2000 + status), {}, entry)
            return True

        def _send(self, status: int, body: Any, headers: dict[str, str], entry: Any) -> None:
            entry.status = status
            fake._record(entry)
            request_id = ("x-request-id", f"req-{next(fake._request_ids):08d}")
            self.send_json(status, json.dumps(body).encode(), [request_id, *headers.items()])

    return Handler


def demo_account(now: datetime, services: dict[str, int], *, seed: int = 3) -> Account:
    """An account with ``count`` incidents on each named service over the last ``count * 9``
    days (a few still open, a few low urgency), for the demo."""
    rng = random.Random(seed)
    account = Account()
    for name, count in services.items():
        for index in range(count):
            opened = now - timedelta(days=9 * (index + 1), hours=rng.uniform(0, 12))
            urgency = "low" if rng.random() < 0.2 else "high"
            resolved = None if index == 0 else opened + timedelta(minutes=rng.uniform(10, 600))
            account.incident(
                opened,
                title=f"{name}: elevated error rate",
                service=name,
                urgency=urgency,
                priority=rng.choice(["P1", "P2", "P3"]),
                resolved_at=resolved,
            )
    return account


__all__ = [
    "ACCEPT",
    "Account",
    "FakePagerDuty",
    "Fault",
    "LoggedRequest",
    "add_months",
    "demo_account",
    "error_body",
    "pd_time",
]

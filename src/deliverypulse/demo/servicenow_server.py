"""A fake ServiceNow instance on 127.0.0.1: a real threaded HTTP server that speaks the Table API
(``GET /api/now/table/{table}``) with its shapes, paging headers, auth and faults, for the
ServiceNow connector's tests and, later, the demo's change board.

Shapes follow ServiceNow's Table API documentation:

- every value is a string; times are ``YYYY-MM-DD HH:MM:SS`` in UTC (the instance's internal
  format, as ``sysparm_display_value=false`` and the ``value`` of ``all`` return them);
- ``sysparm_display_value``: ``false`` (values), ``true`` (display values) or ``all``
  (``{"display_value": ..., "value": ...}`` per field); a reference field is
  ``{"link": ".../api/now/table/<table>/<sys_id>", "value": ...}`` unless
  ``sysparm_exclude_reference_link=true``; a journal field (``work_notes``) has no value, only
  a display value listing its entries newest first;
- ``sysparm_query``: conditions joined by ``^`` (``=``, ``!=``, ``>``, ``>=``, ``<``, ``<=``,
  ``IN``, ``STARTSWITH``; dot-walked fields such as ``sysapproval.sys_class_name``), then
  ``ORDERBY<field>`` / ``ORDERBYDESC<field>``; a condition on an unknown field is ignored, as
  the instance does; ``sysparm_fields`` (dot-walking allowed), ``sysparm_limit`` (capped at
  ``max_limit``, 10,000 by default like an instance), ``sysparm_offset``;
- paging headers ``X-Total-Count`` and ``Link`` (``rel="first"``, ``"prev"``, ``"next"``,
  ``"last"``);
- errors in ServiceNow's envelope ``{"error": {"message": ..., "detail": ...}, "status":
  "failure"}``: 401 ``User Not Authenticated`` / ``Required to provide Auth information``;
  429 ``Rate limit exceeded`` with ``Retry-After`` and ``X-RateLimit-*`` headers.

Faults: :meth:`FakeServiceNow.fail` (the next N matching requests) and ``fault_rate`` (that
share of all requests, seeded): 5xx, 429 with ``Retry-After``, a dropped connection, a truncated
body. ``log`` records every request (never its ``Authorization`` header).

:class:`Instance` holds the records and writes them the way the platform does (every change
stamps ``sys_updated_on``; approving a change's last requested approver row approves the
change); :func:`change_board` builds a small realistic instance around a list of deployments.
"""

from __future__ import annotations

import base64
import itertools
import json
import random
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlencode

from deliverypulse.demo.fakeserver import (
    FakeServer,
    Fault,
    JSONHandler,
    auth_scheme,
    split_request,
)

JSON = dict[str, Any]
SN_TIME = "%Y-%m-%d %H:%M:%S"

#: Reference fields per table, and the table they point to.
REFERENCES: dict[str, dict[str, str]] = {
    "change_request": {
        "cmdb_ci": "cmdb_ci",
        "assignment_group": "sys_user_group",
        "business_service": "cmdb_ci_service",
    },
    "incident": {
        "cmdb_ci": "cmdb_ci",
        "business_service": "cmdb_ci_service",
        "caused_by": "change_request",
        "assignment_group": "sys_user_group",
    },
    "sysapproval_approver": {"sysapproval": "change_request", "approver": "sys_user"},
}
#: The field a reference to each table displays.
DISPLAY_FIELD = {
    "change_request": "number",
    "incident": "number",
    "sys_user": "name",
    "sys_user_group": "name",
    "cmdb_ci": "name",
    "cmdb_ci_service": "name",
}
JOURNALS = frozenset({"work_notes", "comments"})
CHOICES: dict[str, dict[str, dict[str, str]]] = {
    "change_request": {
        "state": {
            "-5": "New",
            "-4": "Assess",
            "-3": "Authorize",
            "-2": "Scheduled",
            "-1": "Implement",
            "0": "Review",
            "3": "Closed",
            "4": "Canceled",
        },
        "type": {"normal": "Normal", "standard": "Standard", "emergency": "Emergency"},
        "approval": {
            "not requested": "Not Yet Requested",
            "requested": "Requested",
            "approved": "Approved",
            "rejected": "Rejected",
        },
        "close_code": {
            "successful": "Successful",
            "successful_issues": "Successful with issues",
            "unsuccessful": "Unsuccessful",
        },
    },
    "incident": {
        "state": {
            "1": "New",
            "2": "In Progress",
            "3": "On Hold",
            "6": "Resolved",
            "7": "Closed",
            "8": "Canceled",
        },
        "urgency": {"1": "1 - High", "2": "2 - Medium", "3": "3 - Low"},
        "priority": {
            "1": "1 - Critical",
            "2": "2 - High",
            "3": "3 - Moderate",
            "4": "4 - Low",
            "5": "5 - Planning",
        },
    },
    "sysapproval_approver": {
        "state": {
            "not requested": "Not Yet Requested",
            "requested": "Requested",
            "approved": "Approved",
            "rejected": "Rejected",
            "cancelled": "Cancelled",
            "not_required": "No Longer Required",
        }
    },
}
#: Every field a table's records have (so an unknown field in a query is ignored).


def _names(text: str) -> tuple[str, ...]:
    return tuple(text.split())


FIELDS: dict[str, tuple[str, ...]] = {
    "change_request": _names(
        "sys_id number type state approval approval_set cab_required cab_date cab_date_time "
        "opened_at start_date end_date work_start work_end closed_at close_code close_notes "
        "cmdb_ci business_service assignment_group short_description description "
        "implementation_plan work_notes sys_class_name sys_created_on sys_updated_on"
    ),
    "incident": _names(
        "sys_id number short_description description opened_at resolved_at closed_at state "
        "urgency impact priority category cmdb_ci business_service caused_by correlation_id "
        "assignment_group work_notes sys_class_name sys_created_on sys_updated_on"
    ),
    "sysapproval_approver": _names(
        "sys_id sysapproval approver state comments sys_created_on sys_updated_on"
    ),
    "sys_user": _names("sys_id name user_name sys_created_on sys_updated_on"),
    "sys_user_group": _names("sys_id name sys_created_on sys_updated_on"),
    "cmdb_ci": _names("sys_id name sys_class_name sys_created_on sys_updated_on"),
    "cmdb_ci_service": _names("sys_id name sys_class_name sys_created_on sys_updated_on"),
}


def sn(value: datetime) -> str:
    """A datetime as ServiceNow's internal time text (UTC)."""
    return value.astimezone(UTC).strftime(SN_TIME)


@dataclass
class Journal:
    """A journal field's entries: (time, author, text)."""

    entries: list[tuple[str, str, str]] = field(default_factory=list)

    def display(self) -> str:
        return "".join(
            f"{when} - {author} (Work notes)\n{text}\n\n"
            for when, author, text in sorted(self.entries, reverse=True)
        )


class Instance:
    """The records of one instance, written the way the platform writes them."""

    def __init__(self, start: datetime | None = None) -> None:
        self.tables: dict[str, dict[str, JSON]] = {name: {} for name in FIELDS}
        self.lock = threading.RLock()
        self._ids = itertools.count(1)
        self._numbers = {
            "change_request": itertools.count(30001),
            "incident": itertools.count(10001),
        }
        self.start = start or datetime(2026, 3, 2, 8, 0, tzinfo=UTC)

    # --- generic writes ------------------------------------------------------------------

    def new_id(self) -> str:
        return f"{next(self._ids):032x}"

    def insert(self, table: str, at: datetime, **values: Any) -> str:
        with self.lock:
            record_id = self.new_id()
            record: JSON = {name: "" for name in FIELDS[table]}
            for name in JOURNALS & set(FIELDS[table]):
                record[name] = Journal()
            record.update(sys_id=record_id, sys_created_on=sn(at), sys_updated_on=sn(at))
            if "sys_class_name" in record:
                record["sys_class_name"] = table
            if table in self._numbers:
                prefix = "CHG" if table == "change_request" else "INC"
                record["number"] = f"{prefix}{next(self._numbers[table]):07d}"
            self.tables[table][record_id] = record
            self._set(table, record, values)
            return record_id

    def update(self, table: str, record_id: str, at: datetime, **values: Any) -> None:
        with self.lock:
            record = self.tables[table][record_id]
            self._set(table, record, values)
            record["sys_updated_on"] = sn(at)

    def _set(self, table: str, record: JSON, values: Mapping[str, Any]) -> None:
        for name, given in values.items():
            if name not in record:
                raise KeyError(f"{table} has no field {name!r}")
            if isinstance(given, datetime):
                given = sn(given)
            elif isinstance(given, bool):
                given = "true" if given else "false"
            elif given is None:
                given = ""
            record[name] = given if isinstance(given, Journal) else str(given)

    def get(self, table: str, record_id: str) -> JSON:
        return self.tables[table][record_id]

    def find(self, table: str, **values: str) -> JSON:
        for record in self.tables[table].values():
            if all(record.get(k) == v for k, v in values.items()):
                return record
        raise KeyError(f"no {table} with {values}")

    # --- reference data ------------------------------------------------------------------

    def named(self, table: str, name: str) -> str:
        """The sys_id of the ``table`` record called ``name`` (created if new)."""
        with self.lock:
            for record in self.tables[table].values():
                if record["name"] == name:
                    return str(record["sys_id"])
            extra = {"user_name": name.lower().replace(" ", ".")} if table == "sys_user" else {}
            return self.insert(table, self.start - timedelta(days=400), name=name, **extra)

    # --- change management ---------------------------------------------------------------

    def change(
        self,
        at: datetime,
        *,
        type: str = "normal",
        configuration_item: str | None = None,
        group: str | None = None,
        title: str = "",
        description: str = "",
        implementation_plan: str = "",
        planned_start: datetime | None = None,
        planned_end: datetime | None = None,
        cab_required: bool | None = None,
        cab_at: datetime | None = None,
        state: str = "-5",
    ) -> str:
        """Open a change request; returns its sys_id."""
        return self.insert(
            "change_request",
            at,
            type=type,
            state=state,
            approval="not requested",
            cab_required=cab_required if cab_required is not None else type == "normal",
            cab_date=cab_at.strftime("%Y-%m-%d") if cab_at else "",
            cab_date_time=cab_at,
            opened_at=at,
            start_date=planned_start,
            end_date=planned_end,
            cmdb_ci=self.named("cmdb_ci", configuration_item) if configuration_item else "",
            assignment_group=self.named("sys_user_group", group) if group else "",
            short_description=title,
            description=description,
            implementation_plan=implementation_plan,
        )

    def request_approval(self, change: str, approvers: Iterable[str], at: datetime) -> None:
        """Ask ``approvers`` (names) to approve: one ``requested`` row each."""
        with self.lock:
            for name in approvers:
                self.insert(
                    "sysapproval_approver",
                    at,
                    sysapproval=change,
                    approver=self.named("sys_user", name),
                    state="requested",
                )
            self.update("change_request", change, at, approval="requested", state="-3")

    def _rows(self, change: str, approver: str | None = None) -> list[JSON]:
        user = self.named("sys_user", approver) if approver else None
        return [
            r
            for r in self.tables["sysapproval_approver"].values()
            if r["sysapproval"] == change and (user is None or r["approver"] == user)
        ]

    def approve(self, change: str, approver: str, at: datetime) -> None:
        """One approver approves; the change is approved once no row is still requested."""
        with self.lock:
            for row in self._rows(change, approver):
                if row["state"] == "requested":
                    self.update("sysapproval_approver", row["sys_id"], at, state="approved")
            if not any(r["state"] == "requested" for r in self._rows(change)):
                self.update(
                    "change_request", change, at, approval="approved", approval_set=at, state="-2"
                )

    def reject(self, change: str, approver: str, at: datetime) -> None:
        """One approver rejects: the change is rejected, the other requests lapse."""
        with self.lock:
            for row in self._rows(change):
                if row["state"] != "requested":
                    continue
                mine = row["approver"] == self.named("sys_user", approver)
                state = "rejected" if mine else "not_required"
                self.update("sysapproval_approver", row["sys_id"], at, state=state)
            self.update(
                "change_request", change, at, approval="rejected", approval_set=at, state="-4"
            )

    def work_note(self, table: str, record_id: str, author: str, text: str, at: datetime) -> None:
        with self.lock:
            journal = self.tables[table][record_id]["work_notes"]
            journal.entries.append((sn(at), author, text))
            self.update(table, record_id, at)

    def implement(
        self, change: str, start: datetime, end: datetime, *, code: str = "successful"
    ) -> None:
        """Work done from ``start`` to ``end``; closed with ``code`` at the end."""
        with self.lock:
            self.update("change_request", change, start, state="-1", work_start=start)
            self.update(
                "change_request",
                change,
                end,
                state="3",
                work_end=end,
                closed_at=end,
                close_code=code,
            )

    def cancel(self, change: str, at: datetime) -> None:
        self.update("change_request", change, at, state="4")

    # --- incidents -----------------------------------------------------------------------

    def incident(
        self,
        at: datetime,
        *,
        title: str,
        configuration_item: str | None = None,
        service: str | None = None,
        urgency: str = "2",
        priority: str = "3",
        caused_by: str | None = None,
        resolved_at: datetime | None = None,
        correlation_id: str | None = None,
    ) -> str:
        record = self.insert(
            "incident",
            at,
            short_description=title,
            opened_at=at,
            state="2",
            urgency=urgency,
            impact=urgency,
            priority=priority,
            category="software",
            cmdb_ci=self.named("cmdb_ci", configuration_item) if configuration_item else "",
            business_service=self.named("cmdb_ci_service", service) if service else "",
            caused_by=caused_by or "",
            correlation_id=correlation_id or "",
        )
        if resolved_at is not None:
            self.update("incident", record, resolved_at, state="6", resolved_at=resolved_at)
        return record

    # --- reading, as the Table API does ----------------------------------------------------

    def field_value(self, table: str, record: JSON, name: str) -> tuple[str, str]:
        """(value, display value) of ``name`` on ``record`` (dot-walking allowed)."""
        head, _, rest = name.partition(".")
        raw = record.get(head, "")
        target = REFERENCES.get(table, {}).get(head)
        if rest:
            if not target or not raw or raw not in self.tables.get(target, {}):
                return "", ""
            return self.field_value(target, self.tables[target][raw], rest)
        if isinstance(raw, Journal):
            return "", raw.display()
        if target:
            referenced = self.tables.get(target, {}).get(raw)
            shown = str(referenced[DISPLAY_FIELD[target]]) if referenced else ""
            return str(raw), shown
        labels = CHOICES.get(table, {}).get(head)
        return str(raw), (str(labels.get(raw, raw)) if labels else str(raw))

    def query(self, table: str, encoded: str) -> list[JSON]:
        """The records of ``table`` that ``encoded`` selects, in its order."""
        conditions: list[tuple[str, str, str]] = []
        order: list[tuple[str, bool]] = []
        for part in filter(None, encoded.split("^")):
            if part.startswith("ORDERBYDESC"):
                order.append((part[len("ORDERBYDESC") :], True))
            elif part.startswith("ORDERBY"):
                order.append((part[len("ORDERBY") :], False))
            else:
                matched = _CONDITION.match(part)
                if matched and self._known(table, matched["field"]):
                    conditions.append((matched["field"], matched["op"], matched["value"]))
        with self.lock:
            rows = [
                r
                for r in self.tables[table].values()
                if all(_holds(self.field_value(table, r, f)[0], op, v) for f, op, v in conditions)
            ]
            for name, descending in reversed(order):
                keys = {id(r): self.field_value(table, r, name)[0] for r in rows}
                rows.sort(key=lambda r: keys[id(r)], reverse=descending)
            return rows

    def _known(self, table: str, name: str) -> bool:
        head, _, rest = name.partition(".")
        if head not in FIELDS.get(table, ()):
            return False
        target = REFERENCES.get(table, {}).get(head)
        return not rest or (target is not None and self._known(target, rest))

    def serialise(
        self,
        table: str,
        record: JSON,
        fields: list[str] | None,
        mode: str,
        links: bool,
        base: str,
    ) -> JSON:
        out: JSON = {}
        for name in fields or list(FIELDS[table]):
            if not self._known(table, name):
                continue  # an instance leaves out fields it does not have
            raw, shown = self.field_value(table, record, name)
            target = REFERENCES.get(table, {}).get(name)
            link = f"{base}/api/now/table/{target}/{raw}" if target and raw and links else None
            if mode == "all":
                entry: Any = {"display_value": shown, "value": raw}
                if link:
                    entry["link"] = link
            else:
                text = shown if mode == "true" else raw
                entry = {"link": link, ("display_value" if mode == "true" else "value"): text}
                if not link:
                    entry = text
            out[name] = entry
        return out


_CONDITION = re.compile(
    r"^(?P<field>[a-z_][\w.]*?)(?P<op>>=|<=|!=|>|<|=|IN|STARTSWITH)(?P<value>.*)$"
)


def _holds(actual: str, op: str, expected: str) -> bool:
    if op == "=":
        return actual == expected
    if op == "!=":
        return actual != expected
    if op == "IN":
        return actual in expected.split(",")
    if op == "STARTSWITH":
        return actual.startswith(expected)
    if not actual:
        return False
    return {
        ">": actual > expected,
        ">=": actual >= expected,
        "<": actual < expected,
        "<=": actual <= expected,
    }[op]


# --- the server -----------------------------------------------------------------------------


@dataclass
class LoggedRequest:
    path: str
    query: dict[str, str]
    status: int
    authorization: str  # "basic", "bearer" or "" (never the credentials)


class FakeServiceNow(FakeServer):
    """The server. Use as a context manager; ``url`` is its base (``http://127.0.0.1:port``).

    ``user``/``password`` (Basic) and ``token`` (Bearer) are the credentials it accepts (none
    given: any request is accepted). ``fault_rate`` answers that share of requests with a
    random fault from ``RANDOM_FAULTS`` (seeded by ``seed``).
    """

    def __init__(
        self,
        instance: Instance | None = None,
        *,
        user: str | None = None,
        password: str | None = None,
        token: str | None = None,
        max_limit: int = 10_000,
        fault_rate: float = 0.0,
        seed: int = 13,
    ) -> None:
        self.instance = instance or Instance()
        self.user, self.password, self.token = user, password, token
        self.max_limit = max_limit
        self._init_server(_make_handler, fault_rate=fault_rate, seed=seed)

    def authorised(self, header: str) -> bool:
        if self.user is None and self.token is None:
            return True
        if self.token is not None and header == f"Bearer {self.token}":
            return True
        if self.user is not None and header.startswith("Basic "):
            try:
                pair = base64.b64decode(header[6:]).decode()
            except ValueError:
                return False
            return pair == f"{self.user}:{self.password}"
        return False


def envelope(message: str, detail: str | None) -> JSON:
    """ServiceNow's error body."""
    return {"error": {"message": message, "detail": detail}, "status": "failure"}


def _make_handler(fake: FakeServiceNow) -> type[BaseHTTPRequestHandler]:
    class Handler(JSONHandler):
        content_type = "application/json;charset=UTF-8"
        truncated_type = "application/json"

        def do_GET(self) -> None:
            path, query = split_request(self.path)
            auth = self.headers.get("Authorization", "")
            kind = auth_scheme(auth)
            fault = fake._take_fault(path)
            if fault is not None and self._fault(fault, path, query, kind):
                return
            if not fake.authorised(auth):
                body = envelope("User Not Authenticated", "Required to provide Auth information")
                return self._send(401, body, {}, path, query, kind)
            status, body, headers = self._route(path, query)
            self._send(status, body, headers, path, query, kind)

        def _base(self) -> str:
            return f"http://{self.headers.get('Host')}"

        def _route(self, path: str, query: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
            match = re.fullmatch(r"/api/now(?:/v[12])?/table/(\w+)", path)
            if not match:
                return 400, envelope("Requested URI does not represent any resource", None), {}
            table = match.group(1)
            if table not in fake.instance.tables:
                return 400, envelope(f"Invalid table {table}", None), {}
            try:
                limit = min(int(query.get("sysparm_limit", "10000")), fake.max_limit)
                offset = int(query.get("sysparm_offset", "0"))
            except ValueError:
                return 400, envelope("Invalid parameter", "sysparm_limit/offset"), {}
            rows = fake.instance.query(table, query.get("sysparm_query", ""))
            fields = [f for f in query.get("sysparm_fields", "").split(",") if f] or None
            mode = query.get("sysparm_display_value", "false").lower()
            links = query.get("sysparm_exclude_reference_link", "false").lower() != "true"
            page = rows[offset : offset + limit]
            base = self._base()
            result = [fake.instance.serialise(table, r, fields, mode, links, base) for r in page]
            return 200, {"result": result}, _paging(base + path, query, offset, limit, len(rows))

        def _fault(self, fault: Fault, path: str, query: dict[str, str], kind: str) -> bool:
            def record(status: int) -> None:
                fake._record(LoggedRequest(path, query, status, kind))

            def route() -> tuple[int, Any]:
                return self._route(path, query)[:2]

            if self.transport_fault(fault.kind, record, route):
                return True
            if fault.kind == "429":
                headers = {
                    "Retry-After": fault.retry_after,
                    "X-RateLimit-Limit": "1000",
                    "X-RateLimit-Reset": str(int(datetime.now(UTC).timestamp()) + 60),
                }
                body = envelope("Rate limit exceeded", "Too many requests; retry later")
                self._send(429, body, headers, path, query, kind)
                return True
            status = int(fault.kind)
            messages = {
                401: ("User Not Authenticated", "Required to provide Auth information"),
                403: ("Insufficient rights to query records", None),
            }
            message, detail = messages.get(status, (f"Internal server error {status}", None))
            self._send(status, envelope(message, detail), {}, path, query, kind)
            return True

        def _send(
            self,
            status: int,
            body: Any,
            headers: dict[str, str],
            path: str,
            query: dict[str, str],
            kind: str,
        ) -> None:
            fake._record(LoggedRequest(path, query, status, kind))
            self.send_json(status, json.dumps(body).encode(), headers.items())

    return Handler


def _paging(url: str, query: dict[str, str], offset: int, limit: int, total: int) -> dict[str, str]:
    """``X-Total-Count`` and the ``Link`` header, as an instance sends them."""

    def at(start: int) -> str:
        return f"<{url}?{urlencode({**query, 'sysparm_offset': start, 'sysparm_limit': limit})}>"

    last = max(0, (total - 1) // limit * limit) if limit else 0
    links = [f'{at(0)};rel="first"']
    if offset > 0:
        links.append(f'{at(max(0, offset - limit))};rel="prev"')
    if offset + limit < total:
        links.append(f'{at(offset + limit)};rel="next"')
    links.append(f'{at(last)};rel="last"')
    return {"X-Total-Count": str(total), "Link": ",".join(links)}


# --- a small realistic instance ----------------------------------------------------------------


@dataclass(frozen=True)
class Deployment:
    """What the change board needs to know of a production deployment."""

    repo: str
    sha: str
    finished_at: datetime
    url: str | None = None
    hotfix: bool = False


@dataclass(frozen=True)
class BoardService:
    """A service as the change board sees it: its configuration item and how it changes."""

    configuration_item: str
    repos: tuple[str, ...]
    #: "cab" (normal changes, approved by the board), "standard" (pre-approved, opened by the
    #: pipeline with the sha in the text) or "none" (no change requests at all).
    process: str = "cab"
    group: str = "Release Management"
    approvers: tuple[str, ...] = ("Grace Hopper", "Alan Turing")


def change_board(
    deployments: Iterable[Deployment],
    services: Iterable[BoardService],
    *,
    seed: int = 6,
    rejected_share: float = 0.1,
    instance: Instance | None = None,
) -> Instance:
    """An instance whose change requests cover ``deployments`` the way real teams work:

    - services under the board (``process="cab"``) get a normal change per deployment, opened
      a few days before, approved by every approver at the weekly CAB, planned over a two-hour
      window around the deployment, with no sha in the text (the window links it); about
      ``rejected_share`` of them are rejected once and re-requested the next week;
    - pipelines of ``"standard"`` services open a pre-approved standard change at deploy time
      with ``owner/name@sha`` and the deployment's URL in the description;
    - a hotfix deployment gets an emergency change, approved after the fact by one approver,
      whatever its service's process.
    """
    rng = random.Random(seed)
    board = instance or Instance()
    by_repo = {repo: s for s in services for repo in s.repos}
    for deployment in sorted(deployments, key=lambda d: d.finished_at):
        service = by_repo.get(deployment.repo)
        if service is None or (service.process == "none" and not deployment.hotfix):
            continue
        at = deployment.finished_at
        text = f"{deployment.repo}@{deployment.sha}" + (
            f"\nDeployment: {deployment.url}" if deployment.url else ""
        )
        if deployment.hotfix:
            change = board.change(
                at - timedelta(minutes=20),
                type="emergency",
                configuration_item=service.configuration_item,
                group=service.group,
                title=f"Hotfix {deployment.repo}",
                description=f"Emergency fix.\n{text}",
                planned_start=at - timedelta(minutes=15),
                planned_end=at + timedelta(minutes=30),
                cab_required=False,
            )
            board.implement(change, at - timedelta(minutes=10), at + timedelta(minutes=5))
            board.request_approval(change, service.approvers[:1], at + timedelta(hours=2))
            board.approve(change, service.approvers[0], at + timedelta(hours=3))
        elif service.process == "standard":
            change = board.change(
                at - timedelta(minutes=12),
                type="standard",
                configuration_item=service.configuration_item,
                group=service.group,
                title=f"Deploy {deployment.repo} {deployment.sha[:7]}",
                description=f"Automated standard change.\n{text}",
                planned_start=at - timedelta(minutes=10),
                planned_end=at + timedelta(minutes=20),
                cab_required=False,
            )
            board.implement(change, at - timedelta(minutes=10), at + timedelta(minutes=1))
        else:
            opened = at - timedelta(days=rng.uniform(3, 9))
            cab = opened + timedelta(days=rng.uniform(1, 2.5))
            change = board.change(
                opened,
                type="normal",
                configuration_item=service.configuration_item,
                group=service.group,
                title=f"Release {deployment.repo}",
                description="Release of the latest main branch.",
                implementation_plan="Run the deployment pipeline; verify dashboards.",
                planned_start=at - timedelta(minutes=rng.uniform(10, 50)),
                planned_end=at + timedelta(minutes=rng.uniform(40, 90)),
                cab_required=True,
                cab_at=cab,
            )
            board.request_approval(change, service.approvers, opened + timedelta(hours=1))
            if rng.random() < rejected_share and cab + timedelta(days=1) < at:
                board.reject(change, service.approvers[-1], cab)
                board.request_approval(change, service.approvers, cab + timedelta(hours=4))
            approved_at = min(at - timedelta(hours=1), cab + timedelta(days=1))
            for name in service.approvers:
                board.approve(change, name, approved_at)
            board.implement(change, at - timedelta(minutes=5), at + timedelta(minutes=30))
    return board


__all__ = [
    "BoardService",
    "Deployment",
    "FakeServiceNow",
    "Fault",
    "Instance",
    "Journal",
    "LoggedRequest",
    "change_board",
    "envelope",
    "sn",
]

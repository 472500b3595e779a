"""The service catalogue: which repos, ServiceNow configuration items and incident services
belong together, and to which team (the config's ``[[services]]`` tables).

A :class:`Service` is a plain value. The config builds them (and hands them to every source, so
a connector can name the repo of a configuration item), the collect run stores them with the
dataset as ``_deliverypulse/services.json`` (written atomically, replaced on every run), and
``dp.load`` reads them back as ``Dataset.services``, so the linking stage uses the catalogue the
data was collected with. Names are matched without regard to case or surrounding spaces.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from deliverypulse.store.files import write_text_atomic
from deliverypulse.store.location import Location, resolve

CATALOGUE_FILE = Path("_deliverypulse") / "services.json"
#: The columns of ``Dataset.services`` (one row per service; list columns hold Python lists).
COLUMNS = ("name", "repos", "configuration_items", "incident_services", "team")


@dataclass(frozen=True)
class Service:
    """One ``[[services]]`` entry."""

    name: str
    repos: tuple[str, ...] = ()
    configuration_items: tuple[str, ...] = ()
    incident_services: tuple[str, ...] = ()
    team: str | None = None

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Service:
        return cls(
            name=str(raw["name"]),
            repos=tuple(str(r) for r in raw.get("repos") or ()),
            configuration_items=tuple(str(c) for c in raw.get("configuration_items") or ()),
            incident_services=tuple(str(s) for s in raw.get("incident_services") or ()),
            team=str(raw["team"]) if raw.get("team") else None,
        )


def normal(name: object) -> str:
    """A name as the catalogue compares it: trimmed, case-folded."""
    return str(name).strip().casefold()


def repos_by_item(services: Iterable[Service]) -> dict[str, tuple[str, ...]]:
    """Configuration item or incident service name (normalised) -> its repos, in catalogue
    order, without repeats (a name listed under several services gets all their repos)."""
    found: dict[str, list[str]] = {}
    for service in services:
        for item in (*service.configuration_items, *service.incident_services):
            repos = found.setdefault(normal(item), [])
            repos.extend(r for r in service.repos if r not in repos)
    return {item: tuple(repos) for item, repos in found.items()}


def services_frame(services: Iterable[Service]) -> pd.DataFrame:
    """The catalogue as ``Dataset.services``: one row per service."""
    rows = [service.to_dict() for service in services]
    return pd.DataFrame(rows, columns=list(COLUMNS)).astype({"name": "string", "team": "string"})


def services_from_frame(frame: pd.DataFrame | None) -> tuple[Service, ...]:
    """``Dataset.services`` back into values (for the linking stage)."""
    if frame is None or frame.empty:
        return ()
    return tuple(
        Service.from_dict({str(k): (None if _missing(v) else v) for k, v in row.items()})
        for row in frame.to_dict("records")
    )


def _missing(value: Any) -> bool:
    return value is None or (not isinstance(value, (list, tuple)) and bool(pd.isna(value)))


def write_catalogue(root: Path | str | Location, services: Iterable[Service]) -> None:
    """Store the catalogue with the dataset (replacing the previous one)."""
    payload = {"version": 1, "services": [s.to_dict() for s in services]}
    text = json.dumps(payload, indent=2, sort_keys=True)
    location = resolve(root)
    if location.local is None:
        location.write_bytes(text.encode("utf-8"), *CATALOGUE_FILE.parts)
    else:
        write_text_atomic(location.path(*CATALOGUE_FILE.parts), text)


def read_catalogue(root: Path | str | Location) -> tuple[Service, ...]:
    """The catalogue stored with the dataset at ``root`` (empty if none was stored)."""
    location = resolve(root)
    if location.local is None:
        data = location.read_bytes(*CATALOGUE_FILE.parts)
        if data is None:
            return ()
    else:
        path = location.path(*CATALOGUE_FILE.parts)
        if not path.is_file():
            return ()
        data = path.read_bytes()
    try:
        raw = json.loads(data)
    except ValueError:
        return ()
    entries = raw.get("services") if isinstance(raw, dict) else None
    return tuple(
        Service.from_dict(e) for e in entries or () if isinstance(e, dict) and e.get("name")
    )


__all__ = [
    "CATALOGUE_FILE",
    "Service",
    "normal",
    "read_catalogue",
    "repos_by_item",
    "services_frame",
    "services_from_frame",
    "write_catalogue",
]

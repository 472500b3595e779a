"""An Opsgenie source's options, checked and typed once (the connector builds them in
``__init__``; the config check builds them too, so a bad option fails at load time).

The API key comes only from the environment (``token_env``) and is sent as
``Authorization: GenieKey <key>``. ``url`` is the API root: ``https://api.opsgenie.com`` (US,
the default) or ``https://api.eu.opsgenie.com`` (EU).

- https://docs.opsgenie.com/docs/authentication
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from deliverypulse.redaction import read_token
from deliverypulse.sources import URL, Option, Service, SourceConfig
from deliverypulse.store.catalogue import normal

DEFAULT_URL = "https://api.opsgenie.com"
APIS = ("incidents", "alerts")
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})

OPTIONS: Mapping[str, Option] = {
    "url": Option(URL, DEFAULT_URL, help="API root; EU accounts: https://api.eu.opsgenie.com"),
    "api": Option(str, "incidents", help='"incidents" (Incident API) or "alerts" (Alert API)'),
    "query": Option(str, help="extra search query, e.g. 'priority:P1' (joined with AND)"),
    "services": Option(list, help="keep items tagged with (or impacting) these services"),
    "page_size": Option(int, 100, help="items per request (limit, at most 100)"),
    "overlap_minutes": Option(
        (int, float), 60, help="re-read this much before the previous run's end, minutes"
    ),
    "open_lookback_days": Option(
        (int, float), 30, help="keep re-reading open items this many days, at most"
    ),
    "max_rate_limit_wait": Option(
        (int, float), 900, help="longest wait for a rate limit, seconds; beyond it, stop"
    ),
}


@dataclass(frozen=True)
class Settings:
    """What one Opsgenie source reads and how, from its ``[[sources]]`` table."""

    url: str
    host: str
    token_env: str
    api: str
    query: str
    services: tuple[str, ...]
    page_size: int
    overlap_minutes: float
    open_lookback_days: float
    max_rate_limit_wait: float
    catalogue: tuple[Service, ...]

    @property
    def path(self) -> str:
        return "/v1/incidents" if self.api == "incidents" else "/v2/alerts"

    @property
    def keep_services(self) -> frozenset[str]:
        return frozenset(normal(s) for s in self.services)

    @property
    def filters(self) -> str:
        """What the query selects, as text: a cursor written under other filters is void."""
        return json.dumps([self.api, self.query, sorted(self.services)], separators=(",", ":"))

    @classmethod
    def from_source(cls, source: SourceConfig) -> Settings:
        """The typed settings, or a ``ConfigError`` naming the key that is wrong."""
        url = source.value("url", str).strip().rstrip("/")
        parts = urlsplit(url)
        if parts.scheme == "http" and parts.hostname not in LOOPBACK:
            raise source.error(f"{url!r}: use https:// (plain http only for a local server)", "url")
        if parts.path not in ("", "/") or parts.query or parts.username:
            raise source.error(f"{url!r}: give the API root, e.g. {DEFAULT_URL}", "url")
        token_env = source.token_env
        if not token_env:
            raise source.error("set token_env to the variable holding the API key", "token_env")
        if read_token(token_env) is None:
            raise source.error(
                f"environment variable {token_env} is not set (or empty); export it first",
                "token_env",
            )
        api = source.value("api", str).strip().lower()
        if api not in APIS:
            raise source.error(f"{api!r}: expected one of {', '.join(APIS)}", "api")
        page_size = source.value("page_size", int)
        if not 1 <= page_size <= 100:
            raise source.error("expected a whole number from 1 to 100", "page_size")
        numbers = {}
        for key in ("overlap_minutes", "open_lookback_days", "max_rate_limit_wait"):
            numbers[key] = source.value(key, float)
            if numbers[key] < 0:
                raise source.error("expected a number >= 0", key)
        return cls(
            url=url,
            host=str(parts.netloc),
            token_env=token_env,
            api=api,
            query=(source.optional("query", str) or "").strip(),
            services=tuple(s.strip() for s in source.strings("services") if s.strip()),
            page_size=page_size,
            catalogue=source.services,
            **numbers,
        )

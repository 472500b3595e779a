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

from deliverypulse.sources import (
    URL,
    Option,
    SourceConfig,
    SpanSettings,
    api_key_source,
    page_size,
    span_numbers,
    span_options,
)
from deliverypulse.store.catalogue import normal

DEFAULT_URL = "https://api.opsgenie.com"
APIS = ("incidents", "alerts")

OPTIONS: Mapping[str, Option] = {
    "url": Option(URL, DEFAULT_URL, help="API root; EU accounts: https://api.eu.opsgenie.com"),
    "api": Option(str, "incidents", help='"incidents" (Incident API) or "alerts" (Alert API)'),
    "query": Option(str, help="extra search query, e.g. 'priority:P1' (joined with AND)"),
    "services": Option(list, help="keep items tagged with (or impacting) these services"),
    "page_size": Option(int, 100, help="items per request (limit, at most 100)"),
    **span_options("open items"),
}


@dataclass(frozen=True)
class Settings(SpanSettings):
    """What one Opsgenie source reads and how, from its ``[[sources]]`` table."""

    api: str
    query: str

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
        url, host, token_env = api_key_source(source, DEFAULT_URL, root_only=True)
        api = source.value("api", str).strip().lower()
        if api not in APIS:
            raise source.error(f"{api!r}: expected one of {', '.join(APIS)}", "api")
        size = page_size(source, 100)
        numbers = span_numbers(source)
        return cls(
            url=url,
            host=host,
            token_env=token_env,
            api=api,
            query=(source.optional("query", str) or "").strip(),
            services=tuple(s.strip() for s in source.strings("services") if s.strip()),
            page_size=size,
            catalogue=source.services,
            **numbers,
        )

"""A PagerDuty source's options, checked and typed once (the connector builds them in
``__init__``; the config check builds them too, so a bad option fails at load time).

The API key comes only from the environment (``token_env``). ``services`` keeps incidents of
the named services: when every entry is a PagerDuty id (``PXXXXXX``) they are sent as
``service_ids[]``; otherwise incidents are kept by service name or id after reading.

- https://developer.pagerduty.com/docs/rest-api-v2/authentication/
- https://developer.pagerduty.com/api-reference/9d0b4b12e36f9-list-incidents
"""

from __future__ import annotations

import json
import re
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

DEFAULT_URL = "https://api.pagerduty.com"
URGENCIES = ("high", "low")
STATUSES = ("triggered", "acknowledged", "resolved")
SERVICE_ID = re.compile(r"^P[A-Z0-9]{5,13}$")

OPTIONS: Mapping[str, Option] = {
    "url": Option(URL, DEFAULT_URL, help="API root (EU accounts: https://api.eu.pagerduty.com)"),
    "urgencies": Option(list, help='urgencies to keep, e.g. ["high"] (urgencies[])'),
    "statuses": Option(list, help="statuses to keep: triggered, acknowledged, resolved"),
    "services": Option(list, help="services to keep, by name or id (service_ids[] for ids)"),
    "page_size": Option(int, 100, help="incidents per request (limit, at most 100)"),
    **span_options("unresolved incidents"),
}


@dataclass(frozen=True)
class Settings(SpanSettings):
    """What one PagerDuty source reads and how, from its ``[[sources]]`` table."""

    urgencies: tuple[str, ...]
    statuses: tuple[str, ...]

    @property
    def service_ids(self) -> tuple[str, ...]:
        """The ``service_ids[]`` to send: the ``services`` option when all are ids."""
        if self.services and all(SERVICE_ID.match(s) for s in self.services):
            return self.services
        return ()

    @property
    def keep_services(self) -> frozenset[str]:
        """Names or ids to keep after reading (normalised); empty: keep all."""
        if not self.services or self.service_ids:
            return frozenset()
        return frozenset(normal(s) for s in self.services)

    @property
    def filters(self) -> str:
        """What the query selects, as text: a cursor written under other filters is void."""
        return json.dumps(
            [sorted(self.urgencies), sorted(self.statuses), sorted(self.services)],
            separators=(",", ":"),
        )

    @classmethod
    def from_source(cls, source: SourceConfig) -> Settings:
        """The typed settings, or a ``ConfigError`` naming the key that is wrong."""
        url, host, token_env = api_key_source(source, DEFAULT_URL, root_only=False)
        urgencies = _choices(source, "urgencies", URGENCIES)
        statuses = _choices(source, "statuses", STATUSES)
        services = tuple(s.strip() for s in source.strings("services") if s.strip())
        size = page_size(source, 100)
        numbers = span_numbers(source)
        return cls(
            url=url,
            host=host,
            token_env=token_env,
            urgencies=urgencies,
            statuses=statuses,
            services=services,
            page_size=size,
            catalogue=source.services,
            **numbers,
        )


def _choices(source: SourceConfig, key: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    values = tuple(v.strip().lower() for v in source.strings(key))
    wrong = [v for v in values if v not in allowed]
    if wrong:
        raise source.error(f"{wrong[0]!r} is not one of {', '.join(allowed)}", key)
    return values

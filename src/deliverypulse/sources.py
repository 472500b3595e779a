"""What a ``[[sources]]`` table is once validated: its options (declared as :class:`Option`
values by the core and by each connector) and the :class:`SourceConfig` every connector gets.

Both the config loader and the connector protocol import this module; neither imports the
other's internals. Regex options are compiled and checked once, by the core.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from deliverypulse.errors import ConfigError
from deliverypulse.redaction import read_token
from deliverypulse.rules import BOT_PATTERN, HOTFIX_PATTERN, PRODUCTION_PATTERN
from deliverypulse.store.catalogue import Service


class URL(str):
    """The kind of an option that holds an http(s) URL (an API root, an instance): the core
    checks its scheme and host when the config is read, not when the first request fails."""


@dataclass(frozen=True)
class Option:
    """A config key a connector accepts: its type(s), default and one line of help."""

    kind: type | tuple[type, ...]
    default: Any = None
    required: bool = False
    help: str = ""

    @property
    def is_url(self) -> bool:
        """An http(s) URL option, checked by the core."""
        return self.kind is URL

    @property
    def is_pattern(self) -> bool:
        """A regex option: written as a string, compiled and checked by the core."""
        return self.kind is re.Pattern

    def describe(self) -> str:
        kinds = self.kind if isinstance(self.kind, tuple) else (self.kind,)
        return " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)


_TYPE_NAMES: dict[Any, str] = {
    re.Pattern: "a regular expression",
    URL: "an http(s) URL",
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    list: "a list",
    dict: "a table",
}


#: Keys every source accepts, whatever its type.
COMMON_OPTIONS: dict[str, Option] = {
    "name": Option(str, help="unique name of the source; default: type and repo"),
    "type": Option(str, required=True, help="connector type (see 'deliverypulse connectors')"),
    "token_env": Option(str, help="environment variable that holds the token"),
    "since": Option((str, date, datetime), help="collect nothing older than this date"),
    "streams": Option(list, help="streams to collect; default: all the connector supports"),
    "production": Option(
        re.Pattern, PRODUCTION_PATTERN, help="regex on production environment names"
    ),
    "hotfix": Option(
        re.Pattern, HOTFIX_PATTERN, help="regex on title, branch and labels: a hotfix"
    ),
    "bots": Option(re.Pattern, BOT_PATTERN, help="regex on logins, names and emails: a bot"),
    "enabled": Option(bool, True, help="set false to skip the source"),
}


T = TypeVar("T")


@dataclass(frozen=True)
class SourceConfig:
    """One validated ``[[sources]]`` entry, with defaults filled in.

    Connectors read their options once, typed, into settings of their own::

        path = source.path("path")                     # a file or folder, resolved
        environment = source.value("environment", str) # the declared default if unset
        branch = source.optional("branch", str)        # None if unset and no default
        labels = source.strings("incident_labels")     # a list option, as text
        pattern = source.pattern("deployments_tag")    # an Option(re.Pattern, ...), compiled

    The config filled in every declared default, so a connector never repeats one.
    ``services`` is the config's service catalogue (``[[services]]``), the same for every
    source: a connector that knows only a configuration item or a service names its repo
    from it.
    """

    name: str
    type: str
    options: Mapping[str, Any]
    config_file: Path | None = None
    base_dir: Path = field(default_factory=Path.cwd)
    services: tuple[Service, ...] = ()

    def get(self, key: str, default: Any = None) -> Any:
        """An option's raw value (``default`` if unset); prefer the typed accessors below."""
        value = self.options.get(key)
        return default if value is None else value

    def optional(self, key: str, kind: builtins.type[T]) -> T | None:
        """A declared option as ``kind``, or None when it is unset and has no default.

        The config checked the type already; a value of another type (a hand-built source)
        is a :class:`ConfigError` naming the key. An integer is accepted as a float.
        """
        value = self.options.get(key)
        if value is None:
            return None
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)  # type: ignore[return-value]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.error(f"expected {Option(kind).describe()}, got {value!r}", key)
        return value

    def value(self, key: str, kind: builtins.type[T]) -> T:
        """A declared option that has a default or is required, as ``kind``."""
        value = self.optional(key, kind)
        if value is None:
            raise self.error(f"missing; expected {Option(kind).describe()}", key)
        return value

    def strings(self, key: str) -> tuple[str, ...]:
        """A list option as text values (empty when unset)."""
        return tuple(str(item) for item in self.optional(key, list) or ())

    @property
    def since(self) -> datetime | None:
        return parse_since(self.options.get("since"))

    @property
    def streams(self) -> tuple[str, ...]:
        return tuple(self.options.get("streams") or ())

    def pattern(self, key: str) -> re.Pattern[str]:
        """A regex option, compiled (the config compiled and checked it already)."""
        value = self.options.get(key)
        if isinstance(value, re.Pattern):
            return value
        default = COMMON_OPTIONS[key].default if key in COMMON_OPTIONS else None
        return re.compile(str(value if value is not None else default))

    @property
    def production(self) -> re.Pattern[str]:
        return self.pattern("production")

    @property
    def hotfix(self) -> re.Pattern[str]:
        return self.pattern("hotfix")

    @property
    def bots(self) -> re.Pattern[str]:
        return self.pattern("bots")

    @property
    def token_env(self) -> str | None:
        value = self.options.get("token_env")
        return str(value) if value else None

    def token(self) -> str | None:
        """The token from ``token_env`` (never logged; registered for redaction)."""
        return read_token(self.token_env) if self.token_env else None

    def path(self, key: str) -> Path:
        """An option that names a file or directory, relative to the config file's folder."""
        return (self.base_dir / Path(str(self.options[key])).expanduser()).resolve()

    def error(self, message: str, key: str | None = None) -> ConfigError:
        return ConfigError(message, file=self.config_file, source=self.name, key=key)


def parse_since(value: Any) -> datetime | None:
    """A ``since`` value (date, datetime or ISO string) as an aware UTC datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    text = str(value).strip().replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{value!r} is not a date (expected YYYY-MM-DD)", key="since") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


#: Hosts a source may reach over plain ``http://`` (a local test server).
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})

#: Shared: every HTTP connector bounds its waits on a rate limit the same way.
MAX_RATE_LIMIT_WAIT = Option(
    (int, float), 900, help="longest wait for a rate limit, seconds; beyond it, stop"
)


def span_options(open_items: str) -> dict[str, Option]:
    """The re-reading options of a source read by creation span (``overlap_minutes``,
    ``open_lookback_days``, ``max_rate_limit_wait``). Shared: PagerDuty and Opsgenie read
    incidents the same way; ``open_items`` names what stays open ("unresolved incidents")."""
    return {
        "overlap_minutes": Option(
            (int, float), 60, help="re-read this much before the previous run's end, minutes"
        ),
        "open_lookback_days": Option(
            (int, float), 30, help=f"keep re-reading {open_items} this many days, at most"
        ),
        "max_rate_limit_wait": MAX_RATE_LIMIT_WAIT,
    }


@dataclass(frozen=True)
class SpanSettings:
    """The settings every API-key source read by creation span has (see :func:`span_options`).
    Shared: the PagerDuty and Opsgenie settings extend it with their own filters."""

    url: str
    host: str
    token_env: str
    services: tuple[str, ...]
    page_size: int
    overlap_minutes: float
    open_lookback_days: float
    max_rate_limit_wait: float
    catalogue: tuple[Service, ...]


def api_key_source(
    source: SourceConfig, default_url: str, *, root_only: bool
) -> tuple[str, str, str]:
    """An API-key source's checked ``url``, its host and its ``token_env``, or a
    ``ConfigError`` naming the key that is wrong. Shared: PagerDuty and Opsgenie check these
    alike (``root_only``: the URL may carry no path)."""
    url = source.value("url", str).strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme == "http" and parts.hostname not in LOOPBACK:
        raise source.error(f"{url!r}: use https:// (plain http only for a local server)", "url")
    if (root_only and parts.path not in ("", "/")) or parts.query or parts.username:
        raise source.error(f"{url!r}: give the API root, e.g. {default_url}", "url")
    token_env = source.token_env
    if not token_env:
        raise source.error("set token_env to the variable holding the API key", "token_env")
    if read_token(token_env) is None:
        raise source.error(
            f"environment variable {token_env} is not set (or empty); export it first",
            "token_env",
        )
    return url, str(parts.netloc), token_env


def span_numbers(source: SourceConfig) -> dict[str, float]:
    """The :func:`span_options` numbers, each checked >= 0 (shared as they are)."""
    numbers = {}
    for key in ("overlap_minutes", "open_lookback_days", "max_rate_limit_wait"):
        numbers[key] = source.value(key, float)
        if numbers[key] < 0:
            raise source.error("expected a number >= 0", key)
    return numbers


def page_size(source: SourceConfig, most: int) -> int:
    """The ``page_size`` option, a whole number from 1 to ``most`` (shared by the connectors)."""
    size = source.value("page_size", int)
    if not 1 <= size <= most:
        raise source.error(f"expected a whole number from 1 to {most}", "page_size")
    return size


__all__ = ["COMMON_OPTIONS", "URL", "Option", "Service", "SourceConfig", "parse_since"]

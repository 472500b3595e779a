"""A ServiceNow source's options, checked and typed once (the connector builds them in
``__init__``; the config check builds them too, so a bad option fails at load time).

Credentials come only from the environment: ``user_env`` and ``password_env`` (Basic auth) or
``token_env`` (an OAuth bearer token), never both. The instance URL must be ``https://``;
plain ``http://`` is accepted only for a loopback host (a local test instance), so a password
never crosses a network in clear.

- https://www.servicenow.com/docs/bundle/latest/page/integrate/inbound-rest/concept/c_RESTAPI.html
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from deliverypulse.redaction import read_token
from deliverypulse.sources import LOOPBACK, MAX_RATE_LIMIT_WAIT, URL, Option, Service, SourceConfig

#: ServiceNow's default cap on records per Table API response (``glide.rest.query.max``
#: style limits may lower it; the connector pages on whatever the instance returns).
DEFAULT_PAGE_SIZE = 10_000

OPTIONS: Mapping[str, Option] = {
    "url": Option(URL, required=True, help="the instance, https://NAME.service-now.com"),
    "user_env": Option(str, help="variable holding the user name (Basic auth)"),
    "password_env": Option(str, help="variable holding the password (Basic auth)"),
    "page_size": Option(int, DEFAULT_PAGE_SIZE, help="records per request (sysparm_limit)"),
    "overlap_minutes": Option(
        (int, float), 10, help="re-read this much before the last update seen, minutes"
    ),
    "change_query": Option(str, help="extra encoded query for change_request, e.g. 'active=true'"),
    "incident_query": Option(str, help="extra encoded query for incident, e.g. 'priority<=2'"),
    "max_rate_limit_wait": MAX_RATE_LIMIT_WAIT,
}


@dataclass(frozen=True)
class Settings:
    """What one ServiceNow source reads and how, from its ``[[sources]]`` table."""

    url: str
    host: str
    user_env: str | None
    password_env: str | None
    token_env: str | None
    page_size: int
    overlap_minutes: float
    change_query: str
    incident_query: str
    max_rate_limit_wait: float
    services: tuple[Service, ...]

    @property
    def secret_names(self) -> str:
        """What holds the credentials, for error messages (never the values)."""
        if self.token_env:
            return self.token_env
        return f"{self.user_env} / ${self.password_env}"

    @classmethod
    def from_source(cls, source: SourceConfig) -> Settings:
        """The typed settings, or a ``ConfigError`` naming the key that is wrong."""
        url = source.value("url", str).strip().rstrip("/")
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise source.error(f"{url!r}: expected https://NAME.service-now.com", "url")
        if parts.scheme == "http" and parts.hostname not in LOOPBACK:
            raise source.error(
                f"{url!r}: use https:// (plain http only for a local test instance)", "url"
            )
        if parts.path not in ("", "/") or parts.query or parts.username:
            raise source.error(
                f"{url!r}: give the instance root only, e.g. https://acme.service-now.com", "url"
            )
        user_env = source.optional("user_env", str)
        password_env = source.optional("password_env", str)
        token_env = source.token_env
        basic = bool(user_env or password_env)
        if basic and token_env:
            raise source.error("give user_env + password_env or token_env, not both", "token_env")
        if not basic and not token_env:
            raise source.error(
                "set user_env and password_env (Basic auth) or token_env (OAuth bearer)",
                "user_env",
            )
        if basic:
            for key, name in (("user_env", user_env), ("password_env", password_env)):
                if not name:
                    raise source.error("Basic auth needs both user_env and password_env", key)
                if read_token(name) is None:
                    raise source.error(
                        f"environment variable {name} is not set (or empty); "
                        "export it before running",
                        key,
                    )
        page_size = source.value("page_size", int)
        if not 1 <= page_size <= 100_000:
            raise source.error("expected a whole number from 1 to 100000", "page_size")
        overlap = source.value("overlap_minutes", float)
        if overlap < 0:
            raise source.error("expected a number of minutes >= 0", "overlap_minutes")
        max_wait = source.value("max_rate_limit_wait", float)
        if max_wait < 0:
            raise source.error("expected a number of seconds >= 0", "max_rate_limit_wait")
        return cls(
            url=url,
            host=str(parts.netloc),
            user_env=user_env,
            password_env=password_env,
            token_env=token_env,
            page_size=page_size,
            overlap_minutes=overlap,
            change_query=(source.optional("change_query", str) or "").strip("^"),
            incident_query=(source.optional("incident_query", str) or "").strip("^"),
            max_rate_limit_wait=max_wait,
            services=source.services,
        )

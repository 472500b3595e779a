"""The skeleton every HTTP connector shares: its settings built (and validated) from the source,
a retry policy bounded by the source's ``max_rate_limit_wait``, and the core's HTTP client
driven by the runtime's clock, sleep and transport.

Shared because the GitHub, PagerDuty, Opsgenie and ServiceNow connectors each built these the
same way; a connector only says which settings it reads and how it connects.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable
from typing import Any, ClassVar, Protocol

from deliverypulse.connector import Connector
from deliverypulse.http import HTTPClient, RetryPolicy
from deliverypulse.sources import SourceConfig
from deliverypulse.streams import DEFAULT_RUNTIME, Runtime


class HostedSettings(Protocol):
    """What :class:`HTTPConnector` needs of a connector's settings class."""

    @property
    def max_rate_limit_wait(self) -> float: ...

    @classmethod
    def from_source(cls, source: SourceConfig) -> Any: ...


class HTTPConnector(Connector):
    """A connector reading one API over HTTP; by default its one "repo" is the API host."""

    settings_type: ClassVar[type[HostedSettings]]
    settings: Any
    client: HTTPClient

    @classmethod
    def validate(cls, source: SourceConfig) -> None:
        cls.settings_type.from_source(source)

    def __init__(
        self,
        source: SourceConfig,
        runtime: Runtime = DEFAULT_RUNTIME,
        *,
        policy: RetryPolicy | None = None,
    ) -> None:
        super().__init__(source, runtime)
        self.settings = self.settings_type.from_source(source)
        wait = self.settings.max_rate_limit_wait
        self.connect(source, runtime, policy or RetryPolicy(max_rate_limit_wait=wait))

    @abstractmethod
    def connect(self, source: SourceConfig, runtime: Runtime, policy: RetryPolicy) -> None:
        """Build ``self.client`` (with :func:`http_client`) and whatever reads through it."""

    def repos(self) -> Iterable[str]:
        return [self.settings.host]

    def close(self) -> None:
        self.client.close()


def http_client(
    url: str, source: SourceConfig, runtime: Runtime, policy: RetryPolicy, **options: Any
) -> HTTPClient:
    """The core's HTTP client for ``source``, waiting and timing by ``runtime``; ``options``
    are :class:`~deliverypulse.http.HTTPClient`'s others (headers, token, max_in_flight...)."""
    return HTTPClient(
        url,
        source=source.name,
        policy=policy,
        sleep=runtime.sleep,
        clock=lambda: runtime.clock().timestamp(),
        transport=runtime.transport,
        **options,
    )


def api_key_client(
    source: SourceConfig,
    runtime: Runtime,
    policy: RetryPolicy,
    settings: Any,
    headers: dict[str, str],
) -> HTTPClient:
    """A one-request-at-a-time client for ``settings.url`` sending ``headers`` (the API key
    among them) and deliverypulse's User-Agent. Shared: PagerDuty and Opsgenie connect so."""
    return http_client(
        settings.url,
        source,
        runtime,
        policy,
        token_env=settings.token_env,
        max_in_flight=1,
        headers={**headers, "User-Agent": "deliverypulse"},
    )

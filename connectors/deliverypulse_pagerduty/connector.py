"""The PagerDuty connector: one account's incidents, read through the REST API v2 with the core's
HTTP client (its retries, waits on 429 by ``Retry-After`` or ``ratelimit-reset``, and error
classification), the API key from the environment as ``Authorization: Token token=...``.

The account's API host (``api.pagerduty.com``) is the source's one "repo": the cursor is kept
under it, and incidents whose service the catalogue does not map to exactly one repo carry it
as their ``repo``.

- https://developer.pagerduty.com/docs/rest-api-v2/authentication/
- https://developer.pagerduty.com/docs/rest-api-v2/versioning/ (the ``Accept`` header)
- https://support.pagerduty.com/main/docs/rest-api-rate-limits
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import ClassVar

from deliverypulse.connector import Connector, Option
from deliverypulse.http import HTTPClient, RetryPolicy
from deliverypulse.sources import SourceConfig
from deliverypulse.streams import DEFAULT_RUNTIME, Runtime, Span, Stream
from deliverypulse_pagerduty.api import IncidentsAPI
from deliverypulse_pagerduty.incidents import read_incidents
from deliverypulse_pagerduty.settings import OPTIONS, Settings

ACCEPT = "application/vnd.pagerduty+json;version=2"


class PagerDutyConnector(Connector):
    """Incidents from a PagerDuty account."""

    type_name: ClassVar[str] = "pagerduty"
    streams = (
        Stream(
            "incidents",
            read_incidents,
            cursor=Span,
            reads="REST API v2 GET /incidents, by creation windows (since/until)",
        ),
    )
    options: ClassVar[Mapping[str, Option]] = OPTIONS

    @classmethod
    def validate(cls, source: SourceConfig) -> None:
        Settings.from_source(source)

    def __init__(
        self,
        source: SourceConfig,
        runtime: Runtime = DEFAULT_RUNTIME,
        *,
        policy: RetryPolicy | None = None,
    ) -> None:
        super().__init__(source, runtime)
        self.settings = Settings.from_source(source)
        token = source.token()  # registered for redaction, so the header value is masked too
        self.client = HTTPClient(
            self.settings.url,
            source=source.name,
            token_env=self.settings.token_env,
            policy=policy or RetryPolicy(max_rate_limit_wait=self.settings.max_rate_limit_wait),
            sleep=runtime.sleep,
            clock=lambda: runtime.clock().timestamp(),
            transport=runtime.transport,
            max_in_flight=1,
            headers={
                "Accept": ACCEPT,
                "Content-Type": "application/json",
                "Authorization": f"Token token={token}",
                "User-Agent": "deliverypulse",
            },
        )
        self.api = IncidentsAPI(self.client, self.settings)

    def repos(self) -> Iterable[str]:
        return [self.settings.host]

    def close(self) -> None:
        self.client.close()

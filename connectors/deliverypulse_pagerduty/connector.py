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

from collections.abc import Mapping
from typing import ClassVar

from deliverypulse.connector import Option
from deliverypulse.hosted import HTTPConnector, api_key_client
from deliverypulse.http import RetryPolicy
from deliverypulse.sources import SourceConfig
from deliverypulse.streams import Runtime, Span, Stream
from deliverypulse_pagerduty.api import IncidentsAPI
from deliverypulse_pagerduty.incidents import read_incidents
from deliverypulse_pagerduty.settings import OPTIONS, Settings

ACCEPT = "application/vnd.pagerduty+json;version=2"


class PagerDutyConnector(HTTPConnector):
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
    settings_type = Settings
    settings: Settings

    def connect(self, source: SourceConfig, runtime: Runtime, policy: RetryPolicy) -> None:
        token = source.token()  # registered for redaction, so the header value is masked too
        headers = {
            "Accept": ACCEPT,
            "Content-Type": "application/json",
            "Authorization": f"Token token={token}",
        }
        self.client = api_key_client(source, runtime, policy, self.settings, headers)
        self.api = IncidentsAPI(self.client, self.settings)

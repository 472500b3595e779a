"""The Opsgenie connector: one account's incidents (or alerts), read with the core's HTTP client
(its retries, waits on 429 and error classification), the API key from the environment as
``Authorization: GenieKey <key>``.

The API host (``api.opsgenie.com`` or ``api.eu.opsgenie.com``) is the source's one "repo": the
cursor is kept under it, and rows whose service the catalogue does not map to exactly one repo
carry it as their ``repo``.

- https://docs.opsgenie.com/docs/authentication
- https://docs.opsgenie.com/docs/api-rate-limiting
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from deliverypulse.connector import Option
from deliverypulse.hosted import HTTPConnector, api_key_client
from deliverypulse.http import RetryPolicy
from deliverypulse.sources import SourceConfig
from deliverypulse.streams import Runtime, Span, Stream
from deliverypulse_opsgenie.api import ListAPI
from deliverypulse_opsgenie.incidents import read_incidents
from deliverypulse_opsgenie.settings import OPTIONS, Settings


class OpsgenieConnector(HTTPConnector):
    """Incidents (Incident API) or alerts (Alert API) from an Opsgenie account."""

    type_name: ClassVar[str] = "opsgenie"
    streams = (
        Stream(
            "incidents",
            read_incidents,
            cursor=Span,
            reads='GET /v1/incidents (or /v2/alerts with api = "alerts"), by createdAt',
        ),
    )
    options: ClassVar[Mapping[str, Option]] = OPTIONS
    settings_type = Settings
    settings: Settings

    def connect(self, source: SourceConfig, runtime: Runtime, policy: RetryPolicy) -> None:
        key = source.token()  # registered for redaction, so the header value is masked too
        headers = {
            "Accept": "application/json",
            "Authorization": f"GenieKey {key}",
        }
        self.client = api_key_client(source, runtime, policy, self.settings, headers)
        self.api = ListAPI(self.client, self.settings)

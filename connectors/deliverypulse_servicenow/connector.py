"""The ServiceNow connector: one instance, read through the Table API with the core's HTTP
client (its retries, ``Retry-After`` waits on 429 and error classification), Basic auth or an
OAuth bearer token from the environment.

The instance is the source's one "repo" (its host, e.g. ``acme.service-now.com``): cursors are
kept per instance, and rows whose configuration item the service catalogue does not map to
exactly one repo carry it as their ``repo``.

- https://www.servicenow.com/docs/bundle/latest/page/integrate/inbound-rest/concept/c_TableAPI.html
- https://www.servicenow.com/docs/bundle/latest/page/integrate/inbound-rest/concept/c_RESTAPI.html
  (authentication: Basic or OAuth 2.0 bearer tokens)
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import ClassVar

from deliverypulse.connector import Option
from deliverypulse.hosted import HTTPConnector, http_client
from deliverypulse.http import RetryPolicy
from deliverypulse.redaction import read_token, register_secret
from deliverypulse.sources import SourceConfig
from deliverypulse.streams import Runtime, Stream, Walks
from deliverypulse_servicenow.api import TableAPI
from deliverypulse_servicenow.change_requests import read_change_requests
from deliverypulse_servicenow.incidents import read_incidents
from deliverypulse_servicenow.settings import OPTIONS, Settings

_HEADERS = {"Accept": "application/json", "User-Agent": "deliverypulse"}


class ServiceNowConnector(HTTPConnector):
    """Change requests (with approvals) and incidents from a ServiceNow instance."""

    type_name: ClassVar[str] = "servicenow"
    streams = (
        Stream(
            "change_requests",
            read_change_requests,
            cursor=Walks,
            reads="Table API change_request and sysapproval_approver, by sys_updated_on",
        ),
        Stream(
            "incidents",
            read_incidents,
            cursor=Walks,
            reads="Table API incident, by sys_updated_on",
        ),
    )
    options: ClassVar[Mapping[str, Option]] = OPTIONS
    settings_type = Settings
    settings: Settings

    def connect(self, source: SourceConfig, runtime: Runtime, policy: RetryPolicy) -> None:
        headers = dict(_HEADERS)
        token = None
        if self.settings.token_env:
            token = source.token()
        else:
            headers["Authorization"] = _basic(self.settings)
        self.client = http_client(
            self.settings.url,
            source,
            runtime,
            policy,
            token=(lambda: token) if token else None,
            token_env=self.settings.secret_names,
            max_in_flight=1,
            headers=headers,
        )
        self.api = TableAPI(self.client, self.settings)


def _basic(settings: Settings) -> str:
    """The Basic ``Authorization`` value; the password and the encoded pair are registered
    for redaction, so neither can reach a log line or an exception."""
    user = read_token(settings.user_env or "") or ""
    password = read_token(settings.password_env or "") or ""
    pair = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    register_secret(pair)
    return f"Basic {pair}"

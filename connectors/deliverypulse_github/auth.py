"""Credentials for the GitHub connector: a token from ``token_env``, or a GitHub App
installation token obtained (and refreshed before it expires) through PyGithub's own auth
classes, so this project signs no JWT itself.

- https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/authenticating-as-a-github-app-installation
- https://pygithub.readthedocs.io/en/stable/examples/Authentication.html
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from deliverypulse.errors import AuthError
from deliverypulse.http import TokenSource
from deliverypulse.redaction import read_token, register_secret
from deliverypulse.sources import SourceConfig
from deliverypulse_github.settings import Settings

#: Refresh an installation token this long before GitHub says it expires (they last 1 hour).
REFRESH_MARGIN = timedelta(minutes=5)


class InstallationTokens:
    """A :data:`TokenSource` that hands out a GitHub App installation token, renewing it as
    it nears expiry. Thread-safe: concurrent workers share one token."""

    def __init__(
        self,
        source: SourceConfig,
        *,
        app_id: int | str,
        key_env: str,
        installation_id: int,
        api_url: str,
    ) -> None:
        self.source = source
        self.key_env = key_env
        self.installation_id = installation_id
        private_key = read_token(key_env)  # registered for redaction like any token
        if not private_key:
            raise source.error(
                f"environment variable {key_env} (the GitHub App's private key) is not set",
                "app_private_key_env",
            )
        import github  # PyGithub: imported here, it is only needed for App auth

        self._integration = github.GithubIntegration(
            auth=github.Auth.AppAuth(app_id, private_key), base_url=api_url
        )
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = datetime.min.replace(tzinfo=UTC)

    def __call__(self) -> str | None:
        with self._lock:
            if self._token is None or datetime.now(UTC) >= self._expires_at - REFRESH_MARGIN:
                self._refresh()
            return self._token

    def _refresh(self) -> None:
        import github

        try:
            grant = self._integration.get_access_token(self.installation_id)
        except github.GithubException as error:
            raise AuthError(
                f"could not get an installation token for GitHub App installation "
                f"{self.installation_id} (key from ${self.key_env}): HTTP {error.status}",
                status=error.status,
                source=self.source.name,
            ) from None
        register_secret(grant.token)
        self._token = grant.token
        expires: Any = grant.expires_at
        if isinstance(expires, datetime):
            self._expires_at = expires if expires.tzinfo else expires.replace(tzinfo=UTC)
        else:
            self._expires_at = datetime.now(UTC) + timedelta(minutes=55)


def token_source(source: SourceConfig, settings: Settings) -> tuple[TokenSource, str | None]:
    """The token source for ``source`` and the name of what holds the secret (for errors)."""
    app = settings.app
    if app is not None:
        tokens = InstallationTokens(
            source,
            app_id=app.app_id,
            key_env=app.private_key_env,
            installation_id=app.installation_id,
            api_url=settings.api_url,
        )
        return tokens, app.private_key_env
    token = source.token()
    return (lambda: token), source.token_env

"""GitLab specifics of the HTTP layer: endpoint shapes for request counts, and python-gitlab's
own exceptions as deliverypulse errors. Retries and rate limits are the core's
(:mod:`deliverypulse.http.requests_adapter`), with python-gitlab's own turned off.

GitLab's rate limits and headers: https://docs.gitlab.com/user/gitlab_com/#rate-limits-on-gitlabcom
and https://docs.gitlab.com/administration/settings/user_and_ip_rate_limits/#response-headers
"""

from __future__ import annotations

from deliverypulse.errors import APIError, FatalAPIError, NotFoundError, RetryableAPIError
from deliverypulse.http.policy import ErrorContext, Outcome, Verdict, error_for

__all__ = ["endpoint_of", "translate_gitlab_error"]


def endpoint_of(url: str) -> str:
    """``/projects/:id/deployments/:id/merge_requests`` for any project and deployment."""
    path = url.split("?", 1)[0]
    if "/api/v4" in path:
        path = path.split("/api/v4", 1)[1]
    parts = path.strip("/").split("/")
    shaped = [
        ":id" if (i > 0 and parts[i - 1] in _ID_AFTER) else part for i, part in enumerate(parts)
    ]
    return "/" + "/".join(shaped)


_ID_AFTER = frozenset(
    {"projects", "groups", "deployments", "merge_requests", "pipelines", "jobs", "issues"}
)


def translate_gitlab_error(error: Exception, context: ErrorContext) -> APIError:
    """A python-gitlab exception as a deliverypulse error naming the source and token variable.

    The adapter raises deliverypulse errors itself for everything it sees; this covers what
    python-gitlab raises on its own (an unparsable body, a redirect it refuses).
    """
    import gitlab.exceptions as gle

    status = getattr(error, "response_code", None)
    message = str(getattr(error, "error_message", "") or error)[:200]
    if isinstance(error, gle.GitlabParsingError):
        return RetryableAPIError(
            f"GitLab sent a body that is not JSON: {message}", source=context.source
        )
    if isinstance(error, gle.GitlabAuthenticationError) or status in (401, 403):
        verdict = Verdict(Outcome.FATAL, "forbidden", status=status or 401)
        return error_for(verdict, url="", request_id=None, context=context, detail=message)
    if status == 404:
        return NotFoundError(
            f"{context.repo or 'resource'} not found, or the token in ${context.token_env} "
            f"cannot see it: {message}",
            status=404,
            source=context.source,
        )
    if status is not None and status >= 500:
        return RetryableAPIError(f"GitLab failed: {message}", status=status, source=context.source)
    return FatalAPIError(
        f"GitLab refused the request: {message}", status=status, source=context.source
    )

"""HTTP for connectors: one retry and rate-limit policy, and an httpx client that applies it.

``policy`` knows nothing of any HTTP library (the GitLab connector drives it from ``requests``);
``client`` is the httpx side, with pagination and conditional requests.
"""

from deliverypulse.http.client import (
    GraphQLAPIError,
    HTTPClient,
    JSONResponse,
    TokenSource,
    dig,
    next_link,
)
from deliverypulse.http.policy import (
    ErrorContext,
    Outcome,
    RateBudget,
    RetryPolicy,
    Verdict,
    classify,
    error_for,
)
from deliverypulse.http.stats import RequestStats

__all__ = [
    "ErrorContext",
    "GraphQLAPIError",
    "HTTPClient",
    "JSONResponse",
    "Outcome",
    "RateBudget",
    "RequestStats",
    "RetryPolicy",
    "TokenSource",
    "Verdict",
    "classify",
    "dig",
    "error_for",
    "next_link",
]

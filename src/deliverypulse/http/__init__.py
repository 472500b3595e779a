"""HTTP for connectors: one retry and rate-limit policy, and an httpx client that applies it.

``policy`` knows nothing of any HTTP library; ``client`` applies it to httpx, with pagination
and conditional requests; ``requests_adapter`` applies it under clients that speak through
``requests`` (python-gitlab, PyGithub); ``stats`` counts what either sent.
"""

from deliverypulse.errors import GraphQLAPIError
from deliverypulse.http.client import (
    HTTPClient,
    JSONResponse,
    TokenSource,
    dig,
    next_link,
)
from deliverypulse.http.policy import RateBudget, RetryPolicy
from deliverypulse.http.requests_adapter import PolicyAdapter, policy_session
from deliverypulse.http.stats import RequestStats

__all__ = [
    "GraphQLAPIError",
    "HTTPClient",
    "JSONResponse",
    "PolicyAdapter",
    "RateBudget",
    "RequestStats",
    "RetryPolicy",
    "TokenSource",
    "dig",
    "next_link",
    "policy_session",
]

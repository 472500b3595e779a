"""Counting what a connector sent: tests assert request costs with it, benchmarks print it."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class RequestStats:
    """Requests sent by one client (httpx or ``requests``), counted as they go.

    ``endpoint`` shapes a URL into a path pattern (ids blanked) for ``by_endpoint``; without it
    that counter stays empty.
    """

    total: int = 0
    retries: int = 0
    not_modified: int = 0
    graphql: int = 0
    waited_seconds: float = 0.0
    by_status: Counter[int] = field(default_factory=Counter)
    by_endpoint: Counter[str] = field(default_factory=Counter)
    endpoint: Callable[[str], str] | None = field(default=None, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record(
        self,
        status: int | None,
        *,
        url: str | None = None,
        is_graphql: bool = False,
        is_retry: bool = False,
    ) -> None:
        with self._lock:
            self.total += 1
            self.graphql += is_graphql
            self.retries += is_retry
            if status is not None:
                self.by_status[status] += 1
                self.not_modified += status == 304
            if url is not None and self.endpoint is not None:
                self.by_endpoint[self.endpoint(url)] += 1

    def record_wait(self, seconds: float) -> None:
        with self._lock:
            self.waited_seconds += seconds

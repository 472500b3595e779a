"""Keeps tokens out of everything we write: the dataset, state, logs and exception texts.

Tokens are read only from environment variables, through :func:`read_token`, which remembers
each value so :func:`redact` can blank it wherever it shows up.
"""

from __future__ import annotations

import logging
import os
import threading

_known: set[str] = set()
_guard = threading.Lock()
_MASK = "***"


def register_secret(value: str) -> None:
    """Remember ``value`` so that it is masked from now on (short values are ignored)."""
    if value and len(value) >= 6:
        with _guard:
            _known.add(value)


def redact(text: str) -> str:
    """Return ``text`` with every known secret replaced by ``***``."""
    if not _known or not text:
        return text
    for secret in sorted(_known, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, _MASK)
    return text


def read_token(env_name: str) -> str | None:
    """The value of environment variable ``env_name``, registered for redaction."""
    value = os.environ.get(env_name)
    if value:
        register_secret(value)
    return value or None


class RedactingFilter(logging.Filter):
    """A logging filter that masks known secrets in every record's final message."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _known:
            record.msg = redact(record.getMessage())
            record.args = None
        return True


def install_log_redaction(logger: logging.Logger | None = None) -> None:
    """Attach :class:`RedactingFilter` to ``logger``'s handlers (the root's by default)."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())

"""How every command fails: one line on stderr, a documented exit code, never a traceback.

Exit codes: 0 success, 1 a source or the run failed, 2 bad usage or configuration, 130 when
interrupted. ``--debug`` lets unexpected exceptions through with their traceback.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any, NoReturn, TypeVar

import click

from deliverypulse.errors import ConfigError, DeliveryPulseError
from deliverypulse.redaction import redact

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``deliverypulse: error: MESSAGE`` (tokens masked) and exit with ``code``."""
    click.echo(f"deliverypulse: error: {redact(message)}", err=True)
    sys.exit(code)


@contextmanager
def usage_errors(*kinds: type[Exception]) -> Iterator[None]:
    """Report ``kinds`` (a bad option value, say) as usage errors: one line, exit 2."""
    try:
        yield
    except kinds as error:
        raise click.UsageError(redact(str(error))) from None


def handle_errors(command: F) -> F:
    """Turn our exceptions into one-line messages and the documented exit codes."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except click.ClickException:
            raise  # click prints usage errors itself, with exit code 2
        except ConfigError as error:
            fail(str(error), 2)
        except DeliveryPulseError as error:
            fail(str(error), 1)
        except BrokenPipeError:
            # The reader went away (``deliverypulse status | head``): not an error of ours.
            # Point stdout at devnull so the interpreter's final flush cannot raise again.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(0)
        except KeyboardInterrupt:
            fail("interrupted; rerun to resume (nothing stored was lost)", 130)
        except Exception as error:
            if logging.getLogger("deliverypulse").isEnabledFor(logging.DEBUG):
                raise
            fail(f"unexpected {type(error).__name__}: {error} (rerun with --debug for details)")

    return wrapper  # type: ignore[return-value]

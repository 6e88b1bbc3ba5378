"""The app's own errors as the test's failure.

The server catches every exception an app raises (the client gets a 500 or a close
code, the error log gets one record with the traceback) and stays up: right for a
server, useless for a test, which would fail later on a status code, or not at all.
:class:`AppFailures` sits on the ``trio_asgi`` logger while a test server runs and
turns each such record back into an exception:

- the exception the app raised, taken from the record's ``exc_info`` (an
  :class:`~trio_asgi.ASGIProtocolError` from ``send()`` for messages out of order),
  with single-member exception groups unwrapped, so hypothesis tells distinct bugs
  apart by their own type and line;
- :class:`IncompleteResponse` when the app returned without finishing its response
  or its WebSocket handshake (no exception exists: the server noticed);
- :class:`HungRequest` when graceful shutdown had to cancel a request.

The records it turns into exceptions do not propagate: the failure is shown once,
whole, when it is raised, instead of a traceback per shrinking step in the log.

Matching is by the server's log messages (the server has no structured hook for
app errors yet); a record with an exception attached that is not the server's own
"Unexpected error" counts as the app's.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from ._server_errors import UNEXPECTED, ServerErrors

#: How the server's log messages about an app that misbehaved begin.
_APP_ERROR_PREFIXES = (
    "Exception in ASGI application",
    "ASGI application returned without completing the response",
    "WebSocket app returned without accepting or closing",
    "WebSocket app did not accept or close within",
)
#: The server's warning when graceful shutdown cancels what was left.
_SHUTDOWN_CANCELLED = "Graceful shutdown timed out"


class AppError(AssertionError):
    """The app broke the ASGI contract without raising an exception of its own."""


class IncompleteResponse(AppError):
    """The app returned without completing its response (or its WebSocket handshake)."""


class HungRequest(AppError):
    """A request or WebSocket session never finished: its app ignored the client leaving,
    or graceful shutdown had to cancel it."""


def collapse(exc: BaseException) -> BaseException:
    """``exc`` without the single-member exception groups around it."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


class AppFailures(logging.Filter):
    """A filter on the ``trio_asgi`` logger that keeps app errors as exceptions.

    Args:
        errors: Where the ERROR records it keeps from propagating still go, so
            :attr:`ServerErrors.records` lists every error either way.
    """

    def __init__(self, errors: ServerErrors) -> None:
        super().__init__()
        self._errors = errors
        #: The failures not raised yet, in order.
        self.pending: list[BaseException] = []

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith(_SHUTDOWN_CANCELLED):
            self.pending.append(HungRequest(f"{message}: an app never finished"))
            return True
        if record.levelno < logging.ERROR or message.startswith(UNEXPECTED):
            return True
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None and not message.startswith(_APP_ERROR_PREFIXES):
            return True
        if exc is None:
            kind = AppError if message.startswith("Exception") else IncompleteResponse
            failure: BaseException = kind(message)
        else:
            failure = collapse(exc)
            failure.add_note(f"(the server logged: {message})")
        self.pending.append(failure)
        self._errors.records.append(record)
        return False

    def pop(self) -> BaseException | None:
        """The first failure not raised yet (and forget it), or None."""
        return self.pending.pop(0) if self.pending else None

    def raise_first(self) -> None:
        """Raise the first pending failure, if any; the rest are dropped with it."""
        failure = self.pop()
        self.pending.clear()
        if failure is not None:
            raise failure


@contextmanager
def capture_app_failures(errors: ServerErrors) -> Iterator[AppFailures]:
    """Install :class:`AppFailures` on the ``trio_asgi`` logger for the block."""
    logger = logging.getLogger("trio_asgi")
    failures = AppFailures(errors)
    level = logger.level
    if logger.getEffectiveLevel() > logging.WARNING:
        logger.setLevel(logging.WARNING)
    logger.addFilter(failures)
    try:
        yield failures
    finally:
        logger.removeFilter(failures)
        logger.setLevel(level)

"""Catching what the server logs when an exception escapes a connection handler."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

#: The message the server's catch-all boundary logs: seeing it means a server bug.
UNEXPECTED = "Unexpected error"


class ServerErrors(logging.Handler):
    """A logging handler that keeps the ERROR records of the ``trio_asgi`` logger.

    Attributes:
        records: Every ERROR (or worse) record, in order: app errors the server
            reported ("Exception in ASGI application") as well as its own.
    """

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    @property
    def unexpected(self) -> list[logging.LogRecord]:
        """The records of exceptions that escaped a connection handler (server bugs)."""
        return [r for r in self.records if r.getMessage().startswith(UNEXPECTED)]

    def check(self) -> None:
        """Raise if an exception escaped a connection handler.

        Raises:
            AssertionError: With the message and traceback of the first such error.
        """
        if self.unexpected:
            first = self.unexpected[0]
            trace = self.format(first) if first.exc_info else first.getMessage()
            raise AssertionError(
                f"{len(self.unexpected)} exception(s) escaped a connection handler; "
                f"the first:\n{trace}"
            )


@contextmanager
def capture_server_errors() -> Iterator[ServerErrors]:
    """Collect the server's ERROR log records for the duration of the block.

    The ``trio_asgi`` logger is lowered to ERROR meanwhile if it was set higher,
    so nothing is missed; propagation to other handlers is unchanged.

    Yields:
        The :class:`ServerErrors` handler; call its :meth:`~ServerErrors.check`
        (or use :func:`~trio_asgi.testing.assert_no_server_errors`).

    Example:
        >>> import logging
        >>> with capture_server_errors() as errors:
        ...     logging.getLogger("trio_asgi").error("Unexpected error while serving")
        >>> len(errors.unexpected)
        1
    """
    logger = logging.getLogger("trio_asgi")
    handler = ServerErrors()
    handler.setFormatter(logging.Formatter("%(message)s"))
    level = logger.level
    if logger.getEffectiveLevel() > logging.ERROR:
        logger.setLevel(logging.ERROR)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)

"""Telling an app that runs on the wrong event loop from an app with a bug.

An asyncio-only app served on trio (or a trio-only one on asyncio) fails deep
inside its event-loop library, with errors that do not say what to do: ``no
running event loop``, ``'NoneType' object has no attribute 'create_future'``,
``must be called from async context``. :func:`log_app_exception`, called by
every boundary that catches an app's exception (the HTTP cycle, the WebSocket
session, lifespan), turns those into one log line that names the ``--loop`` to
use; the traceback goes to the debug level. Any other exception is logged with
its traceback, as before.

Each symptom is a hint only on the loop where it means "wrong runtime": ``no
running event loop`` on asyncio itself comes from a worker thread, not from
the wrong loop, so it keeps its traceback.
"""

from __future__ import annotations

import asyncio
import logging
from types import TracebackType
from typing import Final

from .._errors import leaves, one_line
from .._loop_choice import first_wrong_loop_report

logger = logging.getLogger("trio_asgi")

#: The errors an asyncio-only library raises when it runs on trio, as (type, text in
#: the message). Symptoms found by running each asyncio primitive on trio.
_ASYNCIO_ON_TRIO: Final[tuple[tuple[type[BaseException], str], ...]] = (
    # asyncio.get_running_loop(), asyncio.sleep(), create_task(), wait_for(), timeout()
    (RuntimeError, "no running event loop"),
    # asyncio.get_event_loop() where no loop can be made (Python 3.14)
    (RuntimeError, "no current event loop"),
    # awaiting an asyncio future (gather(), a future of a loop that is not running)
    (TypeError, "received unrecognized yield message"),
)

#: The same for a trio-only library on asyncio.
_TRIO_ON_ASYNCIO: Final[tuple[tuple[type[BaseException], str], ...]] = (
    # trio.sleep(), trio.Lock, trio.fail_after(), trio.to_thread: no trio.run around
    (RuntimeError, "must be called from async context"),
    # a trio checkpoint yielded to asyncio (trio.lowlevel.checkpoint(), Event.wait())
    (RuntimeError, "got bad yield: <class 'trio."),
)


def wrong_loop(exc: BaseException) -> str | None:
    """The loop ``exc`` says the app needs (``"asyncio"`` or ``"trio"``), or None.

    Looks through exception groups: one wrong-runtime error among them is enough.
    """
    on_asyncio = _on_asyncio()
    for leaf in leaves(exc):
        if on_asyncio and _is_trio_on_asyncio(leaf):
            return "trio"
        if not on_asyncio and _is_asyncio_on_trio(leaf):
            return "asyncio"
    return None


def wrong_loop_message(exc: BaseException) -> str | None:
    """One line saying what failed and which ``--loop`` to use, if ``exc`` is a wrong-loop error.

    Example: ``RuntimeError: no running event loop; the app needs asyncio but the
    server runs on trio: use --loop asyncio``.
    """
    needed = wrong_loop(exc)
    if needed is None:
        return None
    current = "asyncio" if needed == "trio" else "trio"
    leaf = next(leaf for leaf in leaves(exc) if _needs(leaf, needed))
    return (
        f"{type(leaf).__name__}: {one_line(leaf, 160)}; the app needs {needed} "
        f"but the server runs on {current}: use --loop {needed}"
    )


def log_app_exception(exc: BaseException, message: str, *args: object) -> None:
    """Log an exception that escaped the app: one line with a hint, or with its traceback.

    Args:
        exc: What the app raised.
        message: The log message (``%`` style, with ``args``), naming what failed.
        args: Its arguments.
    """
    hint = wrong_loop_message(exc)
    if hint is None:
        logger.error(message, *args, exc_info=exc)
        return
    if not first_wrong_loop_report():  # the hint is logged once, not per request
        logger.debug(message + ": %s", *args, hint, exc_info=exc)
        return
    logger.error(message + ": %s", *args, hint)
    logger.debug("The traceback of the error above", exc_info=exc)


def _needs(leaf: BaseException, needed: str) -> bool:
    return _is_trio_on_asyncio(leaf) if needed == "trio" else _is_asyncio_on_trio(leaf)


def _is_asyncio_on_trio(exc: BaseException) -> bool:
    if _matches(exc, _ASYNCIO_ON_TRIO):
        return True
    # asyncio.Queue, Lock, Event, Condition ask for the running loop, get None and
    # call None.create_future(): an AttributeError raised inside asyncio itself.
    return (
        isinstance(exc, AttributeError) and "'NoneType'" in str(exc) and _raised_in(exc, "asyncio")
    )


def _is_trio_on_asyncio(exc: BaseException) -> bool:
    # Anything raised inside trio while trio is not running (trio.open_nursery():
    # "'RunContext' object has no attribute 'runner'") is this mistake.
    return _matches(exc, _TRIO_ON_ASYNCIO) or _raised_in(exc, "trio")


def _matches(exc: BaseException, symptoms: tuple[tuple[type[BaseException], str], ...]) -> bool:
    text = str(exc)
    return any(isinstance(exc, kind) and part in text for kind, part in symptoms)


def _raised_in(exc: BaseException, package: str) -> bool:
    """Whether the innermost frame of ``exc``'s traceback is in ``package``."""
    tb: TracebackType | None = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    module = tb.tb_frame.f_globals.get("__name__", "")
    return isinstance(module, str) and (module == package or module.startswith(package + "."))


def _on_asyncio() -> bool:
    """Whether this task runs on an asyncio loop (uvloop included); else it is trio."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True

"""Running the app's lifespan protocol: startup before serving, shutdown after draining.

The app's lifespan call runs as a task of :func:`serve`'s outermost task group,
for the whole life of the server. :meth:`Lifespan.startup` and
:meth:`Lifespan.shutdown` talk to it through two events and are bounded by the
configured timeouts. An app that raises on, or returns from, the lifespan scope
without answering does not support lifespan: ``auto`` goes on without it,
``on`` fails.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio

from .._config import Config
from .._errors import ASGIProtocolError, LifespanFailure
from .._protocol._lifespan import LifespanOrder, LifespanPhase
from .._protocol._scope import LIFESPAN_SPEC_VERSION
from .._types import ASGIApp, Message
from ._app_errors import log_app_exception, wrong_loop_message

logger = logging.getLogger("trio_asgi")


class Lifespan:
    __slots__ = (
        "_answered",
        "_app",
        "_app_done",
        "_config",
        "_error",
        "_failure",
        "_order",
        "_scope",
        "_shutdown_requested",
        "_started_app",
        "state",
        "supported",
    )

    def __init__(self, app: ASGIApp, config: Config, state: dict[str, Any]) -> None:
        self._app = app
        self._config = config
        self.state = state
        self._order = LifespanOrder()
        #: Set each time the app answers (complete or failed) or its call ends.
        self._answered = anyio.Event()
        self._shutdown_requested = anyio.Event()
        self._app_done = False
        self._started_app = False
        self._failure: str | None = None
        self._error: BaseException | None = None
        # The app's call is shielded: cancelling serve() from outside must still let us
        # send lifespan.shutdown. serve() ends it with cancel(), always, in a finally.
        self._scope = anyio.CancelScope(shield=True)
        #: False when lifespan is off, or the app turned out not to support it.
        self.supported = config.lifespan != "off"

    async def run_app(self) -> None:
        """The app's lifespan call; runs as a task until the server stops."""
        self._started_app = True
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": LIFESPAN_SPEC_VERSION},
            "state": self.state,
        }
        try:
            with self._scope:
                await self._app(scope, self._receive, self._send)
        except Exception as exc:
            self._error = exc
            if self._order.phase is LifespanPhase.STARTING and wrong_loop_message(exc):
                # startup() fails with the one-line hint; the traceback is for debugging.
                logger.debug("Exception in 'lifespan' protocol", exc_info=exc)
            elif self._order.phase is LifespanPhase.STARTING and self._config.lifespan == "auto":
                logger.info(
                    "ASGI 'lifespan' protocol appears unsupported (%s: %s); going on without it",
                    type(exc).__name__,
                    exc,
                )
            else:
                log_app_exception(exc, "Exception in 'lifespan' protocol")
        finally:
            self._app_done = True
            self._answered.set()

    def cancel(self) -> None:
        """End the app's lifespan call (after shutdown, or when startup did not finish)."""
        self._scope.cancel()

    async def _receive(self) -> Message:
        if self._order.phase is LifespanPhase.STARTING:
            return {"type": "lifespan.startup"}
        await self._shutdown_requested.wait()
        return {"type": "lifespan.shutdown"}

    async def _send(self, message: Message) -> None:
        failure = self._order.advance(message)  # raises ASGIProtocolError on a bad order
        if failure is not None:
            self._failure = failure
        self._answered.set()

    async def startup(self) -> None:
        """Send ``lifespan.startup`` and wait for the answer.

        Raises:
            LifespanFailure: startup failed or timed out, or lifespan is ``on`` and unsupported.
        """
        if not self.supported:
            return
        logger.info("Waiting for application startup.")
        with anyio.move_on_after(self._config.timeout_lifespan_startup) as scope:
            await self._answered.wait()
        if scope.cancelled_caught:
            raise LifespanFailure(
                f"lifespan startup timed out after {self._config.timeout_lifespan_startup} seconds"
            )
        self._answered = anyio.Event()
        phase = self._order.phase
        if phase is LifespanPhase.STARTED:
            logger.info("Application startup complete.")
            return
        if phase is LifespanPhase.FAILED:
            raise LifespanFailure(f"lifespan startup failed: {self._failure or 'no message'}")
        # The app's call ended without answering startup.
        self.supported = False
        hint = wrong_loop_message(self._error) if self._error is not None else None
        if hint is not None:
            # Not "lifespan unsupported": this app cannot run on this loop at all.
            raise LifespanFailure(f"lifespan startup: {hint}")
        if self._config.lifespan == "on":
            why = f"{type(self._error).__name__}: {self._error}" if self._error else "it returned"
            raise LifespanFailure(f"the app does not support lifespan ({why}) and lifespan is 'on'")
        if self._error is None:
            logger.info(
                "ASGI 'lifespan' protocol unsupported (the app returned); going on without it"
            )
        if isinstance(self._error, ASGIProtocolError):
            raise LifespanFailure(f"lifespan startup: {self._error}")

    async def shutdown(self) -> None:
        """Send ``lifespan.shutdown`` and wait for the answer, bounded by the timeout.

        Called in a shielded scope: it must stay bounded on its own.
        """
        if not self.supported or self._app_done or self._order.phase is not LifespanPhase.STARTED:
            return
        self._order.begin_shutdown()
        self._shutdown_requested.set()
        logger.info("Waiting for application shutdown.")
        with anyio.move_on_after(self._config.timeout_lifespan_shutdown) as scope:
            await self._answered.wait()
        if scope.cancelled_caught:
            logger.error(
                "lifespan shutdown timed out after %s seconds",
                self._config.timeout_lifespan_shutdown,
            )
        elif self._failure is not None:
            logger.error("lifespan shutdown failed: %s", self._failure)
        elif not self._answered_shutdown():
            logger.error("the app's lifespan call ended without answering shutdown")
        else:
            logger.info("Application shutdown complete.")

    def _answered_shutdown(self) -> bool:
        return self._order.phase is LifespanPhase.STOPPED

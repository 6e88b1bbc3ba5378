"""Misbehaving ASGI apps for hypothesis: each app plays a drawn script and records what it saw.

A script is a tuple of steps: receive once, read the whole body (slowly, if it
has a delay), send a message, sleep, raise, return. Scripts start as a
well-behaved response and are then mutated: invalid messages (bad status,
headers that would split the response, wrong types, unknown types), messages
out of order, exceptions, early returns, missing body messages. Whether the
app swallows the errors ``send()`` and ``receive()`` raise is drawn too.

What a correct server must do with such an app is the caller's business; the
script's :attr:`ScriptedApp.expected_response` says which response, if any, a
client should get, and :attr:`ScriptedApp.calls` shows what the app saw.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

import anyio
from hypothesis import strategies as st

from .._types import Message, Receive, Scope, Send


class ScriptedAppError(Exception):
    """The exception a :class:`Raise` step raises, so tests can tell it from real bugs."""


@dataclass(frozen=True)
class ReceiveOnce:
    """Call ``receive()`` once."""


@dataclass(frozen=True)
class ReadBody:
    """Call ``receive()`` until the body is complete or ``http.disconnect``.

    ``delay`` seconds are slept before each call: a slow reader.
    """

    delay: float = 0.0


@dataclass(frozen=True)
class SendMessage:
    """Call ``send(message)``; ``valid`` says whether the message itself is well-formed."""

    message: Any
    valid: bool = True


@dataclass(frozen=True)
class Sleep:
    """``await anyio.sleep(seconds)`` (0 is a bare checkpoint)."""

    seconds: float


@dataclass(frozen=True)
class Raise:
    """Raise :class:`ScriptedAppError`."""


@dataclass(frozen=True)
class Return:
    """Return from the app here."""


Step: TypeAlias = ReceiveOnce | ReadBody | SendMessage | Sleep | Raise | Return
Outcome: TypeAlias = Literal["returned", "raised", "cancelled"]


@dataclass
class AppCall:
    """What one call of a :class:`ScriptedApp` saw and did.

    Attributes:
        scope: The scope it was called with.
        events: In order: ``("receive", message)``, ``("send", message)``,
            ``("receive-error", exc)``, ``("send-error", exc)``.
        outcome: How it ended (``None`` while it runs).
        error: The exception it ended with, if any.
    """

    scope: Scope
    events: list[tuple[str, Any]] = field(default_factory=list)
    outcome: Outcome | None = None
    error: BaseException | None = None

    @property
    def received(self) -> list[Message]:
        """The messages ``receive()`` returned."""
        return [m for kind, m in self.events if kind == "receive"]

    @property
    def sent(self) -> list[Any]:
        """The messages ``send()`` accepted (returned without raising)."""
        return [m for kind, m in self.events if kind == "send"]


@dataclass(frozen=True)
class ExpectedResponse:
    """The response a well-behaved script sends, as the app sent it.

    The server still frames it: no body on the wire for HEAD, 1xx, 204 and 304,
    and its own ``date``/``server``/framing headers added.
    """

    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes


def _expected_response(script: tuple[Step, ...]) -> ExpectedResponse | None:
    """The complete response the script sends before anything goes wrong, if any."""
    start: dict[str, Any] | None = None
    body = b""
    for step in script:
        if isinstance(step, Raise | Return) or (isinstance(step, SendMessage) and not step.valid):
            return None
        if not isinstance(step, SendMessage):
            continue
        message = step.message
        if message["type"] == "http.response.start" and start is None:
            start = message
        elif message["type"] == "http.response.body" and start is not None:
            body += message.get("body", b"")
            if not message.get("more_body", False):
                headers = tuple((bytes(n), bytes(v)) for n, v in start.get("headers", []))
                return ExpectedResponse(start["status"], headers, body)
        else:
            return None  # out of order
    return None


def _may_wait_for_disconnect(script: tuple[Step, ...]) -> bool:
    """Whether the script may block in ``receive()`` until the client goes away.

    The first receive may take the whole body, so any later receive before the
    response is complete may block. Conservative: steps that a server refuses
    (and an app that catches errors goes past) are skipped, not trusted to end
    the response.
    """
    received = started = False
    for step in script:
        if isinstance(step, Raise | Return):
            return False
        if isinstance(step, ReceiveOnce | ReadBody):
            if received:
                return True
            received = True
        elif isinstance(step, SendMessage) and step.valid:
            kind = step.message["type"]
            if kind == "http.response.start":
                started = True
            elif started and kind == "http.response.body" and not step.message.get("more_body"):
                return False
    return False


class ScriptedApp:
    """An ASGI app that plays :attr:`script` on every HTTP request and records each call.

    Lifespan is answered correctly and WebSockets are closed, so only the HTTP
    behaviour is under test.

    Attributes:
        script: The steps, in order.
        catch_errors: Whether errors raised by ``send()``/``receive()`` are
            recorded and ignored (the script goes on) instead of propagating.
        calls: One :class:`AppCall` per HTTP request, in call order.
        expected_response: The response a client should get when the server
            behaves well, or ``None`` if the script never completes one cleanly.
        waits_for_disconnect: The script may block in ``receive()`` until the
            client goes away, so the client needs a deadline.
    """

    def __init__(self, script: tuple[Step, ...], *, catch_errors: bool = False) -> None:
        self.script = script
        self.catch_errors = catch_errors
        self.calls: list[AppCall] = []
        self.expected_response: ExpectedResponse | None = _expected_response(script)
        self.waits_for_disconnect: bool = _may_wait_for_disconnect(script)

    def __repr__(self) -> str:
        return f"ScriptedApp({self.script!r}, catch_errors={self.catch_errors})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            await send({"type": "websocket.close"})
            return
        call = AppCall(scope)
        self.calls.append(call)
        try:
            await self._play(call, receive, send)
        except anyio.get_cancelled_exc_class() as exc:
            call.outcome, call.error = "cancelled", exc
            raise
        except BaseException as exc:
            call.outcome, call.error = "raised", exc
            raise
        call.outcome = "returned"

    async def _play(self, call: AppCall, receive: Receive, send: Send) -> None:
        for step in self.script:
            if isinstance(step, Return):
                return
            if isinstance(step, Raise):
                raise ScriptedAppError("raised by the script")
            if isinstance(step, Sleep):
                await anyio.sleep(step.seconds)
            elif isinstance(step, SendMessage):
                await self._guard(call, "send-error", self._send(call, send, step.message))
            else:
                await self._guard(call, "receive-error", self._receive(call, receive, step))

    async def _guard(self, call: AppCall, label: str, action: Awaitable[None]) -> None:
        try:
            await action
        except Exception as exc:
            call.events.append((label, exc))
            if not self.catch_errors:
                raise

    @staticmethod
    async def _send(call: AppCall, send: Send, message: Any) -> None:
        await send(message)
        call.events.append(("send", message))

    @staticmethod
    async def _receive(call: AppCall, receive: Receive, step: ReceiveOnce | ReadBody) -> None:
        while True:
            if isinstance(step, ReadBody):
                await anyio.sleep(step.delay)
            message = await receive()
            call.events.append(("receive", message))
            done = message["type"] != "http.request" or not message.get("more_body", False)
            if isinstance(step, ReceiveOnce) or done:
                return


# --- strategies ------------------------------------------------------------------------------

_STATUSES = st.sampled_from([200, 201, 204, 301, 304, 400, 404, 418, 500, 503]) | st.integers(
    200, 599
)
_HEADER_NAMES = st.sampled_from([b"content-type", b"x-a", b"set-cookie", b"cache-control"])
_HEADER_VALUES = st.binary(max_size=12).map(lambda raw: bytes(0x21 + b % 94 for b in raw))
_HEADERS = st.lists(st.tuples(_HEADER_NAMES, _HEADER_VALUES).map(list), max_size=3)
_BODIES = st.binary(max_size=64)
_DELAYS = st.sampled_from([0.0, 0.0, 0.01, 1.0])

#: Messages that are wrong on their own, whatever the order.
_INVALID_MESSAGES = st.sampled_from(
    [
        {"type": "http.response.start", "status": 0},
        {"type": "http.response.start", "status": 99},
        {"type": "http.response.start", "status": 600},
        {"type": "http.response.start", "status": "200"},
        {"type": "http.response.start", "status": 200.0},
        {"type": "http.response.start"},
        {"type": "http.response.start", "status": 200, "headers": [(b"x", "text")]},
        {"type": "http.response.start", "status": 200, "headers": [(b"x",)]},
        {"type": "http.response.start", "status": 200, "headers": [(b"bad name", b"v")]},
        {"type": "http.response.start", "status": 200, "headers": [(b"x", b"a\r\nInjected: 1")]},
        {"type": "http.response.start", "status": 200, "headers": [(b"x", b"a\x00b")]},
        {"type": "http.response.start", "status": 200, "headers": "x: y"},
        {"type": "http.response.body", "body": "text"},
        {"type": "http.response.body", "body": b"", "more_body": "yes"},
        {"type": "http.response.bogus"},
        {"type": 5},
        {},
        "http.response.start",
        None,
    ]
)


@st.composite
def _start_message(draw: st.DrawFn) -> dict[str, Any]:
    message: dict[str, Any] = {"type": "http.response.start", "status": draw(_STATUSES)}
    if draw(st.booleans()):
        message["headers"] = draw(_HEADERS)
    return message


@st.composite
def _body_message(draw: st.DrawFn, more_body: bool) -> dict[str, Any]:
    message: dict[str, Any] = {"type": "http.response.body"}
    body = draw(_BODIES)
    if body or draw(st.booleans()):
        message["body"] = body
    if more_body or draw(st.booleans()):
        message["more_body"] = more_body
    return message


@st.composite
def _well_behaved(draw: st.DrawFn, delays: st.SearchStrategy[float]) -> list[Step]:
    steps: list[Step] = []
    reading = draw(st.sampled_from(["none", "once", "body", "slow body"]))
    if reading == "once":
        steps.append(ReceiveOnce())
    elif reading != "none":
        steps.append(ReadBody(draw(delays) if reading == "slow body" else 0.0))
    steps.append(SendMessage(draw(_start_message())))
    parts = draw(st.integers(0, 3))
    steps.extend(SendMessage(draw(_body_message(more_body=True))) for _ in range(parts))
    steps.append(SendMessage(draw(_body_message(more_body=False))))
    for _ in range(draw(st.integers(0, 2))):
        steps.insert(draw(st.integers(0, len(steps))), Sleep(draw(delays)))
    return steps


def _mutate(draw: st.DrawFn, steps: list[Step], delays: st.SearchStrategy[float]) -> None:
    """Make the script misbehave in one drawn way, in place."""
    how = draw(
        st.sampled_from(["invalid", "raise", "return", "drop", "repeat", "body first", "read late"])
    )
    at = draw(st.integers(0, len(steps)))
    if how == "invalid":
        steps.insert(at, SendMessage(draw(_INVALID_MESSAGES), valid=False))
    elif how == "raise":
        steps.insert(at, Raise())
    elif how == "return":
        steps.insert(at, Return())
    elif how == "drop" and steps:
        del steps[min(at, len(steps) - 1)]
    elif how == "repeat" and steps:
        steps.insert(at, steps[draw(st.integers(0, len(steps) - 1))])
    elif how == "body first":
        steps.insert(0, SendMessage(draw(_body_message(more_body=draw(st.booleans())))))
    else:  # read the body only after (part of) the response
        steps.insert(at, ReadBody(draw(delays)))


@st.composite
def asgi_http_apps(
    draw: st.DrawFn,
    *,
    delays: st.SearchStrategy[float] = _DELAYS,
    max_mutations: int = 2,
) -> ScriptedApp:
    """ASGI apps that answer HTTP requests well or badly, as drawn, recording what they saw.

    About a third answer correctly (reading the body or not, slowly or not);
    the rest get up to ``max_mutations`` misbehaviours: invalid messages,
    exceptions (:class:`ScriptedAppError`) or returns at any step, dropped or
    repeated steps, a body before the start, a body read after the response.
    Half of the apps swallow the errors ``send()`` and ``receive()`` raise.

    Args:
        delays: Seconds for sleeps and slow reads (use a mock clock, e.g.
            ``trio.testing.MockClock(autojump_threshold=0)``, for large ones).
        max_mutations: The most misbehaviours added to one script.

    Example:
        >>> import trio
        >>> from hypothesis import given
        >>> async def run(app):
        ...     async def receive():
        ...         return {"type": "http.request", "body": b"", "more_body": False}
        ...     async def send(message):
        ...         pass
        ...     try:
        ...         await app({"type": "http"}, receive, send)
        ...     except ScriptedAppError:
        ...         pass
        >>> @given(asgi_http_apps(delays=st.just(0.0)))
        ... def test_records_each_call(app):
        ...     trio.run(run, app)
        ...     assert len(app.calls) == 1 and app.calls[0].outcome is not None
        >>> test_records_each_call()
    """
    steps = draw(_well_behaved(delays))
    if draw(st.integers(0, 2)):
        for _ in range(draw(st.integers(1, max(1, max_mutations)))):
            _mutate(draw, steps, delays)
    return ScriptedApp(tuple(steps), catch_errors=draw(st.booleans()))

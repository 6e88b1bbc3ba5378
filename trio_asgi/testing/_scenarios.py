"""Many clients at once: drawn scripts of joins, messages, slow readers and drops.

Races between clients (a broadcast that iterates over members while one joins or
leaves, a counter two requests update) need several clients whose steps interleave
with the app's own awaits. :func:`client_scenarios` draws a :class:`Scenario`: a list
of :class:`ClientStep`, each a connect, a send, a read, a pause, a drop or a clean
close by one of N clients, HTTP or WebSocket. :func:`run_scenario` plays it against a
:class:`~trio_asgi.testing.TestServer` without waiting for the app between steps, so
the app's tasks run interleaved with the script, the way real clients arrive.

The draw is biased towards what makes races show: clients that join and leave often,
slow readers (a receive window of a few bytes, so the server's ``send()`` to them
blocks in the middle of a broadcast), and sends right after joins. Everything runs in
virtual time on one thread, so a failing script replays exactly, and hypothesis
shrinks it to the few steps that matter, deterministically.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, TypeAlias

import anyio
import trio
from hypothesis import strategies as st

from ._client_errors import ConnectionClosed, WebSocketClosed
from ._connection import TestConnection
from ._http_requests import RawRequest
from ._repr import CompactRepr
from ._test_server import TestServer
from ._virtual_clock import wait_all_tasks_blocked
from ._ws_client import TestWebSocket

StepKind: TypeAlias = Literal["connect", "send", "read", "pause", "drop", "close"]

#: Receive windows a client draws: mostly slow readers, then unbounded.
_WINDOWS = st.sampled_from([1, 16, 256, None])
#: The steps of a connected client, weighted.
_IN_STEPS: list[StepKind] = ["send", "send", "send", "read", "drop", "close", "pause"]
#: How long (virtual seconds) a read waits for something to arrive before moving on.
_READ_WAIT = 0.5
#: How long a step may block (a send to a server that does not read) before it is skipped.
_STEP_WAIT = 2.0


@dataclass(frozen=True, repr=False)
class ClientStep(CompactRepr):
    """One step of one client.

    Attributes:
        kind: ``"connect"`` (with ``window``), ``"send"`` (``message`` on a WebSocket,
            ``request`` on HTTP), ``"read"`` (what has arrived), ``"pause"`` (let the
            server and app run until every task waits), ``"drop"`` (close the
            connection without a word) or ``"close"`` (a WebSocket closing handshake).
        client: Which client, from 0.
        window: For ``connect``: the receive window (a small one is a slow reader).
        message: For ``send`` on a WebSocket.
        request: For ``send`` on HTTP.
    """

    kind: StepKind
    client: int
    window: int | None = None
    message: str = ""
    request: RawRequest | None = None


@dataclass(frozen=True, repr=False)
class Scenario(CompactRepr):
    """A drawn script for N clients (see :func:`client_scenarios`).

    Attributes:
        steps: The steps, in order.
        websocket_clients: Which clients speak WebSocket (the others HTTP/1.1).
        path: The WebSocket clients' target.
    """

    steps: tuple[ClientStep, ...]
    websocket_clients: frozenset[int]
    path: str = "/"


@st.composite
def client_scenarios(
    draw: st.DrawFn,
    *,
    websocket_clients: int = 3,
    http_clients: int = 0,
    path: str = "/",
    messages: st.SearchStrategy[str] | None = None,
    requests: st.SearchStrategy[RawRequest] | None = None,
    max_steps: int = 16,
) -> Scenario:
    """Scripts for several clients: joins, sends, reads, pauses, drops and closes.

    Args:
        websocket_clients: How many WebSocket clients (they connect to ``path``).
        http_clients: How many HTTP/1.1 clients (they send drawn ``requests``).
        path: The WebSocket target.
        messages: The text messages WebSocket clients send (default: short text).
        requests: The requests HTTP clients send (required with ``http_clients``).
        max_steps: The most steps.

    Example:
        >>> from hypothesis import given
        >>> @given(client_scenarios(websocket_clients=2, max_steps=6))
        ... def test_scripts(scenario):
        ...     assert len(scenario.steps) <= 6
        >>> test_scripts()
    """
    if http_clients and requests is None:
        raise ValueError("http_clients need a `requests` strategy")
    count = websocket_clients + http_clients
    if count < 1:
        raise ValueError("a scenario needs at least one client")
    texts = messages if messages is not None else st.text(max_size=8)
    steps: list[ClientStep] = []
    connected: set[int] = set()
    for _ in range(draw(st.integers(1, max_steps))):
        # Every step acts: a connect for a client that is out, anything else for one
        # that is in. Sends and joins weigh most (a race needs messages in flight
        # while membership changes).
        idle = [c for c in range(count) if c not in connected]
        kinds = (["connect", "connect"] if idle else []) + (_IN_STEPS if connected else [])
        kind: StepKind = draw(st.sampled_from(kinds))
        client = draw(st.sampled_from(idle if kind == "connect" else sorted(connected)))
        if kind == "connect":
            connected.add(client)
            steps.append(ClientStep(kind, client, window=draw(_WINDOWS)))
        elif kind == "send" and client < websocket_clients:
            steps.append(ClientStep(kind, client, message=draw(texts)))
        elif kind == "send":
            assert requests is not None
            steps.append(ClientStep(kind, client, request=draw(requests)))
        else:
            if kind in ("drop", "close"):
                connected.discard(client)
            steps.append(ClientStep(kind, client))
    return Scenario(tuple(steps), frozenset(range(websocket_clients)), path)


@dataclass
class _Client:
    connection: TestConnection
    websocket: TestWebSocket | None = None
    sent_methods: list[str] = field(default_factory=list)
    gone: bool = False


@dataclass
class ScenarioLog:
    """What the clients saw while a :class:`Scenario` ran.

    Attributes:
        received: Per client, the WebSocket messages or HTTP statuses read, in order.
        skipped: The steps that could not run (a client not connected, a send that
            blocked for long on a full window, a client already gone).
    """

    received: dict[int, list[str | bytes | int]] = field(default_factory=dict)
    skipped: list[ClientStep] = field(default_factory=list)


async def run_scenario(server: TestServer, scenario: Scenario) -> ScenarioLog:
    """Play ``scenario`` against ``server``: each step in order, without waiting between.

    The app's errors surface as usual (:func:`~trio_asgi.testing.open_test_server` with
    ``raise_app_exceptions``); every client still connected at the end is dropped by
    the server's block, and the apps must then finish.

    Returns:
        What the clients read, and the steps skipped.
    """
    clients: dict[int, _Client] = {}
    log = ScenarioLog()
    for step in scenario.steps:
        with anyio.move_on_after(_STEP_WAIT) as waited:
            done = await _play(server, scenario, clients, step, log)
        if waited.cancelled_caught or not done:
            log.skipped.append(step)
    return log


async def _play(
    server: TestServer,
    scenario: Scenario,
    clients: dict[int, _Client],
    step: ClientStep,
    log: ScenarioLog,
) -> bool:
    """Run one step; False if it could not run."""
    client = clients.get(step.client)
    if step.kind == "connect":
        if client is not None and not client.gone:
            return False
        # The handshake at full speed; the drawn window (a slow reader) after it.
        connection = await server.connect()
        client = clients[step.client] = _Client(connection)
        if step.client in scenario.websocket_clients:
            client.websocket = await connection.websocket(scenario.path)
        connection.set_receive_window(step.window)
        return True
    if step.kind == "pause":
        await wait_all_tasks_blocked()
        return True
    if client is None or client.gone:
        return False
    try:
        await _act(client, step, log.received.setdefault(step.client, []))
    except (ConnectionClosed, WebSocketClosed, trio.BrokenResourceError, trio.ClosedResourceError):
        client.gone = True
    return True


async def _act(client: _Client, step: ClientStep, received: list[str | bytes | int]) -> None:
    ws = client.websocket
    if step.kind == "drop":
        client.gone = True
        await client.connection.close()
    elif step.kind == "close":
        client.gone = True
        if ws is not None:
            await ws.close()
        else:
            await client.connection.close()
    elif step.kind == "send" and ws is not None:
        await ws.send_text(step.message)
    elif step.kind == "send" and step.request is not None:
        client.sent_methods.append(step.request.method)
        if not await client.connection.send(step.request.data):
            client.gone = True
    elif step.kind == "read":
        with anyio.move_on_after(_READ_WAIT):
            if ws is not None:
                received.append(await ws.receive())
            elif client.sent_methods:
                response = await client.connection.read_response(client.sent_methods.pop(0))
                received.append(response.status)

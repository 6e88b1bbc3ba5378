"""pytest fixtures for testing ASGI apps on the real trio-asgi server, in memory.

Enable the plugin by name, in your pytest configuration::

    [tool.pytest.ini_options]
    addopts = ["-p", "trio_asgi.testing.pytest_plugin"]

(or ``pytest_plugins = ["trio_asgi.testing.pytest_plugin"]`` in your top-level
``conftest.py``). It is not registered as a ``pytest11`` entry point on purpose:
pytest would then assertion-rewrite every trio_asgi module in every test run. It
only defines fixtures. The async ones need `pytest-trio
<https://pytest-trio.readthedocs.io>`_ (``trio_mode = true``, or tests marked
``@pytest.mark.trio``); use its ``autojump_clock`` fixture so server timeouts pass
in virtual time.

Fixtures:

- ``asgi_app``: the app under test. Define it in your ``conftest.py``; the default
  fails with a message saying so.
- ``asgi_server_options``: :class:`trio_asgi.Config` options for the server (default:
  none). Override it to change limits or timeouts.
- ``asgi_server``: a :class:`~trio_asgi.testing.TestServer` running ``asgi_app`` for the
  duration of the test (lifespan included); on exit it checks that no exception
  escaped a connection handler.
- ``asgi_client``: a new :class:`~trio_asgi.testing.TestConnection` to ``asgi_server``.
- ``test_server_factory``: :func:`~trio_asgi.testing.open_test_server` itself, for tests
  that need several apps or configurations.
- ``asgi_backend``: the event loop ``asgi_serve`` runs on, ``"trio"`` (default) or
  ``"asyncio"``; parametrise it to run a test on both.
- ``asgi_serve``: for hypothesis tests (plain ``def`` tests, under ``@given`` too):
  ``asgi_serve(check)`` runs ``async def check(server)`` against a fresh server of
  ``asgi_app``, in a fresh event loop in virtual time, once per call, so once per
  example. Hypothesis's health check against function-scoped fixtures is lifted for
  the tests that use it (and no other function-scoped fixture): it holds no state
  from one example to the next.

Example (a whole test file)::

    import pytest
    from hypothesis import given
    from myproject import app
    from trio_asgi.testing.strategies import http_requests

    @pytest.fixture
    def asgi_app():
        return app

    async def test_home(asgi_client, autojump_clock):
        assert (await asgi_client.request("GET", "/")).status == 200

    @given(request=http_requests(paths=["/", "/items"], methods=["GET"]))
    def test_any_get(asgi_serve, request):
        async def check(server):
            client = await server.connect()
            await client.send(request.data)
            assert (await client.read_response("GET")).status < 500

        asgi_serve(check)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from .._types import ASGIApp
from ._connection import TestConnection
from ._runner import Backend, run_in_virtual_time
from ._test_server import TestServer, open_test_server

#: The fixtures that are safe to share between hypothesis examples (each call of
#: ``asgi_serve`` makes its own server and loop).
_PER_EXAMPLE_FIXTURES = frozenset({"asgi_serve", "asgi_app", "asgi_server_options", "asgi_backend"})


@pytest.fixture
def asgi_app() -> ASGIApp:
    """The app that ``asgi_server`` serves: define this fixture in your conftest.py."""
    raise pytest.UsageError(
        "the asgi_server and asgi_client fixtures serve the app of an `asgi_app` fixture: "
        "define one (a function returning your ASGI app) in your conftest.py"
    )


@pytest.fixture
def asgi_server_options() -> dict[str, Any]:
    """:class:`trio_asgi.Config` options for ``asgi_server`` (default: none)."""
    return {}


@pytest.fixture
async def asgi_server(
    asgi_app: ASGIApp, asgi_server_options: dict[str, Any]
) -> AsyncIterator[TestServer]:
    """``asgi_app`` on the real server stack, in memory, for the duration of the test."""
    async with open_test_server(asgi_app, **asgi_server_options) as server:
        yield server


@pytest.fixture
async def asgi_client(asgi_server: TestServer) -> TestConnection:
    """A new connection to ``asgi_server``."""
    return await asgi_server.connect()


@pytest.fixture(name="test_server_factory")
def _test_server_factory() -> Callable[..., Any]:
    """:func:`~trio_asgi.testing.open_test_server`: ``async with test_server_factory(app)``."""
    return open_test_server


@pytest.fixture
def asgi_backend() -> Backend:
    """The event loop ``asgi_serve`` runs on: ``"trio"`` (override or parametrise it)."""
    return "trio"


@pytest.fixture
def asgi_serve(
    asgi_app: ASGIApp, asgi_server_options: dict[str, Any], asgi_backend: Backend
) -> Callable[[Callable[[TestServer], Awaitable[None]]], None]:
    """``asgi_serve(check)``: ``await check(server)`` on a fresh server, loop and clock."""

    def serve_once(check: Callable[[TestServer], Awaitable[None]]) -> None:
        async def run() -> None:
            async with open_test_server(asgi_app, **asgi_server_options) as server:
                await check(server)

        run_in_virtual_time(run, backend=asgi_backend)

    return serve_once


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Lift hypothesis's function-scoped-fixture health check for ``asgi_serve`` tests."""
    for item in items:
        if isinstance(item, pytest.Function) and _uses_only_per_example_fixtures(item):
            _suppress_function_scoped_check(item)


def _uses_only_per_example_fixtures(item: pytest.Function) -> bool:
    if "asgi_serve" not in item.fixturenames:
        return False
    info = item._fixtureinfo  # the fixture scopes pytest resolved
    callspec = getattr(item, "callspec", None)
    parametrized = set(callspec.params) if callspec is not None else set()
    for name in set(info.argnames) - parametrized:
        definitions = info.name2fixturedefs.get(name, ())
        function_scoped = bool(definitions) and definitions[-1].scope == "function"
        if function_scoped and name not in _PER_EXAMPLE_FIXTURES:
            return False
    return True


def _suppress_function_scoped_check(item: pytest.Function) -> None:
    test = getattr(item.obj, "__func__", item.obj)
    if not getattr(test, "is_hypothesis_test", False):
        return
    from hypothesis import HealthCheck, settings

    current = getattr(test, "_hypothesis_internal_use_settings", settings())
    checks = (*current.suppress_health_check, HealthCheck.function_scoped_fixture)
    test._hypothesis_internal_use_settings = settings(current, suppress_health_check=checks)

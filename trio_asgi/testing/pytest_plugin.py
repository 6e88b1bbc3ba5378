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

Example (a whole test file)::

    import pytest
    from myproject import app

    @pytest.fixture
    def asgi_app():
        return app

    async def test_home(asgi_client, autojump_clock):
        assert (await asgi_client.request("GET", "/")).status == 200
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from .._types import ASGIApp
from ._connection import TestConnection
from ._test_server import TestServer, open_test_server


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

"""trio-asgi: a trio-native ASGI server.

The library entry point is :func:`serve` (``await nursery.start(trio_asgi.serve, app, config)``);
the command is ``trio-asgi module:app``.
"""

from __future__ import annotations

from ._config import Config as Config
from ._config import ConfigError as ConfigError
from ._errors import AppLoadError as AppLoadError
from ._errors import ASGIProtocolError as ASGIProtocolError
from ._errors import ClientDisconnected as ClientDisconnected
from ._errors import LifespanFailure as LifespanFailure
from ._metrics import HistogramSnapshot as HistogramSnapshot
from ._run import run as run
from ._server._serve import Server as Server
from ._server._serve import serve as serve
from ._server._state import ServerStatistics as ServerStatistics
from ._version import __version__ as __version__

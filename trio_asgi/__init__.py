"""trio-asgi: a trio-native ASGI server."""

from __future__ import annotations

from ._config import Config as Config
from ._config import ConfigError as ConfigError
from ._errors import AppLoadError as AppLoadError
from ._errors import ASGIProtocolError as ASGIProtocolError
from ._errors import ClientDisconnected as ClientDisconnected
from ._errors import LifespanFailure as LifespanFailure
from ._version import __version__ as __version__

"""``loop="auto"``: asyncio for apps built on asyncio-only libraries, else trio.

The choice is made once, after the app is imported: if the app imported (directly or
through its dependencies, so: if :data:`sys.modules` holds) a library in
:data:`ASYNCIO_LIBRARIES`, the app needs asyncio; otherwise trio serves it. A user
who knows better forces a loop with ``--loop``.

When the guess is wrong the other way (an app that calls ``asyncio`` directly, which
every process has imported), the first request that fails with asyncio's signature
on trio logs the flag to use once at ERROR (:func:`first_wrong_loop_report`); the
same failure on later requests goes to the debug level.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Final, Literal

#: Modules whose presence means the app needs asyncio, with the name the log gives.
#: Each is asyncio-only: it calls asyncio's loop API itself (or, for Django and
#: Channels, through asgiref's ``sync_to_async``).
ASYNCIO_LIBRARIES: Final[Mapping[str, str]] = {
    "django": "django",
    "channels": "channels (Django Channels)",
    "quart": "quart",
    "asyncpg": "asyncpg",
    "aiohttp": "aiohttp",
    "redis.asyncio": "redis.asyncio",
    "aioredis": "aioredis",
    "motor": "motor",
    "aiomysql": "aiomysql",
    "aiopg": "aiopg",
    "aiokafka": "aiokafka",
    "aio_pika": "aio_pika",
    "aiobotocore": "aiobotocore",
    "aiofiles": "aiofiles",
    "databases": "databases",
    "tortoise": "tortoise-orm",
    "beanie": "beanie",
    "sqlalchemy.ext.asyncio": "SQLAlchemy's asyncio extension",
    "uvloop": "uvloop",
}

ConcreteLoop = Literal["trio", "asyncio", "uvloop"]


@dataclass(frozen=True, slots=True)
class LoopChoice:
    """The loop to run and why, for the startup log line."""

    loop: ConcreteLoop
    reason: str

    def log_line(self) -> str:
        return f"Using the {self.loop} loop: {self.reason}"


def choose_loop(configured: str, modules: Mapping[str, object] | None = None) -> LoopChoice:
    """The loop for ``configured`` (``auto``, ``trio``, ``asyncio`` or ``uvloop``).

    Args:
        configured: ``Config.loop``.
        modules: What is imported (:data:`sys.modules` by default).
    """
    if configured != "auto":
        loop: ConcreteLoop = "asyncio" if configured == "asyncio" else "trio"
        if configured == "uvloop":
            loop = "uvloop"
        return LoopChoice(loop, f"asked for with --loop {configured}")
    found = asyncio_library_in(sys.modules if modules is None else modules)
    if found is not None:
        return LoopChoice("asyncio", f"the app imports {found}")
    return LoopChoice(
        "trio", "the app imports no library known to need asyncio (--loop asyncio forces it)"
    )


def asyncio_library_in(modules: Mapping[str, object]) -> str | None:
    """The first :data:`ASYNCIO_LIBRARIES` entry imported, by the name the log gives."""
    for module, name in ASYNCIO_LIBRARIES.items():
        if modules.get(module) is not None:
            return name
    return None


#: Per server (set by ``Server.serve()``, inherited by every task under it): whether the
#: wrong-loop hint was logged yet. Outside a server every report is a first one.
_hint_logged: ContextVar[list[bool] | None] = ContextVar("trio_asgi_wrong_loop_hint", default=None)


def start_wrong_loop_reports() -> None:
    """Begin a server's reports: the next wrong-loop error under this task is the first."""
    _hint_logged.set([False])


def first_wrong_loop_report() -> bool:
    """True for the first wrong-loop error reported in this server, then False.

    The app-error logger asks before writing its wrong-loop hint at ERROR: the hint
    names the flag once, and the same failure on every later request is a debug line.
    """
    box = _hint_logged.get()
    if box is None:
        return True
    first, box[0] = not box[0], True
    return first

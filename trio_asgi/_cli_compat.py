"""Uvicorn's spellings the command accepts where the meaning is ours too.

* ``--ws-per-message-deflate BOOL`` (Uvicorn's form) besides the switch pair
  ``--ws-per-message-deflate`` / ``--no-ws-per-message-deflate``: :class:`SwitchOrValue`.
* ``--env-file PATH``: the file's variables go into :data:`os.environ` before the
  ``TRIO_ASGI_*`` variables are read, so it can hold options as well as the app's
  settings (python-dotenv, the ``dotenv`` extra): :func:`load_env_file`.
* ``--h11-max-incomplete-event-size N``: our ``max_header_size`` (see
  :data:`H11_MAX_INCOMPLETE_EVENT_SIZE_HELP`).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ._errors import ConfigError

#: Config fields whose switch also takes a value, Uvicorn's way.
SWITCHES_WITH_A_VALUE = frozenset({"ws_per_message_deflate"})

H11_MAX_INCOMPLETE_EVENT_SIZE_HELP = (
    "Uvicorn's name for --max-header-size, which it replaces when that is not given "
    "(ours bounds the header fields; the request line has --max-target-length)."
)


class SwitchOrValue(argparse.Action):
    """``--x``, ``--x BOOL`` and ``--no-x``: a switch pair that also takes Uvicorn's value."""

    def __init__(
        self,
        option_strings: Sequence[str],
        dest: str,
        parse: Callable[[str], bool],
        **kwargs: Any,
    ) -> None:
        (flag,) = option_strings
        self._parse = parse
        super().__init__([flag, "--no-" + flag[2:]], dest, nargs="?", metavar="BOOL", **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        if option_string is not None and option_string.startswith("--no-"):
            if values is not None:
                parser.error(f"{option_string} takes no value")
            setattr(namespace, self.dest, False)
            return
        if values is None:
            setattr(namespace, self.dest, True)
            return
        try:
            setattr(namespace, self.dest, self._parse(str(values)))
        except argparse.ArgumentTypeError as exc:
            parser.error(f"argument {option_string}: {exc}")


def load_env_file(path: str) -> None:
    """Put the variables of a ``.env`` file into :data:`os.environ` (set ones win).

    Raises:
        ConfigError: python-dotenv is missing, or the file is not there.
    """
    try:
        from dotenv import load_dotenv
    except ImportError:
        raise ConfigError(
            "env_file: reading it needs python-dotenv (pip install 'trio-asgi[dotenv]')"
        ) from None
    if not Path(path).is_file():
        raise ConfigError(f"env_file: {path!r} is not a file")
    load_dotenv(path, override=False)

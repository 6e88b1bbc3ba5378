"""The ``trio-asgi`` command (also ``python -m trio_asgi``).

Every :class:`~trio_asgi.Config` field becomes an option by itself: its name gives
the flag (``timeout_keep_alive`` -> ``--timeout-keep-alive``) and the environment
variable (``TRIO_ASGI_TIMEOUT_KEEP_ALIVE``), its type the parser (a ``Literal`` its
choices), and its field metadata (``help`` and ``group``) the help text and group. Only the
options that are not Config fields (``--host``, ``--log-level``, ...) are listed
here by hand. The command line wins over the environment, which wins over the
defaults.

Exit codes: 0 after a clean stop, 2 for usage and configuration errors, 3 when the
app cannot be loaded or the server cannot start (its lifespan startup fails, or an
address cannot be bound: a port in use), as Uvicorn's.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import re
import sys
import traceback
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import trio

from ._access_log import ACCESS_LOG_FIELDS, check_access_log_format
from ._app import adapt_app, load_app
from ._cli_compat import (
    H11_MAX_INCOMPLETE_EVENT_SIZE_HELP,
    SWITCHES_WITH_A_VALUE,
    SwitchOrValue,
    load_env_file,
)
from ._config import Config, ConfigError, TCPBind
from ._errors import AppLoadError
from ._logging import LOG_LEVELS, configure_logging
from ._run import serve_in_foreground
from ._systemd import activated_binds
from ._version import __version__

PROG = "trio-asgi"
ENV_PREFIX = "TRIO_ASGI_"
DEMO_APP = "trio_asgi._demo:app"
EXIT_USAGE = 2
EXIT_APP_LOAD = 3

logger = logging.getLogger("trio_asgi")


@dataclass(frozen=True)
class Option:
    """One command-line option (or the positional APP) and its environment variable."""

    dest: str
    #: ``bool`` for --x/--no-x pairs, ``flag`` for store_true, ``list`` for repeatable.
    kind: typing.Literal["value", "bool", "flag", "list"]
    help: str
    group: str
    parse: Callable[[str], Any] = str
    choices: tuple[str, ...] | None = None
    metavar: str | None = None
    default: str | None = None  # shown in --help
    #: How a list option's environment value is split (None: whitespace or commas).
    env_separator: str | None = None
    positional: bool = False

    @property
    def flag(self) -> str:
        return "--" + self.dest.replace("_", "-")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.dest.upper()


# --- value parsers ----------------------------------------------------------------------------

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_NONE = frozenset({"none", "off", "never"})


def _boolean(text: str) -> bool:
    word = text.strip().lower()
    if word in _TRUE or word in _FALSE:
        return word in _TRUE
    raise argparse.ArgumentTypeError(f"expected 1/0, true/false, yes/no or on/off, got {text!r}")


def _integer(text: str) -> int:
    try:
        return int(text.strip().replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def _optional_integer(text: str) -> int | None:
    return None if text.strip().lower() in _NONE else _integer(text)


def _seconds(text: str) -> float | None:
    if text.strip().lower() in _NONE:
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds or 'none', got {text!r}") from None


def _port(text: str) -> int:
    port = _integer(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, got {text!r}")
    return port


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected 'Name: value', got {text!r}")
    return name.strip(), value.strip()


# Parsers by Config field type; a field of a type not listed here fails the tests.
_PARSERS: dict[object, Callable[[str], Any]] = {
    int: _integer,
    str: str,
    str | None: str,
    int | None: _optional_integer,
    float | None: _seconds,
}

_MORE_HELP = {"access_log_format": f" Fields: {', '.join(ACCESS_LOG_FIELDS)}."}
_METAVARS: dict[object, str] = {
    float | None: "SECONDS",
    int: "N",
    int | None: "N",
    str: "TEXT",
    str | None: "TEXT",
    "ssl_certfile": "FILE",
    "ssl_keyfile": "FILE",
    "ssl_ca_certs": "FILE",
    "ssl_keyfile_password": "PASSWORD",
    "ssl_cert_reqs": "0|1|2",
    "root_path": "PATH",
    "access_log_format": "FORMAT",
    "metrics_bind": "HOST:PORT",
}

# --- the option table -------------------------------------------------------------------------

_LISTEN = "where to listen"
_APP = "the app"
_LOGGING = "logging"
_HEADERS = "response headers"

_EXTRA_HELP = {
    "app": "The ASGI app as 'module:attribute'; without it, the built-in demo app.",
    "host": "Bind to this host; IPv6 works ('::1').",
    "port": "Bind to this port; 0 picks a free one (the log says which).",
    "uds": "Bind to this unix socket path instead of --host/--port.",
    "fd": "Serve on this inherited listening socket instead of --host/--port.",
    "bind": "Listen on host:port, [v6]:port, unix:PATH or fd://N (repeatable); "
    "replaces --host/--port.",
    "factory": "APP is a factory: call it with no arguments to get the app.",
    "app_dir": "Put this directory first on sys.path before importing APP.",
    "log_level": "Level of the trio_asgi loggers.",
    "log_config": "A logging config file: .json or .yaml/.yml (dictConfig; YAML needs PyYAML), "
    "else fileConfig (.ini).",
    "log_format": "Text lines, or one JSON object per line.",
    "use_colors": "Colour the log (level names, access-log status codes).",
    "header": "Add 'Name: value' to every response; repeatable.",
    "env_file": "Load environment variables (the app's settings, TRIO_ASGI_* options) from "
    "this .env file first; variables already set win. Needs python-dotenv (the dotenv extra).",
    "h11_max_incomplete_event_size": H11_MAX_INCOMPLETE_EVENT_SIZE_HELP,
}


def _extra(dest: str, kind: Any, group: str, **kwargs: Any) -> Option:
    return Option(dest, kind, _EXTRA_HELP[dest], group, **kwargs)


#: Options that are not Config fields, or replace one (``bind``, ``headers``).
_EXTRA_OPTIONS = (
    _extra("app", "value", _APP, metavar="APP", positional=True),
    _extra("host", "value", _LISTEN, default="127.0.0.1"),
    _extra("port", "value", _LISTEN, parse=_port, default="8000"),
    _extra("uds", "value", _LISTEN, metavar="PATH"),
    _extra("fd", "value", _LISTEN, parse=_integer, metavar="N"),
    _extra("bind", "list", _LISTEN, metavar="ADDR"),
    _extra("factory", "flag", _APP),
    _extra("app_dir", "value", _APP, metavar="DIR", default="."),
    _extra("env_file", "value", _APP, metavar="FILE"),
    _extra("log_level", "value", _LOGGING, choices=tuple(LOG_LEVELS), default="info"),
    _extra("log_config", "value", _LOGGING, metavar="FILE"),
    _extra("log_format", "value", _LOGGING, choices=("text", "json"), default="text"),
    _extra("use_colors", "bool", _LOGGING, default="on a terminal"),
    _extra("header", "list", _HEADERS, parse=_header, metavar="'NAME: VALUE'", env_separator="\n"),
    _extra("h11_max_incomplete_event_size", "value", "limits", parse=_integer, metavar="N"),
)
#: Config fields the extra options above stand for.
_REPLACED_FIELDS = frozenset({"bind", "headers"})


def config_options() -> tuple[Option, ...]:
    """One :class:`Option` per Config field, derived from the dataclass itself."""
    hints = typing.get_type_hints(Config)
    options = []
    for field in dataclasses.fields(Config):
        if not field.init or field.name in _REPLACED_FIELDS:
            continue
        hint, name = hints[field.name], field.name
        # The comments are reST: drop the ``literal`` markup.
        if "help" not in field.metadata or "group" not in field.metadata:
            raise TypeError(
                f"Config.{name}: declare it with field(default=..., metadata=_about(group, help))"
            )
        text = field.metadata["help"].replace("``None``", "none") + _MORE_HELP.get(name, "")
        common: dict[str, Any] = {
            "help": re.sub(r"``(.*?)``", r"\1", text),
            "group": field.metadata["group"],
            "default": "none" if field.default is None else (str(field.default) or None),
        }
        if hint is bool:
            options.append(Option(name, "bool", **{**common, "default": _on_off(field.default)}))
        elif typing.get_origin(hint) is typing.Literal:
            choices = tuple(str(arg) for arg in typing.get_args(hint))
            options.append(Option(name, "value", choices=choices, **common))
        elif hint == tuple[str, ...]:
            options.append(Option(name, "list", metavar="TEXT", **{**common, "default": None}))
        elif hint in _PARSERS:
            metavar = _METAVARS.get(name) or _METAVARS.get(hint)
            options.append(Option(name, "value", parse=_PARSERS[hint], metavar=metavar, **common))
        else:
            raise TypeError(f"Config.{name}: no command-line parser for {hint!r}")
    return tuple(options)


def _on_off(value: object) -> str:
    return "on" if value else "off"


def all_options() -> tuple[Option, ...]:
    return _EXTRA_OPTIONS + config_options()


_ENV_LIST_NOTES = {None: ", separated by spaces or commas", "\n": ", one per line"}

# --- the parser -------------------------------------------------------------------------------


def build_parser(options: Sequence[Option]) -> argparse.ArgumentParser:
    """The argparse parser; omitted options are absent from its namespace."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        usage="%(prog)s [OPTIONS] [APP]",
        description="Serve an ASGI app with trio. Every option can also be set by the "
        f"environment variable shown ({ENV_PREFIX}<OPTION>); the command line wins.",
        argument_default=argparse.SUPPRESS,
    )
    parser.add_argument("--version", action="version", version=_version_text())
    groups: dict[str, argparse._ArgumentGroup] = {}
    for option in options:
        if option.group not in groups:
            groups[option.group] = parser.add_argument_group(option.group)
        group = groups[option.group]
        notes = [f"default: {option.default}"] if option.default is not None else []
        listed = _ENV_LIST_NOTES[option.env_separator] if option.kind == "list" else ""
        notes.append(f"env: {option.env}{listed}")
        help_text = f"{option.help} ({'; '.join(notes)})".replace("%", "%%").strip()
        names = [option.dest] if option.positional else [option.flag]
        kwargs: dict[str, Any] = {"help": help_text}
        if option.kind == "bool" and option.dest in SWITCHES_WITH_A_VALUE:
            kwargs.update(action=SwitchOrValue, parse=_boolean)
        elif option.kind == "bool":
            kwargs["action"] = argparse.BooleanOptionalAction
        elif option.kind == "flag":
            kwargs["action"] = "store_true"
        else:
            kwargs.update(type=option.parse, choices=option.choices, metavar=option.metavar)
            if option.kind == "list":
                kwargs["action"] = "append"
            if option.positional:
                kwargs["nargs"] = "?"
            else:
                kwargs["dest"] = option.dest
        group.add_argument(*names, **kwargs)
    return parser


def _version_text() -> str:
    python = f"{sys.implementation.name} {'.'.join(map(str, sys.version_info[:3]))}"
    return f"{PROG} {__version__} (trio {trio.__version__}, {python})"


def collect(
    parser: argparse.ArgumentParser,
    options: Sequence[Option],
    argv: Sequence[str] | None,
    environ: Mapping[str, str],
) -> dict[str, Any]:
    """Parse ``argv``, then fill what it left out from ``environ``; by option dest."""
    given = vars(parser.parse_args(argv))
    values: dict[str, Any] = {}
    for option in options:
        if option.dest in given:
            values[option.dest] = given[option.dest]
        elif option.env in environ:
            values[option.dest] = _from_env(parser, option, environ[option.env])
    return values


def _from_env(parser: argparse.ArgumentParser, option: Option, text: str) -> Any:
    parse = _boolean if option.kind in ("bool", "flag") else option.parse
    parts = [text]
    if option.kind == "list":
        parts = [p for p in re.split(option.env_separator or r"[\s,]+", text) if p.strip()]
    try:
        values = [parse(part) for part in parts]
    except (argparse.ArgumentTypeError, ValueError) as exc:
        parser.error(f"{option.env}: {exc}")
    if option.choices is not None and values[0] not in option.choices:
        parser.error(f"{option.env}: {text!r} is not one of {', '.join(option.choices)}")
    return values if option.kind == "list" else values[0]


def make_config(values: Mapping[str, Any]) -> Config:
    """The Config for collected option values (extra options turned into fields)."""
    fields = {f.name for f in dataclasses.fields(Config) if f.init}
    settings = {name: value for name, value in values.items() if name in fields}
    settings["bind"] = tuple(_binds(values))
    if "header" in values:
        settings["headers"] = tuple(values["header"])
    if "h11_max_incomplete_event_size" in values and "max_header_size" not in values:
        settings["max_header_size"] = values["h11_max_incomplete_event_size"]
    config = Config.from_mapping(settings)
    check_access_log_format(config.access_log_format)
    return config


def _binds(values: Mapping[str, Any]) -> list[str]:
    binds = list(values.get("bind", []))
    if "uds" in values:
        binds.append(f"unix:{values['uds']}")
    if "fd" in values:
        binds.append(f"fd://{values['fd']}")
    if not binds and "host" not in values and "port" not in values:
        binds = activated_binds()  # systemd socket activation, when no address is given
    if not binds:
        binds.append(str(TCPBind(values.get("host", "127.0.0.1"), values.get("port", 8000))))
    return binds


# --- main ---------------------------------------------------------------------------------------


def _fail(message: str, code: int) -> NoReturn:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    sys.exit(code)


def _supervise(config: Config, target: str, values: Mapping[str, Any]) -> int:
    """``--workers``, ``--limit-max-requests`` and ``--reload``: processes that serve."""
    from ._supervisor import _command, _spec

    app = _spec.AppTarget(target, bool(values.get("factory")), values.get("app_dir", "."))
    log = _spec.LogSettings(
        values.get("log_level"),
        values.get("log_config"),
        values.get("use_colors"),
        values.get("log_format", "text"),
    )
    return _command.run_supervised(config, app, log)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Run the command: parse options, configure logging, load the app, serve it."""
    options = all_options()
    parser = build_parser(options)
    values = collect(parser, options, argv, os.environ)
    if "env_file" in values:
        try:
            load_env_file(values["env_file"])
        except ConfigError as exc:
            _fail(str(exc), EXIT_USAGE)
        values = collect(parser, options, argv, os.environ)  # with the file's variables
    target = values.get("app") or None
    if target is None and values.get("factory"):
        parser.error("--factory needs an APP")
    if "workers" not in values and not values.get("reload") and "WEB_CONCURRENCY" in os.environ:
        # Heroku's and Uvicorn's variable: --workers when nothing else says.
        try:
            values = {**values, "workers": _integer(os.environ["WEB_CONCURRENCY"])}
        except argparse.ArgumentTypeError as exc:
            parser.error(f"WEB_CONCURRENCY: {exc}")
    try:
        configure_logging(
            values.get("log_level"),
            values.get("log_config"),
            values.get("use_colors"),
            log_format=values.get("log_format", "text"),
        )
        config = make_config(values)  # after the logging: it may log (socket activation)
    except ConfigError as exc:
        _fail(str(exc), EXIT_USAGE)
    if target is None:
        logger.info("No app given: serving the built-in demo app (%s)", DEMO_APP)
    if config.reload or config.workers is not None or config.limit_max_requests is not None:
        sys.exit(_supervise(config, target or DEMO_APP, values))
    try:
        loaded = load_app(
            target or DEMO_APP,
            factory=bool(values.get("factory")),
            app_dir=values.get("app_dir", "."),
        )
        app = adapt_app(loaded, config.interface)
    except AppLoadError as exc:
        if exc.__cause__ is not None and logger.isEnabledFor(logging.DEBUG):
            traceback.print_exception(exc.__cause__, file=sys.stderr)
        _fail(str(exc), EXIT_APP_LOAD)
    sys.exit(serve_in_foreground(app, config))

"""Sphinx directives that generate reference pages from the code, so they never drift.

``.. config-options::`` renders every :class:`trio_asgi.Config` option, grouped by its
field's ``group`` metadata, with its type, default and ``help`` metadata.
``.. command-help::`` renders the output of ``python -m trio_asgi --help``.
``.. access-log-fields::`` renders the fields an access-log format may use.

Anything missing (an option without a ``#:`` comment, a command that fails) is a
warning, and the docs build runs with ``-W``, so it fails instead of going stale.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import os
import re
import subprocess
import sys
import types
import typing
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

logger = logging.getLogger(__name__)

CONFIG_MODULE = "trio_asgi._config"
LOGGING_MODULE = "trio_asgi._logging"


def _format_type(tp: Any) -> str:
    """A short, readable type: ``"auto" | "on"`` for Literals, ``float | None`` for unions."""
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return " | ".join(f'"{arg}"' for arg in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_format_type(arg) for arg in typing.get_args(tp))
    if tp is type(None):
        return "None"
    if origin is not None:
        args = ", ".join("..." if a is Ellipsis else _format_type(a) for a in typing.get_args(tp))
        return f"{origin.__name__}[{args}]"
    return str(getattr(tp, "__name__", tp))


def _default(field: dataclasses.Field[Any]) -> str:
    if field.default is not dataclasses.MISSING:
        return repr(field.default)
    if field.default_factory is not dataclasses.MISSING:
        return repr(field.default_factory())
    return "(required)"


def _groups(fields: dict[str, dataclasses.Field[Any]]) -> list[tuple[str, list[str]]]:
    """The options in declaration order, under their ``group`` metadata, groups by first use."""
    groups: dict[str, list[str]] = {}
    for name, field in fields.items():
        title = str(field.metadata.get("group", "other options"))
        groups.setdefault(title[0].upper() + title[1:], []).append(name)
    return list(groups.items())


def _literal(text: str) -> str:
    # Inline literals cannot hold a backquote, and an empty one is invalid rST.
    return f"``{text}``" if text and "`" not in text else text or '""'


class ConfigOptions(SphinxDirective):
    """Tables of every init field of :class:`trio_asgi.Config`."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        module = importlib.import_module(CONFIG_MODULE)
        config_cls = module.Config
        # Rebuild this page whenever the options change.
        self.env.note_dependency(inspect.getfile(config_cls))
        hints = typing.get_type_hints(config_cls)
        fields = {f.name: f for f in dataclasses.fields(config_cls) if f.init}

        lines: list[str] = []
        for title, names in _groups(fields):
            lines += [f".. rubric:: {title}", "", ".. list-table::", "   :header-rows: 1"]
            lines += ["   :widths: 25 20 20 35", ""]
            lines += ["   * - Option", "     - Type", "     - Default", "     - Meaning"]
            for name in names:
                doc = str(fields[name].metadata.get("help", ""))
                if not doc:
                    logger.warning(
                        "Config.%s has no help metadata to document it",
                        name,
                        location=(self.env.docname, self.lineno),
                    )
                lines += [
                    f"   * - ``{name}``",
                    f"     - {_literal(_format_type(hints[name]))}",
                    f"     - {_literal(_default(fields[name]))}",
                    f"     - {doc}",
                ]
            lines.append("")

        container = nodes.container()
        nested_parse_with_titles(self.state, StringList(lines, source=CONFIG_MODULE), container)
        return list(container.children)


class CommandHelp(SphinxDirective):
    """The ``--help`` text of ``python -m trio_asgi``, run at build time."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        # A fixed width and no colours, so the page does not depend on the build terminal.
        env = {**os.environ, "COLUMNS": "88", "NO_COLOR": "1", "TERM": "dumb"}
        try:
            result = subprocess.run(
                [sys.executable, "-m", "trio_asgi", "--help"],
                capture_output=True,
                text=True,
                env=env,
                timeout=60,
                check=True,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            stderr = getattr(exc, "stderr", "") or ""
            logger.warning(
                "'python -m trio_asgi --help' failed: %s %s",
                exc,
                stderr.strip()[-500:],
                location=(self.env.docname, self.lineno),
            )
            return []
        return [nodes.literal_block(result.stdout, result.stdout, language="text")]


class AccessLogFields(SphinxDirective):
    """A table of the fields an access-log format may use, with what each holds."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        module = importlib.import_module(LOGGING_MODULE)
        self.env.note_dependency(inspect.getfile(module))
        lines = [".. list-table::", "   :header-rows: 1", "   :widths: 20 80", ""]
        lines += ["   * - Field", "     - Value"]
        for name, meaning in module.ACCESS_LOG_FIELDS.items():
            lines += [f"   * - ``{{{name}}}``", f"     - {_escape_rst(meaning)}"]
        container = nodes.container()
        nested_parse_with_titles(self.state, StringList(lines, source=LOGGING_MODULE), container)
        return list(container.children)


def _escape_rst(text: str) -> str:
    # The descriptions are plain text: keep rST from reading markup into them.
    return re.sub(r"([\\`*_|])", r"\\\1", text)


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("config-options", ConfigOptions)
    app.add_directive("command-help", CommandHelp)
    app.add_directive("access-log-fields", AccessLogFields)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

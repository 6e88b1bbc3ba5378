"""The route-aware parts of :func:`~trio_asgi.testing.strategies.http_requests`.

An app only shows its bugs on the routes it serves, with the parameters it reads:
random targets almost never hit one. These helpers turn what a test says about its
routes (paths, methods, query parameters, header fields, each a value or a hypothesis
strategy) into request parts, and keep the variations that do not change meaning on
the wire: either case of percent-encoding hex digits, query parameters in any order,
header-name case and whitespace (added by the caller).
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence
from typing import TypeAlias

from hypothesis import strategies as st

#: What the caller may give for a choice: a strategy, or a sequence to sample from.
Choices: TypeAlias = "st.SearchStrategy[str] | Sequence[str]"
#: Named values: each a strategy (draw ``None`` to leave the parameter out) or a value.
NamedValues: TypeAlias = "Mapping[str, st.SearchStrategy[object] | object]"

_UNRESERVED = string.ascii_letters + string.digits + "-._~"
#: Characters a path may carry as they are (pchar and "/"), the rest is encoded.
_PATH_SAFE = frozenset(_UNRESERVED + "!$&'()*+,;=:@/")
#: In a query parameter's name or value, only unreserved characters stay literal.
_QUERY_SAFE = frozenset(_UNRESERVED)
_HEX_CASES = st.booleans()
_ENCODED = re.compile(r"(%[0-9A-Fa-f]{2})")
#: Control characters (tab aside): no valid field value carries one.
_NOT_IN_VALUES = str.maketrans("", "", "".join(map(chr, [*range(9), *range(10, 32), 127])))


def as_strategy(choices: Choices) -> st.SearchStrategy[str]:
    """A strategy for ``choices``: itself, or a sample from a sequence."""
    if isinstance(choices, st.SearchStrategy):
        return choices
    options = tuple(choices)
    if not options:
        raise ValueError("nothing to choose from")
    return st.sampled_from(options)


def percent_encode(text: str, safe: frozenset[str], upper: bool) -> str:
    """``text`` with every character outside ``safe`` percent-encoded as UTF-8."""
    pattern = "%{:02X}" if upper else "%{:02x}"
    return "".join(
        char
        if char in safe
        else "".join(pattern.format(b) for b in char.encode("utf-8", "surrogatepass"))
        for char in text
    )


def draw_path(draw: st.DrawFn, paths: Choices) -> str:
    """A path from ``paths``, percent-encoded in a drawn hex case (its meaning unchanged).

    A ``%`` and two hex digits is taken as already encoded (so a value can carry an
    encoded ``/``); any other character outside a path's literal ones is encoded.
    """
    path = draw(as_strategy(paths))
    if not path.startswith("/"):
        path = "/" + path
    upper = draw(_HEX_CASES)
    pieces = _ENCODED.split(path)  # odd indexes: the %XX escapes, kept as they are
    return "".join(
        piece if i % 2 else percent_encode(piece, _PATH_SAFE, upper)
        for i, piece in enumerate(pieces)
    )


def draw_named(draw: st.DrawFn, values: NamedValues) -> list[tuple[str, str]]:
    """``(name, text)`` for each drawn value that is not ``None``, in mapping order."""
    drawn = []
    for name, value in values.items():
        if isinstance(value, st.SearchStrategy):
            value = draw(value)
        if value is not None:
            drawn.append((name, to_text(value)))
    return drawn


def to_text(value: object) -> str:
    """How a parameter value is written: ``true``/``false`` for booleans, else ``str``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return str(value)


def draw_query(draw: st.DrawFn, query: NamedValues | st.SearchStrategy[str]) -> str | None:
    """A query string: drawn whole, or built from named values in a drawn order."""
    if isinstance(query, st.SearchStrategy):
        return draw(query)
    pairs = draw(st.permutations(draw_named(draw, query)))
    if not pairs:
        return None
    upper = draw(_HEX_CASES)
    return "&".join(
        percent_encode(name, _QUERY_SAFE, upper) + "=" + percent_encode(value, _QUERY_SAFE, upper)
        for name, value in pairs
    )


def draw_header_values(draw: st.DrawFn, headers: NamedValues) -> list[tuple[bytes, bytes]]:
    """``(name, value)`` for each drawn header field; text values as Latin-1 if they fit.

    Control characters (CR, LF, NUL...; tab aside) are dropped from values, and the
    whitespace around them.
    """
    fields = []
    for name, raw in draw_named(draw, headers):
        # What no valid field value carries: it would make a malformed request instead.
        text = raw.translate(_NOT_IN_VALUES).strip(" \t")
        try:
            value = text.encode("latin-1")
        except UnicodeEncodeError:
            value = text.encode("utf-8")
        fields.append((name.lower().encode("ascii"), value))
    return fields

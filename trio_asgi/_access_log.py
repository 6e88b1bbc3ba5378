"""The access-log vocabulary: its fields, escaping, and the two format syntaxes.

A format is either :meth:`str.format` syntax with our field names
(``{client} "{request_line}" {status}``) or Gunicorn's ``%(atom)s`` syntax
(``%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"``), which
:func:`compile_format` translates to the first once, at start. An unknown field or
atom, a stray ``%``, or a format that mixes the two syntaxes is a
:class:`~trio_asgi.ConfigError` at start, never printed literally.

All that comes from the client is escaped (control characters, ``"``, ``\\``,
non-ASCII become ``\\xNN``): no terminal escapes or fake fields (CVE-2020-7694).
Header values by name (``{request_header[x-request-id]}``) are escaped the same way.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from typing import Any

from ._errors import ConfigError

#: Fields an access-log format may use, with what each holds.
ACCESS_LOG_FIELDS: dict[str, str] = {
    "client": 'client address, "127.0.0.1:49370" or "-"',
    "client_host": 'client address without the port, "127.0.0.1" or "-"',
    "method": 'request method, "GET"',
    "path": "request target up to '?', as received (escaped)",
    "query": "request target after '?', as received (escaped)",
    "request_line": '"GET /x?y=1 HTTP/1.1"',
    "http_version": '"1.1"',
    "protocol": '"HTTP/1.1"',
    "status": "response status code (for WebSocket lines: 101, the reject status or close code)",
    "reason": 'status phrase, "OK" (for WebSocket lines: "WebSocket accept", ...)',
    "bytes": "response body bytes sent",
    "bytes_clf": 'response body bytes sent, "-" for none (Common Log Format)',
    "duration_ms": "time from request head to response end, in milliseconds",
    "duration_us": "the same, in whole microseconds",
    "duration_s": "the same, in seconds",
    "user_agent": 'User-Agent header or "-"',
    "referer": 'Referer header or "-"',
    "request_header": 'a request header by name, {request_header[x-request-id]}, or "-"',
    "response_header": 'a response header by name, {response_header[content-type]}, or "-"',
    "time": "local time the line was written, ISO 8601",
    "time_clf": "the same as [10/Oct/2000:13:55:36 -0700] (Common Log Format)",
    "pid": "the server process's id",
    "tls_version": '"TLSv1.3" on a TLS connection, else "-"',
    "ws_close_code": 'the close code on a WebSocket close line, else "-"',
}

#: Gunicorn's atoms and the field each stands for (``l`` and ``u`` are always ``-``).
GUNICORN_ATOMS: dict[str, str] = {
    "h": "{client_host}",
    "l": "-",
    "u": "-",
    "t": "{time_clf}",
    "r": "{request_line}",
    "m": "{method}",
    "U": "{path}",
    "q": "{query}",
    "H": "{protocol}",
    "s": "{status}",
    "B": "{bytes}",
    "b": "{bytes_clf}",
    "f": "{referer}",
    "a": "{user_agent}",
    "T": "{duration_s:.0f}",
    "D": "{duration_us}",
    "M": "{duration_ms:.0f}",
    "L": "{duration_s:.6f}",
    "p": "<{pid}>",
}
_ATOM = re.compile(r"%\((?P<atom>[^()]*)\)s|%%|%")
_HEADER_ATOM = re.compile(r"\{(?P<name>[!#$&'*+\-.^_`|~0-9A-Za-z]+)\}(?P<kind>[io])")
_BRACE_FIELD = re.compile(r"(?<!\{)\{[A-Za-z_]")

# --- escaping ----------------------------------------------------------------------------------

# Everything printable in ASCII except '"' (it delimits the request line) and '\' (our escape).
_UNSAFE = re.compile(rb"[^\x20\x21\x23-\x5b\x5d-\x7e]")


def _hex(match: re.Match[bytes]) -> bytes:
    return b"\\x%02x" % match[0][0]


def escape_bytes(raw: bytes) -> str:
    """Bytes from the client as log-safe ASCII text."""
    if _UNSAFE.search(raw) is None:
        return raw.decode("ascii")
    return _UNSAFE.sub(_hex, raw).decode("ascii")


def escape_text(text: str) -> str:
    """Text from the client (UTF-8 encoded first) as log-safe ASCII text."""
    return escape_bytes(text.encode("utf-8", "backslashreplace"))


class Headers(dict[str, str]):
    """Header values by lower-case name, escaped; ``-`` for a header that is absent."""

    def __missing__(self, key: str) -> str:
        return "-"

    @classmethod
    def of(cls, headers: Any) -> Headers:
        found = cls()
        for name, value in headers:
            key = name.decode("latin-1").lower()
            text = escape_bytes(value)
            found[key] = f"{found[key]}, {text}" if key in found else text
        return found


# --- formats -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CompiledFormat:
    """A format in :meth:`str.format` syntax, and the fields it uses."""

    text: str
    used: frozenset[str]


def compile_format(log_format: str) -> CompiledFormat:
    """Check a format (either syntax) and return it in :meth:`str.format` syntax.

    Raises:
        ConfigError: Unknown field or atom, a bad format spec, or mixed syntaxes.
    """
    text = _from_gunicorn(log_format) if "%(" in log_format else log_format
    used: set[str] = set()
    try:
        for _, name, _, _ in string.Formatter().parse(text):
            if name is not None:
                used.add(re.split(r"[.\[]", name, maxsplit=1)[0])
    except ValueError as exc:
        raise ConfigError(f"access_log_format: {exc}") from None
    unknown = sorted(used - ACCESS_LOG_FIELDS.keys())
    if unknown:
        known = ", ".join(ACCESS_LOG_FIELDS)
        raise ConfigError(f"access_log_format: unknown field {unknown[0]!r}; fields: {known}")
    sample: dict[str, object] = dict.fromkeys(ACCESS_LOG_FIELDS, "-")
    sample.update(
        status=200,
        bytes=0,
        duration_ms=0.0,
        duration_us=0,
        duration_s=0.0,
        pid=1,
        request_header=Headers(),
        response_header=Headers(),
    )
    try:
        text.format_map(sample)
    except (ValueError, TypeError, AttributeError, IndexError, KeyError) as exc:
        raise ConfigError(f"access_log_format: {exc}") from None
    return CompiledFormat(text, frozenset(used))


def check_access_log_format(log_format: str) -> frozenset[str]:
    """Check an access-log format (either syntax) and return the field names it uses.

    Raises:
        ConfigError: Unknown field or atom, a format spec that does not fit the field,
            or a format that mixes the two syntaxes.
    """
    return compile_format(log_format).used


def _from_gunicorn(log_format: str) -> str:
    """Translate ``%(atom)s`` syntax (``%%`` is a ``%``) into :meth:`str.format` syntax."""
    if _BRACE_FIELD.search(_ATOM.sub("", log_format)):
        raise ConfigError(
            "access_log_format: mixes {field} and %(atom)s syntax; use one or the other"
        )
    parts: list[str] = []
    position = 0
    for match in _ATOM.finditer(log_format):
        parts.append(_literal(log_format[position : match.start()]))
        parts.append(_translate_atom(match))
        position = match.end()
    parts.append(_literal(log_format[position:]))
    return "".join(parts)


def _translate_atom(match: re.Match[str]) -> str:
    if match[0] == "%%":
        return "%"
    atom = match["atom"]
    if atom is None:
        raise ConfigError("access_log_format: a lone '%'; write '%%' for a percent sign")
    if atom in GUNICORN_ATOMS:
        return GUNICORN_ATOMS[atom]
    header = _HEADER_ATOM.fullmatch(atom)
    if header is not None:
        side = "request_header" if header["kind"] == "i" else "response_header"
        return f"{{{side}[{header['name'].lower()}]}}"
    known = ", ".join(f"%({a})s" for a in GUNICORN_ATOMS)
    raise ConfigError(
        f"access_log_format: unknown atom %({atom})s; atoms: {known}, "
        "%({header}i)s, %({header}o)s"
    )


def _literal(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")

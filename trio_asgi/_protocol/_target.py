"""Request targets: which forms we serve, and the scope's path fields.

h11 only checks that a request target is visible ASCII. RFC 9112 section 3.2
gives four forms; a server serves origin-form (``/path?q``), must accept
absolute-form (``http://host/path``), and meets asterisk-form (``*``) only with
OPTIONS and authority-form only with CONNECT, which we do not serve. Anything
else is a 400 before the app sees it.
"""

from __future__ import annotations

from urllib.parse import unquote


class InvalidTarget(Exception):
    """The request target is not a form we serve; the client gets a 400."""


def split_target(method: str, target: bytes) -> tuple[bytes, bytes]:
    """Split a request target into ``(raw_path, query_string)``.

    Raises:
        InvalidTarget: for forms a server must not pass on.
    """
    if b"#" in target:
        # anywhere: after the authority of an absolute-form target too (http://h#f)
        raise InvalidTarget("a request target has no fragment")
    if target[:1] == b"/":
        path, _, query = target.partition(b"?")
    elif target == b"*":
        if method != "OPTIONS":
            raise InvalidTarget("asterisk-form is only valid with OPTIONS")
        return b"*", b""
    else:
        path, query = _split_absolute_form(target)
    return path, query


def _split_absolute_form(target: bytes) -> tuple[bytes, bytes]:
    scheme, sep, rest = target.partition(b"://")
    if not sep or scheme.lower() not in (b"http", b"https"):
        raise InvalidTarget("request target is not origin-form or absolute-form")
    slash = rest.find(b"/")
    question = rest.find(b"?")
    cut = min(i for i in (slash, question, len(rest)) if i >= 0)
    authority = rest[:cut]
    if not authority or b"@" in authority:
        raise InvalidTarget("absolute-form target needs a host and no userinfo")
    path_and_query = rest[cut:]
    if path_and_query[:1] != b"/":
        path_and_query = b"/" + path_and_query
    path, _, query = path_and_query.partition(b"?")
    return path, query


def decode_path(raw_path: bytes) -> str:
    """Percent-decode and UTF-8-decode a path; invalid UTF-8 becomes U+FFFD."""
    text = raw_path.decode("ascii")
    if "%" not in text:
        return text
    return unquote(text, encoding="utf-8", errors="replace")

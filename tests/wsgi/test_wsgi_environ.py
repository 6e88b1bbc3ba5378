"""The environ a WSGI app gets (PEP 3333 and CGI), checked also by ``wsgiref.validate``."""

from __future__ import annotations

import io
from typing import Any
from wsgiref.validate import validator

import pytest

from trio_asgi._app import adapt_app, is_wsgi
from trio_asgi._wsgi import WSGIAdapter, build_environ
from trio_asgi._wsgi_io import InputStream, Responder, call_app


def _scope(**overrides: Any) -> dict[str, Any]:
    scope: dict[str, Any] = {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "scheme": "https",
        "path": "/api/café",
        "raw_path": b"/api/caf%C3%A9",
        "root_path": "/api",
        "query_string": b"q=%20x&r=1",
        "headers": [
            (b"host", b"example.com"),
            (b"content-type", b"text/plain"),
            (b"content-length", b"3"),
            (b"accept", b"a"),
            (b"accept", b"b"),
            (b"cookie", b"a=1"),
            (b"cookie", b"b=2"),
            (b"x_forwarded_for", b"6.6.6.6"),
            (b"x-forwarded-for", b"1.2.3.4"),
        ],
        "client": ("10.0.0.1", 5555),
        "server": ("127.0.0.1", 8000),
    }
    scope.update(overrides)
    return scope


def _body(data: bytes = b"abc") -> InputStream:
    chunks = [(data, False)]
    return InputStream(lambda: chunks.pop(0) if chunks else (b"", False))


def test_environ_fields() -> None:
    env = build_environ(_scope(), _body())
    assert env["REQUEST_METHOD"] == "POST"
    assert env["SCRIPT_NAME"] == "/api"
    # PEP 3333: the percent-decoded bytes, as latin-1 characters.
    assert env["PATH_INFO"] == "/café".encode().decode("latin-1")
    assert env["QUERY_STRING"] == "q=%20x&r=1"
    assert env["CONTENT_TYPE"] == "text/plain"
    assert env["CONTENT_LENGTH"] == "3"
    assert "HTTP_CONTENT_TYPE" not in env
    assert "HTTP_CONTENT_LENGTH" not in env
    assert env["HTTP_ACCEPT"] == "a, b"
    assert env["HTTP_COOKIE"] == "a=1; b=2"
    # The underscore spelling is dropped: it cannot pose as X-Forwarded-For.
    assert env["HTTP_X_FORWARDED_FOR"] == "1.2.3.4"
    assert env["SERVER_NAME"] == "127.0.0.1"
    assert env["SERVER_PORT"] == "8000"
    assert env["REMOTE_ADDR"] == "10.0.0.1"
    assert env["REMOTE_PORT"] == "5555"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["wsgi.url_scheme"] == "https"
    assert env["wsgi.version"] == (1, 0)
    assert env["wsgi.multithread"] is True
    assert env["wsgi.run_once"] is False


def test_invalid_utf8_and_encoded_slash_keep_their_bytes() -> None:
    env = build_environ(_scope(raw_path=b"/api/a%2Fb/%FF", path="/api/a/b/\ufffd"), _body())
    assert env["PATH_INFO"] == "/a/b/\xff"


def test_unix_socket_server_name_comes_from_host() -> None:
    env = build_environ(_scope(server=("/tmp/s.sock", None), scheme="http"), _body())
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("example.com", "80")
    headers = [(b"host", b"example.com:8443")]
    env = build_environ(_scope(server=None, headers=headers), _body())
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("example.com", "8443")


def test_no_root_path() -> None:
    env = build_environ(_scope(root_path="", raw_path=b"/x", path="/x", client=None), _body())
    assert env["SCRIPT_NAME"] == ""
    assert env["PATH_INFO"] == "/x"
    assert "REMOTE_ADDR" not in env


def test_wsgiref_validator_accepts_environ_and_response() -> None:
    """The stdlib's PEP 3333 checker, on both sides of a call."""
    sent: list[tuple[Any, bytes, bool]] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = environ["wsgi.input"].read(3)
        environ["wsgi.errors"].write("a line\n")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body]

    env = build_environ(_scope(), _body())
    final = call_app(validator(app), env, Responder(lambda *call: sent.append(call)))
    # The validator's iterator is not a list: nothing is held back but the (empty) end.
    assert sent == [((200, [(b"content-type", b"text/plain")]), b"abc", True)]
    assert final == (None, b"")


def wsgi_function(environ: Any, start_response: Any) -> list[bytes]:
    return []


class WSGIObject:
    def __call__(self, environ: Any, start_response: Any) -> list[bytes]:
        return []


async def asgi3(scope: Any, receive: Any, send: Any) -> None:
    pass


def asgi2(scope: Any) -> Any:
    return asgi3


@pytest.mark.parametrize(
    ("app", "expected"),
    [
        (wsgi_function, True),
        (WSGIObject(), True),
        (asgi3, False),
        (asgi2, False),
        (WSGIObject, False),
    ],
)
def test_auto_detection(app: object, expected: bool) -> None:
    assert is_wsgi(app) is expected
    assert isinstance(adapt_app(app, "auto"), WSGIAdapter) is expected


def test_forced_interface_and_rewrap() -> None:
    forced = adapt_app(validator(wsgi_function), "wsgi", wsgi_threads=3)
    assert isinstance(forced, WSGIAdapter)
    assert forced.threads.size == 3
    again = adapt_app(forced, "auto", wsgi_threads=5)
    assert isinstance(again, WSGIAdapter)
    assert again.threads.size == 5
    assert again.app is forced.app


def test_file_wrapper_iterates_blocks() -> None:
    wrapper = build_environ(_scope(), _body())["wsgi.file_wrapper"](io.BytesIO(b"x" * 10), 4)
    assert list(wrapper) == [b"xxxx", b"xxxx", b"xx"]
    wrapper.close()
    assert wrapper.file.closed

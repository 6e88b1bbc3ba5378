"""The ``trio-asgi`` command: options, environment variables, errors, and real runs."""

from __future__ import annotations

import dataclasses
import http.client
import logging
import os
import queue
import re
import resource
import runpy
import shlex
import signal
import socket
import ssl
import subprocess
import sys
import threading
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
import trustme

from trio_asgi import Config
from trio_asgi._cli import all_options, build_parser, collect, config_options, main, make_config
from trio_asgi._config import CHOICES

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _restore_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """main() configures process-wide loggers and sys.path: put them back."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    for name in [name for name in os.environ if name.startswith("TRIO_ASGI_")]:
        monkeypatch.delenv(name)  # the developer's own settings must not change the results
    loggers = [logging.getLogger("trio_asgi"), logging.getLogger("trio_asgi.access")]
    saved = [(lg, lg.handlers[:], lg.level, lg.propagate) for lg in loggers]
    yield
    for logger, handlers, level, propagate in saved:
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate


def parse(argv: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    options = all_options()
    return collect(build_parser(options), options, argv, env or {})


def config_for(argv: list[str], env: dict[str, str] | None = None) -> Config:
    return make_config(parse(argv, env))


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    captured = capsys.readouterr()
    assert isinstance(info.value.code, int)
    return info.value.code, captured.out, captured.err


# --- the option table -----------------------------------------------------------------------


def test_every_config_field_is_an_option() -> None:
    fields = {f.name for f in dataclasses.fields(Config) if f.init}
    derived = {o.dest for o in config_options()}
    assert derived == fields - {"bind", "headers"}  # those two: --bind..., --header


def test_every_option_has_help_text_and_a_group() -> None:
    # The Config help texts come from the fields' metadata in _config.py.
    for option in all_options():
        assert option.help, option.dest
        assert option.group != "options", option.dest


def test_help_shows_every_flag_and_environment_variable(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run_main(["--help"], capsys)
    assert code == 0
    text = " ".join(out.split())  # argparse wraps lines
    for option in all_options():
        if not option.positional:
            assert option.flag in text
        assert option.env in text
    for flag in (
        "--no-access-log",
        "--no-server-header",
        "--no-date-header",
        "--no-use-colors",
        "--no-ws-per-message-deflate",
        "--timeout-ws-handshake SECONDS",
    ):
        assert flag in text


def test_python_dash_m_runs_the_command(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", ["trio_asgi", "--version"])
    with pytest.raises(SystemExit) as info:
        runpy.run_module("trio_asgi", run_name="__main__")
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith("trio-asgi ")


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(["--version"], capsys)
    assert code == 0
    assert re.match(r"trio-asgi \d+\.\d+\.\d+\S* \(trio \S+, \w+ 3\.\d+\.\d+\)\n", out)


# --- values from the command line and the environment --------------------------------------


def test_defaults_are_configs_defaults() -> None:
    assert config_for([]) == Config()


def test_host_and_port() -> None:
    assert config_for(["--host", "0.0.0.0", "--port", "0"]).bind == ("0.0.0.0:0",)
    assert config_for(["--host", "::1", "--port", "9000"]).bind == ("[::1]:9000",)


def test_bind_uds_and_fd_replace_host_and_port() -> None:
    argv = shlex.split("--port 1 --bind 127.0.0.1:0 --bind [::1]:0 --uds /tmp/s --fd 3")
    assert config_for(argv).bind == ("127.0.0.1:0", "[::1]:0", "unix:/tmp/s", "fd://3")


def test_every_kind_of_value() -> None:
    argv = shlex.split(
        "--timeout-keep-alive 2.5 --timeout-body none --max-body-size 1_000 "
        "--limit-concurrency None --no-server-header --access-log-format {status} "
        "--lifespan on --header 'X-A: 1' --header 'X-B:two words' --ws-per-message-deflate "
        "--root-path /api"
    )
    config = config_for(argv)
    assert (config.timeout_keep_alive, config.timeout_body) == (2.5, None)
    assert (config.max_body_size, config.limit_concurrency) == (1000, None)
    assert (config.server_header, config.access_log_format) == (False, "{status}")
    assert (config.lifespan, config.root_path) == ("on", "/api")
    assert config.headers == (("X-A", "1"), ("X-B", "two words"))


def test_environment_fills_in_what_the_command_line_leaves_out() -> None:
    env = {
        "TRIO_ASGI_PORT": "9001",
        "TRIO_ASGI_HOST": "::1",
        "TRIO_ASGI_ACCESS_LOG": "no",
        "TRIO_ASGI_DATE_HEADER": "0",
        "TRIO_ASGI_TIMEOUT_WRITE": "none",
        "TRIO_ASGI_HEADER": "X-A: 1, 2\nX-B: 3",
        "TRIO_ASGI_WS": "none",
        "TRIO_ASGI_MAX_HEADER_COUNT": "50",
        "UNRELATED": "x",
    }
    config = config_for([], env)
    assert config.bind == ("[::1]:9001",)
    assert (config.access_log, config.date_header, config.timeout_write) == (False, False, None)
    assert config.headers == (("X-A", "1, 2"), ("X-B", "3"))
    assert (config.ws, config.max_header_count) == ("none", 50)


def test_command_line_wins_over_environment() -> None:
    env = {"TRIO_ASGI_PORT": "9001", "TRIO_ASGI_ACCESS_LOG": "false", "TRIO_ASGI_APP": "a:b"}
    values = parse(["--port", "9002", "--access-log", "c:d"], env)
    assert (values["port"], values["access_log"], values["app"]) == (9002, True, "c:d")


def test_environment_lists_and_flags() -> None:
    values = parse(
        [],
        {
            "TRIO_ASGI_BIND": "127.0.0.1:1, unix:/tmp/x  [::1]:2",
            "TRIO_ASGI_FACTORY": "yes",
            "TRIO_ASGI_USE_COLORS": "TRUE",
        },
    )
    assert values["bind"] == ["127.0.0.1:1", "unix:/tmp/x", "[::1]:2"]
    assert (values["factory"], values["use_colors"]) == (True, True)


@pytest.mark.parametrize(
    ("env", "error"),
    [
        ({"TRIO_ASGI_PORT": "eighty"}, "TRIO_ASGI_PORT: expected a whole number, got 'eighty'"),
        ({"TRIO_ASGI_PORT": "70000"}, "TRIO_ASGI_PORT: expected a port from 0 to 65535"),
        ({"TRIO_ASGI_ACCESS_LOG": "maybe"}, "TRIO_ASGI_ACCESS_LOG: expected 1/0, true/false"),
        ({"TRIO_ASGI_LIFESPAN": "sometimes"}, "TRIO_ASGI_LIFESPAN: 'sometimes' is not one of"),
        ({"TRIO_ASGI_HEADER": "no colon"}, "TRIO_ASGI_HEADER: expected 'Name: value'"),
    ],
)
def test_bad_environment_values_are_usage_errors(
    capsys: pytest.CaptureFixture[str], env: dict[str, str], error: str
) -> None:
    with pytest.raises(SystemExit) as info:
        parse([], env)
    assert info.value.code == 2
    assert f"trio-asgi: error: {error}" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["--port", "x"],
        ["--lifespan", "maybe"],
        ["--timeout-body", "soon"],
        ["--bogus"],
        ["--header", "nocolon"],
        ["--factory"],
    ],
)
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, _, err = run_main(argv, capsys)
    assert code == 2
    assert "trio-asgi: error: " in err


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["--timeout-keep-alive", "-1"], "timeout_keep_alive: must be a positive number"),
        (["--access-log-format", "{nope}"], "access_log_format: unknown field 'nope'"),
        (["--bind", "localhost"], "bind 'localhost': expected host:port"),
        (["--root-path", "api/"], "root_path: must start with '/'"),
        (["--log-config", "/nonexistent.json"], "log_config: '/nonexistent.json' is not a file"),
    ],
)
def test_config_errors_are_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], error: str
) -> None:
    code, out, err = run_main([*argv, "tests.fixtures.apps:app"], capsys)
    assert (code, out) == (2, "")
    assert err.startswith(f"trio-asgi: error: {error}")
    assert err.count("\n") == 1


def test_app_load_errors_are_one_line_and_exit_3(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(["--app-dir", str(ROOT), "tests.fixtures.apps:nope"], capsys)
    assert code == 3
    assert err == "trio-asgi: error: 'tests.fixtures.apps' has no attribute 'nope'\n"


def test_app_load_error_traceback_at_debug_level(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--log-level", "debug", "--app-dir", str(ROOT), "tests.fixtures.raises_on_import:app"]
    code, _, err = run_main(argv, capsys)
    assert code == 3
    assert "Traceback (most recent call last)" in err
    assert err.splitlines()[-1].startswith("trio-asgi: error: error while importing")


# --- real runs --------------------------------------------------------------------------------

TIMEOUT = 15.0


class Lines:
    """A pipe read line by line on a thread, so a test can wait for a line with a timeout."""

    def __init__(self, pipe: IO[str]) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._pipe = pipe
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        for line in self._pipe:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def close(self) -> None:  # once the process is gone
        self._thread.join(TIMEOUT)
        self._pipe.close()

    def wait_for(self, predicate: Callable[[str], bool]) -> str:
        while True:
            try:
                line = self._queue.get(timeout=TIMEOUT)
            except queue.Empty:
                raise AssertionError(f"no such line within {TIMEOUT}s; got {self.seen}") from None
            if line is None:
                raise AssertionError(f"the stream ended; got {self.seen}")
            self.seen.append(line)
            if predicate(line):
                return line

    def rest(self) -> list[str]:
        """Every line up to the end of the stream (call once the process has exited)."""
        while (line := self._queue.get(timeout=TIMEOUT)) is not None:
            self.seen.append(line)
        return self.seen


@pytest.fixture
def start() -> Iterator[Callable[..., tuple[subprocess.Popen[str], Lines, Lines]]]:
    processes: list[tuple[subprocess.Popen[str], Lines, Lines]] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Any:
        environ = {**os.environ, "NO_COLOR": "1", "PYTHONUNBUFFERED": "1", **(env or {})}
        command = [sys.executable, "-m", "trio_asgi", *args]
        pipe, stdin = subprocess.PIPE, subprocess.DEVNULL
        process = subprocess.Popen(
            command, cwd=ROOT, env=environ, text=True, stdin=stdin, stdout=pipe, stderr=pipe
        )
        assert process.stdout is not None
        assert process.stderr is not None
        processes.append((process, Lines(process.stdout), Lines(process.stderr)))
        return processes[-1]

    yield start
    for process, stdout, stderr in processes:
        if process.poll() is None:
            process.kill()
        process.wait()
        stdout.close()
        stderr.close()


def listening_url(stderr: Lines) -> str:
    line = stderr.wait_for(lambda line: "Listening on http://" in line)
    match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
    assert match is not None
    assert match[1] != "0"
    return match[0]


def test_serves_then_stops_cleanly_on_sigterm(start: Any) -> None:
    process, stdout, stderr = start("tests.fixtures.apps:app", "--port", "0")
    url = listening_url(stderr)
    response = httpx.get(f"{url}/some/where?x=1", timeout=TIMEOUT)
    assert (response.status_code, response.text) == (200, "hello from /some/where")
    access = stdout.wait_for(lambda line: "GET" in line)
    assert re.fullmatch(r'127\.0\.0\.1:\d+ - "GET /some/where\?x=1 HTTP/1\.1" 200 OK', access)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=TIMEOUT) == 0
    lines = stderr.rest()
    assert "INFO     Shutting down (signal SIGTERM)..." in lines
    assert f"INFO     Started server process [{process.pid}]" in lines
    assert f"INFO     Finished server process [{process.pid}]" in lines
    assert not any("Traceback" in line for line in lines)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and prlimit")
def test_out_of_file_descriptors_is_logged_then_served_after(start: Any) -> None:
    # The accept loop logs EMFILE and retries a little later: no crash, no busy loop,
    # and once descriptors are free again new connections are served.
    process, _, stderr = start("tests.fixtures.apps:app", "--port", "0", "--no-access-log")
    url = listening_url(stderr)
    host, _, port = url.removeprefix("http://").rpartition(":")
    in_use = len(os.listdir(f"/proc/{process.pid}/fd"))
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.prlimit(process.pid, resource.RLIMIT_NOFILE, (in_use + 2, hard))
    clients = [socket.create_connection((host, int(port))) for _ in range(6)]
    try:
        line = stderr.wait_for(lambda line: "accept() failed" in line)
        assert "Too many open files" in line
        assert "retrying in" in line
    finally:
        for client in clients:
            client.close()
    assert httpx.get(f"{url}/again", timeout=TIMEOUT).text == "hello from /again"
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=TIMEOUT) == 0
    assert not any("Traceback" in line for line in stderr.rest())


def test_demo_app_from_the_environment_and_sigint(start: Any) -> None:
    process, _, stderr = start(env={"TRIO_ASGI_PORT": "0", "TRIO_ASGI_NO_SUCH": "1"})
    stderr.wait_for(lambda line: "No app given: serving the built-in demo app" in line)
    url = listening_url(stderr)
    page = httpx.get(url, timeout=TIMEOUT)
    assert page.status_code == 200
    assert 'id="ws-status"' in page.text
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=TIMEOUT) == 0
    assert "INFO     Shutting down (signal SIGINT)..." in stderr.rest()


def test_second_sigint_forces_the_stop(start: Any) -> None:
    process, _, stderr = start("--port", "0", "--timeout-graceful-shutdown", "60")
    url = listening_url(stderr)
    with httpx.stream("GET", f"{url}/events?count=1000&interval=10", timeout=TIMEOUT) as events:
        # A response in flight. (Hold on to the iterator: closing it closes the response.)
        lines = events.iter_lines()
        assert next(lines).startswith("id: 1")
        process.send_signal(signal.SIGINT)
        stderr.wait_for(lambda line: "Shutting down (signal SIGINT)" in line)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=TIMEOUT) == 130
    assert any("Second SIGINT: forcing shutdown" in line for line in stderr.rest())


def test_broken_app_path_exits_3_with_one_line(start: Any) -> None:
    process, stdout, stderr = start("tests.fixtures.apps:nope", "--port", "0")
    assert process.wait(timeout=TIMEOUT) == 3
    assert stderr.rest() == ["trio-asgi: error: 'tests.fixtures.apps' has no attribute 'nope'"]
    assert stdout.rest() == []


def test_failed_startup_exits_3_without_a_traceback(start: Any) -> None:
    process, _, stderr = start("tests.fixtures.apps:startup_fails", "--port", "0")
    assert process.wait(timeout=TIMEOUT) == 3
    lines = stderr.rest()
    assert (
        "ERROR    Cannot start: lifespan startup failed: database unreachable at db:5432" in lines
    )
    assert not any("Traceback" in line for line in lines)


def test_choices_come_from_the_literal_types() -> None:
    hints = typing.get_type_hints(Config)
    by_dest = {o.dest: o for o in config_options()}
    for name, values in CHOICES.items():
        assert by_dest[name].choices == typing.get_args(hints[name])
        assert values == typing.get_args(hints[name])


# --- TLS --------------------------------------------------------------------------------------


def _write_tls_files(directory: Path, ca: trustme.CA) -> bytes:
    """A certificate for 127.0.0.1 from ``ca`` as cert.pem + key.pem; returns its DER."""
    cert = ca.issue_cert("127.0.0.1")
    directory.mkdir(exist_ok=True)
    (directory / "cert.pem").write_bytes(b"".join(pem.bytes() for pem in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(directory / "key.pem"))
    return ssl.PEM_cert_to_DER_cert(cert.cert_chain_pems[0].bytes().decode())


def _https_get(connection: http.client.HTTPSConnection, path: str) -> tuple[int, bytes]:
    connection.request("GET", path)
    response = connection.getresponse()
    return response.status, response.read()


def test_tls_from_the_command_line_and_sighup_reloads_the_certificate(
    start: Any, tmp_path: Path
) -> None:
    old_ca, new_ca = trustme.CA(), trustme.CA()
    old_der = _write_tls_files(tmp_path, old_ca)
    files = [
        "--ssl-certfile",
        str(tmp_path / "cert.pem"),
        "--ssl-keyfile",
        str(tmp_path / "key.pem"),
    ]
    process, _, stderr = start("tests.fixtures.apps:app", "--port", "0", *files)
    line = stderr.wait_for(lambda line: "Listening on " in line)
    match = re.search(r"https://127\.0\.0\.1:(\d+)$", line)
    assert match is not None, line
    context = ssl.create_default_context()
    old_ca.configure_trust(context)
    new_ca.configure_trust(context)
    port = int(match[1])
    kept = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=TIMEOUT)
    fresh = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=TIMEOUT)
    try:
        assert _https_get(kept, "/before") == (200, b"hello from /before")
        assert isinstance(kept.sock, ssl.SSLSocket)
        assert kept.sock.getpeercert(binary_form=True) == old_der
        new_der = _write_tls_files(tmp_path, new_ca)
        process.send_signal(signal.SIGHUP)
        stderr.wait_for(lambda line: "Reloaded the TLS certificate" in line)
        assert _https_get(fresh, "/new") == (200, b"hello from /new")
        assert isinstance(fresh.sock, ssl.SSLSocket)
        assert fresh.sock.getpeercert(binary_form=True) == new_der
        assert _https_get(kept, "/after") == (200, b"hello from /after")  # still open
        assert kept.sock.getpeercert(binary_form=True) == old_der
    finally:
        kept.close()
        fresh.close()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=TIMEOUT) == 0
    assert not any("Traceback" in line for line in stderr.rest())


def test_a_certificate_that_does_not_load_exits_2_with_one_line(start: Any, tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.pem")
    process, _, stderr = start("tests.fixtures.apps:app", "--port", "0", "--ssl-certfile", missing)
    assert process.wait(timeout=TIMEOUT) == 2
    lines = stderr.rest()
    assert lines[-1] == (
        f"ERROR    Cannot start: ssl_certfile: cannot load {missing!r}: No such file or directory"
    )
    assert not any("Traceback" in line for line in lines)


def test_without_tls_sighup_keeps_its_default_action(start: Any) -> None:
    # Only a server with a certificate to reload takes SIGHUP over; otherwise a hang-up
    # (the terminal closing) still ends it, as before.
    process, _, stderr = start("tests.fixtures.apps:app", "--port", "0")
    listening_url(stderr)
    process.send_signal(signal.SIGHUP)
    assert process.wait(timeout=TIMEOUT) == -signal.SIGHUP

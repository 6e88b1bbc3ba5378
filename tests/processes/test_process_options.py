"""The process options: validated in Config, parsed from the command line and environment."""

from __future__ import annotations

import pytest

from trio_asgi import Config, ConfigError
from trio_asgi._cli import all_options, build_parser, collect, make_config


def options_from(argv: list[str], environ: dict[str, str] | None = None) -> Config:
    options = all_options()
    return make_config(collect(build_parser(options), options, argv, environ or {}))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"workers": 0}, "workers: must be at least 1"),
        ({"limit_max_requests": 0}, "limit_max_requests: must be at least 1"),
        ({"limit_max_requests_jitter": -1}, "limit_max_requests_jitter: must be at least 0"),
        ({"reload_dir": "src"}, "reload_dir: give a tuple of strings"),
        ({"reload_delay": -1}, "reload_delay: must be a positive number"),
        ({"timeout_worker_healthcheck": 0}, "timeout_worker_healthcheck: must be a positive"),
        ({"reload": True, "workers": 2}, "reload: cannot be combined with workers"),
    ],
)
def test_bad_process_options_are_one_line_errors(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Config.from_mapping(options)


def test_repeatable_reload_options_from_the_command_line_and_environment() -> None:
    config = options_from(["--reload", "--reload-dir", "src", "--reload-dir", "lib"])
    assert config.reload_dir == ("src", "lib")
    config = options_from([], {"TRIO_ASGI_RELOAD_INCLUDE": "*.py, *.html"})
    assert config.reload_include == ("*.py", "*.html")


def test_worker_options_from_the_command_line() -> None:
    argv = ["--workers", "3", "--limit-max-requests", "1000", "--limit-max-requests-jitter", "50"]
    config = options_from([*argv, "--timeout-worker-healthcheck", "none", "--reuse-port"])
    assert (config.workers, config.limit_max_requests, config.limit_max_requests_jitter) == (
        3,
        1000,
        50,
    )
    assert config.timeout_worker_healthcheck is None
    assert config.reuse_port

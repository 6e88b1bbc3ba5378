"""Developer sessions: ``nox`` runs tests, lint and typecheck; ``nox -s docs`` builds the docs.

Longer sessions (``bench``, ``fuzz``, ``autobahn``, ``browser``, ``conformance``) go below
the core ones and are run by name. Sessions install from the extras in pyproject.toml,
so the dependency lists have one home.
"""

from __future__ import annotations

import shlex
import shutil

import nox

PYTHON = "3.11"

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.error_on_missing_interpreters = True


def _extra(name: str) -> list[str]:
    """The requirements of one optional-dependencies extra, read from pyproject.toml."""
    pyproject = nox.project.load_toml("pyproject.toml")
    requirements: list[str] = pyproject["project"]["optional-dependencies"][name]
    return requirements


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The test suite under coverage; arguments after ``--`` go to pytest."""
    session.install("-e", ".[test]")
    session.run("coverage", "erase")
    session.run("coverage", "run", "-m", "pytest", *session.posargs)
    session.run("coverage", "report", "--fail-under=95")


#: The modules about the fast paths themselves: they check that the fast path is taken.
FAST_PATH_MODULES = (
    "tests/server/test_trio_fast_path.py",
    "tests/server/test_asyncio_transport.py",
    # Count the trio fast path's scheduler trips per request and per WebSocket message
    # (the generic path has more).
    "tests/server/test_request_cost.py",
    "tests/server/test_ws_message_cost.py",
)

#: What the transport changes: the server over real sockets, with real proxies in front.
#: The sans-IO protocol tests and the in-memory toolkit tests do not touch a transport.
TRANSPORT_TESTS = (
    "tests/server",
    "tests/wsgi",
    "tests/metrics",
    "tests/e2e/test_nginx.py",
    "tests/e2e/test_haproxy.py",
)


@nox.session(python=PYTHON)
def tests_generic(session: nox.Session) -> None:
    """The transport tests with the fast paths off (``TRIO_ASGI_FAST_PATH=0``): anyio's streams.

    Every connection then goes through the generic transport, on trio and asyncio. The
    fast paths' own modules are left out; the transport contract test still runs all
    transports. Arguments after ``--`` go to pytest (default: ``TRANSPORT_TESTS``).
    """
    session.install("-e", ".[test]")
    ignored = [f"--ignore={module}" for module in FAST_PATH_MODULES]
    args = session.posargs or list(TRANSPORT_TESTS)
    session.run("python", "-m", "pytest", *ignored, *args, env={"TRIO_ASGI_FAST_PATH": "0"})


@nox.session(python=PYTHON)
def tests_uvloop(session: nox.Session) -> None:
    """The server tests with uvloop as their asyncio loop (``TRIO_ASGI_TEST_UVLOOP=1``).

    The real-socket tests run on trio and on uvloop (instead of the standard asyncio
    loop); virtual-time tests keep their own loop. Arguments after ``--`` go to pytest.
    """
    session.install("-e", ".[test]")
    args = session.posargs or ["tests/server"]
    session.run("python", "-m", "pytest", *args, env={"TRIO_ASGI_TEST_UVLOOP": "1"})


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff: lint rules and formatting (check only; run ``ruff format`` to fix)."""
    # Only ruff itself: linting needs neither the package nor its dependencies.
    session.install(*(req for req in _extra("lint") if req.startswith("ruff")))
    # The whole checkout, as .ci/run does; ruff skips build output and virtualenvs itself.
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict on trio_asgi, configured in pyproject.toml."""
    # The package and its dependencies are installed so mypy sees their type hints; the
    # test extra too, since the public trio_asgi.testing imports hypothesis.
    session.install("-e", ".[lint,test]")
    session.run("mypy", *session.posargs)


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """Build the HTML docs; any Sphinx warning fails the build."""
    session.install("-e", ".[docs]")
    session.run("sphinx-build", "-W", "--keep-going", "-b", "html", "docs", "docs/_build/html")


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """trio-asgi against its peers; writes docs/benchmarks.md. Needs wrk.

    Arguments after ``--`` go to ``python -m bench.run``: ``nox -s bench -- --quick`` is a
    smoke run under a minute; ``-- --help`` lists the filters and durations.
    """
    if shutil.which("wrk") is None:
        session.error(
            "wrk is not installed: `sudo apt-get install -y wrk` (Debian/Ubuntu) "
            "or `brew install wrk` (macOS), then run the session again"
        )
    # The harness needs the package and Starlette (bench/apps.py imports it).
    starlette = [req for req in _extra("bench") if req.startswith("starlette")]
    session.install("-e", ".", *starlette)
    # Each peer on its own: one that fails to install is an "n/a" row, not a failed session.
    for requirement in _extra("bench"):
        if requirement not in starlette:
            session.install(requirement, success_codes=range(256))
    posargs = ["--", *session.posargs] if session.posargs else []
    command = shlex.join(["nox", "-s", "bench", *posargs])
    session.run("python", "-m", "bench.run", *session.posargs, env={"BENCH_COMMAND": command})


@nox.session(python=PYTHON)
def fuzz(session: nox.Session) -> None:
    """The hypothesis fuzz tests long (the ``fuzz`` profile), then atheris on the sans-IO core.

    A smoke run: ``TRIO_ASGI_FUZZ_EXAMPLES=200 nox -s fuzz -- -max_total_time=30``.

    Arguments after ``--`` go to the atheris harness (libFuzzer options, e.g.
    ``-max_total_time=3600``); its corpus is kept in build/fuzz-corpus/.
    """
    session.install("-e", ".[test]")
    session.run(
        "python",
        "-m",
        "pytest",
        "tests/testing/test_fuzz_http.py",
        "tests/testing/test_fuzz_ws.py",
        "-x",
        "--hypothesis-show-statistics",
        env={"HYPOTHESIS_PROFILE": "fuzz"},
    )
    # atheris ships wheels for some Pythons and platforms only: without one, say so and stop.
    session.install(*_extra("fuzz"), success_codes=range(256))
    found = session.run(
        "python",
        "-c",
        "import importlib.util as u; print(bool(u.find_spec('atheris')))",
        silent=True,
    )
    if "True" not in str(found):
        session.warn("atheris could not be installed here: skipping the coverage-guided fuzzing")
        return
    corpus = "build/fuzz-corpus"
    session.run("python", "-c", f"import os; os.makedirs({corpus!r}, exist_ok=True)")
    args = session.posargs or ["-max_total_time=300", "-max_len=8192"]
    session.run("python", "fuzz/atheris_http11.py", corpus, *args)


@nox.session(python=PYTHON)
def autobahn(session: nox.Session) -> None:
    """Every Autobahn fuzzing-client case (1 to 13, with compression) against trio-asgi.

    Prints the cases per verdict and fails if any case failed; Autobahn's HTML report
    goes to build/autobahn/. Arguments after ``--`` go to ``tests/e2e/run_autobahn.py``
    (``nox -s autobahn -- -i '9.*'`` runs one section; ``-- --help`` lists the options).
    """
    session.install("-e", ".[test]")  # kosoku is in the test extra
    args = session.posargs or ["--report", "build/autobahn"]
    session.run("python", "tests/e2e/run_autobahn.py", *args)


@nox.session(python=PYTHON)
def browser(session: nox.Session) -> None:
    """The demo page in headless Chromium (needs the system's chromium and chromedriver)."""
    for program in ("chromium", "chromedriver"):
        if shutil.which(program) is None:
            session.error(
                f"{program} is not installed: `sudo apt-get install -y chromium chromium-driver`"
                " (Debian/Ubuntu), then run the session again"
            )
    session.install("-e", ".[test,browser]")
    session.run("python", "-m", "pytest", "tests/e2e/test_browser.py", "-rs", *session.posargs)

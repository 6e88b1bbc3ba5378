"""``load_app`` names every failure in one line; ``adapt_app`` tells ASGI 2 from ASGI 3 once."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from trio_asgi._app import ASGI2Adapter, adapt_app, is_asgi2, load_app
from trio_asgi._errors import AppLoadError

ROOT = str(Path(__file__).resolve().parent.parent)
FIXTURES = "tests.fixtures"


@pytest.fixture(autouse=True)
def _restore_sys_path(monkeypatch: pytest.MonkeyPatch) -> None:
    # load_app puts app_dir on sys.path; monkeypatch restores it. ROOT first, so that
    # ``tests.fixtures`` imports however pytest was started.
    monkeypatch.setattr(sys, "path", [ROOT, *sys.path])


def load(target: str, **kwargs: Any) -> object:
    return load_app(f"{FIXTURES}.{target}", app_dir=ROOT, **kwargs)


def load_error(target: str, **kwargs: Any) -> str:
    with pytest.raises(AppLoadError) as info:
        load_app(target, **{"app_dir": ROOT, **kwargs})
    message = str(info.value)
    assert "\n" not in message
    return message


def test_loads_module_attribute() -> None:
    from tests.fixtures import apps

    assert load("apps:app") is apps.app


def test_loads_dotted_attribute() -> None:
    from tests.fixtures import apps

    assert load("apps:container.inner.app") is apps.app


def test_app_dir_goes_first_on_sys_path(tmp_path: Path) -> None:
    (tmp_path / "only_here_app.py").write_text("async def app(scope, receive, send): pass\n")
    loaded = load_app("only_here_app:app", app_dir=str(tmp_path))
    assert sys.path[0] == str(tmp_path)
    assert callable(loaded)


@pytest.mark.parametrize("target", ["apps", "apps:", ":app", ""])
def test_target_without_module_and_attribute(target: str) -> None:
    assert "must look like 'module:attribute'" in load_error(target)


def test_missing_module() -> None:
    message = load_error("no_such_module_xyz:app")
    assert message.startswith("no module named 'no_such_module_xyz'")


def test_missing_submodule_names_the_module() -> None:
    message = load_error(f"{FIXTURES}.nope:app")
    assert message.startswith(f"no module named '{FIXTURES}.nope'")


def test_missing_dependency_inside_the_module_is_not_a_missing_module() -> None:
    message = load_error(f"{FIXTURES}.broken_import:app")
    assert message.startswith(f"error while importing '{FIXTURES}.broken_import': ")
    assert "ModuleNotFoundError: No module named 'a_dependency_that_is_not_installed'" in message
    assert "broken_import.py, line 5" in message


def test_exception_while_importing_names_type_message_and_line() -> None:
    message = load_error(f"{FIXTURES}.raises_on_import:app")
    assert "RuntimeError: SECRET_KEY is not set" in message
    assert "raises_on_import.py, line 7" in message


def test_syntax_error_in_the_module(tmp_path: Path) -> None:
    (tmp_path / "bad_syntax_app.py").write_text("async def app(:\n")
    message = load_error("bad_syntax_app:app", app_dir=str(tmp_path))
    assert message.startswith("error while importing 'bad_syntax_app': SyntaxError")
    assert "line 1" in message


def test_the_cause_is_kept_for_debugging() -> None:
    with pytest.raises(AppLoadError) as info:
        load("raises_on_import:app")
    assert isinstance(info.value.__cause__, RuntimeError)


def test_missing_attribute_suggests_a_close_name() -> None:
    message = load_error(f"{FIXTURES}.apps:ap")
    assert message == f"'{FIXTURES}.apps' has no attribute 'ap'; did you mean 'app'?"


def test_missing_nested_attribute_names_its_owner() -> None:
    message = load_error(f"{FIXTURES}.apps:container.outer")
    assert message.startswith(f"'{FIXTURES}.apps:container' has no attribute 'outer'")


def test_not_callable() -> None:
    message = load_error(f"{FIXTURES}.apps:not_callable")
    assert message == f"the object '{FIXTURES}.apps:not_callable' is not callable (int)"


def test_factory_is_called() -> None:
    from tests.fixtures import apps

    assert load("apps:create_app", factory=True) is apps.app


def test_factory_without_flag_is_pointed_out() -> None:
    message = load_error(f"{FIXTURES}.apps:create_app")
    assert message.endswith("takes no arguments: if it is an app factory, use --factory")


def test_factory_that_raises() -> None:
    message = load_error(f"{FIXTURES}.apps:failing_factory", factory=True)
    assert message.startswith(
        f"the factory '{FIXTURES}.apps:failing_factory' raised "
        "ValueError: missing setting DATABASE_URL"
    )


def test_factory_not_callable() -> None:
    message = load_error(f"{FIXTURES}.apps:not_callable", factory=True)
    assert message == f"--factory: '{FIXTURES}.apps:not_callable' is not callable (int)"


def test_async_factory_is_refused_without_a_never_awaited_warning() -> None:
    # filterwarnings=error turns a "coroutine was never awaited" warning into a failure.
    message = load_error(f"{FIXTURES}.apps:async_factory", factory=True)
    assert message.endswith("is async; app factories must be synchronous")


def test_factory_returning_something_not_callable() -> None:
    message = load_error(f"{FIXTURES}.apps:factory_of_nothing", factory=True)
    assert "returned by the factory" in message
    assert message.endswith("is not callable (NoneType)")


# --- adapt_app ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "asgi2"),
    [
        ("app", False),
        ("ASGI3Class", False),
        ("asgi3_instance", False),
        ("sync_wrapper", False),
        ("ASGI2Class", True),
        ("asgi2_function", True),
    ],
)
def test_detects_asgi2(name: str, asgi2: bool) -> None:
    assert is_asgi2(load(f"apps:{name}")) is asgi2


async def _run(app: object, interface: Any = "auto") -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        raise AssertionError("not called")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await adapt_app(app, interface)({"type": "http", "path": "/p"}, receive, send)
    return sent


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ASGI2Class", {"type": "asgi2.class", "path": "/p"}),
        ("asgi2_function", {"type": "asgi2.function", "path": "/p"}),
        ("ASGI3Class", {"type": "asgi3.class"}),
        ("asgi3_instance", {"type": "asgi3.instance"}),
    ],
)
async def test_adapted_apps_run_as_asgi3(name: str, expected: dict[str, Any]) -> None:
    assert await _run(load(f"apps:{name}")) == [expected]


def test_asgi3_passes_through_untouched() -> None:
    app = load("apps:app")
    assert adapt_app(app, "auto") is app
    assert adapt_app(app, "asgi3") is app


def test_adapting_twice_wraps_once() -> None:
    adapted = adapt_app(load("apps:ASGI2Class"), "auto")
    assert isinstance(adapted, ASGI2Adapter)
    assert repr(adapted).startswith("ASGI2Adapter(<class 'tests.fixtures.apps.ASGI2Class'>")
    assert adapt_app(adapted, "asgi2") is adapted
    assert adapt_app(adapted, "auto") is adapted


async def test_forced_interface_overrides_detection() -> None:
    # A forced choice is taken as given: no detection, no wrapping for asgi3.
    forced = adapt_app(load("apps:asgi2_function"), "asgi3")
    assert not isinstance(forced, ASGI2Adapter)
    assert await _run(load("apps:asgi2_function"), "asgi2") == [
        {"type": "asgi2.function", "path": "/p"}
    ]


def test_adapt_refuses_what_is_not_callable() -> None:
    with pytest.raises(AppLoadError, match="is not callable"):
        adapt_app(42, "auto")

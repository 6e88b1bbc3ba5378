"""The names ``import trio_asgi`` offers: adding or removing one is a decision, made here."""

from __future__ import annotations
import __future__

import types

import trio_asgi

# A literal on purpose: a new public name must be added here by hand, in the same change.
EXPECTED_PUBLIC_NAMES = [
    "ASGIProtocolError",
    "AppLoadError",
    "ClientDisconnected",
    "Config",
    "ConfigError",
    "HistogramSnapshot",
    "LifespanFailure",
    "Server",
    "ServerStatistics",
    "__version__",
    "run",
    "serve",
]


def public_names(module: types.ModuleType) -> list[str]:
    """Names without a leading underscore, plus ``__version__``.

    Submodules are left out: they appear as attributes only once something imports
    them (``trio_asgi.testing`` is imported on demand), so they would make the list
    depend on test order. So is ``annotations``, the ``from __future__`` feature flag.
    """
    names = []
    for name, value in vars(module).items():
        if isinstance(value, types.ModuleType) or value is __future__.annotations:
            continue
        if not name.startswith("_") or name == "__version__":
            names.append(name)
    return sorted(names)


def test_exported_names() -> None:
    assert public_names(trio_asgi) == sorted(EXPECTED_PUBLIC_NAMES)


def test_exports_are_documented() -> None:
    # Each export is the object of that name (not an alias under another name) and has
    # the docstring the API reference renders.
    for name in EXPECTED_PUBLIC_NAMES:
        if name == "__version__":
            continue
        obj = getattr(trio_asgi, name)
        assert obj.__name__ == name
        assert obj.__doc__, f"trio_asgi.{name} has no docstring"


def test_version_is_a_release_string() -> None:
    parts = trio_asgi.__version__.split(".")
    assert len(parts) >= 3
    assert all(part.isdigit() for part in parts[:3])

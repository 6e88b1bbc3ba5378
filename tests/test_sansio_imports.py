"""The sans-IO core (``trio_asgi/_protocol/``) imports neither trio nor anyio, nor the I/O layer.

How: a fresh interpreter imports every module under ``_protocol`` and then looks at
``sys.modules``. Importing ``trio_asgi._protocol`` normally runs ``trio_asgi/__init__.py``
first, which re-exports the server and so imports trio itself; that would hide any
import the core makes. So the child puts an empty stand-in module for the top package in
``sys.modules`` whose ``__path__`` is the real package directory: the import system then
loads the real ``_protocol`` modules (and whatever they import, such as ``_config``, from
the real files) without running the top ``__init__.py``.

This checks what actually gets imported, transitively and through third-party code,
which an AST scan of ``import`` statements cannot. A core module that imports from the
top package (``from trio_asgi import Config``) fails too, since that would pull in the
server: the stand-in has no such names.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import trio_asgi._protocol

# Runs in the child: argv is (package name, package directory, modules to import...).
CHILD = """
import importlib, json, sys, types

package, package_dir, modules = sys.argv[1], sys.argv[2], sys.argv[3:]
stand_in = types.ModuleType(package)
stand_in.__path__ = [package_dir]
sys.modules[package] = stand_in
forbidden = ("trio", "anyio", package + "._server")

def loaded():
    return {m for m in sys.modules if any(m == f or m.startswith(f + ".") for f in forbidden)}

report = {"<startup>": sorted(loaded())}
for name in modules:
    before = loaded()
    try:
        importlib.import_module(name)
    except Exception as exc:
        report[name] = ["import failed: " + repr(exc)]
    else:
        report[name] = sorted(loaded() - before)
print(json.dumps(report))
"""


def forbidden_imports(package: str, package_dir: Path, modules: list[str]) -> dict[str, list[str]]:
    """For each module, the forbidden modules its import loaded (empty lists are clean)."""
    # -I: ignore PYTHONPATH, user site and the current directory, so that nothing but the
    # stand-in decides where the package comes from.
    result = subprocess.run(
        [sys.executable, "-I", "-c", CHILD, package, str(package_dir), *modules],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    report: dict[str, list[str]] = json.loads(result.stdout)
    return report


def protocol_modules() -> list[str]:
    package = trio_asgi._protocol
    names = [package.__name__]
    names += [m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]
    return names


def test_discovery_finds_the_core() -> None:
    # Guards against a vacuous pass: a discovery that finds nothing checks nothing.
    assert "trio_asgi._protocol._http11" in protocol_modules()


def test_protocol_modules_import_no_io() -> None:
    package_dir = Path(trio_asgi._protocol.__file__).parent.parent
    report = forbidden_imports("trio_asgi", package_dir, protocol_modules())
    offenders = {module: loaded for module, loaded in report.items() if loaded}
    assert offenders == {}


def test_the_check_catches_an_indirect_import(tmp_path: Path) -> None:
    # A throwaway package shaped like ours, whose core reaches trio through its I/O layer
    # and whose top __init__ would fail if it ran: the check must name both problems.
    package_dir = tmp_path / "fakepkg"
    (package_dir / "_protocol").mkdir(parents=True)
    (package_dir / "_server").mkdir()
    (package_dir / "__init__.py").write_text("raise AssertionError('the stand-in must be used')\n")
    (package_dir / "_protocol" / "__init__.py").write_text("")
    (package_dir / "_protocol" / "_clean.py").write_text("import json\n")
    (package_dir / "_protocol" / "_leaky.py").write_text("from .._server import x\n")
    (package_dir / "_server" / "__init__.py").write_text("import trio\nx = 1\n")

    modules = ["fakepkg._protocol", "fakepkg._protocol._clean", "fakepkg._protocol._leaky"]
    report = forbidden_imports("fakepkg", package_dir, modules)

    assert report["<startup>"] == []
    assert report["fakepkg._protocol"] == []
    assert report["fakepkg._protocol._clean"] == []
    assert "trio" in report["fakepkg._protocol._leaky"]
    assert "fakepkg._server" in report["fakepkg._protocol._leaky"]

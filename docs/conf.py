"""Sphinx configuration. Build with ``nox -s docs`` (warnings are errors)."""

from __future__ import annotations

import sys
from pathlib import Path

from trio_asgi import __version__

# Our own small extension (generated reference tables) lives next to this file.
sys.path.insert(0, str(Path(__file__).parent / "_ext"))

project = "trio-asgi"
author = "The trio-asgi developers"
copyright = "the trio-asgi developers"
release = __version__
version = ".".join(__version__.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "trio_asgi_docs",
]

# Pages are written by hand in reStructuredText; examples are .py files pulled in with
# literalinclude (and run by tests/test_docs_examples.py).
source_suffix = {".rst": "restructuredtext"}
exclude_patterns = ["_build", "_ext", "examples"]
root_doc = "index"

napoleon_google_docstring = True
napoleon_numpy_docstring = False
autodoc_member_order = "bysource"
autodoc_typehints = "description"
# Types appear for documented parameters only; Config's thirty options are in reference/config.
autodoc_typehints_description_target = "documented_params"
# Keep the ASGI aliases' names instead of spelling out the Callable types they stand for.
autodoc_type_aliases = {name: f"trio_asgi._types.{name}" for name in ("ASGIApp", "Scope")}
autodoc_preserve_defaults = True

html_theme = "alabaster"
html_title = f"trio-asgi {release}"
html_static_path: list[str] = []

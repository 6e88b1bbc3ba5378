"""Loading the app named on the command line, and adapting it to ASGI 3 once.

``load_app("pkg.module:attr.sub")`` imports the module and walks the attributes.
Every way this can go wrong raises :class:`~trio_asgi.AppLoadError` whose message
is one line a user can act on; the original exception stays chained as
``__cause__`` for ``--log-level debug``.

:func:`adapt_app` decides once, at start, whether the app is an ASGI 2 "double
callable" or a WSGI callable and wraps it, so no request pays for the check.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import sys
import traceback
from typing import Literal, cast

from ._errors import AppLoadError
from ._types import ASGI2App, ASGIApp, Receive, Scope, Send
from ._wsgi import WSGIAdapter
from ._wsgi_io import WSGIApp

__all__ = ["adapt_app", "load_app"]


def load_app(target: str, *, factory: bool = False, app_dir: str | None = None) -> object:
    """Import ``"module:attribute"`` and return the object it names.

    Args:
        target: ``"pkg.module:attr"``; the attribute may be dotted (``"mod:obj.app"``).
        factory: Call the object with no arguments and return what it returns.
        app_dir: A directory put first on :data:`sys.path` before importing.

    Returns:
        The app (not yet adapted: see :func:`adapt_app`).

    Raises:
        AppLoadError: With a one-line message: bad syntax, module missing, error
            while importing it, attribute missing, factory failing, not callable.
    """
    module_name, sep, attr_path = target.partition(":")
    if not sep or not module_name or not attr_path:
        raise AppLoadError(f"app {target!r} must look like 'module:attribute', e.g. 'main:app'")
    if app_dir is not None and app_dir not in sys.path:
        sys.path.insert(0, app_dir)

    module = _import(module_name)
    obj: object = module
    names = attr_path.split(".")
    for depth, name in enumerate(names):
        try:
            obj = getattr(obj, name)
        except AttributeError:
            owner = module_name if depth == 0 else f"{module_name}:{'.'.join(names[:depth])}"
            raise AppLoadError(
                f"{owner!r} has no attribute {name!r}{_did_you_mean(name, obj)}"
            ) from None

    if factory:
        obj = _call_factory(target, obj)
    elif _looks_like_factory(obj):
        raise AppLoadError(f"{target!r} takes no arguments: if it is an app factory, use --factory")
    if not callable(obj):
        made = "returned by the factory " if factory else ""
        raise AppLoadError(f"the object {made}{target!r} is not callable ({type(obj).__name__})")
    return obj


def _import(module_name: str) -> object:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # The named module (or one of its parent packages) is missing, as opposed
        # to a module that exists but fails on an import of its own.
        if exc.name is not None and (module_name + ".").startswith(exc.name + "."):
            raise AppLoadError(
                f"no module named {exc.name!r} (importing {module_name!r}; "
                "is the working directory or --app-dir right?)"
            ) from exc
        raise AppLoadError(f"error while importing {module_name!r}: {_describe(exc)}") from exc
    except Exception as exc:
        raise AppLoadError(f"error while importing {module_name!r}: {_describe(exc)}") from exc


def _call_factory(target: str, obj: object) -> object:
    if not callable(obj):
        raise AppLoadError(f"--factory: {target!r} is not callable ({type(obj).__name__})")
    try:
        app = obj()
    except Exception as exc:
        raise AppLoadError(f"the factory {target!r} raised {_describe(exc)}") from exc
    if inspect.isawaitable(app):
        if inspect.iscoroutine(app):
            app.close()  # never awaited: close it so Python does not warn
        raise AppLoadError(f"the factory {target!r} is async; app factories must be synchronous")
    return app


def _looks_like_factory(obj: object) -> bool:
    """A plain function that takes no arguments cannot be an app, but may be a factory."""
    return inspect.isfunction(obj) and not inspect.signature(obj).parameters


def _describe(exc: BaseException) -> str:
    """``Type: message (file, line N)``: the innermost frame says where it happened."""
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ").strip()
    if isinstance(exc, SyntaxError) and exc.filename:
        return text  # str(SyntaxError) already names the file and line
    frames = traceback.extract_tb(exc.__traceback__)
    # Frames inside importlib are noise; the last frame of user code is the useful one.
    user = [f for f in frames if "importlib" not in f.filename]
    if user:
        return f"{text} ({user[-1].filename}, line {user[-1].lineno})"
    return text


def _did_you_mean(name: str, obj: object) -> str:
    public = [n for n in dir(obj) if not n.startswith("_")]
    close = difflib.get_close_matches(name, public, n=1, cutoff=0.75)
    return f"; did you mean {close[0]!r}?" if close else ""


# --- ASGI 2 -> ASGI 3 ------------------------------------------------------------------------


class ASGI2Adapter:
    """Calls an ASGI 2 double callable as ``await app(scope)(receive, send)``."""

    __slots__ = ("app",)

    def __init__(self, app: ASGI2App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        instance = self.app(scope)
        await instance(receive, send)

    def __repr__(self) -> str:
        return f"ASGI2Adapter({self.app!r})"


def adapt_app(
    app: object,
    interface: Literal["auto", "asgi3", "asgi2", "wsgi"],
    *,
    wsgi_threads: int | None = None,
) -> ASGIApp:
    """Return ``app`` as an ASGI 3 callable, wrapping an ASGI 2 or WSGI app once.

    Args:
        app: What :func:`load_app` returned.
        interface: ``asgi3``, ``asgi2`` and ``wsgi`` force the choice; ``auto`` detects it.
        wsgi_threads: Threads for a WSGI app (``None``: the default); an app already
            adapted is wrapped again, so each server gets its own threads.

    Raises:
        AppLoadError: ``app`` is not callable.
    """
    if not callable(app):
        raise AppLoadError(f"the app {app!r} is not callable")
    if isinstance(app, ASGI2Adapter):
        return app
    if isinstance(app, WSGIAdapter):
        return WSGIAdapter(app.app, wsgi_threads)
    if interface == "wsgi" or (interface == "auto" and is_wsgi(app)):
        return WSGIAdapter(cast("WSGIApp", app), wsgi_threads)
    if interface == "asgi2" or (interface == "auto" and is_asgi2(app)):
        return ASGI2Adapter(cast("ASGI2App", app))
    return cast("ASGIApp", app)


def is_asgi2(app: object) -> bool:
    """Whether ``app`` looks like an ASGI 2 double callable.

    A class is ASGI 2 when its instances are not awaitable (an ASGI 3 class is
    instantiated with ``(scope, receive, send)`` and awaited). Any other callable
    is ASGI 3 when it is a coroutine function, or its ``__call__`` is; a plain
    callable is ASGI 2 unless its signature takes three arguments (a sync
    wrapper returning a coroutine) and not one.
    """
    if inspect.isclass(app):
        return not hasattr(app, "__await__")
    if inspect.iscoroutinefunction(app):
        return False
    call = getattr(app, "__call__", None)  # noqa: B004 - we want the method itself
    if call is not None and inspect.iscoroutinefunction(call):
        return False
    return not _accepts(app, 3) or _accepts(app, 1)


def is_wsgi(app: object) -> bool:
    """Whether ``app`` looks like a WSGI callable: ``app(environ, start_response)``.

    A plain (not async) callable that takes exactly two positional arguments; a
    class never is (its instances would be the response iterables). Checked before
    :func:`is_asgi2`, which would otherwise take any non-three-argument callable.
    """
    if inspect.isclass(app) or inspect.iscoroutinefunction(app):
        return False
    call = getattr(app, "__call__", None)  # noqa: B004 - we want the method itself
    if call is not None and inspect.iscoroutinefunction(call):
        return False
    try:
        signature = inspect.signature(cast("ASGIApp", app))
    except (TypeError, ValueError):
        return False
    return _binds(signature, 2) and not _binds(signature, 1) and not _binds(signature, 3)


def _binds(signature: inspect.Signature, count: int) -> bool:
    try:
        signature.bind(*([None] * count))
    except TypeError:
        return False
    return True


def _accepts(func: object, count: int) -> bool:
    try:
        inspect.signature(cast("ASGIApp", func)).bind(*([None] * count))
    except TypeError:
        return False
    except ValueError:  # no signature available (some builtins): assume it fits
        return True
    return True

"""``cl.HttpRouter`` and running a request through it (reference §13, Convex's ``router.ts``).

Routing
-------
* ``route(path=... | path_prefix=..., method=..., handler=...)``: exactly one of ``path`` /
  ``path_prefix``; ``path`` starts with ``/``, ``path_prefix`` starts and ends with ``/``;
  ``/.files`` paths are reserved; methods are GET, POST, PUT, DELETE, OPTIONS, PATCH (HEAD is
  answered by the GET route); a second route for the same (path or prefix, method) is refused.
  Each refusal is a ``FunctionError`` with Convex's message.
* ``lookup(path, method)``: the exact path first, else the **longest** matching prefix, else
  ``None``. ``routes()`` lists ``(path, method, handler)`` as Convex's ``getRoutes`` does.
* ``handler`` is an HTTP action (``@app.http_action`` / ``cl.http_action``), or a plain function
  ``(ctx, request)``, made into one (its name is its path in the logs).

Dispatch (:func:`dispatch`)
---------------------------
No route → 404 with body ``No HttpAction routed for <path>``. Otherwise the handler runs through
``Executor.run_http`` (an action ctx; an ``httpAction`` log entry). HEAD runs the GET route and
returns no body (the headers stay). A handler that raises, or returns something other than a
``cl.Response``, gives Convex's error response: status 500, JSON ``{"code": "[Request ID: …]
Server Error: <message>", "trace": ...}`` (``data`` too for a ``ConvexError``); with the
backend's ``redact_errors`` the code is ``"[Request ID: …] Server Error"`` and there is no trace
(``data`` stays: it is the application's own).
"""

from __future__ import annotations

import secrets
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from convex_lab.errors import ConvexError, FunctionError
from convex_lab.functions import FunctionDef, make_function
from convex_lab.http import Request, Response
from convex_lab.values import to_internal_json

if TYPE_CHECKING:
    from convex_lab.context import Auth
    from convex_lab.executor import Executor

ROUTABLE_METHODS: Final = ("GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")
MAX_BODY_BYTES: Final = 20 * 1024 * 1024
"""Convex's limit on an HTTP action's request and response bodies (20 MiB)."""

_PACKAGE = str(Path(__file__).resolve().parent)

Handler = FunctionDef | Callable[..., Any]


class HttpRouter:
    """Convex's ``httpRouter()`` (module docstring). Assign it to ``app.http``."""

    def __init__(self) -> None:
        self._exact: dict[str, dict[str, FunctionDef]] = {}
        self._prefixes: dict[str, dict[str, FunctionDef]] = {}  # method -> prefix -> handler

    def route(self, *, path: Any = None, path_prefix: Any = None, method: Any = None,
              handler: Handler | None = None) -> None:
        """Add a route; see the module docstring for the rules."""
        if handler is None:
            raise FunctionError("route requires handler")
        if not method:
            raise FunctionError("route requires method")
        if not isinstance(method, str) or method.upper() not in ROUTABLE_METHODS:
            raise FunctionError(
                f"'{method}' is not an allowed HTTP method (like GET, POST, PUT etc.). Use one of "
                f"{', '.join(ROUTABLE_METHODS)}; HEAD requests are answered by the GET route.")
        method = method.upper()
        fn = _as_http_action(handler)
        if path is not None and path_prefix is not None:
            raise FunctionError(
                "Invalid httpRouter route: cannot contain both 'path' and 'pathPrefix'")
        if path is not None:
            if not isinstance(path, str) or not path.startswith("/"):
                raise FunctionError(f"path '{path}' does not start with a /")
            if path.startswith("/.files/") or path == "/.files":
                raise FunctionError(f"path '{path}' is reserved")
            methods = self._exact.setdefault(path, {})
            if method in methods:
                raise FunctionError(f"Path '{path}' for method {method} already in use")
            methods[method] = fn
        elif path_prefix is not None:
            if not isinstance(path_prefix, str) or not path_prefix.startswith("/"):
                raise FunctionError(f"pathPrefix '{path_prefix}' does not start with a /")
            if not path_prefix.endswith("/"):
                raise FunctionError(f"pathPrefix {path_prefix} must end with a /")
            if path_prefix.startswith("/.files/"):
                raise FunctionError(f"pathPrefix '{path_prefix}' is reserved")
            prefixes = self._prefixes.setdefault(method, {})
            if path_prefix in prefixes:
                raise FunctionError(f"{method} pathPrefix {path_prefix} is already defined")
            prefixes[path_prefix] = fn
        else:
            raise FunctionError("Invalid httpRouter route entry: must contain either field "
                                "'path' or 'path_prefix'")

    def routes(self) -> list[tuple[str, str, FunctionDef]]:
        """``(path, method, handler)`` for every route: exact paths, then prefixes as
        ``"<prefix>*"`` (Convex's ``getRoutes``)."""
        exact = [(p, m, self._exact[p][m]) for p in sorted(self._exact)
                 for m in sorted(self._exact[p])]
        prefixed = [(f"{p}*", m, self._prefixes[m][p]) for m in sorted(self._prefixes)
                    for p in sorted(self._prefixes[m])]
        return exact + prefixed

    def lookup(self, path: str, method: str) -> tuple[FunctionDef, str, str] | None:
        """``(handler, method, route)`` serving ``method path``, or ``None``."""
        method = "GET" if method.upper() == "HEAD" else method.upper()
        exact = self._exact.get(path, {}).get(method)
        if exact is not None:
            return exact, method, path
        prefixes = self._prefixes.get(method, {})
        for prefix in sorted(prefixes, key=len, reverse=True):
            if path.startswith(prefix):
                return prefixes[prefix], method, f"{prefix}*"
        return None

    def __repr__(self) -> str:
        return f"<HttpRouter: {len(self.routes())} routes>"


def _as_http_action(handler: Handler) -> FunctionDef:
    if isinstance(handler, FunctionDef):
        if handler.kind != "httpAction":
            raise FunctionError(
                f"route's handler must be an HTTP action; {handler.path} is a {handler.kind}. "
                "Decorate a (ctx, request) function with @app.http_action (or cl.http_action).")
        return handler
    if not callable(handler):
        raise FunctionError(f"route's handler must be a function (ctx, request); got "
                            f"{handler!r}.")
    name = getattr(handler, "__name__", "")
    return make_function(handler, "httpAction", "public",
                         name=None if isinstance(name, str) and name.isidentifier() else "http")


def dispatch(executor: Executor, router: Any, request: Request, auth: Auth) -> Response:
    """Run ``request`` through ``router`` (module docstring); never raises for a handler's
    error: it becomes the 500 response."""
    if router is None:
        return Response(f"No HttpAction routed for {request.path}", status=404)
    if not isinstance(router, HttpRouter):
        raise FunctionError(f"app.http must be a cl.HttpRouter(); got {type(router).__name__}.")
    found = router.lookup(request.path, request.method)
    if found is None:
        return Response(f"No HttpAction routed for {request.path}", status=404)
    fn = found[0]
    try:
        result = executor.run_http(fn, request, auth)
        if not isinstance(result, Response):
            raise FunctionError(
                f"The HTTP action {fn.path} returned {type(result).__name__}, not a cl.Response. "
                "Return cl.Response(body, status=..., headers=...).")
        if len(result.body) > MAX_BODY_BYTES:
            raise FunctionError(f"The HTTP action {fn.path}'s response body is "
                                f"{len(result.body)} bytes: the limit is 20 MiB.")
    except Exception as e:  # noqa: BLE001 (a handler's failure is the 500 response)
        return error_response(e, redact=executor.redact_errors)
    if request.method == "HEAD":  # the GET route's answer without its body (its length stays)
        head = Response(b"", result.status, result.headers.items_list())
        head.headers.set("content-length", str(len(result.body)))
        return head
    return result


def error_response(error: BaseException, *, redact: bool) -> Response:
    """Convex's response for an HTTP action that failed (``redaction.rs``)."""
    request_id = secrets.token_hex(8)
    message = _uncaught(error)
    body: dict[str, Any] = {"code": f"[Request ID: {request_id}] Server Error"
                            + ("" if redact else f": {message}")}
    if not redact:
        body["trace"] = message + "\n" + _user_frames(error)
    if isinstance(error, ConvexError):
        try:
            body["data"] = to_internal_json(error.data)
        except Exception:  # noqa: BLE001 (data that is not a Convex value: shown as text)
            body["data"] = repr(error.data)
    return Response.from_json(body, status=500)


def _uncaught(error: BaseException) -> str:
    text = str(error)
    name = type(error).__name__
    return f"Uncaught {name}: {text}" if text else f"Uncaught {name}"


def _user_frames(error: BaseException) -> str:
    """The traceback's frames from the user's code (convex_lab's own are left out)."""
    frames = [f for f in traceback.extract_tb(error.__traceback__)
              if not str(Path(f.filename).resolve()).startswith(_PACKAGE)]
    return "".join(traceback.format_list(frames))

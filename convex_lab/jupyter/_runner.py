"""The function runner (a form per function, from its args validator) and the logs dashboard.

Function runner
---------------
State: ``functions`` (``[{"path", "kind", "visibility", "args"}]``, ``args`` being the args
validator's ``to_json()`` or None, HTTP actions left out), ``selected``, ``result`` (display
JSON of the last result), ``lines`` (what the last run printed), ``duration_ms``, ``last_path``,
``allow_internal`` (informational: the permission itself is a private attribute, so a front-end
cannot grant itself internal functions by writing the trait).

Requests: ``run`` {path, args} answers the result (display JSON) or the structured error
(``ArgumentValidationError``, ``ConvexError`` with its data, ``FunctionError`` for an unknown
or refused function); ``refresh`` re-lists the functions (cells may have redefined them).

Security (docs/api.md): the browser names a function and sends values; the function is looked up
among the registered ones (``Backend.resolve``) and its arguments are validated by the same
code as any call. Internal functions are reachable only when the widget was made with
``allow_internal=True`` (the notebook's owner runs as admin, like the dashboard).

Logs dashboard
--------------
State: ``entries`` (the last ``limit`` of ``backend.logs()``, oldest first: ``function``,
``kind``, ``lines``, ``error``, ``started`` (ms), ``duration_ms``), updated live through
``backend.add_log_listener``. Request ``clear`` empties the backend's log.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import traitlets

from convex_lab.errors import FunctionError
from convex_lab.jupyter._base import ConvexWidget, RequestHandler, now_ms
from convex_lab.jupyter._protocol import FunctionInfo, decode, encode, field

if TYPE_CHECKING:
    from collections.abc import Mapping

    from convex_lab.backend import Backend
    from convex_lab.functions import FunctionLike

RUNNABLE_KINDS = ("query", "mutation", "action")


class FunctionRunnerWidget(ConvexWidget):
    """See the module docstring. Made by ``function_runner(backend, ref=None, ...)``."""

    _view = traitlets.Unicode("function_runner").tag(sync=True)
    functions: traitlets.List[Any] = traitlets.List().tag(sync=True)
    selected = traitlets.Unicode("").tag(sync=True)
    result = traitlets.Any(None).tag(sync=True)
    lines: traitlets.List[str] = traitlets.List().tag(sync=True)
    duration_ms = traitlets.Float(default_value=None, allow_none=True).tag(sync=True)
    last_path = traitlets.Unicode("").tag(sync=True)
    allow_internal = traitlets.Bool(True).tag(sync=True)

    def __init__(self, backend: Backend, ref: FunctionLike | None = None, *,
                 allow_internal: bool = True) -> None:
        super().__init__(allow_internal=allow_internal)
        self.backend = backend
        self._allow_internal = bool(allow_internal)  # the permission; the trait is for display
        selected = ""
        if ref is not None:
            selected = self._resolve(ref).path
        self._set_state(functions=self._function_list(), selected=selected, status="ready")

    def _function_list(self) -> list[FunctionInfo]:
        out: list[FunctionInfo] = []
        for path, fn in sorted(self.backend.functions().items()):
            if fn.kind not in RUNNABLE_KINDS:
                continue
            if fn.visibility != "public" and not self._allow_internal:
                continue
            args = fn.args_validator.to_json() if fn.args_validator is not None else None
            out.append({"path": path, "kind": fn.kind, "visibility": fn.visibility,
                        "args": args})
        return out

    def _resolve(self, ref: FunctionLike) -> Any:
        fn = self.backend.resolve(ref, public_only=not self._allow_internal)
        if fn.kind not in RUNNABLE_KINDS:
            raise FunctionError(f"{fn.path} is an HTTP action: it runs through an HTTP route, not "
                                "from this form.")
        return fn

    def _handlers(self) -> dict[str, RequestHandler]:
        return {"run": self._req_run, "refresh": self._req_refresh}

    def _req_refresh(self, _request: dict[str, Any]) -> None:
        self._set_state(functions=self._function_list())

    def _req_run(self, request: dict[str, Any]) -> Any:
        path: str = field(request, "path", str)
        raw_args = field(request, "args", dict, {})
        self._set_state(status="loading", selected=path, last_path=path,
                        functions=self._function_list())
        started = time.perf_counter()
        fn = None
        try:
            fn = self._resolve(path)
            result = self.backend.run_function(
                fn.path, decode(raw_args), kind=fn.kind,
                public_only=not self._allow_internal)
        except Exception as e:
            self._set_error(e)
            self._set_state(duration_ms=(time.perf_counter() - started) * 1000, result=None,
                            lines=self._printed(fn.path) if fn is not None else [])
            raise
        encoded = encode(result)
        self._set_state(status="ready", error=None, result=encoded, updated_at=now_ms(),
                        duration_ms=(time.perf_counter() - started) * 1000,
                        lines=self._printed(fn.path))
        return encoded

    def _printed(self, path: str) -> list[str]:
        """What the latest top-level run of ``path`` printed (from the backend's log)."""
        for entry in reversed(self.backend.logs()):
            if entry["function"] == path:
                return list(entry["lines"])
        return []


def log_row(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A ``backend.logs()`` entry as JSON for the logs view."""
    return {"function": str(entry.get("function", "")), "kind": str(entry.get("kind", "")),
            "lines": [str(line) for line in entry.get("lines", [])],
            "error": None if entry.get("error") is None else str(entry["error"]),
            "started": float(entry.get("started", 0.0)),
            "duration_ms": float(entry.get("duration_ms", 0.0))}


class LogsWidget(ConvexWidget):
    """See the module docstring. Made by ``logs_dashboard(backend)``."""

    _view = traitlets.Unicode("logs").tag(sync=True)
    entries: traitlets.List[Any] = traitlets.List().tag(sync=True)
    limit = traitlets.Int(200).tag(sync=True)

    def __init__(self, backend: Backend, *, limit: int = 200) -> None:
        super().__init__(limit=limit)
        self.backend = backend
        rows = [log_row(e) for e in backend.logs()[-limit:]]
        self._set_state(entries=rows, status="ready", updated_at=now_ms())
        self._on_close(backend.add_log_listener(self.add_entry))

    def add_entry(self, entry: Mapping[str, Any]) -> None:
        """Append one new log entry (the ``add_log_listener`` callback; any thread)."""
        with self._lock:
            rows = [*self.entries, log_row(entry)][-self.limit:]
            self._set_state(entries=rows, updated_at=now_ms())

    def _handlers(self) -> dict[str, RequestHandler]:
        return {"clear": self._req_clear}

    def _req_clear(self, _request: dict[str, Any]) -> None:
        self.backend.clear_logs()
        self._set_state(entries=[], updated_at=now_ms())

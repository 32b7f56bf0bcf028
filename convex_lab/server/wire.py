"""What the HTTP API and the sync WebSocket share: paths, formats, timestamps, one call.

Contract (reference/wire-protocol.md §1-§3)
--------------------------------------------
* **Paths.** Clients send ``"module:export"`` (``"messages:list"``, ``"a/b:c"``), optionally
  with ``.js`` on the module, or a bare ``"module"`` for its default export; the npm WebSocket
  client canonicalises ``"send"`` to ``"send:default"``. :func:`function_path` maps these onto
  convex_lab's paths: ``"m.js:f"`` is ``"m:f"`` and ``"m:default"`` is the notebook function
  ``"m"`` unless the app has one literally called ``"m:default"``.
* **Values.** Arguments are always Convex encoded JSON (a plain JSON number is a float64); the
  ``format`` of a request only chooses how *results* are written: ``convex_encoded_json`` (alias
  ``convex_json``) or clean ``json`` (alias ``convex_clean_json``). Python writes a float64 with
  its fractional part (``1.0``), which the PyPI client needs to tell it from an int64.
* **Timestamps.** A wire timestamp is ``TS_BASE + the store's commit number``: commit numbers
  are persisted with the data (a file-backed store reopens at its last one), so timestamps never
  go backwards across restarts; they are u64 carried as base64 of 8 little-endian bytes.
* **Calls.** :func:`call` runs a public function as a client would (``Backend.run_function``)
  and returns a :class:`Outcome`: the result or the client's error (``_runtime.for_client``:
  no server frames, redacted unless ``ConvexError`` when the backend redacts errors) plus the
  execution's log lines in Convex's ``"[LEVEL] text"`` form.
"""

from __future__ import annotations

import base64
import contextlib
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from convex_lab._runtime import for_client
from convex_lab.errors import ConvexError, ConvexLabError
from convex_lab.values import from_internal_json, to_clean_json, to_internal_json

if TYPE_CHECKING:
    from convex_lab.backend import Backend
    from convex_lab.context import Auth
    from convex_lab.logs import LogEntry

# 2023-11-14T22:13:20Z in ns: wire timestamps read as plausible dates and grow with each commit.
TS_BASE = 1_700_000_000_000_000_000
ENCODED = "convex_encoded_json"
CLEAN = "json"
_FORMATS = {"convex_encoded_json": ENCODED, "convex_json": ENCODED, "json": CLEAN,
            "convex_clean_json": CLEAN}
_LEVELS = ("[LOG] ", "[INFO] ", "[WARN] ", "[ERROR] ", "[DEBUG] ")


# A request refused before any function runs is a ConvexLabError whose code picks the HTTP
# status of Convex's ``{code, message}`` body (400 otherwise).
STATUS = {"InvalidAuthHeader": 401, "NoAuthProvider": 401, "Unauthenticated": 401,
          "RequestTooLarge": 413, "BackendClosed": 503}


def refusal(message: str, *, code: str) -> ConvexLabError:
    """A refusal of a malformed request (see ``STATUS``)."""
    return ConvexLabError(message, code=code)


def ts_to_wire(store_ts: int) -> str:
    return base64.standard_b64encode(struct.pack("<Q", TS_BASE + store_ts)).decode("ascii")


def ts_from_wire(text: Any) -> int:
    """A wire timestamp → the store's commit number (a refusal if malformed)."""
    try:
        raw = base64.standard_b64decode(text)
        (ns,) = struct.unpack("<Q", raw)
    except (TypeError, ValueError, struct.error):
        raise refusal(f"A timestamp is base64 of 8 little-endian bytes; got {text!r}.",
                        code="BadTimestamp") from None
    return int(ns) - TS_BASE


def result_format(name: Any, default: str) -> str:
    if name is None:
        return default
    fmt = _FORMATS.get(name) if isinstance(name, str) else None
    if fmt is None:
        raise refusal(f"Unknown format {name!r}: use \"convex_encoded_json\" or \"json\".",
                        code="BadFormat")
    return fmt


def encode(value: Any, fmt: str = ENCODED) -> Any:
    return to_internal_json(value) if fmt == ENCODED else to_clean_json(value)


def decode_args(raw: Any) -> dict[str, Any]:
    """A request's ``args``: an object, or the one-element array the npm client sends; Convex
    encoded JSON either way (a refusal naming the problem otherwise)."""
    if raw is None:
        return {}
    if isinstance(raw, list):
        if len(raw) != 1:
            raise refusal(f"args must be an object or a one-element array; got an array of "
                            f"{len(raw)}.", code="BadJsonBody")
        raw = raw[0]
    if not isinstance(raw, dict):
        raise refusal(f"args must be an object; got {type(raw).__name__}.",
                        code="BadJsonBody")
    try:
        args = from_internal_json(raw)
    except (ConvexLabError, ValueError, TypeError, struct.error) as e:
        raise refusal(f"args are not valid Convex encoded JSON: {e}", code="BadJsonBody"
                        ) from None
    assert isinstance(args, dict)
    return args


def function_path(backend: Backend, path: Any) -> str:
    """A client's function path → the served function's path (module docstring)."""
    if not isinstance(path, str) or not path:
        raise refusal(f"path must be a function path such as \"messages:list\"; got {path!r}.",
                        code="BadConvexFunctionIdentifier")
    module, sep, name = path.rpartition(":")
    if not sep:
        module, name = path, "default"
    if module.endswith(".js"):
        module = module[:-3]
    canonical = f"{module}:{name}"
    functions = backend.app.functions
    if canonical in functions:
        return canonical
    if name == "default" and module in functions:
        return module
    return canonical if sep or module in functions else path


# Log lines of the calls running in each thread (see :func:`capture_logs`).
_collect = threading.local()


def _on_log(entry: LogEntry) -> None:
    lines = getattr(_collect, "lines", None)
    if lines is not None:
        lines.extend(line if line.startswith(_LEVELS) else f"[LOG] {line}"
                     for line in entry["lines"])


@contextlib.contextmanager
def collected_lines() -> Iterator[list[str]]:
    """The log lines of the calls made in this thread inside the ``with`` (Convex's
    ``[LEVEL] text`` form), while the server captures logs (:func:`capture_logs`)."""
    previous = getattr(_collect, "lines", None)
    lines: list[str] = []
    _collect.lines = lines
    try:
        yield lines
    finally:
        _collect.lines = previous


def capture_logs(backend: Backend) -> Callable[[], None]:
    """Start collecting log lines per thread (the server does, while it runs); returns a
    remover."""
    return backend.add_log_listener(_on_log)


@dataclass(slots=True)
class Outcome:
    """One call's result or client error, and its log lines."""

    value: Any = None
    error: BaseException | None = None
    log_lines: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None

    def error_fields(self, fmt: str = ENCODED) -> dict[str, Any]:
        """``errorMessage`` and (a ``ConvexError``'s) ``errorData``."""
        error = self.error
        out: dict[str, Any] = {"errorMessage": str(error)}
        if isinstance(error, ConvexError):
            out["errorData"] = encode(error.data, fmt)
        return out


def call(backend: Backend, path: str, args: dict[str, Any], kind: str | None,
         auth: Auth, *, snapshot: int | None = None) -> Outcome:
    """Run the public function at ``path`` as a client with ``auth`` (module docstring); a
    query at ``snapshot`` (pinned by the caller) if given."""
    with collected_lines() as lines:
        try:
            value = backend.run_function(path, args, kind=kind, identity=auth,
                                         public_only=True, caller="client", snapshot=snapshot)
            return Outcome(value=value, log_lines=lines)
        except Exception as e:  # noqa: BLE001 (every failure reaches the client as its error)
            error = for_client(e, redact=backend.redact_errors)
    return Outcome(error=error, log_lines=lines)

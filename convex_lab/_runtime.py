"""Executing one function: frames, argument and result conversion, and running coroutines.

A :class:`Frame` is one execution (a top-level call or a nested ``ctx.run_*``): it is the
``ContextVar`` value that marks "inside a function" (so calling a function object there is an
error), it collects what the handler printed or logged (``convex_lab.logs``), and, once finished,
it is that execution's log record. Frames of one call tree share a ``records`` list; the top-level
call hands it to the backend's log when it ends, so a mutation re-run after an OCC conflict logs
only its last attempt.

A frame also holds the function's time (:func:`function_time`, what ``cl.now()`` returns inside
it): in a query or mutation it is frozen when the function starts — Convex's ``Date.now()``
rule (reference §5.4) — and a query or mutation nested in one shares its caller's; an action has
none (``cl.now()`` reads the clock).

Invariants
----------
* Arguments reach a handler as canonical Convex values: validated and converted by the function's
  ``args`` validator, or by ``values.convert`` when it has none.
* Results leave an execution converted the same way (``returns`` validator or ``convert``), so a
  plain ``int`` becomes a float64, an ``Int64`` stays int64, and ``None`` is null.
* Coroutines (``async def`` handlers) run to completion before the call returns; ``ctx`` calls
  inside them are plain calls. With no loop running in this thread, a loop reused per main thread
  runs them; when a loop is already running (a Jupyter kernel, or an outer ``async`` handler),
  they run on a fresh loop in a worker thread that carries this context.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import contextvars
import secrets
import threading
import time
import types
from collections.abc import Coroutine, Mapping
from itertools import chain
from typing import TYPE_CHECKING, Any, Final

from convex_lab.errors import (
    ArgumentValidationError,
    ConvexError,
    ConvexLabError,
    InvalidValueError,
    ReturnsValidationError,
    ServerError,
    ValidationError,
)
from convex_lab.ids import Id
from convex_lab.logs import LOG, WARN, Chunk, LogEntry, current, split_lines
from convex_lab.values import (
    MAX_ARRAY_LEN,
    MAX_OBJECT_FIELDS,
    _checked_field_names,
    convert,
    format_value,
)

if TYPE_CHECKING:
    from convex_lab.context import Auth
    from convex_lab.executor import Executor
    from convex_lab.functions import FunctionDef
    from convex_lab.store.transaction import Transaction
    from convex_lab.validators import TableLookup

MAX_DEPTH = 8
"""Nested ``ctx.run_*`` calls may go 8 levels deep (reference §5.3)."""


_FROZEN_TIME: Final = frozenset({"query", "mutation"})


def current_frame() -> Frame | None:
    """The execution running in this context, or ``None`` in plain (notebook) code."""
    return current.get()


def function_time() -> float | None:
    """``cl.now()`` inside a function: a query's or mutation's time, frozen at its start; in
    an action, the current time of its backend's clock. ``None`` outside functions."""
    frame = current.get()
    if frame is None:
        return None
    frozen = frame.time
    return frozen if frozen is not None else frame.executor.clock.now()


class Frame:
    """One execution; see the module docstring."""

    __slots__ = (
        "auth", "capturing", "chunks", "depth", "duration_ms", "error", "executor", "fn",
        "records", "started", "t0", "time", "tx",
    )

    def __init__(self, executor: Executor, fn: FunctionDef, auth: Auth, *, depth: int,
                 records: list[Frame], started: float, frozen: float | None = None) -> None:
        self.executor = executor
        self.fn = fn
        self.auth = auth
        self.depth = depth
        self.records = records
        self.tx: Transaction | None = None
        self.chunks: list[Chunk] | None = None
        # Output is captured while the handler runs; a mutation's commit (and the listeners it
        # wakes: live queries, widgets) comes after, and its output is not this function's.
        self.capturing = True
        self.error: str | None = None
        self.started = started
        # Queries and mutations: frozen at the start (the caller's, when nested in one).
        self.time = (started if fn.kind in _FROZEN_TIME else None) if frozen is None else frozen
        self.t0 = time.perf_counter()
        self.duration_ms = 0.0

    def write(self, text: str, level: str = LOG) -> None:
        """Captured output at Convex's ``level`` (``convex_lab.logs``)."""
        chunk: Chunk = text if level == LOG else (level, text)
        chunks = self.chunks
        if chunks is None:
            self.chunks = [chunk]
        else:
            chunks.append(chunk)

    def warn(self, message: str, category: type[Warning]) -> None:
        """A notice about the user's code: a ``WARN`` line in this execution's log, and a
        Python warning of ``category`` at the user's line, shown where the call was made (the
        cell's output) rather than captured. Filters apply: ``"error"`` makes it raise here."""
        from convex_lab.store.database import warn_in_user_code  # noqa: PLC0415 (rare)

        self.write(message + "\n", WARN)
        token = current.set(None)  # the warning's text goes to the real stderr, not this log
        try:
            warn_in_user_code(message, category)
        finally:
            current.reset(token)

    def restart(self, mark: int) -> None:
        """A new attempt of this frame's transaction: forget the previous attempt's output."""
        self.chunks = None
        self.capturing = True
        del self.records[mark:]

    def finish(self, error: BaseException | None) -> None:
        self.duration_ms = (time.perf_counter() - self.t0) * 1000.0
        if error is not None:
            self.error = describe_error(error)
        self.records.append(self)

    def entry(self) -> LogEntry:
        return {
            "function": self.fn.path,
            "kind": self.fn.kind,
            "lines": split_lines(self.chunks),
            "error": self.error,
            "started": self.started,
            "duration_ms": self.duration_ms,
        }

    def __repr__(self) -> str:
        return f"<Frame {self.fn.kind} {self.fn.path} depth={self.depth}>"


def describe_error(error: BaseException) -> str:
    """An error as a log line: ``"Type: message"`` (Convex's own texts already carry the type)."""
    name = type(error).__name__
    text = str(error)
    if isinstance(error, ConvexLabError) and text.startswith(f"{error.code}:"):
        return text
    return f"{name}: {text}" if text else name


# ---------------------------------------------------------------------------------------------
# Arguments and results


def prepare_args(fn: FunctionDef, args: Any, tables: TableLookup | None) -> dict[str, Any]:
    """Validate and convert a call's argument object for ``fn`` (reference §15 texts)."""
    fast = fn.fast_args
    if fast is not None:
        got = fast(args)  # the common shape in one pass (store/fastpath.py), else the general
        if got is not None:  # path below, which gives the exact error text
            return got
    if not isinstance(args, Mapping):
        raise ArgumentValidationError(
            "ArgumentValidationError: Expected to receive an object as the function's argument. "
            f"Instead received: {_safe_format(args)}"
        )
    validator = fn.args_validator
    if validator is None:
        shape = fn.parameters
        if shape is not None:
            _check_parameters(fn, args, *shape)
        if not args:
            return {}
        converted: dict[str, Any] = convert(args)
        return converted
    try:
        out: dict[str, Any] = validator.validate(args, tables=tables)
    except ValidationError as e:
        raise ArgumentValidationError(f"ArgumentValidationError: {e}") from None
    return out


def _check_parameters(fn: FunctionDef, args: Mapping[str, Any], accepted: frozenset[str],
                      required: frozenset[str]) -> None:
    """Arguments a handler without an ``args`` validator cannot take, named like Convex names
    them (its handler's parameters stand in for the validator)."""
    extra = [k for k in args if k not in accepted]
    if extra:
        takes = ", ".join(sorted(accepted)) or "no arguments"
        raise ArgumentValidationError(
            f"ArgumentValidationError: Object contains extra field `{extra[0]}` that is not a "
            f"parameter of {fn.path} (it takes: {takes}). Add the parameter, or declare "
            "args={...} to validate the arguments.")
    missing = sorted(required.difference(args))
    if missing:
        raise ArgumentValidationError(
            f"ArgumentValidationError: Object is missing the required field `{missing[0]}`, a "
            f"parameter of {fn.path} without a default. Pass it, or give the parameter a "
            "default value.")


def _safe_format(value: Any) -> str:
    try:
        return format_value(value)
    except Exception:  # noqa: BLE001 (describing a bad value must not fail)
        return repr(value)


def finish_result(fn: FunctionDef, result: Any, tables: TableLookup | None,
                  tx: Transaction | None = None) -> Any:
    """A handler's return value → the Convex value the caller receives. ``tx`` (a query's or
    mutation's) knows what ``ctx.db`` handed out: a result that is still exactly that is
    canonical already (``store/handout.py``)."""
    validator = fn.returns_validator
    if validator is None:
        if result is None or type(result) is Id:  # the common cases, and keep an Id's table
            return result
        if tx is not None and tx.handed is not None and tx.handed.unchanged(result):
            return result
        if is_canonical_flat(result):
            return result  # already what convert() would build: hand it over as it is
        try:
            return convert(result)
        except InvalidValueError:
            from convex_lab._annotations import dump_models  # noqa: PLC0415 (cycle; rare path)

            dumped = dump_models(result)  # pydantic models returned without returns=Model
            if dumped is result:
                raise
            return convert(dumped)
    try:
        return validator.validate(result, tables=tables)
    except ValidationError as e:
        raise ReturnsValidationError(f"ReturnsValidationError: {e}") from None


_FLAT_SCALARS: Final = frozenset({str, float, bool, type(None), bytes})


def is_canonical_flat(value: Any) -> bool:
    """Whether ``value`` is already a canonical Convex value of the common result shapes — a
    scalar, a flat object of scalars, or an array of either — decided with C-level set
    operations instead of a Python call per value (a query returning 50 documents would
    otherwise spend more converting its result than reading it).

    ``False`` only means "let ``convert`` decide": nested values, ``Int64`` (its range must be
    checked), plain ints, field names never checked before, and non-ASCII strings when they are
    the whole value. Strings inside objects are not checked for lone surrogates here: documents
    read from the store hold valid ones, and a server encoding a value checks it again.
    """
    t = type(value)
    if t in _FLAT_SCALARS:
        return t is not str or value.isascii()
    if t is dict:
        docs: Any = (value,)
    elif t is list:
        if not value:
            return True
        if len(value) > MAX_ARRAY_LEN:
            return False
        kinds = set(map(type, value))
        if kinds <= _FLAT_SCALARS:
            return str not in kinds  # strings: the general path checks their encoding
        if kinds != {dict}:
            return False
        docs = value
    else:
        return False
    return (max(map(len, docs)) <= MAX_OBJECT_FIELDS
            and _checked_field_names.issuperset(chain.from_iterable(docs))
            and _FLAT_SCALARS.issuperset(map(type, chain.from_iterable(map(dict.values, docs)))))


def export_error(error: BaseException) -> None:
    """At the top of a call: make ``ConvexError.data`` a canonical value (int64 stays Int64)."""
    if isinstance(error, ConvexError):
        # Not a Convex value: hand it over as the handler gave it.
        with contextlib.suppress(ConvexLabError):
            error.data = convert(error.data)


def for_client(error: BaseException, *, redact: bool = False) -> BaseException:
    """The error a client receives for a failed call: a fresh exception, never the server's.

    The server's exception carries its traceback, and through it every frame's local variables
    (an API key read by the handler, say); a client gets none of that. As in Convex:

    * ``ConvexError`` is application data and is never redacted: a fresh ``ConvexError(data)``.
    * convex_lab's own errors (argument validation, limits, ...) keep their class and message.
    * Anything else a handler raised becomes :class:`ServerError` with the message Convex's dev
      deployments show (``"Uncaught ValueError: boom"``).
    * ``redact=True`` (Convex's production behaviour, ``Backend(redact_errors=True)``) turns
      everything but ``ConvexError`` into ``ServerError("[Request ID: …] Server Error")``.

    Errors that are not ``Exception`` s (``KeyboardInterrupt``, ...) are returned unchanged.
    """
    if not isinstance(error, Exception):
        return error
    if isinstance(error, ConvexError):
        return ConvexError(error.data)
    if redact:
        return ServerError(f"[Request ID: {secrets.token_hex(8)}] Server Error")
    if isinstance(error, ConvexLabError):
        fresh = type(error).__new__(type(error))
        Exception.__init__(fresh, *error.args)
        fresh.code = error.code
        return fresh
    return ServerError(f"Uncaught {describe_error(error)}")


def call_handler(fn: FunctionDef, ctx: Any, args: dict[str, Any]) -> Any:
    """Run the handler (to completion, if it is ``async``)."""
    result = fn.handler(ctx, **args)
    if fn.is_async or type(result) is types.CoroutineType:
        result = run_coroutine(result)
    return result


# ---------------------------------------------------------------------------------------------
# Coroutines

_main_loop: asyncio.AbstractEventLoop | None = None


def run_coroutine(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run ``coro`` to completion from synchronous code; see the module docstring."""
    global _main_loop
    if asyncio._get_running_loop() is None:
        if threading.current_thread() is threading.main_thread():
            # Reused: making an event loop per call would cost more than a trivial mutation.
            if _main_loop is None or _main_loop.is_closed():
                _main_loop = asyncio.new_event_loop()
                atexit.register(_main_loop.close)
            return _main_loop.run_until_complete(coro)
        return asyncio.run(coro)
    return _run_in_worker(coro)


def _run_in_worker(coro: Coroutine[Any, Any, Any]) -> Any:
    context = contextvars.copy_context()
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["value"] = context.run(asyncio.run, coro)
        except BaseException as e:  # noqa: BLE001 (re-raised in the caller's thread)
            box["error"] = e

    worker = threading.Thread(target=work, name="convex_lab-async", daemon=True)
    worker.start()
    worker.join()
    if "error" in box:
        raise box["error"]
    return box.get("value")

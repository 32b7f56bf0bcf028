"""Function logs: what each execution printed or logged, whether it failed, and when it ran
(docs/api.md).

Capture
-------
Inside a function, output goes to that execution's log, not to the notebook, with Convex's
levels (reference §2.5; Convex's ``console.log/info/warn/error/debug``):

* ``print()`` (``sys.stdout``) is ``LOG``; writes to ``sys.stderr``
  (``print(..., file=sys.stderr)``, a traceback printed by hand) are ``ERROR``, as
  ``console.error`` is.
* ``logging`` records are ``DEBUG``, ``INFO``, ``WARN`` (``WARNING``) or ``ERROR`` (``ERROR`` and
  ``CRITICAL``), with the message and any exception's traceback. Loggers keep their levels (the
  root logger's default lets ``WARNING`` and above through), and inside a function a record goes
  to the log *instead of* the logging handlers, as ``print`` goes to the log instead of the cell.
* convex_lab's own notices (``ctx.db.query`` of an unknown table) are ``WARN``.

How: one process-wide :class:`StreamRouter` sits in ``sys.stdout`` and one in ``sys.stderr``
(installed once, and again only if someone replaced the stream since), and ``logging.Logger``'s
``callHandlers`` is wrapped once. Each write or record looks up the current execution in a
``ContextVar`` and goes there while the execution's handler runs (``Frame.capturing``), or
passes through unchanged otherwise — in notebook code, and once a mutation's handler has
returned (commit listeners, live-query callbacks) — so concurrent executions in different
threads never mix their lines, and code outside functions sees nothing change.

Lines
-----
``LogEntry.lines`` holds one string per line. ``LOG`` lines are the text as printed; lines of
another level start with the level in brackets, as Convex's log lines do: ``"[WARN] low disk"``,
``"[ERROR] boom"``. Partial lines of different streams never merge: each level keeps its own
unfinished line. At most 256 lines are kept (Convex's limit).

Records
-------
An execution's record is built only when :meth:`ExecutionLog.entries` is read: the hot path
keeps the live ``Frame`` object (see ``convex_lab._runtime``) in a bounded deque.
"""

from __future__ import annotations

import logging
import sys
from collections import deque
from collections.abc import Iterable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Final, TextIO, TypedDict, cast

from convex_lab.events import Event

if TYPE_CHECKING:
    from convex_lab._runtime import Frame

MAX_LOG_LINES = 256
"""Convex keeps at most 256 log lines per execution (reference §2.5)."""

LOG: Final = "LOG"
DEBUG: Final = "DEBUG"
INFO: Final = "INFO"
WARN: Final = "WARN"
ERROR: Final = "ERROR"

current: ContextVar[Frame | None] = ContextVar("convex_lab_execution", default=None)

# A chunk of captured text: a plain str is stdout (LOG, the common case, kept as cheap as
# before levels existed); any other level is a (level, text) pair.
Chunk = str | tuple[str, str]

_LINE_BREAKS: Final = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"  # what str.splitlines splits on


class LogEntry(TypedDict):
    function: str
    kind: str
    lines: list[str]
    error: str | None
    started: float
    duration_ms: float


class StreamRouter:
    """A ``sys.stdout`` / ``sys.stderr`` stand-in routing writes to the running execution at
    ``level`` (module docstring)."""

    def __init__(self, target: TextIO, level: str) -> None:
        self._target = target
        self._level = level

    def write(self, text: str) -> int:
        frame = current.get()
        if frame is None or not frame.capturing:
            return self._target.write(text)
        frame.write(text, self._level)
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        frame = current.get()
        if frame is None or not frame.capturing:
            self._target.flush()

    def __getattr__(self, name: str) -> Any:
        # isatty, encoding, fileno, ... of the wrapped stream (Jupyter's OutStream, a file, ...)
        return getattr(self._target, name)


# logging ----------------------------------------------------------------------------------------

_FORMAT = logging.Formatter("%(message)s")  # the message, then any exception and stack
_plain_call_handlers = logging.Logger.callHandlers  # replaced by what was there at install time
_logging_wrapped = False


def level_of(levelno: int) -> str:
    """A ``logging`` level as Convex's: DEBUG, INFO, WARN (WARNING), ERROR (ERROR, CRITICAL)."""
    if levelno >= logging.ERROR:
        return ERROR
    if levelno >= logging.WARNING:
        return WARN
    if levelno >= logging.INFO:
        return INFO
    return DEBUG


def _call_handlers(self: logging.Logger, record: logging.LogRecord) -> None:
    """``Logger.callHandlers`` as installed by :func:`ensure_capture`: inside a function the
    record goes to its log; everywhere else, to the handlers as before."""
    frame = current.get()
    if frame is None or not frame.capturing:
        _plain_call_handlers(self, record)
        return
    try:
        text = _FORMAT.format(record)
    except Exception:  # noqa: BLE001 (a bad format string must not fail the function)
        text = f"{record.msg!r} (could not format with args {record.args!r})"
    frame.write(text + "\n", level_of(record.levelno))


# Installation ---------------------------------------------------------------------------------


def ensure_capture() -> None:
    """Put the routers in ``sys.stdout`` and ``sys.stderr`` unless they are already there, and
    wrap ``logging`` once (cheap: two type checks and a flag)."""
    out, err = sys.stdout, sys.stderr
    if type(out) is not StreamRouter and out is not None:
        sys.stdout = cast(TextIO, StreamRouter(out, LOG))
    if type(err) is not StreamRouter and err is not None:
        sys.stderr = cast(TextIO, StreamRouter(err, ERROR))
    if not _logging_wrapped:
        _wrap_logging()


def _wrap_logging() -> None:
    global _plain_call_handlers, _logging_wrapped
    _plain_call_handlers = logging.Logger.callHandlers
    logging.Logger.callHandlers = _call_handlers  # type: ignore[method-assign]
    _logging_wrapped = True


def split_lines(chunks: list[Chunk] | None) -> list[str]:
    """Captured text → lines (a trailing newline ends the last line), levels shown as in the
    module docstring, capped as Convex does."""
    if not chunks:
        return []
    if all(type(c) is str for c in chunks):
        lines = "".join(cast(list[str], chunks)).splitlines()
    else:
        lines = _leveled_lines(chunks)
    if len(lines) > MAX_LOG_LINES:
        dropped = len(lines) - MAX_LOG_LINES
        lines = [*lines[:MAX_LOG_LINES], f"[{dropped} more log lines dropped: limit is 256]"]
    return lines


def _leveled_lines(chunks: list[Chunk]) -> list[str]:
    out: list[str] = []
    unfinished: dict[str, str] = {}  # level -> its line so far (streams never merge mid-line)
    for chunk in chunks:
        level, text = (LOG, chunk) if type(chunk) is str else cast(tuple[str, str], chunk)
        prefix = "" if level == LOG else f"[{level}] "
        parts = (unfinished.pop(level, "") + text).splitlines(keepends=True)
        if parts and parts[-1][-1] not in _LINE_BREAKS:
            unfinished[level] = parts.pop()
        out += [prefix + part.splitlines()[0] for part in parts]
    for level, rest in unfinished.items():
        out.append(rest if level == LOG else f"[{level}] {rest}")
    return out


class ExecutionLog:
    """The last ``maxlen`` executions of a backend, oldest first; ``added`` is emitted with each
    new entry (the logs widget follows it)."""

    def __init__(self, maxlen: int = 1000) -> None:
        self._frames: deque[Frame] = deque(maxlen=maxlen)
        self.added: Event[LogEntry] = Event("log entry")

    def add(self, frames: list[Frame]) -> None:
        self._frames.extend(frames)  # one C call: safe to do from several threads
        if self.added:  # entries are built only when someone listens
            for frame in frames:
                self.added.emit(frame.entry())

    def entries(self) -> list[LogEntry]:
        return [frame.entry() for frame in list(self._frames)]

    def clear(self) -> None:
        self._frames.clear()

    def __len__(self) -> int:
        return len(self._frames)

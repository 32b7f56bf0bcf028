"""Function logs: what each execution printed, whether it failed, and when it ran (docs/api.md).

Capture
-------
``print()`` inside a function goes to that execution's log, not to the notebook. One process-wide
:class:`StdoutRouter` sits in ``sys.stdout`` (installed once, and again only if someone replaced
``sys.stdout`` since); each ``write`` looks up the current execution in a ``ContextVar`` and
appends there, or passes through to the stream it wraps when no function is running. Because the
lookup is per context, concurrent executions in different threads never mix their lines.

Records
-------
An execution's record is built only when :meth:`ExecutionLog.entries` is read: the hot path
keeps the live ``Frame`` object (see ``convex_lab._runtime``) in a bounded deque.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Iterable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TextIO, TypedDict, cast

from convex_lab.events import Event

if TYPE_CHECKING:
    from convex_lab._runtime import Frame

MAX_LOG_LINES = 256
"""Convex keeps at most 256 log lines per execution (reference §2.5)."""

current: ContextVar[Frame | None] = ContextVar("convex_lab_execution", default=None)


class LogEntry(TypedDict):
    function: str
    kind: str
    lines: list[str]
    error: str | None
    started: float
    duration_ms: float


class StdoutRouter:
    """A ``sys.stdout`` stand-in routing writes to the running execution (module docstring)."""

    def __init__(self, target: TextIO) -> None:
        self._target = target

    def write(self, text: str) -> int:
        frame = current.get()
        if frame is None:
            return self._target.write(text)
        frame.write(text)
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if current.get() is None:
            self._target.flush()

    def __getattr__(self, name: str) -> Any:
        # isatty, encoding, fileno, ... of the wrapped stream (Jupyter's OutStream, a file, ...)
        return getattr(self._target, name)


def ensure_capture() -> None:
    """Put the router in ``sys.stdout`` unless it is already there (cheap: one type check)."""
    out = sys.stdout
    if type(out) is not StdoutRouter and out is not None:
        sys.stdout = cast(TextIO, StdoutRouter(out))


def split_lines(chunks: list[str] | None) -> list[str]:
    """Printed text → lines (a trailing newline ends the last line), capped as Convex does."""
    if not chunks:
        return []
    lines = "".join(chunks).splitlines()
    if len(lines) > MAX_LOG_LINES:
        dropped = len(lines) - MAX_LOG_LINES
        lines = [*lines[:MAX_LOG_LINES], f"[{dropped} more log lines dropped: limit is 256]"]
    return lines


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

"""One primitive for "something happened": commits, registrations, log entries, clock moves.

An :class:`Event` is a list of listeners for one kind of happening. A lower layer owns the event
and emits it; a higher layer subscribes (``unsubscribe = event.subscribe(listener)``), so
notification flows up without the lower layer importing the higher one (docs/architecture.md,
"Layers").

Contract
--------
* ``emit(value)`` calls every listener subscribed at the moment of the call, in subscription
  order, in the emitting thread. Listeners subscribed or removed during an emission take effect
  from the next one.
* A listener that raises does not stop the others. With ``errors="report"`` (the default) the
  error is written to stderr with its traceback and ``emit`` returns normally: the happening
  (a commit, say) has already happened, and its author must not see it fail. With
  ``errors="raise"`` the first error is re-raised after every listener has run (the virtual clock
  uses this: a runaway job found while advancing must reach the caller of ``advance``).
* ``subscribe`` returns a function that unsubscribes; calling it twice is harmless.
* Thread-safe: subscribing and emitting may happen from any thread.
"""

from __future__ import annotations

import sys
import threading
import traceback
from collections.abc import Callable
from typing import Generic, Literal, TypeVar

T = TypeVar("T")


class Event(Generic[T]):
    """Listeners of one kind of happening; see the module docstring."""

    __slots__ = ("_errors", "_listeners", "_lock", "name")

    def __init__(self, name: str, *, errors: Literal["report", "raise"] = "report") -> None:
        self.name = name
        self._errors = errors
        self._listeners: tuple[Callable[[T], object], ...] = ()
        self._lock = threading.Lock()

    def subscribe(self, listener: Callable[[T], object]) -> Callable[[], None]:
        """Call ``listener(value)`` on each later :meth:`emit`; returns an unsubscriber."""
        with self._lock:
            self._listeners = (*self._listeners, listener)

        def unsubscribe() -> None:
            with self._lock:
                listeners = list(self._listeners)
                if listener in listeners:
                    listeners.remove(listener)
                    self._listeners = tuple(listeners)

        return unsubscribe

    def emit(self, value: T) -> None:
        """Tell every listener (module docstring: order, threads, errors)."""
        first: BaseException | None = None
        for listener in self._listeners:  # a tuple: subscribing meanwhile cannot disturb us
            try:
                listener(value)
            except Exception as e:  # noqa: BLE001 (reported or re-raised below, never lost)
                if self._errors == "raise":
                    first = first or e
                else:
                    report(f"a {self.name} listener ({_name(listener)}) raised")
        if first is not None:
            raise first

    def __bool__(self) -> bool:
        return bool(self._listeners)

    def __len__(self) -> int:
        return len(self._listeners)

    def __repr__(self) -> str:
        return f"<Event {self.name}: {len(self._listeners)} listener(s)>"


def report(what: str) -> None:
    """Write the exception being handled to stderr, headed by ``what`` (the one place listener
    and callback failures are reported)."""
    sys.stderr.write(f"convex_lab: {what}:\n")
    traceback.print_exc()


def _name(listener: Callable[..., object]) -> str:
    return getattr(listener, "__qualname__", None) or repr(listener)

"""A backend's clock: real time, or virtual time that moves only when told (docs/api.md).

``clock.now()`` is milliseconds since the Unix epoch (a float, like Convex's ``Date.now()`` and
``_creationTime``). The store stamps ``_creationTime`` from it, and ``cl.now()`` reads it (in a
query or mutation, once, when the function starts), so with a virtual clock documents carry
simulated times.

Virtual clock contract
----------------------
* It starts at the real time when it is made and never goes backwards.
* ``advance(d)`` (ms or ``timedelta``) computes ``target = now() + d``, then emits the
  ``advancing`` event with ``(clock, target)``, then sets ``now()`` to ``target``. A listener (the
  scheduler) may step time forward itself with :meth:`VirtualClock.move_to` to each due time
  ``<= target`` and run what is due there, so jobs see the time they were due at.
* Listeners run in the caller's thread; ``advance`` returns when they have all returned, and
  re-raises the first error one of them raised (a runaway job, say).

The real clock has the same interface; its ``advance`` raises, pointing at ``clock="virtual"``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Literal

from convex_lab.events import Event

AdvanceHook = Callable[["Clock", float], None]


def to_ms(delta: float | timedelta) -> float:
    """A duration in ms from a number of ms or a ``timedelta``."""
    if isinstance(delta, timedelta):
        return delta.total_seconds() * 1000.0
    if isinstance(delta, bool) or not isinstance(delta, (int, float)):
        raise TypeError(f"A duration is a number of milliseconds or a timedelta; got {delta!r}.")
    return float(delta)


class Clock:
    """Interface shared by :class:`RealClock` and :class:`VirtualClock`."""

    kind: Literal["real", "virtual"]

    def __init__(self) -> None:
        self.advancing: Event[tuple[Clock, float]] = Event("clock advance", errors="raise")
        self._lock = threading.RLock()

    def now(self) -> float:
        raise NotImplementedError

    def advance(self, delta: float | timedelta) -> float:
        raise NotImplementedError

    def on_advance(self, hook: AdvanceHook) -> Callable[[], None]:
        """Call ``hook(clock, target_ms)`` on each ``advance``; returns an unsubscriber."""
        return self.advancing.subscribe(lambda event: hook(*event))

    def __repr__(self) -> str:
        return f"<{self.kind} clock at {self.now():.0f} ms>"


class RealClock(Clock):
    """Wall-clock time."""

    kind: Literal["real", "virtual"] = "real"

    def now(self) -> float:
        return time.time() * 1000.0

    def advance(self, delta: float | timedelta) -> float:
        raise RuntimeError(
            "The real clock cannot be advanced. Make the backend with "
            "cl.Backend(clock='virtual') to control time."
        )


class VirtualClock(Clock):
    """Simulated time: starts at the real time, moves only with :meth:`advance`."""

    kind: Literal["real", "virtual"] = "virtual"

    def __init__(self, start_ms: float | None = None) -> None:
        super().__init__()
        self._now = time.time() * 1000.0 if start_ms is None else float(start_ms)

    def now(self) -> float:
        return self._now

    def move_to(self, ms: float) -> None:
        """Set the time to ``ms`` if that is later (for ``on_advance`` hooks); never goes back."""
        with self._lock:
            if ms > self._now:
                self._now = float(ms)

    def advance(self, delta: float | timedelta) -> float:
        """Move time forward by ``delta``, letting hooks run what falls due; returns ``now()``."""
        ms = to_ms(delta)
        if ms < 0:
            raise ValueError(f"The clock only moves forward; got advance({delta!r}).")
        with self._lock:
            target = self._now + ms
            self.advancing.emit((self, target))
            self.move_to(target)
            return self._now


def make_clock(clock: str | Clock) -> Clock:
    """``"real"``, ``"virtual"`` or a ready :class:`Clock`."""
    if isinstance(clock, Clock):
        return clock
    if clock == "real":
        return RealClock()
    if clock == "virtual":
        return VirtualClock()
    raise ValueError(f"clock must be 'real' or 'virtual'; got {clock!r}.")

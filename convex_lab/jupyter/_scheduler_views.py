"""The scheduled-functions and crons widgets (docs/api.md), live through commit listeners.

Jobs view (``_view = "jobs"``)
------------------------------
State: ``rows`` (the newest ``limit`` ``_scheduled_functions`` documents, newest first, as
:func:`~convex_lab.jupyter._schedule_text.job_rows`), ``counts`` (jobs per state, all of them),
``total``, ``clock_now`` (the backend clock's time at the last update, ms) and ``clock_kind``.
Requests: ``refresh``; ``cancel`` {job_id} cancels a pending job as ``ctx.scheduler.cancel``
does, in a transaction: the id must be a ``_scheduled_functions`` ID (``InvalidIdError``
otherwise). Canceling a finished job changes nothing (as in Convex).

Crons view (``_view = "crons"``)
--------------------------------
State: ``crons`` (:func:`~convex_lab.jupyter._schedule_text.cron_rows`: name, schedule JSON and
``schedule_text``, function, ``nextRun``, ``lastRun`` {scheduledTime, completedTime, state,
error} or None), ``clock_now``, ``clock_kind``. Request: ``refresh``.

Both re-read their state after each commit (``backend.add_commit_listener``) and sync only when
it changed; ``clock_now`` also follows ``clock.advance``; ``close()`` removes both hooks. The
browser sends only a job ID, never code.

:class:`SchedulerDashboard` is an ``ipywidgets.VBox`` of the logs, jobs and crons widgets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ipywidgets
import traitlets

from convex_lab.jupyter._base import ConvexWidget, RequestHandler, now_ms
from convex_lab.jupyter._protocol import field
from convex_lab.jupyter._schedule_text import cron_rows, job_rows, state_counts

if TYPE_CHECKING:
    from convex_lab.backend import Backend


class _SchedulerWidget(ConvexWidget):
    """Shared: a backend, a commit listener, clock traits, ``refresh``."""

    clock_now = traitlets.Float(0.0).tag(sync=True)
    clock_kind = traitlets.Unicode("real").tag(sync=True)

    def __init__(self, backend: Backend, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.backend = backend
        self.refresh()
        self._on_close(backend.add_commit_listener(self._on_commit))
        # After the scheduler's own hook (registered when the first refresh made it): time
        # moved on, maybe with nothing to run, so "in 3 min" must follow it.
        self._on_close(backend.clock.on_advance(self._on_advance))

    def _state(self) -> dict[str, Any]:
        raise NotImplementedError

    def _on_commit(self) -> None:
        if not self._closed and not self.backend.closed:
            self.refresh()

    def _on_advance(self, _clock: Any, target: float) -> None:
        if not self._closed:
            with self._lock, self.hold_sync():
                self.clock_now = max(target, self.backend.clock.now())

    def refresh(self) -> None:
        """Re-read the state; sync (and bump ``version``) only if it changed."""
        with self._lock:
            state = self._state()
            changed = any(getattr(self, k) != v for k, v in state.items())
            traits: dict[str, Any] = {"clock_now": self.backend.clock.now(),
                                      "clock_kind": self.backend.clock.kind}
            if changed or self.status != "ready":
                traits.update(state, status="ready", error=None, updated_at=now_ms())
                self._set_state(**traits)
            elif traits["clock_now"] != self.clock_now:
                with self.hold_sync():
                    self.clock_now = traits["clock_now"]

    def _handlers(self) -> dict[str, RequestHandler]:
        return {"refresh": lambda _request: self.refresh()}


class JobsWidget(_SchedulerWidget):
    """See the module docstring. Made by ``jobs_widget(backend)``."""

    _view = traitlets.Unicode("jobs").tag(sync=True)
    rows: traitlets.List[Any] = traitlets.List().tag(sync=True)
    counts: traitlets.Dict[str, Any] = traitlets.Dict().tag(sync=True)
    total = traitlets.Int(0).tag(sync=True)
    limit = traitlets.Int(200).tag(sync=True)

    def __init__(self, backend: Backend, *, limit: int = 200) -> None:
        super().__init__(backend, limit=limit)

    def _state(self) -> dict[str, Any]:
        docs = self.backend.scheduler.jobs()
        return {"rows": job_rows(docs)[: self.limit], "counts": state_counts(docs),
                "total": len(docs)}

    def _handlers(self) -> dict[str, RequestHandler]:
        return {**super()._handlers(), "cancel": self._req_cancel}

    def _req_cancel(self, request: dict[str, Any]) -> dict[str, Any]:
        from convex_lab.scheduler.jobs import SCHEDULED  # noqa: PLC0415

        job_id: str = field(request, "job_id", str)
        # Validates the ID (a _scheduled_functions ID, else InvalidIdError) and cancels in a
        # transaction of its own, as ctx.scheduler.cancel does.
        self.backend.scheduler.cancel(job_id)
        self.refresh()
        doc = self.backend.store.tables[SCHEDULED].docs.get(job_id)
        return {"job_id": job_id, "state": None if doc is None else doc["state"]["kind"]}


class CronsWidget(_SchedulerWidget):
    """See the module docstring. Made by ``crons_widget(backend)``."""

    _view = traitlets.Unicode("crons").tag(sync=True)
    crons: traitlets.List[Any] = traitlets.List().tag(sync=True)

    def _state(self) -> dict[str, Any]:
        return {"crons": cron_rows(self.backend)}


class SchedulerDashboard(ipywidgets.VBox):
    """Logs, then scheduled functions, then crons; closing it closes the three."""

    def __init__(self, parts: list[ConvexWidget]) -> None:
        super().__init__(children=parts)
        self.parts = parts

    def close(self) -> None:
        for part in self.parts:
            part.close()
        super().close()

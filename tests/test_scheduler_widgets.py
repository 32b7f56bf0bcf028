"""Headless protocol tests of the scheduled-functions and crons widgets (and their text forms).

Driven as in tests/test_widgets_protocol.py: requests go through ``_handle_custom_msg``, the
tests read the response sent back and the synced traits. A virtual clock moves time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("anywidget")

from _widget_fixtures import ask, bundle, make, sent, widgets  # noqa: F401 (pytest fixtures)

import convex_lab as cl
from convex_lab import v
from convex_lab.jupyter._schedule_text import (
    cron_rows,
    crons_text,
    describe_schedule,
    duration_text,
    jobs_text,
    relative,
    scheduler_status,
    when,
)
from convex_lab.jupyter.widgets import (
    ConvexWidget,
    CronsWidget,
    JobsWidget,
    LogsWidget,
    crons_widget,
    dashboard,
    jobs_widget,
)

MINUTE = 60_000.0




@pytest.fixture
def backend() -> Iterator[cl.Backend]:
    app = cl.App()

    @app.internal_mutation(args={"text": v.string()}, name="send_reminder")
    def send_reminder(ctx: Any, text: str) -> None:
        ctx.db.insert("reminders", {"text": text})

    @app.mutation(args={"text": v.string(), "minutes": v.float64()}, name="remind_me")
    def remind_me(ctx: Any, text: str, minutes: float) -> Any:
        return ctx.scheduler.run_after(minutes * MINUTE, send_reminder, {"text": text})

    @app.internal_mutation(name="explode")
    def explode(ctx: Any) -> None:
        raise RuntimeError("boom")

    @app.mutation(name="plan_explosion")
    def plan_explosion(ctx: Any) -> Any:
        return ctx.scheduler.run_after(0, explode)

    @app.internal_mutation(name="digest")
    def digest(ctx: Any) -> None:
        ctx.db.insert("digests", {"n": 1.0})

    b = cl.Backend(app=app, clock="virtual")
    yield b
    b.close()



def _deploy_crons(backend: cl.Backend) -> None:
    crons = cl.cron_jobs()
    crons.daily("digest", {"hourUTC": 9, "minuteUTC": 0}, cl.internal.digest)
    crons.interval("tick", {"minutes": 15}, cl.internal.digest)
    backend.app.crons = crons
    backend.deploy()


# ---------------------------------------------------------------------------------------------


def test_jobs_widget_shows_states_newest_first_and_updates_live(
        backend: cl.Backend, make: Any) -> None:
    w: JobsWidget = make(jobs_widget, backend)
    assert (w._view, w.status, w.rows, w.total) == ("jobs", "ready", [], 0)
    assert w.clock_kind == "virtual" and w.clock_now == backend.clock.now()

    backend.mutation("remind_me", {"text": "tea", "minutes": 10.0})
    backend.mutation("remind_me", {"text": "stretch", "minutes": 20.0})
    backend.mutation("plan_explosion", {})
    version = w.version
    assert [r["state"] for r in w.rows] == ["pending"] * 3  # updated by the commit listener
    assert [r["name"] for r in w.rows] == ["explode", "send_reminder", "send_reminder"]
    assert w.rows[1]["args"] == {"text": "stretch"}
    assert w.counts["pending"] == 3 and w.total == 3

    backend.clock.advance(15 * MINUTE)  # explode (due now) and tea (in 10 min) run
    assert w.version > version
    by_text = {r["args"].get("text"): r for r in w.rows}
    assert by_text["tea"]["state"] == "success" and by_text["tea"]["completedTime"] is not None
    assert by_text["stretch"]["state"] == "pending" and by_text["stretch"]["completedTime"] is None
    failed = by_text[None]
    assert failed["state"] == "failed" and "boom" in failed["error"]
    assert w.counts == {"pending": 1, "inProgress": 0, "success": 1, "failed": 1, "canceled": 0}
    assert w.clock_now == backend.clock.now()


def test_cancel_request_cancels_a_pending_job_and_refuses_bad_ids(
        backend: cl.Backend, make: Any, sent: list[dict[str, Any]]) -> None:
    job = str(backend.mutation("remind_me", {"text": "tea", "minutes": 10.0}))
    w: JobsWidget = make(jobs_widget, backend)
    answer = ask(w, sent, {"type": "cancel", "id": "1", "job_id": job})
    assert answer == {"type": "response", "id": "1", "ok": True,
                      "result": {"job_id": job, "state": "canceled"}}
    assert w.rows[0]["state"] == "canceled" and w.counts["canceled"] == 1
    backend.clock.advance(60 * MINUTE)
    assert backend.scheduler.jobs()[0]["state"] == {"kind": "canceled"}  # never ran

    reminder = str(backend.mutation("remind_me", {"text": "x", "minutes": 1.0}))
    backend.clock.advance(2 * MINUTE)
    doc_id = str(backend.run_function("send_reminder", {"text": "y"}, kind="mutation")
                 or next(iter(backend.store.tables["reminders"].docs)))
    for bad, name in ((doc_id, "InvalidIdError"), ("not-an-id", "InvalidIdError")):
        answer = ask(w, sent, {"type": "cancel", "id": "2", "job_id": bad})
        assert answer["ok"] is False and answer["error"]["name"] == name, answer
    assert ask(w, sent, {"type": "cancel", "id": "3"})["error"]["name"] == "ProtocolError"
    # A finished job stays as it is.
    answer = ask(w, sent, {"type": "cancel", "id": "4", "job_id": reminder})
    assert answer["ok"] and answer["result"]["state"] == "success"


def test_crons_widget_schedule_next_and_last_run(backend: cl.Backend, make: Any) -> None:
    w: CronsWidget = make(crons_widget, backend)
    assert (w._view, w.crons) == ("crons", [])
    _deploy_crons(backend)
    names = [c["name"] for c in w.crons]
    assert names == ["digest", "tick"]
    digest, tick = w.crons
    assert digest["schedule_text"] == "daily at 09:00 UTC"
    assert digest["schedule"]["type"] == "daily"
    assert tick["schedule_text"] == "every 15 minutes"
    assert digest["function"] == "digest" and digest["lastRun"] is None
    backend.clock.advance(7 * 24 * 60 * MINUTE)
    digest = w.crons[0]
    assert digest["lastRun"]["state"] == "success"
    assert digest["nextRun"] > backend.clock.now()
    assert len(backend.store.tables["digests"].docs) == 7 + 7 * 24 * 4 + 1  # digest + tick
    assert ask_ok_refresh(w)


def ask_ok_refresh(w: ConvexWidget) -> bool:
    response = w.handle_request({"type": "refresh", "id": "r"})
    return bool(response and response["ok"])


def test_close_removes_the_commit_listener(backend: cl.Backend) -> None:
    w = jobs_widget(backend)
    version = w.version
    w.close()
    backend.mutation("remind_me", {"text": "tea", "minutes": 1.0})
    assert w.version == version


def test_dashboard_stacks_logs_jobs_and_crons(backend: cl.Backend, make: Any) -> None:
    d = make(dashboard, backend)
    kinds = (LogsWidget, JobsWidget, CronsWidget)
    assert len(d.children) == 3
    assert all(isinstance(p, k) for p, k in zip(d.children, kinds, strict=True))
    d.close()
    assert all(p._closed for p in d.children)


def test_text_forms() -> None:
    assert describe_schedule({"type": "interval", "minutes": 15}) == "every 15 minutes"
    assert describe_schedule({"type": "interval", "hours": 1}) == "every hour"
    assert describe_schedule({"type": "hourly", "minuteUTC": 5}) == "hourly at :05 UTC"
    assert describe_schedule({"type": "weekly", "dayOfWeek": "monday", "hourUTC": 8,
                              "minuteUTC": 30}) == "weekly on Monday at 08:30 UTC"
    assert describe_schedule({"type": "monthly", "day": 1, "hourUTC": 0,
                              "minuteUTC": 0}) == "monthly on day 1 at 00:00 UTC"
    assert describe_schedule({"type": "cron", "cron": "0 9 * * 1-5"}) == "cron 0 9 * * 1-5"
    assert relative(3 * MINUTE, 0) == "in 3 min"
    assert relative(0, 90_000) == "1.5 min ago"
    assert relative(0, 0) == "now"


# The same cases as extension/src/when.test.ts (one rule, two languages).
DURATIONS = [(0.0042, "4.2 µs"), (0.00995, "10 µs"), (0.34, "340 µs"), (0.9994, "999 µs"),
             (0.9996, "1.00 ms"), (3.4213, "3.42 ms"), (12.34, "12.3 ms"), (123.4, "123 ms"),
             (999.6, "1.00 s"), (1234.0, "1.23 s"), (12_345.0, "12.3 s"),
             (125_000.0, "2 min 5 s")]


@pytest.mark.parametrize(("ms", "text"), DURATIONS)
def test_duration_text_shows_sub_millisecond_runs_in_microseconds(ms: float, text: str) -> None:
    assert duration_text(ms) == text


def test_text_listings(backend: cl.Backend) -> None:
    assert scheduler_status(backend) == ["Jobs: none", "Crons: none"]
    backend.mutation("remind_me", {"text": "tea", "minutes": 10.0})
    _deploy_crons(backend)
    status = scheduler_status(backend)
    assert status[0] == "Jobs: 1 pending"
    assert status[1] == "Crons:" and status[2].startswith("  digest: daily at 09:00 UTC, next ")
    assert 'send_reminder({"text":"tea"})  pending' in jobs_text(backend)
    assert "tick: every 15 minutes → digest" in crons_text(backend)
    assert "tick: every 15 minutes → digest; next " in crons_text(backend)
    assert crons_text(backend).endswith("never ran")


def test_crons_text_writes_the_last_run_like_the_next_one(backend: cl.Backend) -> None:
    """One time format in the crons listing: UTC date-time plus relative to the backend's clock,
    for the next run and for the last run alike."""
    _deploy_crons(backend)
    backend.clock.advance(20 * MINUTE)  # "tick" ran at +15 min and is due again at +30 min
    tick = next(r for r in crons_text(backend).splitlines() if r.startswith("  tick:"))
    last = next(c for c in cron_rows(backend) if c["name"] == "tick")["lastRun"]
    assert tick.endswith(f"last run success {when(last['scheduledTime'])} (5 min ago)"), tick
    assert f"next {when(last['scheduledTime'] + 15 * MINUTE)} (in 10 min)" in tick, tick


def test_crons_deployed_before_anything_was_scheduled_run(backend: cl.Backend) -> None:
    """Regression: deploy() starts the job runner for new crons (it used to start only with the
    first job, from inside that commit's notification, where syncing the crons deadlocked)."""
    _deploy_crons(backend)
    backend.mutation("remind_me", {"text": "tea", "minutes": 1.0})
    backend.clock.advance(24 * 60 * MINUTE)
    assert len(backend.store.tables["digests"].docs) == 1 + 24 * 4 + 1
    assert len(backend.store.tables["reminders"].docs) == 1

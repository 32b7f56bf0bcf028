"""Scheduled functions (reference §8; DESIGN §4, §8): transactional scheduling, limits, states,
exactly-once mutations, at-most-once actions, virtual and real clocks, durability."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import convex_lab as cl
from convex_lab import ConvexError, Int64, v
from convex_lab.errors import FunctionError, LimitExceededError

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def sched() -> Any:
    app = cl.App()
    seen: list[tuple[str, Any, float]] = []

    @app.mutation
    def remind(ctx: Any, text: str) -> None:
        seen.append(("remind", text, ctx._frame.executor.clock.now()))
        ctx.db.insert("reminders", {"text": text})

    @app.mutation(args={"count": v.int64()})
    def typed(ctx: Any, count: int) -> None:
        seen.append(("typed", count, 0.0))

    @app.mutation
    def explode(ctx: Any) -> None:
        raise ConvexError("boom")

    @app.mutation
    def plan(ctx: Any, text: str, delay: float) -> Any:
        return ctx.scheduler.run_after(delay, remind, {"text": text})

    @app.mutation
    def plan_then_fail(ctx: Any) -> None:
        ctx.scheduler.run_after(0, remind, {"text": "never"})
        raise ConvexError("rolled back")

    @app.mutation
    def nested_fail(ctx: Any) -> None:
        with contextlib.suppress(ConvexError):
            ctx.run_mutation(plan_then_fail)
        ctx.scheduler.run_after(0, remind, {"text": "kept"})

    @app.mutation
    def too_many(ctx: Any) -> None:
        for _ in range(1001):
            ctx.scheduler.run_after(0, remind, {"text": "x"})

    @app.mutation
    def cancel(ctx: Any, job: str) -> None:
        ctx.scheduler.cancel(job)

    @app.action
    def act(ctx: Any, fail: bool) -> None:
        seen.append(("act", ctx.auth.get_user_identity(), 0.0))
        if fail:
            raise RuntimeError("action failed")

    @app.action
    def act_schedules_then_fails(ctx: Any) -> None:
        ctx.scheduler.run_after(0, remind, {"text": "from an action"})
        raise RuntimeError("after scheduling")

    @app.mutation
    def loop_forever(ctx: Any) -> None:
        ctx.scheduler.run_after(0, loop_forever)

    @app.query
    def job(ctx: Any, id: str) -> Any:
        return ctx.db.system.get(id)

    backend = cl.Backend(app=app, clock="virtual")
    yield backend, app, seen, locals()
    backend.close()


def states(backend: cl.Backend) -> list[str]:
    return [j["state"]["kind"] for j in backend.scheduler.jobs()]


def test_jobs_run_when_the_virtual_clock_reaches_them(sched: Any) -> None:
    backend, _, seen, f = sched
    t0 = backend.clock.now()
    job_b = backend.mutation(f["plan"], {"text": "b", "delay": 120_000})
    backend.mutation(f["plan"], {"text": "a", "delay": 60_000})
    assert states(backend) == ["pending", "pending"]
    assert backend.query(f["job"], {"id": job_b})["scheduledTime"] == pytest.approx(t0 + 120_000,
                                                                                  abs=50)
    backend.clock.advance(timedelta(seconds=59))
    assert seen == []
    backend.clock.advance(timedelta(hours=1))
    assert [s[1] for s in seen] == ["a", "b"]  # in time order
    assert seen[0][2] == pytest.approx(t0 + 60_000, abs=50)  # each ran at its own time
    jobs = backend.scheduler.jobs()
    assert all(j["state"] == {"kind": "success"} and "completedTime" in j for j in jobs)
    assert jobs[0]["name"] == f["remind"].path and jobs[0]["args"] == [{"text": "b"}]


def test_scheduling_is_part_of_the_mutation(sched: Any) -> None:
    backend, _, seen, f = sched
    with pytest.raises(ConvexError):
        backend.mutation(f["plan_then_fail"])
    backend.mutation(f["nested_fail"])  # the failed nested mutation's job is rolled back
    backend.scheduler.wait_idle()
    assert [s[1] for s in seen] == ["kept"]
    assert len(backend.scheduler.jobs()) == 1


def test_actions_schedule_at_once_even_if_they_fail(sched: Any) -> None:
    backend, _, seen, f = sched
    with pytest.raises(RuntimeError):
        backend.action(f["act_schedules_then_fails"])
    backend.scheduler.wait_idle()
    assert [s[1] for s in seen] == ["from an action"]


def test_limits_and_bad_targets(sched: Any) -> None:
    backend, _, _, f = sched
    with pytest.raises(LimitExceededError, match="Too many functions scheduled") as e:
        backend.mutation(f["too_many"])
    assert e.value.code == "TooManyFunctionsScheduled"
    with pytest.raises(FunctionError) as e2:
        backend.mutation(f["plan"], {"text": "x", "delay": 6 * 366 * 86_400_000})
    assert e2.value.code == "InvalidScheduledFunctionDelay"
    with pytest.raises(FunctionError):
        backend.mutation(f["plan"], {"text": "x", "delay": -1})
    assert backend.scheduler.jobs() == []


def test_cancel_and_failures(sched: Any) -> None:
    backend, _, seen, f = sched
    job = backend.mutation(f["plan"], {"text": "x", "delay": 1000})
    backend.mutation(f["cancel"], {"job": job})
    backend.clock.advance(5000)
    assert seen == [] and states(backend) == ["canceled"]

    @backend.app.mutation(name="schedule_explode")
    def schedule_explode(ctx: Any) -> None:
        ctx.scheduler.run_after(0, f["explode"])

    backend.mutation(schedule_explode)
    backend.scheduler.wait_idle()
    failed = backend.scheduler.jobs()[-1]
    assert failed["state"]["kind"] == "failed" and "boom" in failed["state"]["error"]


def test_actions_and_identity(sched: Any) -> None:
    backend, app, seen, f = sched

    @app.mutation(name="schedule_actions")
    def schedule_actions(ctx: Any) -> None:
        ctx.scheduler.run_after(0, f["act"], {"fail": False})
        ctx.scheduler.run_after(0, f["act"], {"fail": True})

    client = backend.client(identity={"subject": "u1", "issuer": "https://auth.example"})
    client.mutation(schedule_actions)
    backend.scheduler.wait_idle()
    assert sorted(states(backend)) == ["failed", "success"]
    assert [s[1] for s in seen] == [None, None]  # scheduled runs carry no identity


def test_args_are_converted_by_the_target_and_checked_when_it_runs(sched: Any) -> None:
    backend, app, seen, f = sched

    @app.mutation(name="schedule_typed")
    def schedule_typed(ctx: Any, count: Any) -> None:
        ctx.scheduler.run_after(0, f["typed"], {"count": count})

    backend.mutation(schedule_typed, {"count": Int64(3)})
    backend.mutation(schedule_typed, {"count": "three"})
    assert backend.scheduler.jobs()[0]["args"] == [{"count": Int64(3)}]
    backend.scheduler.wait_idle()
    jobs = backend.scheduler.jobs()
    assert jobs[0]["state"]["kind"] == "success" and type(seen[0][1]) is Int64
    assert jobs[1]["state"]["kind"] == "failed"
    assert "ArgumentValidationError" in jobs[1]["state"]["error"]


def test_wait_idle_stops_runaway_self_scheduling(sched: Any) -> None:
    backend, _, _, f = sched
    backend.mutation(f["loop_forever"])
    with pytest.raises(FunctionError) as e:
        backend.scheduler.wait_idle(max_jobs=50)
    assert e.value.code == "RunawayScheduling"


def test_real_clock_runs_jobs_by_itself() -> None:
    app = cl.App()
    done: list[float] = []

    @app.mutation
    def mark(ctx: Any) -> None:
        done.append(time.time())

    @app.mutation
    def later(ctx: Any, ms: float) -> None:
        ctx.scheduler.run_after(ms, mark)

    backend = cl.Backend(app=app)
    t0 = time.time()
    backend.mutation(later, {"ms": 150})
    deadline = time.time() + 5
    while not done and time.time() < deadline:
        time.sleep(0.01)
    backend.close()
    assert done, "the job never ran"
    assert done[0] - t0 >= 0.14  # not before it was due


def test_missing_function_waits_then_runs_or_fails_on_deploy(tmp_path: Path) -> None:
    path = tmp_path / "jobs.duckdb"
    first = cl.App()

    @first.mutation(name="later:work")
    def work(ctx: Any) -> None:
        ctx.db.insert("done", {"ok": True})

    @first.mutation(name="later:plan")
    def plan(ctx: Any) -> None:
        ctx.scheduler.run_after(0, work)
        ctx.scheduler.run_after(0, "later:gone")

    @first.mutation(name="later:gone")
    def gone(ctx: Any) -> None:
        ctx.db.insert("done", {"ok": False})

    b = cl.Backend(path, app=first, clock="virtual")
    b.mutation(plan)
    b.close()

    second = cl.App()  # a fresh kernel: no functions defined yet
    b = cl.Backend(path, app=second, clock="virtual")
    b.scheduler.wait_idle()
    assert states(b) == ["pending", "pending"]  # waiting for their code
    second.mutation(name="later:work")(work.handler)  # the cell defining it runs again
    b.scheduler.wait_idle()
    assert states(b) == ["success", "pending"]
    b.deploy(second)  # deployed without later:gone: that job fails with a clear error
    job = b.scheduler.jobs()[1]
    assert job["state"]["kind"] == "failed" and "later:gone" in job["state"]["error"]
    b.close()


def test_scheduled_mutations_run_exactly_once_across_a_crash(tmp_path: Path) -> None:
    """A writer runs scheduled mutations on its real-clock thread and is SIGKILLed mid-way;
    reopening runs the rest. Every job's effect exists exactly once, every job succeeded."""
    path = tmp_path / "crash.duckdb"
    n_jobs = 300
    script = f"""
import sys, time
sys.path.insert(0, {str(FIXTURES)!r})
import convex_lab as cl
from sched_app import app, plan
b = cl.Backend({str(path)!r}, app=app)
b.mutation(plan, {{"count": {n_jobs}}})
print("planned", flush=True)
time.sleep(30)
"""
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "planned"
    time.sleep(0.15)  # let some jobs run on the writer's scheduler thread
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    sys.path.insert(0, str(FIXTURES))
    try:
        from sched_app import app  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(FIXTURES))
    backend = cl.Backend(path, app=app, clock="virtual")
    before = sum(1 for j in backend.scheduler.jobs() if j["state"]["kind"] == "success")
    backend.scheduler.wait_idle()
    jobs = backend.scheduler.jobs()
    assert len(jobs) == n_jobs and all(j["state"]["kind"] == "success" for j in jobs)
    effects = backend.store.tables["effects"].docs.values()
    counts: dict[float, int] = {}
    for doc in effects:
        counts[doc["n"]] = counts.get(doc["n"], 0) + 1
    assert counts == {float(i): 1 for i in range(n_jobs)}
    assert 0 < before < n_jobs or before == n_jobs  # the kill landed mid-way (usually)
    backend.close()


# Crons ------------------------------------------------------------------------------------------

def _cron_app() -> tuple[cl.App, list[tuple[str, float]]]:
    app = cl.App()
    runs: list[tuple[str, float]] = []

    @app.mutation(name="crons:tick")
    def tick(ctx: Any, what: str) -> None:
        runs.append((what, ctx._frame.executor.clock.now()))

    crons = cl.cron_jobs()
    crons.hourly("hourly tick", {"minuteUTC": 0}, tick, {"what": "hour"})
    crons.interval("every 15 minutes", {"minutes": 15}, tick, {"what": "15m"})
    crons.daily("digest", {"hourUTC": 9, "minuteUTC": 0}, "crons:tick", {"what": "day"})
    app.crons = crons
    return app, runs


def test_crons_run_every_occurrence_when_the_virtual_clock_advances() -> None:
    app, runs = _cron_app()
    backend = cl.Backend(app=app, clock="virtual")
    backend.clock.advance(timedelta(days=1))
    counts = {w: sum(1 for r in runs if r[0] == w) for w in ("hour", "15m", "day")}
    assert counts == {"hour": 24, "15m": 97, "day": 1}  # interval: at deploy, then every 15 min
    hours = [t for w, t in runs if w == "hour"]
    assert all(t % 3_600_000 == 0 for t in hours)  # on the hour, UTC
    jobs = backend.scheduler.jobs()
    assert len(jobs) == 24 + 97 + 1 and all(j["name"] == "crons:tick" for j in jobs)
    state = {c["name"]: c for c in backend.scheduler.crons.state()}
    assert state["digest"]["lastRun"]["state"] == {"kind": "success"}
    backend.close()


def test_cron_state_survives_a_restart_and_removed_crons_go(tmp_path: Path) -> None:
    path = tmp_path / "crons.duckdb"
    app, _ = _cron_app()
    backend = cl.Backend(path, app=app, clock="virtual")
    next_runs = {c["name"]: c["nextRun"] for c in backend.scheduler.crons.state()}
    backend.close()
    again = cl.Backend(path, app=app, clock="virtual")
    assert {c["name"]: c["nextRun"] for c in again.scheduler.crons.state()} == next_runs
    app.crons = cl.cron_jobs()  # every cron removed from the code
    again.deploy(app)
    assert again.scheduler.crons.state() == []
    again.close()


def test_real_clock_skips_cron_runs_in_the_past(capsys: pytest.CaptureFixture[str]) -> None:
    app, runs = _cron_app()
    backend = cl.Backend(app=app, clock="virtual")  # state made at "now"
    crons = backend.scheduler.crons
    hourly = next(c for c in crons.state() if c["name"] == "hourly tick")
    # Pretend the kernel was down for five hours with the real clock: one run, no catch-up.
    backend.clock.kind = "real"  # type: ignore[misc]
    started = crons.run_due(hourly["nextRun"] + 5 * 3_600_000)
    backend.scheduler.run_due(hourly["nextRun"] + 5 * 3_600_000)
    assert started >= 1 and sum(1 for r in runs if r[0] == "hour") == 1
    assert "skipping" in capsys.readouterr().err
    after = next(c for c in crons.state() if c["name"] == "hourly tick")
    assert after["nextRun"] > hourly["nextRun"] + 5 * 3_600_000
    backend.clock.kind = "virtual"  # type: ignore[misc]
    backend.close()


def test_first_job_of_a_backend_with_late_crons_does_not_hang() -> None:
    """The job runner starts inside the first scheduling commit's notification and commits
    itself (cron state): that nested commit must not deadlock the notification."""
    import threading

    app = cl.App()

    @app.mutation(name="late:tick")
    def tick(ctx: Any) -> None:
        ctx.db.insert("ticks", {"n": 1.0})

    @app.mutation(name="late:plan")
    def plan(ctx: Any) -> None:
        ctx.scheduler.run_after(0, tick)

    backend = cl.Backend(app=app, clock="virtual")
    crons = cl.cron_jobs()
    crons.hourly("hourly", {"minuteUTC": 0}, tick)
    app.crons = crons  # assigned after start, without deploy()
    done: list[bool] = []
    worker = threading.Thread(target=lambda: (backend.mutation(plan), done.append(True)),
                              daemon=True)
    worker.start()
    worker.join(10)
    assert done, "scheduling the first job hung"
    backend.scheduler.wait_idle()
    assert states(backend) == ["success"]
    backend.close()

"""Scheduled functions, crons, times and durations as rows and text: shared by the widgets and
``%convex``.

Nothing here imports anywidget, so the magics' text fallbacks work without the widgets.

* :func:`job_rows` — ``_scheduled_functions`` documents as JSON rows for the jobs view, newest
  first (by ``_creationTime``, then ``scheduledTime``): ``id``, ``name``, ``scheduledTime``,
  ``completedTime`` (ms or None), ``state`` (``pending`` | ``inProgress`` | ``success`` |
  ``failed`` | ``canceled``), ``error`` (the failure's text or None), ``args`` (display JSON).
* :func:`cron_rows` — what ``backend.scheduler.crons.state()`` gives, plus ``schedule_text``:
  ``every 15 minutes``, ``daily at 09:00 UTC``, ``cron 0 9 * * 1-5``.
* :func:`describe_schedule`, :func:`relative` (``in 3 min``), :func:`duration_text` (``340 µs``,
  ``3.42 ms``), :func:`state_counts`, and the text listings :func:`jobs_text` /
  :func:`crons_text` / :func:`scheduler_status`.

:func:`relative` and :func:`duration_text` are mirrored by ``extension/src/lib/when.ts`` (the
views format in the browser); keep the two in step.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from convex_lab.jupyter._protocol import encode

if TYPE_CHECKING:
    from convex_lab.backend import Backend

STATES = ("pending", "inProgress", "success", "failed", "canceled")


def when(ms: float) -> str:
    """``2026-11-21 09:00:00 UTC``."""
    moment = datetime.fromtimestamp(ms / 1000.0, tz=timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def relative(ms: float, now: float) -> str:
    """``in 3 min``, ``5 s ago``, ``in 2 h``, ``now``: ``ms`` seen from ``now``."""
    delta = (ms - now) / 1000.0
    size = abs(delta)
    if size < 1:
        return "now"
    for unit, seconds in (("d", 86_400.0), ("h", 3_600.0), ("min", 60.0), ("s", 1.0)):
        if size >= seconds:
            amount = size / seconds
            text = f"{amount:.0f} {unit}" if amount >= 10 or unit == "s" else (
                f"{amount:.1f}".rstrip("0").rstrip(".") + f" {unit}")
            return f"in {text}" if delta > 0 else f"{text} ago"
    return "now"  # pragma: no cover (the loop always returns)


def duration_text(ms: float) -> str:
    """A run's duration with three significant digits and a unit that fits: ``4.2 µs``,
    ``340 µs``, ``3.42 ms``, ``12.3 ms``, ``123 ms``, ``1.23 s``, ``12.3 s``, ``2 min 5 s``.

    Sub-millisecond runs (most queries) show in µs, never as ``0.0 ms``; each threshold is where
    the rounded text would reach the next unit (999.6 µs is ``1.00 ms``, not ``1000 µs``)."""
    if ms < 0:
        ms = 0.0
    us = ms * 1000.0
    if us < 9.95:
        return f"{us:.1f} µs"
    if us < 999.5:
        return f"{us:.0f} µs"
    if ms < 9.995:
        return f"{ms:.2f} ms"
    if ms < 99.95:
        return f"{ms:.1f} ms"
    if ms < 999.5:
        return f"{ms:.0f} ms"
    s = ms / 1000.0
    if s < 9.995:
        return f"{s:.2f} s"
    if s < 59.95:
        return f"{s:.1f} s"
    minutes, seconds = divmod(round(s), 60)
    return f"{minutes} min {seconds} s"


def _plural(n: int, unit: str) -> str:
    return f"every {unit}" if n == 1 else f"every {n} {unit}s"


def _hm(schedule: Mapping[str, Any]) -> str:
    hour = int(schedule.get("hourUTC", 0))
    minute = schedule.get("minuteUTC")
    if minute is None:
        return f"{hour:02d}:?? UTC (minute picked by Convex)"
    return f"{hour:02d}:{int(minute):02d} UTC"


def describe_schedule(schedule: Mapping[str, Any] | None) -> str:
    """A Convex ``Schedule`` JSON in words (all times UTC, as Convex runs them)."""
    if not schedule:
        return "(not deployed)"
    kind = schedule.get("type")
    if kind == "interval":
        for unit in ("seconds", "minutes", "hours"):
            if unit in schedule:
                return _plural(int(schedule[unit]), unit[:-1])
    if kind == "hourly":
        minute = schedule.get("minuteUTC")
        return ("hourly (minute picked by Convex)" if minute is None
                else f"hourly at :{int(minute):02d} UTC")
    if kind == "daily":
        return f"daily at {_hm(schedule)}"
    if kind == "weekly":
        return f"weekly on {str(schedule.get('dayOfWeek', '?')).capitalize()} at {_hm(schedule)}"
    if kind == "monthly":
        return f"monthly on day {schedule.get('day')} at {_hm(schedule)}"
    if kind == "cron":
        return f"cron {schedule.get('cron', '?')}"
    return json.dumps(encode(dict(schedule)))


def compact(value: Any) -> str:
    """A value as one line of JSON (display JSON: int64 as ``{"$int64": "5"}``)."""
    return json.dumps(encode(value), separators=(",", ":"), ensure_ascii=False)


def job_row(doc: Mapping[str, Any]) -> dict[str, Any]:
    state = doc.get("state") or {}
    args = doc.get("args") or [{}]
    completed = doc.get("completedTime")
    return {"id": str(doc["_id"]), "name": str(doc.get("name", "")),
            "creationTime": float(doc.get("_creationTime", 0.0)),
            "scheduledTime": float(doc.get("scheduledTime", 0.0)),
            "completedTime": None if completed is None else float(completed),
            "state": str(state.get("kind", "pending")),
            "error": None if state.get("error") is None else str(state["error"]),
            "args": encode(args[0] if args else {})}


def job_rows(docs: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The jobs view's rows, newest first (module docstring)."""
    rows = [job_row(d) for d in docs]
    rows.sort(key=lambda r: (r["creationTime"], r["scheduledTime"]), reverse=True)
    return rows


def state_counts(docs: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """How many jobs are in each state (every state listed, zeros included)."""
    counts = dict.fromkeys(STATES, 0)
    for doc in docs:
        kind = str((doc.get("state") or {}).get("kind", "pending"))
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def cron_rows(backend: Backend) -> list[dict[str, Any]]:
    """The crons view's rows, by name: what ``crons.state()`` gives, read from the ``_cron_jobs``
    documents themselves (so a commit listener sees a deploy's crons as soon as they commit),
    plus ``schedule_text``."""
    from convex_lab.scheduler.cron_runner import CRONS  # noqa: PLC0415
    from convex_lab.scheduler.jobs import SCHEDULED  # noqa: PLC0415

    backend.scheduler  # noqa: B018 (made on first use: it syncs the deployed crons)
    tables = backend.store.tables
    if CRONS not in tables:
        return []
    jobs = tables[SCHEDULED].docs
    rows: list[dict[str, Any]] = []
    for doc in sorted(tables[CRONS].docs.values(), key=lambda d: str(d["name"])):
        raw = doc.get("schedule")
        schedule = json.loads(raw) if isinstance(raw, str) else raw
        last = jobs.get(doc.get("lastJob", ""))
        state = {} if last is None else (last.get("state") or {})
        rows.append({
            "name": str(doc["name"]), "function": str(doc.get("fn", "")),
            "schedule": None if schedule is None else encode(schedule),
            "schedule_text": describe_schedule(schedule),
            "nextRun": float(doc["nextRun"]),
            "lastRun": None if last is None else {
                "scheduledTime": float(last["scheduledTime"]),
                "completedTime": (None if last.get("completedTime") is None
                                  else float(last["completedTime"])),
                "state": str(state.get("kind", "pending")),
                "error": None if state.get("error") is None else str(state["error"])}})
    return rows


# ---------------------------------------------------------------------------------------------
# Text (the magics' fallbacks and status)


def jobs_text(backend: Backend, limit: int = 50) -> str:
    docs = backend.scheduler.jobs()
    if not docs:
        return "No scheduled functions yet (ctx.scheduler.run_after / run_at schedule them)."
    counts = ", ".join(f"{n} {s}" for s, n in state_counts(docs).items() if n)
    lines = [f"Scheduled functions: {counts}"]
    for row in job_rows(docs)[:limit]:
        state = row["state"] + (f" ({row['error']})" if row["error"] else "")
        lines.append(f"  {when(row['scheduledTime'])}  {row['name']}({compact(row['args'])})  "
                     f"{state}")
    return "\n".join(lines)


def crons_text(backend: Backend) -> str:
    rows = cron_rows(backend)
    if not rows:
        return ("No crons deployed (app.crons = cl.cron_jobs() with crons.daily(...), then "
                "backend.deploy()).")
    now = backend.clock.now()
    lines = ["Crons:"]
    for row in rows:
        last = row["lastRun"]
        ran = "never ran" if last is None else (
            f"last run {last['state']} {when(last['scheduledTime'])} "
            f"({relative(last['scheduledTime'], now)})"
            + (f": {last['error']}" if last["error"] else ""))
        lines.append(f"  {row['name']}: {row['schedule_text']} → {row['function']}; next "
                     f"{when(row['nextRun'])} ({relative(row['nextRun'], now)}); {ran}")
    return "\n".join(lines)


def scheduler_status(backend: Backend) -> list[str]:
    """The ``Jobs:`` and ``Crons:`` lines of ``%convex``."""
    docs = backend.scheduler.jobs()
    counts = ", ".join(f"{n} {s}" for s, n in state_counts(docs).items() if n)
    lines = [f"Jobs: {counts}" if counts else "Jobs: none"]
    rows = cron_rows(backend)
    if not rows:
        lines.append("Crons: none")
        return lines
    now = backend.clock.now()
    lines.append("Crons:")
    lines += [f"  {r['name']}: {r['schedule_text']}, next {when(r['nextRun'])} "
              f"({relative(r['nextRun'], now)})" for r in rows]
    return lines

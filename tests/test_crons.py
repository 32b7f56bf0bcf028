"""Cron jobs: registration checks with Convex's texts, next run times, JSON (reference §9)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest

import convex_lab as cl
from convex_lab import Int64
from convex_lab.errors import FunctionError, InvalidCronError, InvalidValueError
from convex_lab.scheduler.crons import CronJob, Crons, cron_jobs

MIN, HOUR, DAY = 60_000, 3_600_000, 86_400_000


def ms(*parts: int) -> float:
    return datetime(*parts, tzinfo=timezone.utc).timestamp() * 1000  # type: ignore[misc]


def utc(t: float) -> datetime:
    return datetime.fromtimestamp(t / 1000, tz=timezone.utc).replace(tzinfo=None)


def job(kind: str, schedule: Any, **kw: Any) -> CronJob:
    crons = cron_jobs()
    getattr(crons, kind)("j", schedule, "jobs:run", **kw)
    return crons.jobs["j"]


def nexts(j: CronJob, t: float, n: int, anchor: float | None = None) -> list[datetime]:
    out = []
    for _ in range(n):
        t = j.next_after(t, anchor_ms=anchor)
        out.append(utc(t))
    return out


# --- registration -----------------------------------------------------------------------------


def test_registration_shapes_and_fn_forms() -> None:
    app = cl.App()

    @app.mutation(name="jobs:tick")
    def tick(ctx):  # type: ignore[no-untyped-def]
        return None

    crons = cron_jobs()
    crons.interval("a", {"minutes": 5}, "jobs:run")
    crons.hourly("b", {"minuteUTC": 7}, tick, {"n": 1})
    crons.daily("c", {"hourUTC": 9, "minuteUTC": 30.0}, cl.internal.jobs.run)
    crons.weekly("d", {"dayOfWeek": "sunday", "hourUTC": 0, "minuteUTC": 0}, cl.api.a.b.c)
    crons.monthly("e", {"day": 31, "hourUTC": 23, "minuteUTC": 59}, "jobs/x:y")
    crons.cron("f", "0 9 * * 1-5", "jobs:run")
    assert [j.name for j in crons] == list("abcdef") and len(crons) == 6 and "a" in crons
    assert [j.schedule for j in crons] == [
        {"type": "interval", "minutes": 5},
        {"type": "hourly", "minuteUTC": 7},
        {"type": "daily", "hourUTC": 9, "minuteUTC": 30},
        {"type": "weekly", "dayOfWeek": "sunday", "hourUTC": 0, "minuteUTC": 0},
        {"type": "monthly", "day": 31, "hourUTC": 23, "minuteUTC": 59},
        {"type": "cron", "cron": "0 9 * * 1-5"},
    ]
    assert crons["b"].fn is tick and crons["b"].path == "jobs:tick"
    assert [j.path for j in crons] == ["jobs:run", "jobs:tick", "jobs:run", "a/b:c", "jobs/x:y",
                                       "jobs:run"]
    assert crons["a"].args == {} and crons["b"].args == {"n": 1.0}
    assert type(crons["b"].args["n"]) is float  # plain ints are float64, as everywhere
    assert type(crons["c"].schedule["minuteUTC"]) is int
    assert repr(crons) == "<Crons ['a', 'b', 'c', 'd', 'e', 'f']>"
    assert isinstance(crons, Crons) and not cron_jobs()  # an empty Crons is falsy


def test_minute_optional_and_hourly_schedule_omitted() -> None:
    assert job("hourly", None).schedule == {"type": "hourly"}
    j = job("daily", {"hourUTC": 5})
    assert j.schedule == {"type": "daily", "hourUTC": 5}
    assert utc(j.next_after(ms(2024, 1, 1))) == datetime(2024, 1, 1, 5, 0)


@pytest.mark.parametrize(
    ("kind", "schedule", "message"),
    [
        ("interval", {}, "Must specify one of seconds, minutes, or hours"),
        ("interval", {"seconds": 1, "minutes": 1}, "Must specify one of seconds, minutes, or"),
        ("interval", {"seconds": 0}, "Interval must be an integer greater than 0"),
        ("interval", {"minutes": -5}, "Interval must be an integer greater than 0"),
        ("interval", {"hours": 1.5}, "Interval must be an integer greater than 0"),
        ("interval", {"seconds": True}, "Interval must be an integer greater than 0"),
        ("interval", {"seconds": "5"}, "Interval must be an integer greater than 0"),
        ("hourly", {"minuteUTC": 60}, "Minute of hour must be an integer from 0 to 59"),
        ("hourly", {"minuteUTC": -1}, "Minute of hour must be an integer from 0 to 59"),
        ("daily", {"hourUTC": 24, "minuteUTC": 0}, "Hour of day must be an integer from 0 to 23"),
        ("daily", {"minuteUTC": 0}, "Hour of day must be an integer from 0 to 23"),
        ("daily", {"hourUTC": 1, "minuteUTC": 0.5}, "Minute of hour must be an integer from 0"),
        ("weekly", {"dayOfWeek": "Monday", "hourUTC": 1}, 'Day of week must be a string like "m'),
        ("weekly", {"dayOfWeek": 1, "hourUTC": 1}, 'Day of week must be a string like "monday".'),
        ("weekly", {"dayOfWeek": "friday", "hourUTC": -1}, "Hour of day must be an integer"),
        ("monthly", {"day": 0, "hourUTC": 1}, "Day of month must be an integer from 1 to 31"),
        ("monthly", {"day": 32, "hourUTC": 1}, "Day of month must be an integer from 1 to 31"),
        ("monthly", {"hourUTC": 1}, "Day of month must be an integer from 1 to 31"),
        ("hourly", {"minute": 5}, "Unknown field 'minute' in the hourly schedule: use minuteUTC."),
        ("daily", [9, 0], "The daily schedule must be a dict of hourUTC, minuteUTC; got [9, 0]."),
        ("daily", None, "The daily schedule must be a dict of hourUTC, minuteUTC; got None."),
        ("cron", "0 9 * *", "Invalid cron string '0 9 * *': use 5 fields"),
        ("cron", "0 0 0 9 * * *", "Invalid cron string '0 0 0 9 * * *': use 5 fields"),
        ("cron", "61 * * * *", "Invalid cron string '61 * * * *'"),
        ("cron", "a b c d e", "Invalid cron string 'a b c d e'"),
        ("cron", "0 0 31 2 *", "Invalid cron string '0 0 31 2 *': it matches no date."),
        ("cron", 5, "Invalid cron string 5: use 5 fields"),
    ],
)
def test_schedule_validation(kind: str, schedule: Any, message: str) -> None:
    with pytest.raises(InvalidCronError) as info:
        job(kind, schedule)
    assert str(info.value).startswith(message)
    assert isinstance(info.value, ValueError) and info.value.code == "InvalidCron"


def test_identifier_args_and_fn_validation() -> None:
    crons = cron_jobs()
    crons.hourly("it's fine - ~ok_1", {"minuteUTC": 0}, "a:b")
    with pytest.raises(InvalidCronError, match=r"^Cron identifier registered twice: it's fine"):
        crons.daily("it's fine - ~ok_1", {"hourUTC": 0, "minuteUTC": 0}, "a:b")
    for bad in ("tab\there", "café", "new\nline"):
        with pytest.raises(InvalidCronError) as info:
            crons.hourly(bad, {"minuteUTC": 0}, "a:b")
        assert str(info.value) == (
            f"Invalid cron identifier {bad}: use ASCII letters that are not control characters"
        )
    with pytest.raises(InvalidCronError, match=r"must be an object\. Received: \[1\]"):
        crons.hourly("x", {"minuteUTC": 0}, "a:b", [1])  # type: ignore[arg-type]
    with pytest.raises(InvalidValueError):
        crons.hourly("x", {"minuteUTC": 0}, "a:b", {"$bad": 1})
    with pytest.raises(InvalidValueError, match="too large"):
        crons.hourly("x", {"minuteUTC": 0}, "a:b", {"s": "x" * (1 << 20)})
    with pytest.raises(FunctionError, match="is not a function reference"):
        crons.hourly("x", {"minuteUTC": 0}, 42)
    assert list(crons.jobs) == ["it's fine - ~ok_1"]  # failed registrations leave nothing


# --- next run times ---------------------------------------------------------------------------


def test_interval_anchoring() -> None:
    j = job("interval", {"minutes": 5})
    anchor = ms(2024, 1, 1, 12, 0, 0)
    assert j.next_after(anchor - 1, anchor_ms=anchor) == anchor  # the first run is deploy time
    assert j.next_after(anchor, anchor_ms=anchor) == anchor + 5 * MIN
    assert j.next_after(anchor + 7 * MIN, anchor_ms=anchor) == anchor + 10 * MIN
    assert j.next_after(anchor + 10 * MIN, anchor_ms=anchor) == anchor + 15 * MIN
    assert j.next_after(anchor + 12.5, anchor_ms=anchor + 0.5) == anchor + 0.5 + 5 * MIN
    assert j.next_after(1234.5) == 1234.5 + 5 * MIN  # no anchor: t is the previous run
    assert job("interval", {"seconds": 30}).next_after(0, anchor_ms=0) == 30_000
    assert job("interval", {"hours": 2}).next_after(HOUR, anchor_ms=0) == 2 * HOUR


def test_hourly_across_day_and_year_end() -> None:
    j = job("hourly", {"minuteUTC": 15})
    assert nexts(j, ms(2023, 12, 31, 22, 15), 3) == [
        datetime(2023, 12, 31, 23, 15), datetime(2024, 1, 1, 0, 15), datetime(2024, 1, 1, 1, 15)
    ]
    assert utc(j.next_after(ms(2024, 1, 1, 0, 14, 59) + 999)) == datetime(2024, 1, 1, 0, 15)


def test_daily_across_month_and_leap_day() -> None:
    j = job("daily", {"hourUTC": 0, "minuteUTC": 0})
    assert nexts(j, ms(2024, 2, 28, 0, 0), 3) == [
        datetime(2024, 2, 29), datetime(2024, 3, 1), datetime(2024, 3, 2)
    ]
    assert utc(j.next_after(ms(2023, 2, 28, 12))) == datetime(2023, 3, 1)
    late = job("daily", {"hourUTC": 23, "minuteUTC": 59})
    assert utc(late.next_after(ms(2024, 12, 31, 23, 58))) == datetime(2024, 12, 31, 23, 59)
    assert utc(late.next_after(ms(2024, 12, 31, 23, 59))) == datetime(2025, 1, 1, 23, 59)


def test_weekly_every_day_name_and_sunday_across_month_end() -> None:
    names = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"]
    for name in names:
        t = utc(job("weekly", {"dayOfWeek": name, "hourUTC": 9, "minuteUTC": 30})
                .next_after(ms(2024, 3, 1)))
        assert (t.strftime("%A").lower(), t.hour, t.minute) == (name, 9, 30)
        assert datetime(2024, 3, 1) < t <= datetime(2024, 3, 8)
    sunday = job("weekly", {"dayOfWeek": "sunday", "hourUTC": 23, "minuteUTC": 0})
    assert nexts(sunday, ms(2024, 3, 24, 23, 0), 3) == [
        datetime(2024, 3, 31, 23), datetime(2024, 4, 7, 23), datetime(2024, 4, 14, 23)
    ]
    assert utc(sunday.next_after(ms(2024, 3, 31, 22, 59))) == datetime(2024, 3, 31, 23)


def test_monthly_day_31_skips_short_months_and_leap_years() -> None:
    j = job("monthly", {"day": 31, "hourUTC": 12, "minuteUTC": 0})
    assert nexts(j, ms(2024, 1, 1), 5) == [
        datetime(2024, 1, 31, 12), datetime(2024, 3, 31, 12), datetime(2024, 5, 31, 12),
        datetime(2024, 7, 31, 12), datetime(2024, 8, 31, 12),
    ]
    assert utc(j.next_after(ms(2024, 12, 31, 12))) == datetime(2025, 1, 31, 12)
    leap = job("monthly", {"day": 29, "hourUTC": 0, "minuteUTC": 0})
    assert nexts(leap, ms(2023, 1, 29), 2) == [datetime(2023, 3, 29), datetime(2023, 4, 29)]
    assert nexts(leap, ms(2024, 1, 29), 2) == [datetime(2024, 2, 29), datetime(2024, 3, 29)]
    first = job("monthly", {"day": 1, "hourUTC": 0, "minuteUTC": 5})
    assert nexts(first, ms(2024, 12, 1, 0, 5), 2) == [datetime(2025, 1, 1, 0, 5),
                                                      datetime(2025, 2, 1, 0, 5)]


def test_cron_strings() -> None:
    weekdays = job("cron", "0 9 * * 1-5")
    assert nexts(weekdays, ms(2024, 3, 1, 9, 0), 3) == [  # Friday 9:00 → Mon, Tue, Wed
        datetime(2024, 3, 4, 9), datetime(2024, 3, 5, 9), datetime(2024, 3, 6, 9)
    ]
    assert utc(weekdays.next_after(ms(2024, 3, 1, 8, 59, 59))) == datetime(2024, 3, 1, 9)
    assert utc(weekdays.next_after(ms(2024, 3, 1, 9, 0) + 500)) == datetime(2024, 3, 4, 9)
    leap = job("cron", "30 6 29 2 *")
    assert utc(leap.next_after(ms(2024, 3, 1))) == datetime(2028, 2, 29, 6, 30)
    sunday = job("cron", "0 0 * * 0")
    assert utc(sunday.next_after(ms(2024, 3, 30, 12))) == datetime(2024, 3, 31)


@pytest.mark.parametrize(
    ("kind", "schedule", "span", "count"),
    [
        ("hourly", {"minuteUTC": 0}, DAY, 24),
        ("hourly", {"minuteUTC": 59}, DAY, 24),
        ("daily", {"hourUTC": 0, "minuteUTC": 0}, 7 * DAY, 7),
        ("weekly", {"dayOfWeek": "sunday", "hourUTC": 0, "minuteUTC": 0}, 28 * DAY, 4),
        ("monthly", {"day": 31, "hourUTC": 0, "minuteUTC": 0}, 366 * DAY, 7),
        ("cron", "*/15 * * * *", HOUR, 4),
        ("cron", "* * * * *", HOUR, 60),
        ("interval", {"minutes": 5}, HOUR, 12),
    ],
)
def test_occurrences_between_counts(kind: str, schedule: Any, span: int, count: int) -> None:
    j = job(kind, schedule)
    start = ms(2024, 1, 1)  # a Monday, on every boundary: (start, start + span] counts the end
    times = list(j.occurrences_between(start, start + span))
    assert len(times) == count and times == sorted(set(times))
    assert all(start < t <= start + span for t in times)


def test_occurrences_between_interval_anchor() -> None:
    j = job("interval", {"minutes": 10})
    anchor = ms(2024, 1, 1, 0, 3)
    times = list(j.occurrences_between(ms(2024, 1, 1), ms(2024, 1, 1, 1), anchor_ms=anchor))
    assert [utc(t).minute for t in times] == [3, 13, 23, 33, 43, 53]
    assert list(j.occurrences_between(5.0, 5.0)) == []


# --- JSON -------------------------------------------------------------------------------------


def test_json_round_trip() -> None:
    app = cl.App()

    @app.internal_action(name="jobs:sweep")
    def sweep(ctx):  # type: ignore[no-untyped-def]
        return None

    crons = cron_jobs()
    crons.interval("a", {"seconds": 45}, "jobs:run", {"n": Int64(3), "b": b"\x00", "f": 1.5})
    crons.hourly("b", None, sweep)
    crons.weekly("c", {"dayOfWeek": "friday", "hourUTC": 1, "minuteUTC": 2}, cl.api.x.y)
    crons.monthly("d", {"day": 30, "hourUTC": 3, "minuteUTC": 4}, "jobs:run")
    crons.cron("e", "*/5 1-3 * * sun", "jobs:run", {"s": "x"})
    data = json.loads(json.dumps(crons.to_json()))
    assert data[0] == {
        "name": "a",
        "schedule": {"type": "interval", "seconds": 45},
        "fn": "jobs:run",
        "args": {"n": {"$integer": "AwAAAAAAAAA="}, "b": {"$bytes": "AA=="}, "f": 1.5},
    }
    back = Crons.from_json(data)
    assert list(back.jobs) == list(crons.jobs)
    for old, new in zip(crons, back, strict=True):
        assert (new.name, new.schedule, new.path, new.args) == (
            old.name, old.schedule, old.path, old.args)
        assert new.fn == old.path and new.next_after(1e12) == old.next_after(1e12)
    assert type(back["a"].args["n"]) is Int64
    assert CronJob.from_json(crons["a"].to_json()) == crons["a"]  # a path fn compares equal
    alias = CronJob.from_json({"name": "z", "fn": "a:b",
                               "schedule": {"type": "cron", "cronExpr": "0 * * * *"}})
    assert alias.schedule == {"type": "cron", "cron": "0 * * * *"} and alias.args == {}
    with pytest.raises(InvalidCronError, match="Hour of day"):
        CronJob.from_json({"name": "z", "fn": "a:b",
                           "schedule": {"type": "daily", "hourUTC": 99, "minuteUTC": 0}})

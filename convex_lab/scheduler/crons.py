"""Cron jobs: ``cron_jobs()`` and the next-run arithmetic (reference §9, docs/api.md).

Registration mirrors Convex's ``cronJobs()`` (``convex/server`` ``cron.ts``): the same method
names, argument order, checks and error texts::

    crons = cron_jobs()
    crons.interval("clear presence", {"seconds": 30}, "presence:clear")
    crons.hourly("tick", {"minuteUTC": 5}, tick)                         # a FunctionDef
    crons.daily("report", {"hourUTC": 17, "minuteUTC": 30}, cl.internal.reports.send)
    crons.weekly("digest", {"dayOfWeek": "monday", "hourUTC": 9, "minuteUTC": 0}, digest)
    crons.monthly("bill", {"day": 1, "hourUTC": 16, "minuteUTC": 0}, bill, {"plan": "pro"})
    crons.cron("weekdays", "0 9 * * 1-5", standup)                       # 5 fields, UTC

Contract
--------
* Identifiers are printable ASCII (``[ -~]*``) and unique. ``args`` is optional (``{}``), must be
  an object of Convex values (converted as they enter, at most 1 MiB). ``fn`` is kept as given (a
  function, a path, a ``cl.api``/``cl.internal`` reference); ``CronJob.path`` resolves it.
* ``CronJob.schedule`` is convex-js's ``Schedule`` JSON: ``{"type": "interval", "seconds": 30}``,
  ``{"type": "hourly", "minuteUTC": 5}``, ``{"type": "daily", "hourUTC", "minuteUTC"}``,
  ``{"type": "weekly", "dayOfWeek", "hourUTC", "minuteUTC"}``, ``{"type": "monthly", "day",
  "hourUTC", "minuteUTC"}``, ``{"type": "cron", "cron": "0 9 * * 1-5"}``.
* ``next_after(t_ms, anchor_ms=)`` is the next run strictly after ``t_ms`` (ms since the epoch,
  UTC). ``interval``: runs at ``anchor + k·interval`` (k ≥ 0; the anchor is deploy time, the
  first run); without an anchor, ``t_ms`` is taken as the previous run. Calendar kinds: the next
  matching UTC minute; ``monthly`` days above 28 skip the months that lack them.
* ``minuteUTC`` may be omitted (reference §9); Convex then picks a stable random minute, we use 0.
* No splay: Convex delays each run by a stable random offset (up to a minute, or an hour when the
  minute is omitted) to spread load. We run exactly on time, so runs are deterministic.
"""

from __future__ import annotations

import calendar
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from convex_lab.errors import InvalidCronError, InvalidValueError
from convex_lab.functions import reference_path
from convex_lab.values import convert, from_internal_json, to_internal_json, value_size

__all__ = ["CronJob", "Crons", "DAYS_OF_WEEK", "InvalidCronError", "cron_jobs"]

DAYS_OF_WEEK = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
MAX_ARGS_SIZE = 1 << 20
_MINUTE, _HOUR, _DAY = 60_000, 3_600_000, 86_400_000
_UNIT_MS = {"seconds": 1_000, "minutes": _MINUTE, "hours": _HOUR}
_FIELDS = {
    "interval": ("seconds", "minutes", "hours"),
    "hourly": ("minuteUTC",),
    "daily": ("hourUTC", "minuteUTC"),
    "weekly": ("dayOfWeek", "hourUTC", "minuteUTC"),
    "monthly": ("day", "hourUTC", "minuteUTC"),
}
_IDENTIFIER = re.compile(r"[ -~]*")


def _integer(n: Any, lo: int, hi: float, message: str) -> int:
    # JS Number.isInteger: 5.0 is an integer, True is not a number.
    ok = (isinstance(n, int) and not isinstance(n, bool)) or (
        isinstance(n, float) and n.is_integer()
    )
    if not ok or not lo <= n <= hi:
        raise InvalidCronError(message)
    return int(n)


def _minute(s: Mapping[str, Any]) -> dict[str, int]:
    if s.get("minuteUTC") is None:
        return {}
    msg = "Minute of hour must be an integer from 0 to 59"
    return {"minuteUTC": _integer(s["minuteUTC"], 0, 59, msg)}


def _hour(s: Mapping[str, Any]) -> int:
    return _integer(s.get("hourUTC"), 0, 23, "Hour of day must be an integer from 0 to 23")


def _check_cron_string(expr: Any) -> str:
    if not isinstance(expr, str) or len(expr.split()) != 5:
        raise InvalidCronError(
            f"Invalid cron string {expr!r}: use 5 fields, 'minute hour day-of-month month "
            "day-of-week' in UTC, such as '15 7 * * *' (every day at 7:15 UTC)."
        )
    import croniter  # noqa: PLC0415 (loaded only by apps with cron strings: ~15 ms)

    try:
        croniter.croniter(expr, datetime(2000, 1, 1, tzinfo=timezone.utc)).get_next(datetime)
    except croniter.CroniterBadDateError:
        raise InvalidCronError(f"Invalid cron string {expr!r}: it matches no date.") from None
    except (croniter.CroniterError, ValueError, KeyError) as e:
        raise InvalidCronError(f"Invalid cron string {expr!r}: {e}") from None
    return expr


def normalize_schedule(kind: str, raw: Any) -> dict[str, Any]:
    """Check a schedule as ``Crons.<kind>`` does; return its Convex JSON form."""
    if kind == "cron":
        return {"type": "cron", "cron": _check_cron_string(raw)}
    if kind not in _FIELDS:
        raise InvalidCronError(f"Unknown cron schedule type {kind!r}.")
    s: Mapping[str, Any] = {} if raw is None and kind == "hourly" else raw
    fields = ", ".join(_FIELDS[kind])
    if not isinstance(s, Mapping):
        raise InvalidCronError(f"The {kind} schedule must be a dict of {fields}; got {s!r}.")
    if unknown := sorted(set(s) - set(_FIELDS[kind]) - {"type"}):
        bad = unknown[0]
        raise InvalidCronError(f"Unknown field {bad!r} in the {kind} schedule: use {fields}.")
    if kind == "interval":
        units = [u for u in _FIELDS["interval"] if s.get(u) is not None]
        if len(units) != 1:
            raise InvalidCronError("Must specify one of seconds, minutes, or hours")
        n = _integer(s[units[0]], 1, math.inf, "Interval must be an integer greater than 0")
        return {"type": "interval", units[0]: n}
    out: dict[str, Any] = {"type": kind}
    if kind == "monthly":
        msg = "Day of month must be an integer from 1 to 31"
        out["day"] = _integer(s.get("day"), 1, 31, msg)
    if kind == "weekly":
        day = s.get("dayOfWeek")
        if not isinstance(day, str) or day not in DAYS_OF_WEEK:
            raise InvalidCronError('Day of week must be a string like "monday".')
        out["dayOfWeek"] = day
    if kind != "hourly":
        out["hourUTC"] = _hour(s)
    return out | _minute(s)


def _lattice_next(t: float, offset: float, period: float) -> float:
    """Smallest ``offset + k·period > t`` with k ≥ 0."""
    if offset > t:
        return offset
    n = offset + (math.floor((t - offset) / period) + 1) * period
    while n <= t:  # float rounding
        n += period
    return n


def _utc(ms: float) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def _ms(dt: datetime) -> float:
    return float(round(dt.timestamp() * 1000))


@dataclass(frozen=True)
class CronJob:
    """One registered cron: identifier, Convex schedule JSON, target function and arguments."""

    name: str
    schedule: dict[str, Any]
    fn: Any
    args: dict[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> str:
        """The target's function path (``"messages:send"``), resolved on each access."""
        return reference_path(self.fn)[0]

    @property
    def kind(self) -> str:
        return str(self.schedule["type"])

    def next_after(self, t_ms: float, *, anchor_ms: float | None = None) -> float:
        """The next run time strictly after ``t_ms`` (ms since the epoch, UTC).

        ``anchor_ms`` (deploy time, the first run) matters only for ``interval``; without it
        ``t_ms`` is taken as the previous run, so the result is ``t_ms + interval``.
        """
        s, kind = self.schedule, self.kind
        if kind == "interval":
            period = next(n * _UNIT_MS[u] for u, n in s.items() if u in _UNIT_MS)
            return _lattice_next(t_ms, t_ms if anchor_ms is None else anchor_ms, period)
        minute: int = s.get("minuteUTC", 0) * _MINUTE
        if kind == "hourly":
            return _lattice_next(t_ms, minute, _HOUR)
        if kind == "daily":
            return _lattice_next(t_ms, s["hourUTC"] * _HOUR + minute, _DAY)
        if kind == "weekly":  # 1970-01-01, the epoch, was a Thursday (index 4).
            days = (DAYS_OF_WEEK.index(s["dayOfWeek"]) - 4) % 7
            return _lattice_next(t_ms, days * _DAY + s["hourUTC"] * _HOUR + minute, 7 * _DAY)
        if kind == "monthly":
            now = _utc(t_ms)
            year, month = now.year, now.month
            while True:
                if s["day"] <= calendar.monthrange(year, month)[1]:
                    when = datetime(year, month, s["day"], s["hourUTC"], tzinfo=timezone.utc)
                    if (run := _ms(when) + minute) > t_ms:
                        return run
                year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        # cron: croniter's next match strictly after the minute containing t_ms.
        from croniter import croniter  # noqa: PLC0415 (see _check_cron_string)

        base = _utc(math.floor(t_ms / _MINUTE) * _MINUTE)
        return _ms(croniter(s["cron"], base).get_next(datetime))

    def occurrences_between(
        self, start_ms: float, end_ms: float, anchor_ms: float | None = None
    ) -> Iterator[float]:
        """Every run time in ``(start_ms, end_ms]``, in order."""
        if self.kind == "interval" and anchor_ms is None:
            anchor_ms = start_ms
        t = start_ms
        while (t := self.next_after(t, anchor_ms=anchor_ms)) <= end_ms:
            yield t

    def to_json(self) -> dict[str, Any]:
        """JSON-safe form (the target as its path, args in Convex's encoded JSON)."""
        return {
            "name": self.name,
            "schedule": dict(self.schedule),
            "fn": self.path,
            "args": to_internal_json(self.args),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CronJob:
        """Inverse of :meth:`to_json` (``fn`` comes back as the path string); re-validated."""
        raw: dict[str, Any] = dict(data["schedule"])
        kind = raw.pop("type")
        # cron: also accept the backend's field name, cronExpr.
        spec = raw.get("cron", raw.get("cronExpr")) if kind == "cron" else raw
        s = normalize_schedule(kind, spec)
        return cls(data["name"], s, data["fn"], from_internal_json(data.get("args", {})))


class Crons:
    """The cron jobs of an app, as Convex's ``Crons`` (``cron_jobs()`` makes one).

    ``jobs`` maps identifier → :class:`CronJob` in registration order; iterating yields the jobs.
    """

    def __init__(self) -> None:
        self.jobs: dict[str, CronJob] = {}

    def _schedule(self, name: Any, schedule: dict[str, Any], fn: Any, args: Any) -> None:
        if args is None:
            args = {}
        if not isinstance(args, Mapping):
            raise InvalidCronError(
                f"The arguments to a Convex function must be an object. Received: {args!r}"
            )
        if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):
            raise InvalidCronError(
                f"Invalid cron identifier {name}: use ASCII letters that are not control "
                "characters"
            )
        if name in self.jobs:
            raise InvalidCronError(f"Cron identifier registered twice: {name}")
        converted = convert(dict(args))
        if (size := value_size(converted)) > MAX_ARGS_SIZE:
            raise InvalidValueError(
                f"Arguments of cron {name!r} are too large ({size} bytes > maximum "
                f"{MAX_ARGS_SIZE} bytes)."
            )
        reference_path(fn)  # a FunctionError now, not when the cron first runs
        self.jobs[name] = CronJob(name, schedule, fn, converted)

    def interval(
        self, name: str, schedule: Mapping[str, Any], fn: Any, args: Any = None
    ) -> None:
        """Run ``fn`` every ``{"seconds"|"minutes"|"hours": n}``, starting at deploy time."""
        self._schedule(name, normalize_schedule("interval", schedule), fn, args)

    def hourly(
        self, name: str, schedule: Mapping[str, Any] | None, fn: Any, args: Any = None
    ) -> None:
        """Run ``fn`` every hour at ``{"minuteUTC": m}``."""
        self._schedule(name, normalize_schedule("hourly", schedule), fn, args)

    def daily(self, name: str, schedule: Mapping[str, Any], fn: Any, args: Any = None) -> None:
        """Run ``fn`` every day at ``{"hourUTC": h, "minuteUTC": m}``."""
        self._schedule(name, normalize_schedule("daily", schedule), fn, args)

    def weekly(self, name: str, schedule: Mapping[str, Any], fn: Any, args: Any = None) -> None:
        """Run ``fn`` every week at ``{"dayOfWeek": "monday", "hourUTC": h, "minuteUTC": m}``."""
        self._schedule(name, normalize_schedule("weekly", schedule), fn, args)

    def monthly(self, name: str, schedule: Mapping[str, Any], fn: Any, args: Any = None) -> None:
        """Run ``fn`` monthly at ``{"day": 1..31, "hourUTC", "minuteUTC"}`` (days > 28 skip
        the months that lack them)."""
        self._schedule(name, normalize_schedule("monthly", schedule), fn, args)

    def cron(self, name: str, cron: str, fn: Any, args: Any = None) -> None:
        """Run ``fn`` on a 5-field cron string in UTC (``"15 7 * * *"``; Sunday is 0)."""
        self._schedule(name, normalize_schedule("cron", cron), fn, args)

    def __iter__(self) -> Iterator[CronJob]:
        return iter(list(self.jobs.values()))

    def __len__(self) -> int:
        return len(self.jobs)

    def __contains__(self, name: object) -> bool:
        return name in self.jobs

    def __getitem__(self, name: str) -> CronJob:
        return self.jobs[name]

    def __repr__(self) -> str:
        return f"<Crons {list(self.jobs)!r}>"

    def to_json(self) -> list[dict[str, Any]]:
        return [job.to_json() for job in self.jobs.values()]

    @classmethod
    def from_json(cls, data: list[Mapping[str, Any]]) -> Crons:
        crons = cls()
        for item in data:
            job = CronJob.from_json(item)
            crons.jobs[job.name] = job
        return crons


def cron_jobs() -> Crons:
    """A new, empty set of cron jobs (Convex's ``cronJobs()``)."""
    return Crons()

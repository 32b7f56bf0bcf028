"""``ctx.scheduler``: scheduling functions from mutations and actions (reference §8).

A scheduled function is a document in the system table ``_scheduled_functions``::

    {_id, _creationTime, name: "<function path>", args: [<args object>], scheduledTime: ms,
     completedTime?: ms, state: {kind: "pending" | "inProgress" | "success" | "canceled"}
                                | {kind: "failed", error: "<message>"}}

Invariants
----------
* From a mutation, scheduling writes that document in the mutation's own transaction: if the
  mutation throws (or a nested ``run_mutation`` that scheduled is rolled back), nothing is
  scheduled. From an action it is committed at once, whatever the action does next.
* ``run_after(ms)`` counts from the function's start time (Convex freezes ``Date.now()`` at the
  start of a mutation); the target must be within ±5 years, exist now, and be a mutation or an
  action. Arguments are converted by the target's validators when they pass; otherwise they are
  kept as given and the validation error surfaces when the job runs, as in Convex.
* At most 1,000 functions per mutation and 16 MiB of their arguments in total.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from convex_lab.errors import FunctionError, InvalidIdError, LimitExceededError
from convex_lab.ids import decode_id
from convex_lab.values import convert, value_size

if TYPE_CHECKING:
    from convex_lab._runtime import Frame
    from convex_lab.ids import Id
    from convex_lab.store.engine import Store
    from convex_lab.store.transaction import Transaction

SCHEDULED = "_scheduled_functions"
MAX_PER_MUTATION = 1_000
MAX_ARGS_TOTAL = 16 * 1024 * 1024
WITHIN_MS = 5 * 366 * 86_400_000


def _ms(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FunctionError(
            f"{what} must be a number of milliseconds (or a timedelta/datetime); got {value!r}.",
            code="InvalidScheduledFunctionDelay")
    ms = float(value)
    if not math.isfinite(ms):
        raise FunctionError(f"{what} must be finite; got {value!r}.",
                            code="InvalidScheduledFunctionDelay")
    return ms


class Scheduler:
    """``ctx.scheduler`` of one function execution (see module docstring). The backend plugs it
    into ctx objects with ``executor.provide("scheduler", Scheduler)``."""

    __slots__ = ("_frame",)

    def __init__(self, frame: Frame) -> None:
        self._frame = frame

    def run_after(self, delay: float | timedelta, fn: Any, args: Any = None) -> Id:
        """Run ``fn(args)`` ``delay`` ms (or a ``timedelta``) after this function started."""
        ms = (delay.total_seconds() * 1000.0 if isinstance(delay, timedelta)
              else _ms(delay, "run_after's delay"))
        if ms < 0:
            raise FunctionError(f"run_after's delay must be ≥ 0 ms; got {ms}.",
                                code="InvalidScheduledFunctionDelay")
        return self._schedule(self._frame.started + ms, fn, args)

    def run_at(self, when: float | datetime, fn: Any, args: Any = None) -> Id:
        """Run ``fn(args)`` at ``when``: ms since the epoch, or a ``datetime`` (naive = UTC).
        A time in the past runs as soon as possible."""
        if isinstance(when, datetime):
            aware = when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)
            ms = aware.timestamp() * 1000.0
        else:
            ms = _ms(when, "run_at's time")
        return self._schedule(ms, fn, args)

    def cancel(self, job_id: str) -> None:
        """Cancel a scheduled function: if it has not started it never runs. A running action
        keeps running (its state still reads ``canceled`` afterwards). Finished jobs are left
        as they are."""
        frame = self._frame
        cancel_job(frame.executor.store, job_id, frame.executor.clock.now(), tx=frame.tx)

    # --------------------------------------------------------------------------------------
    def _schedule(self, when: float, fn: Any, args: Any) -> Id:
        frame = self._frame
        executor = frame.executor
        now = frame.started
        if abs(when - now) > WITHIN_MS:
            raise FunctionError(
                f"Scheduled time {when} is more than 5 years from now ({now}): "
                "schedule within ±5 years.", code="InvalidScheduledFunctionDelay")
        try:
            target = executor.resolve(fn, None, public_only=False, caller="scheduler")
        except FunctionError as e:
            raise FunctionError(f"InvalidScheduledFunction: {e}",
                                code="InvalidScheduledFunction") from None
        if target.kind not in ("mutation", "action"):
            raise FunctionError(
                f"InvalidScheduledFunction: {target.path} is a {target.kind}; only mutations "
                "and actions can be scheduled.", code="InvalidScheduledFunction")
        given = {} if args is None else args
        converted = _convert_args(target, given, executor.store)
        doc = {"name": target.path, "args": [converted], "scheduledTime": float(when),
               "state": {"kind": "pending"}}
        tx = frame.tx
        if tx is None:  # an action: scheduled at once, whatever the action does next
            return executor.store.run(lambda t: t.insert(SCHEDULED, doc))
        count = getattr(tx, "scheduled_count", 0) + 1
        total = getattr(tx, "scheduled_bytes", 0) + value_size(converted)
        if count > MAX_PER_MUTATION:
            raise LimitExceededError(
                f"Too many functions scheduled by this mutation (limit: {MAX_PER_MUTATION}). "
                "Schedule one function that schedules the rest.",
                code="TooManyFunctionsScheduled")
        if total > MAX_ARGS_TOTAL:
            raise LimitExceededError(
                "Scheduled functions' arguments are too large in total (limit: 16 MiB per "
                "mutation).", code="ScheduledFunctionsArgumentsTooLarge")
        tx.scheduled_count, tx.scheduled_bytes = count, total  # type: ignore[attr-defined]
        return tx.insert(SCHEDULED, doc)


def cancel_job(store: Store, job_id: Any, now: float, *, tx: Transaction | None = None) -> None:
    """Mark a pending or running job ``canceled`` at ``now``: in ``tx`` (a mutation's), else in
    a transaction of its own. ``job_id`` must be a ``_scheduled_functions`` ID."""
    job = str(job_id)
    try:
        number, _ = decode_id(job)
    except InvalidIdError:
        raise InvalidIdError(f"cancel() takes the ID returned by run_after/run_at; "
                             f"{job_id!r} is not one.") from None
    if store.table_name_for_number(number) != SCHEDULED:
        raise InvalidIdError(f"cancel() takes a _scheduled_functions ID; {job_id!r} is an ID "
                             f"of table {store.table_name_for_number(number)!r}.")

    def body(t: Transaction) -> None:
        table = t.store.tables[SCHEDULED]
        doc = t.get(table, job)
        if doc is not None and doc["state"]["kind"] in ("pending", "inProgress"):
            t.patch(table, job, {"state": {"kind": "canceled"}, "completedTime": now})

    if tx is not None:
        body(tx)
    else:
        store.run(body)


def _convert_args(target: Any, args: Any, store: Store) -> Any:
    """The target's validators convert when they accept (an int for a v.int64() stays int64);
    otherwise the plain conversion is stored and the error appears when the job runs."""
    validator = getattr(target, "args_validator", None)
    if validator is not None and isinstance(args, dict):
        try:
            return validator.validate(args, tables=store.table_name_for_number)
        except Exception:  # noqa: BLE001 (surfaced at run time, as in Convex)
            pass
    return convert(args)

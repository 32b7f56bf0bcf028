"""Runs an app's crons (reference §9): state in the ``_cron_jobs`` system table, runs as jobs.

Each cron has one document ``{name, schedule, fn, args, nextRun, lastJob?}``. When ``nextRun``
is due, one transaction creates the run's job in ``_scheduled_functions`` (``scheduledTime`` =
the run's time, so cron runs are visible as jobs and in the logs) and moves ``nextRun`` on; the
job runner then executes it with the usual guarantees.

* **One run at a time:** a run is not started while the cron's previous job is still pending or
  in progress.
* **No catch-up with the real clock:** after a run, the next time is the first occurrence after
  *now*; occurrences already in the past are skipped and reported (Convex's
  "SkippingPastScheduledRuns"). With a virtual clock ``advance`` visits every occurrence in
  order, so an hourly cron advanced by a day runs 24 times (docs/api.md).
* **Deploys:** a new cron starts from the deploy time (an ``interval`` cron runs at once, as in
  Convex); a changed schedule restarts from now; a removed cron's document is deleted.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from convex_lab.scheduler.jobs import SCHEDULED
from convex_lab.values import dumps_export

if TYPE_CHECKING:
    from convex_lab.scheduler.crons import CronJob, Crons
    from convex_lab.scheduler.runner import JobRunner
    from convex_lab.store.transaction import Transaction

CRONS = "_cron_jobs"


class CronRunner:
    """The crons of one backend; owned by its :class:`JobRunner`."""

    def __init__(self, runner: JobRunner, crons: Crons) -> None:
        self.runner = runner
        self.store = runner.store
        self.clock = runner.clock
        self.crons: dict[str, CronJob] = {}
        self.sync(crons)

    def _docs(self) -> dict[str, dict[str, Any]]:
        return {d["name"]: d for d in self.store.tables[CRONS].docs.values()}

    def sync(self, crons: Crons | None) -> None:
        """Make the stored cron state match ``crons`` (the deployed code)."""
        wanted = {job.name: job for job in crons} if crons is not None else {}
        now = self.clock.now()

        def body(tx: Transaction) -> None:
            table = tx.store.tables[CRONS]
            stored = {d["name"]: d for d in table.docs.values()}
            for name, doc in stored.items():
                if name not in wanted:
                    tx.delete(table, doc["_id"])
            for name, job in wanted.items():
                fields = {"name": name, "schedule": dumps_export(job.schedule), "fn": job.path,
                          "args": job.args}
                old = stored.get(name)
                if old is None or old["schedule"] != fields["schedule"]:
                    first = now if job.kind == "interval" else job.next_after(now)
                    if old is None:
                        tx.insert(CRONS, {**fields, "nextRun": first})
                    else:
                        tx.patch(table, old["_id"], {**fields, "nextRun": first})
                elif old["fn"] != fields["fn"] or old["args"] != fields["args"]:
                    tx.patch(table, old["_id"], {"fn": job.path, "args": job.args})

        self.store.run(body)
        self.crons = wanted

    def next_time(self) -> float | None:
        times = [d["nextRun"] for d in self._docs().values() if not self._busy(d)]
        return min(times) if times else None

    def _busy(self, doc: dict[str, Any]) -> bool:
        last = doc.get("lastJob")
        if last is None:
            return False
        job = self.store.tables[SCHEDULED].docs.get(last)
        return job is not None and job["state"]["kind"] in ("pending", "inProgress")

    def run_due(self, now: float) -> int:
        """Start the run of every cron due at ``now``; returns how many started."""
        started = 0
        for name, doc in sorted(self._docs().items(), key=lambda kv: kv[1]["nextRun"]):
            if doc["nextRun"] > now or self._busy(doc) or name not in self.crons:
                continue
            self._start(self.crons[name], doc, now)
            started += 1
        return started

    def _start(self, job: CronJob, doc: dict[str, Any], now: float) -> None:
        due = doc["nextRun"]
        virtual = self.clock.kind == "virtual"
        anchor = due if job.kind == "interval" else None
        nxt = job.next_after(due if virtual else max(due, now), anchor_ms=anchor)
        if not virtual:
            skipped = sum(1 for _ in job.occurrences_between(due, now, anchor_ms=anchor))
            if skipped:
                sys.stderr.write(f"convex_lab: cron {job.name!r}: skipping {skipped} run(s) "
                                 "because they are in the past (no catch-up).\n")

        def body(tx: Transaction) -> None:
            current = tx.get(tx.store.tables[CRONS], doc["_id"])
            if current is None or current["nextRun"] != due:
                return  # another runner started this run already
            job_id = tx.insert(SCHEDULED, {"name": job.path, "args": [job.args],
                                           "scheduledTime": float(due),
                                           "state": {"kind": "pending"}})
            tx.patch(tx.store.tables[CRONS], doc["_id"], {"nextRun": nxt,
                                                          "lastJob": str(job_id)})

        self.store.run(body)

    def state(self) -> list[dict[str, Any]]:
        """Each cron: name, schedule, function, next run, last run's state (for widgets)."""
        jobs = self.store.tables[SCHEDULED].docs
        out = []
        for name, doc in sorted(self._docs().items()):
            last = jobs.get(doc.get("lastJob", ""))
            out.append({"name": name, "schedule": self.crons[name].schedule
                        if name in self.crons else None, "function": doc["fn"],
                        "nextRun": doc["nextRun"],
                        "lastRun": None if last is None else {
                            "scheduledTime": last["scheduledTime"], "state": last["state"],
                            "completedTime": last.get("completedTime")}})
        return out

"""``backend.scheduler``: runs scheduled functions and crons when they fall due (reference §8, §9).

Guarantees
----------
* **Mutations exactly once.** A job's mutation runs in one transaction that first checks the job
  is still ``pending`` and, after the handler, marks it ``success``: the state change commits with
  the job's writes or not at all. OCC conflicts re-run it (no retry limit, as in Convex); a user
  error marks the job ``failed`` (in a transaction of its own) and it is not retried.
* **Actions at most once.** The job is marked ``inProgress`` in its own commit before the action
  runs, then ``success`` or ``failed``. Opening a store finds jobs left ``inProgress`` by a killed
  process and marks them ``failed`` ("Transient error while executing action"), never re-running.
* **No identity.** Scheduled runs carry no caller identity.
* **Time.** With a virtual clock, jobs run only inside ``clock.advance``, in time order, each at
  its scheduled time. With the real clock they run by themselves: on the kernel's event loop when
  the backend was made inside one (between cells, or while a cell awaits), elsewhere on a
  background thread; either way a timer sleeps until the next due time (no CPU while idle).
* **Durability.** Pending jobs are rows of ``_scheduled_functions``; reopening a file picks them
  up, and jobs that fell due while the process was down run once the backend is open and their
  function is deployed (a job whose function is gone fails with a clear error).
"""

from __future__ import annotations

import asyncio
import heapq
import threading
import time
import traceback
from typing import TYPE_CHECKING, Any

from convex_lab._loop import kernel_loop
from convex_lab.errors import FunctionError, OptimisticConcurrencyControlFailure
from convex_lab.scheduler.jobs import SCHEDULED, cancel_job

if TYPE_CHECKING:
    from convex_lab.clock import Clock
    from convex_lab.executor import Executor
    from convex_lab.store.commits import Commit
    from convex_lab.store.transaction import Transaction

RUNAWAY_LIMIT = 10_000


class _NotPending(BaseException):
    pass


class JobRunner:
    """Runs the jobs of one deployment (its executor); see the module docstring.
    ``backend.scheduler``."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        self.store = executor.store
        self.clock: Clock = executor.clock
        self._heap: list[tuple[float, float, str]] = []  # (scheduledTime, _creationTime, id)
        self._lock = threading.RLock()
        self._run_lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._stopped = False
        self._thread: threading.Thread | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._loop = kernel_loop()
        self.crons: Any = None  # set by scheduler.crons integration (CronRunner), if any
        self._parked: dict[str, list[str]] = {}  # function path -> jobs waiting for it
        self._recover()
        app = executor.app
        if app is not None and app.crons:
            self._sync_crons(app.crons)
        self._unsubscribe = [
            self.store.commits.subscribe(self._on_commit),
            executor.registered.subscribe(self._registered),
            executor.deployed.subscribe(self.deployed),
            self.clock.on_advance(self._on_advance),
        ]
        if self.clock.kind == "real":
            self._start_timers()

    # Loading and watching --------------------------------------------------------------------
    def _recover(self) -> None:
        """Pick up pending jobs; fail actions a previous process left in progress."""
        table = self.store.tables[SCHEDULED]
        stale = []
        for doc in list(table.docs.values()):
            kind = doc["state"]["kind"]
            if kind == "pending":
                heapq.heappush(self._heap, (doc["scheduledTime"], doc["_creationTime"],
                                            doc["_id"]))
            elif kind == "inProgress":
                stale.append(doc["_id"])
        if stale:
            now = self.clock.now()

            def fail(tx: Transaction) -> None:
                t = tx.store.tables[SCHEDULED]
                for job in stale:
                    tx.patch(t, job, {"state": {"kind": "failed",
                                                "error": "Transient error while executing action"},
                                      "completedTime": now})

            self.store.run(fail)

    def _on_commit(self, commit: Commit) -> None:
        writes = commit.writes.get(SCHEDULED)
        if not writes:
            return
        added = False
        with self._lock:
            for doc_id, (old, new) in writes.items():
                if new is not None and new["state"]["kind"] == "pending" and (
                        old is None or old["state"]["kind"] != "pending"):
                    heapq.heappush(self._heap, (new["scheduledTime"], new["_creationTime"],
                                                doc_id))
                    added = True
        if added:
            self._wake()

    def _registered(self, fn: Any) -> None:
        """A function was (re)defined: jobs parked waiting for it can run now."""
        with self._lock:
            jobs = self._parked.pop(fn.path, None)
            if not jobs:
                return
            table = self.store.tables[SCHEDULED]
            for job_id in jobs:
                doc = table.docs.get(job_id)
                if doc is not None and doc["state"]["kind"] == "pending":
                    heapq.heappush(self._heap, (doc["scheduledTime"], doc["_creationTime"],
                                                job_id))
        self._wake()

    def _sync_crons(self, crons: Any) -> None:
        from convex_lab.scheduler.cron_runner import CronRunner  # noqa: PLC0415

        if self.crons is None:
            self.crons = CronRunner(self, crons)
        else:
            self.crons.sync(crons)

    def deployed(self, app: Any) -> None:
        """Code was deployed: fail jobs whose function it does not have; follow a new app."""
        if app.crons or self.crons is not None:
            self._sync_crons(app.crons)
        with self._lock:
            parked, self._parked = self._parked, {}
        table = self.store.tables[SCHEDULED]
        for path, jobs in parked.items():
            if app.function(path) is not None:
                with self._lock:
                    for job_id in jobs:
                        doc = table.docs.get(job_id)
                        if doc is not None and doc["state"]["kind"] == "pending":
                            heapq.heappush(self._heap, (doc["scheduledTime"],
                                                        doc["_creationTime"], job_id))
                continue
            for job_id in jobs:
                self._finish(job_id, f"Could not find function for '{path}': the deployed code "
                                     "has no such function (was it renamed or removed?).",
                             only_if="pending")
        self._wake()

    # Inspection ------------------------------------------------------------------------------
    def jobs(self) -> list[dict[str, Any]]:
        """The ``_scheduled_functions`` documents, oldest first."""
        from convex_lab.store.database import DatabaseReader  # noqa: PLC0415

        return self.store.run(
            lambda tx: DatabaseReader(tx).system.query(SCHEDULED).collect(), read_only=True)

    def cancel(self, job_id: str) -> None:
        """Cancel a job as the notebook's owner (the jobs widget's Cancel button): the same
        checks and transaction as ``ctx.scheduler.cancel``."""
        cancel_job(self.store, job_id, self.clock.now())

    def next_time(self) -> float | None:
        """When the next pending job (or cron run) is due, in ms since the epoch."""
        with self._lock:
            self._drop_stale()
            nxt = self._heap[0][0] if self._heap else None
        if self.crons is not None:
            c = self.crons.next_time()
            if c is not None and (nxt is None or c < nxt):
                nxt = c
        return nxt

    def _drop_stale(self) -> None:
        table = self.store.tables[SCHEDULED]
        heap = self._heap
        while heap:
            doc = table.docs.get(heap[0][2])
            if doc is not None and doc["state"]["kind"] == "pending":
                return
            heapq.heappop(heap)

    # Running ---------------------------------------------------------------------------------
    def run_due(self, now: float | None = None) -> int:
        """Run every job (and cron run) due at ``now`` (default: the clock's time), in order."""
        done = 0
        with self._run_lock:
            while True:
                at = self.clock.now() if now is None else now
                if self.crons is not None:
                    done += self.crons.run_due(at)
                job = self._pop_due(at)
                if job is None:
                    return done
                self.run_job(job)
                done += 1
                if done > RUNAWAY_LIMIT:
                    raise FunctionError(
                        f"More than {RUNAWAY_LIMIT} scheduled functions ran without time moving: "
                        "a function keeps scheduling work that is due at once (run_after(0) in a "
                        "loop?).", code="RunawayScheduling")

    def wait_idle(self, *, max_jobs: int = RUNAWAY_LIMIT) -> int:
        """Run everything due now, including what those runs schedule for now; returns how many
        ran. Raises if more than ``max_jobs`` ran (runaway self-scheduling)."""
        ran = 0
        with self._run_lock:
            while True:
                n = self.run_due()
                ran += n
                if n == 0:
                    return ran
                if ran > max_jobs:
                    raise FunctionError(f"wait_idle ran more than {max_jobs} jobs: a function "
                                        "keeps scheduling itself for now.",
                                        code="RunawayScheduling")

    def _pop_due(self, now: float) -> str | None:
        with self._lock:
            self._drop_stale()
            if self._heap and self._heap[0][0] <= now:
                return heapq.heappop(self._heap)[2]
        return None

    def run_job(self, job_id: str) -> None:
        """Run one job if it is still pending (see the guarantees above)."""
        table = self.store.tables[SCHEDULED]
        doc = table.docs.get(job_id)
        if doc is None or doc["state"]["kind"] != "pending":
            return
        path, args = doc["name"], doc["args"][0] if doc["args"] else {}
        app = self.executor.app
        fn = app.function(path) if app is not None else None
        if fn is None:
            # After a restart a notebook registers its functions cell by cell: wait for this one
            # (it runs when defined) until code is deployed without it (deploy() fails it).
            with self._lock:
                self._parked.setdefault(path, []).append(job_id)
            return
        if fn.kind not in ("mutation", "action"):
            self._finish(job_id, f"'{path}' is a {fn.kind}: only mutations and actions can be "
                                 "scheduled.", only_if="pending")
            return
        if fn.kind == "mutation":
            self._run_mutation(job_id, path, args)
        else:
            self._run_action(job_id, path, args)

    def _run_mutation(self, job_id: str, path: str, args: Any) -> None:
        def before(tx: Transaction) -> None:
            job = tx.get(tx.store.tables[SCHEDULED], job_id)
            if job is None or job["state"]["kind"] != "pending":
                raise _NotPending

        def after(tx: Transaction) -> None:
            tx.patch(tx.store.tables[SCHEDULED], job_id,
                     {"state": {"kind": "success"}, "completedTime": self.clock.now()})

        while True:
            try:
                self.executor.call(path, args, kind="mutation", caller="scheduler",
                                   tx_hooks=(before, after))
                return
            except _NotPending:
                return
            except OptimisticConcurrencyControlFailure:
                continue  # scheduled mutations keep retrying OCC (reference §8)
            except Exception as e:  # noqa: BLE001 (a user error fails the job, once)
                self._finish(job_id, _message(e), only_if="pending")
                return

    def _run_action(self, job_id: str, path: str, args: Any) -> None:
        def start(tx: Transaction) -> bool:
            t = tx.store.tables[SCHEDULED]
            job = tx.get(t, job_id)
            if job is None or job["state"]["kind"] != "pending":
                return False
            tx.patch(t, job_id, {"state": {"kind": "inProgress"}})
            return True

        if not self.store.run(start):
            return
        try:
            self.executor.call(path, args, kind="action", caller="scheduler")
        except Exception as e:  # noqa: BLE001 (at most once: never retried)
            self._finish(job_id, _message(e), only_if="inProgress")
            return
        self._finish(job_id, None, only_if="inProgress")

    def _finish(self, job_id: str, error: str | None, *, only_if: str) -> None:
        now = self.clock.now()
        state = {"kind": "success"} if error is None else {"kind": "failed", "error": error}

        def body(tx: Transaction) -> None:
            t = tx.store.tables[SCHEDULED]
            job = tx.get(t, job_id)
            if job is not None and job["state"]["kind"] == only_if:
                tx.patch(t, job_id, {"state": state, "completedTime": now})

        self.store.run(body, retries=100)

    # Time ------------------------------------------------------------------------------------
    def _on_advance(self, clock: Any, target: float) -> None:
        """Virtual clock: run what falls due up to ``target``, each at its own time."""
        while True:
            nxt = self.next_time()
            if nxt is None or nxt > target:
                break
            clock.move_to(nxt)
            if self.run_due(nxt) == 0 and self.next_time() == nxt:
                break  # nothing could run (defensive: never spin)

    def _start_timers(self) -> None:
        if self._loop is not None:
            self._arm_loop()
            return
        self._thread = threading.Thread(target=self._thread_main, name="convex_lab-scheduler",
                                        daemon=True)
        self._thread.start()

    def _wake(self) -> None:
        if self.clock.kind != "real" or self._stopped:
            return
        if self._loop is not None:
            if threading.current_thread() is threading.main_thread():
                self._arm_loop()
            else:
                self._loop.call_soon_threadsafe(self._arm_loop)
            return
        with self._cond:
            self._cond.notify()

    def _arm_loop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._stopped or self._loop is None or self._loop.is_closed():
            return
        nxt = self.next_time()
        if nxt is None:
            return
        delay = max(0.0, (nxt - self.clock.now()) / 1000.0)
        self._timer = self._loop.call_later(delay, self._tick)

    def _tick(self) -> None:
        self._timer = None
        try:
            self.run_due()
        except Exception:  # noqa: BLE001 (keep the timer alive; report)
            traceback.print_exc()
        self._arm_loop()

    def _thread_main(self) -> None:
        while True:
            with self._cond:
                if self._stopped:
                    return
                nxt = self.next_time()
                timeout = None if nxt is None else (nxt - self.clock.now()) / 1000.0
                if timeout is None or timeout > 0:
                    self._cond.wait(timeout)  # sleeps: no CPU while nothing is due
                    continue
            try:
                self.run_due()
            except Exception:  # noqa: BLE001 (keep running; report)
                traceback.print_exc()
                time.sleep(0.05)

    def close(self) -> None:
        self._stopped = True
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        if self._timer is not None:
            self._timer.cancel()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)


def _message(e: BaseException) -> str:
    from convex_lab.errors import ConvexError  # noqa: PLC0415

    if isinstance(e, ConvexError):
        return f"Uncaught ConvexError: {e}"
    return f"{type(e).__name__}: {e}" if not str(e).startswith(type(e).__name__) else str(e)


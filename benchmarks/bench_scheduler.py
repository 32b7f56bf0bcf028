"""P8: the scheduler.

* Idle CPU with 10,000 pending jobs (real clock, all due in an hour): CPU seconds the process
  uses over 2 s of wall time. Anchor: the same 2 s of a process doing nothing (time.sleep).
* ``run_after(0)`` start latency (real clock): from calling the scheduling mutation to the job's
  first line (so it includes that mutation), median of 50. Anchor: a thread wake-up
  (Event.set → wait returns), same run.
* Per-job overhead: running N scheduled mutation jobs (``wait_idle``) vs N direct
  ``backend.mutation`` calls of the same mutation.
"""

from __future__ import annotations

import statistics
import threading
import time
from typing import Any

import convex_lab as cl
from benchmarks._common import Row, interleave, rounds


def _app() -> tuple[cl.App, dict[str, Any], list[float]]:
    app = cl.App()
    started: list[float] = []

    @app.mutation
    def work(ctx: Any, n: float) -> None:
        started.append(time.perf_counter())
        ctx.db.insert("done", {"n": n})

    @app.mutation
    def later(ctx: Any, count: float, delay: float) -> None:
        for i in range(int(count)):
            ctx.scheduler.run_after(delay, work, {"n": float(i)})

    return app, {"work": work, "later": later}, started


def idle_cpu() -> tuple[float, float]:
    app, f, _ = _app()
    backend = cl.Backend(app=app)
    for _ in range(10):
        backend.mutation(f["later"], {"count": 1000, "delay": 3_600_000})
    assert len(backend.scheduler.jobs()) == 10_000
    c0, w0 = time.process_time(), time.perf_counter()
    time.sleep(2.0)
    ours = (time.process_time() - c0) / (time.perf_counter() - w0)
    c0, w0 = time.process_time(), time.perf_counter()
    time.sleep(2.0)
    anchor = (time.process_time() - c0) / (time.perf_counter() - w0)
    backend.close()
    return ours * 100, anchor * 100


def start_latency() -> tuple[float, float]:
    app, f, started = _app()
    backend = cl.Backend(app=app)
    lat = []
    for _ in range(50):
        started.clear()
        t0 = time.perf_counter()  # before the call: includes the scheduling mutation itself
        backend.mutation(f["later"], {"count": 1, "delay": 0})
        while not started:
            time.sleep(0.0002)
        lat.append((started[0] - t0) * 1e3)
    backend.close()
    wake = []
    for _ in range(50):
        ev = threading.Event()
        box: list[float] = []
        th = threading.Thread(target=lambda ev=ev, box=box: (ev.wait(), box.append(
            time.perf_counter())))
        th.start()
        time.sleep(0.001)
        t0 = time.perf_counter()
        ev.set()
        th.join()
        wake.append((box[0] - t0) * 1e3)
    return statistics.median(lat), statistics.median(wake)


def per_job() -> tuple[float, float, float]:
    n = 2000
    app, f, _ = _app()
    backend = cl.Backend(app=app, clock="virtual")

    def jobs() -> float:
        for _ in range(n // 1000):  # Convex allows 1,000 per mutation
            backend.mutation(f["later"], {"count": 1000, "delay": 0})
        t0 = time.perf_counter()
        backend.scheduler.wait_idle()
        return (time.perf_counter() - t0) / n * 1e6

    def direct() -> float:
        t0 = time.perf_counter()
        for i in range(n):
            backend.mutation(f["work"], {"n": float(i)})
        return (time.perf_counter() - t0) / n * 1e6

    out = interleave(jobs, direct, rounds())
    backend.close()
    return out


def bench_p8() -> list[Row]:
    cpu, cpu_anchor = idle_cpu()
    lat, wake = start_latency()
    job_us, direct_us, _ = per_job()
    return [
        Row("P8", "idle CPU, 10,000 pending jobs (%)", cpu, "%", "idle process", cpu_anchor,
            False, "≈ 0 (no busy wait)", cpu < 1.0),
        Row("P8", "run_after(0) start latency (p50)", lat, "ms", "thread wake-up", wake, False,
            "≤ 5 ms", lat <= 5.0),
        Row("P8", "per scheduled mutation job", job_us, "µs", "direct mutation call",
            direct_us, False, "(overhead)", None),
    ]

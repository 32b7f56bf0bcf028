"""C1 to C3: the aggregate component (issue 13, "Performance").

* C1 — reads over ``BENCH_AGG_ITEMS`` items (default 1,000,000): ``count`` and ``sum`` with
  random bounds and ``at(offset)``, each timed inside one query that makes many calls (so the
  figure is the call, not the query around it). Anchor: a ``sortedcontainers.SortedList``
  holding the same keys (``bisect`` for a count, indexing for ``at``). Goal: ≤ 100 µs a call.
* C2 — a mutation inserting a document and its aggregate item (``board.writer(...).insert``)
  into that tree vs the same mutation inserting the document alone. Goal: ≤ 3×.
* C3 — 8 threads each running mutations that insert into one aggregate vs 8 threads each
  incrementing one hot counter document (every such mutation conflicts with every concurrent
  one). Goal: ≥ 4× the counter's throughput.

The tree is built with ``btree:insert_batch`` mutations of 500 items (a backfill); the build
time is printed to stderr.
"""

from __future__ import annotations

import os
import random
import sys
import threading
import time
from typing import Any

import convex_lab as cl
from benchmarks._common import Row, interleave, rounds
from convex_lab import v
from convex_lab.components.aggregate import Aggregate
from convex_lab.components.aggregate import component as aggregate

CALLS = 200  # calls timed inside one query


def items() -> int:
    return int(os.environ.get("BENCH_AGG_ITEMS", "1000000"))


def make_app() -> tuple[cl.App, Aggregate, dict[str, Any]]:
    app = cl.App(schema=cl.define_schema({
        "scores": cl.define_table({"score": v.float64()}),
        "counters": cl.define_table({"n": v.float64()}),
    }))
    app.use(aggregate, name="board")
    board = Aggregate(app.components.board, sort_key=lambda d: d["score"],
                      sum_value=lambda d: d["score"])

    @app.query(name="time_counts")
    def time_counts(ctx: Any, bounds: list[Any]) -> float:
        t0 = time.perf_counter()
        for lo, hi in bounds:
            board.count(ctx, {"lower": {"key": lo, "inclusive": True},
                              "upper": {"key": hi, "inclusive": False}})
        return (time.perf_counter() - t0) / len(bounds) * 1e6

    @app.query(name="time_sums")
    def time_sums(ctx: Any, bounds: list[Any]) -> float:
        t0 = time.perf_counter()
        for lo, hi in bounds:
            board.sum(ctx, {"lower": {"key": lo, "inclusive": True},
                            "upper": {"key": hi, "inclusive": False}})
        return (time.perf_counter() - t0) / len(bounds) * 1e6

    @app.query(name="time_at")
    def time_at(ctx: Any, offsets: list[float]) -> float:
        t0 = time.perf_counter()
        for offset in offsets:
            board.at(ctx, int(offset))
        return (time.perf_counter() - t0) / len(offsets) * 1e6

    @app.mutation(name="add_tracked")
    def add_tracked(ctx: Any, score: float) -> Any:
        return board.writer(ctx, "scores").insert({"score": score})

    @app.mutation(name="add_plain")
    def add_plain(ctx: Any, score: float) -> Any:
        return ctx.db.insert("scores", {"score": score})

    @app.mutation(name="bump")
    def bump(ctx: Any, counter: str) -> None:
        doc = ctx.db.get(counter)
        ctx.db.patch(counter, {"n": doc["n"] + 1})

    @app.mutation(name="new_counter")
    def new_counter(ctx: Any) -> Any:
        return ctx.db.insert("counters", {"n": 0.0})

    return app, board, {"time_counts": time_counts, "time_sums": time_sums,
                        "time_at": time_at, "add_tracked": add_tracked,
                        "add_plain": add_plain, "bump": bump, "new_counter": new_counter}


def build(backend: cl.Backend, app: cl.App, keys: list[float]) -> None:
    t0 = time.perf_counter()
    batch = 500  # a function may read at most 4,096 ranges: keep a batch well under
    for start in range(0, len(keys), batch):
        chunk = keys[start:start + batch]
        backend.mutation(app.components.board.btree.insert_batch, {
            "items": [{"namespace": None, "key": k, "id": f"seed{start + i:08d}",
                       "sumValue": k} for i, k in enumerate(chunk)],
            "maxNodeSize": 16.0})
    print(f"  built an aggregate of {len(keys):,} items in {time.perf_counter() - t0:.1f} s",
          file=sys.stderr)


def _anchor_counts(sorted_keys: Any, bounds: list[tuple[float, float]]) -> float:
    t0 = time.perf_counter()
    for lo, hi in bounds:
        sorted_keys.bisect_left(hi) - sorted_keys.bisect_left(lo)
    return (time.perf_counter() - t0) / len(bounds) * 1e6


def _anchor_sums(prefix: list[float], sorted_keys: Any,
                 bounds: list[tuple[float, float]]) -> float:
    t0 = time.perf_counter()
    for lo, hi in bounds:
        prefix[sorted_keys.bisect_left(hi)] - prefix[sorted_keys.bisect_left(lo)]
    return (time.perf_counter() - t0) / len(bounds) * 1e6


def _anchor_at(sorted_keys: Any, offsets: list[float]) -> float:
    t0 = time.perf_counter()
    for offset in offsets:
        sorted_keys[int(offset)]
    return (time.perf_counter() - t0) / len(offsets) * 1e6


def threaded(call: Any, threads: int, per_thread: int) -> float:
    barrier = threading.Barrier(threads + 1)

    def work() -> None:
        barrier.wait()
        for _ in range(per_thread):
            call()

    ts = [threading.Thread(target=work) for _ in range(threads)]
    for t in ts:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in ts:
        t.join()
    return threads * per_thread / (time.perf_counter() - t0)


def bench_c1() -> list[Row]:
    from sortedcontainers import SortedList  # the anchor (test extra)

    n = items()
    rng = random.Random(13)
    keys = [float(rng.randrange(10 * n)) for _ in range(n)]
    app, _, fns = make_app()
    backend = cl.Backend(app=app)
    build(backend, app, keys)
    sorted_keys = SortedList(keys)
    prefix = [0.0]
    for k in sorted_keys:
        prefix.append(prefix[-1] + k)

    def bounds() -> list[tuple[float, float]]:
        out = []
        for _ in range(CALLS):
            a, b = sorted(float(rng.randrange(10 * n)) for _ in range(2))
            out.append((a, b))
        return out

    def offsets() -> list[float]:
        return [float(rng.randrange(n)) for _ in range(CALLS)]

    rows = []
    for label, ours_fn, anchor_fn, make_args in [
        ("count with bounds", lambda b: backend.query(fns["time_counts"], {"bounds": b}),
         lambda b: _anchor_counts(sorted_keys, b), bounds),
        ("sum with bounds", lambda b: backend.query(fns["time_sums"], {"bounds": b}),
         lambda b: _anchor_sums(prefix, sorted_keys, b), bounds),
        ("at(offset)", lambda o: backend.query(fns["time_at"], {"offsets": o}),
         lambda o: _anchor_at(sorted_keys, o), offsets),
    ]:
        args = make_args()
        ours_fn(args)  # warm up
        ours, anchor, ratio = interleave(lambda f=ours_fn, a=args: f(a),  # type: ignore[misc]
                                         lambda f=anchor_fn, a=args: f(a),  # type: ignore[misc]
                                         rounds())
        rows.append(Row("C1", f"aggregate {label}, {n:,} items, in a query", ours, "µs",
                        "SortedList, same keys", anchor, False, "≤ 100 µs", ours <= 100,
                        ratio))

    def insert_rate(name: str, count: int) -> float:
        t0 = time.perf_counter()
        for _ in range(count):
            backend.mutation(fns[name], {"score": float(rng.randrange(10 * n))})
        return count / (time.perf_counter() - t0)

    insert_rate("add_tracked", 200)
    insert_rate("add_plain", 200)
    tracked, plain, ratio = interleave(lambda: insert_rate("add_tracked", 500),
                                       lambda: insert_rate("add_plain", 500), rounds())
    rows.append(Row("C2", f"insert + aggregate item ({n:,} items)", tracked, "/s",
                    "the same insert alone", plain, True, "≤ 3× the time (≥ 0.33×)",
                    ratio >= 1 / 3, ratio))
    backend.close()
    return rows


def bench_c3() -> list[Row]:
    app, _, fns = make_app()
    backend = cl.Backend(app=app)
    rng = random.Random(3)
    # a tree big enough to have a lazy root with many children
    build(backend, app, [float(rng.randrange(10**9)) for _ in range(50_000)])
    counter = backend.mutation(fns["new_counter"])

    def aggregate_inserts() -> float:
        return threaded(lambda: backend.mutation(
            fns["add_tracked"], {"score": float(rng.randrange(10**9))}), 8, 100)

    def hot_counter() -> float:
        return threaded(lambda: backend.mutation(fns["bump"], {"counter": counter}), 8, 100)

    aggregate_inserts()
    hot_counter()
    ours, anchor, ratio = interleave(aggregate_inserts, hot_counter, rounds())
    backend.close()
    return [Row("C3", "8 threads inserting into one aggregate", ours, "/s",
                "8 threads on one hot counter doc", anchor, True, "≥ 4×", ratio >= 4, ratio)]

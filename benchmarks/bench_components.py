"""C1 to C3: the aggregate component (issue 13, "Performance").

* C1 — reads over ``BENCH_AGG_ITEMS`` items (default 1,000,000): ``count`` and ``sum`` with
  random bounds and ``at(offset)``, each timed inside one query that makes many calls (so the
  figure is the call, not the query around it). Anchor: a ``sortedcontainers.SortedList``
  holding the same keys (``bisect`` for a count, indexing for ``at``). Goal: ≤ 100 µs a call.
* C2 — a mutation inserting a document and its aggregate item (``board.writer(...).insert``)
  into that tree vs the same mutation inserting the document alone. Goal: ≤ 3×.
* C3 — 8 threads each running mutations that insert into one aggregate vs 8 threads each
  incrementing one hot counter document (every such mutation conflicts with every concurrent
  one). Goal: ≥ 4× the counter's throughput. Measured in the same run: throughput of
  free-running threads, OCC retries per 100 mutations (handler runs beyond one per call), and
  ``C3o``: rounds of 8 mutations held open together (each waits, writes made, before its
  commit) — how many of the 8 conflicted. Mutations here run one at a time under the GIL, so
  throughput is bounded by a mutation's CPU cost, not by conflicts; C3o shows the conflicts a
  parallel backend would see.

The tree is bulk-loaded with ``Aggregate.build`` (a backfill); the build time is printed to
stderr. ``BENCH_AGG_NODE`` sets the aggregate's ``max_node_size``.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import convex_lab as cl
from benchmarks._common import Row, interleave, rounds
from convex_lab import v
from convex_lab.components.aggregate import DEFAULT_MAX_NODE_SIZE, Aggregate
from convex_lab.components.aggregate import component as aggregate

ATTEMPTS: Counter[str] = Counter()  # handler runs per mutation name (C3's retries)
CALLS = 50  # calls timed inside one query (a query may read at most 16 MiB: the calls add up)


def items() -> int:
    return int(os.environ.get("BENCH_AGG_ITEMS", "1000000"))


def node_size() -> int:
    """``BENCH_AGG_NODE``: the aggregate's ``max_node_size`` (default: the component's)."""
    return int(os.environ.get("BENCH_AGG_NODE", str(DEFAULT_MAX_NODE_SIZE)))


def make_app() -> tuple[cl.App, Aggregate, dict[str, Any]]:
    app = cl.App(schema=cl.define_schema({
        "scores": cl.define_table({"score": v.float64()}),
        "counters": cl.define_table({"n": v.float64()}),
    }))
    app.use(aggregate, name="board")
    board = Aggregate(app.components.board, sort_key=lambda d: d["score"],
                      sum_value=lambda d: d["score"], max_node_size=node_size())

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
        ATTEMPTS["add_tracked"] += 1  # each run of the handler: a commit or an OCC retry
        return board.writer(ctx, "scores").insert({"score": score})

    @app.mutation(name="add_plain")
    def add_plain(ctx: Any, score: float) -> Any:
        return ctx.db.insert("scores", {"score": score})

    @app.mutation(name="bump")
    def bump(ctx: Any, counter: str) -> None:
        ATTEMPTS["bump"] += 1
        doc = ctx.db.get(counter)
        ctx.db.patch(counter, {"n": doc["n"] + 1})

    @app.mutation(name="add_tracked_held")
    def add_tracked_held(ctx: Any, score: float) -> Any:
        ATTEMPTS["add_tracked_held"] += 1
        doc_id = board.writer(ctx, "scores").insert({"score": score})
        _hold()
        return doc_id

    @app.mutation(name="bump_held")
    def bump_held(ctx: Any, counter: str) -> None:
        ATTEMPTS["bump_held"] += 1
        ctx.db.patch(counter, {"n": ctx.db.get(counter)["n"] + 1})
        _hold()

    @app.mutation(name="new_counter")
    def new_counter(ctx: Any) -> Any:
        return ctx.db.insert("counters", {"n": 0.0})

    return app, board, {"time_counts": time_counts, "time_sums": time_sums,
                        "time_at": time_at, "add_tracked": add_tracked,
                        "add_plain": add_plain, "bump": bump, "new_counter": new_counter,
                        "add_tracked_held": add_tracked_held, "bump_held": bump_held}


def build(backend: cl.Backend, board: Aggregate, keys: list[float]) -> None:
    """The aggregate of ``keys`` (the scores of documents that need not exist): bulk-loaded
    bottom-up with ``Aggregate.build``."""
    t0 = time.perf_counter()
    nodes = board.build(backend, ({"_id": f"seed{i:08d}", "score": k}
                                  for i, k in enumerate(keys)))
    print(f"  bulk-built an aggregate of {len(keys):,} items ({nodes:,} nodes of at most "
          f"{int(board.max_node_size)}) in {time.perf_counter() - t0:.1f} s", file=sys.stderr)


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


_HELD = threading.local()
_BARRIER: list[threading.Barrier] = []


def _hold() -> None:
    """In a ``*_held`` mutation's first attempt: wait (its writes made, its commit not yet) until
    all the threads of the round are at the same point, so their transactions overlap fully."""
    if getattr(_HELD, "first", False):
        _HELD.first = False
        _BARRIER[0].wait(timeout=30)


def overlapped_conflicts(call: Any, threads: int, rounds_n: int, name: str) -> float:
    """Rounds of ``threads`` mutations held open together (``_hold``) then committed: the
    median number, per round, of mutations whose first attempt conflicted (and was retried).
    What a backend running mutations in parallel sees; free-running threads under the GIL
    rarely overlap, so they hardly show it."""
    per_round = []
    for _ in range(rounds_n):
        _BARRIER[:] = [threading.Barrier(threads)]
        before = ATTEMPTS[name]

        def one() -> None:
            _HELD.first = True
            call()

        ts = [threading.Thread(target=one) for _ in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        per_round.append(ATTEMPTS[name] - before - threads)
    return float(statistics.median(per_round))


def threaded(call: Any, threads: int, per_thread: int) -> float:
    """Commits per second of ``threads`` threads each making ``per_thread`` calls; a call that
    fails (its retries exhausted by conflicts) counts as no commit."""
    barrier = threading.Barrier(threads + 1)
    done = [0] * threads

    def work(slot: int) -> None:
        barrier.wait()
        for _ in range(per_thread):
            try:
                call()
            except cl.ConvexError:
                raise
            except Exception:  # noqa: BLE001 (an OCC failure after its retries: no commit)
                continue
            done[slot] += 1

    ts = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in ts:
        t.join()
    return sum(done) / (time.perf_counter() - t0)


def bench_c1() -> list[Row]:
    from sortedcontainers import SortedList  # the anchor (test extra)

    n = items()
    rng = random.Random(13)
    keys = [float(rng.randrange(10 * n)) for _ in range(n)]
    app, board, fns = make_app()
    backend = cl.Backend(app=app)
    build(backend, board, keys)
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
    cases: list[tuple[str, Callable[[Any], float], Callable[[Any], float], Callable[[], Any]]]
    cases = [
        ("count with bounds", lambda b: backend.query(fns["time_counts"], {"bounds": b}),
         lambda b: _anchor_counts(sorted_keys, b), bounds),
        ("sum with bounds", lambda b: backend.query(fns["time_sums"], {"bounds": b}),
         lambda b: _anchor_sums(prefix, sorted_keys, b), bounds),
        ("at(offset)", lambda o: backend.query(fns["time_at"], {"offsets": o}),
         lambda o: _anchor_at(sorted_keys, o), offsets),
    ]
    for label, ours_fn, anchor_fn, make_args in cases:
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
    app, board, fns = make_app()
    backend = cl.Backend(app=app)
    rng = random.Random(3)
    # a tree big enough to have a lazy root with many children
    build(backend, board, [float(rng.randrange(10**9)) for _ in range(50_000)])
    counter = backend.mutation(fns["new_counter"])

    commits = Counter[str]()

    def aggregate_inserts() -> float:
        got = threaded(lambda: backend.mutation(
            fns["add_tracked"], {"score": float(rng.randrange(10**9))}), 8, 100)
        commits["add_tracked"] += 800
        return got

    def hot_counter() -> float:
        got = threaded(lambda: backend.mutation(fns["bump"], {"counter": counter}), 8, 100)
        commits["bump"] += 800
        return got

    aggregate_inserts()
    hot_counter()
    ATTEMPTS.clear()
    commits.clear()
    ours, anchor, ratio = interleave(aggregate_inserts, hot_counter, rounds())
    # OCC retries per 100 mutations: handler runs beyond one per mutation
    retries = {k: 100 * (ATTEMPTS[k] - commits[k]) / commits[k] for k in commits}
    print(f"  C3 OCC retries per 100 mutations: aggregate inserts {retries['add_tracked']:.1f}, "
          f"hot counter {retries['bump']:.1f}", file=sys.stderr)
    held_agg = overlapped_conflicts(lambda: backend.mutation(
        fns["add_tracked_held"], {"score": float(rng.randrange(10**9))}), 8, 25,
        "add_tracked_held")
    held_counter = overlapped_conflicts(lambda: backend.mutation(
        fns["bump_held"], {"counter": counter}), 8, 25, "bump_held")
    backend.close()
    return [Row("C3", "8 threads inserting into one aggregate", ours, "/s",
                "8 threads on one hot counter doc", anchor, True, "≥ 4×", ratio >= 4, ratio),
            Row("C3r", "  OCC retries per 100 inserts (same run)", retries["add_tracked"], "",
                "per 100 counter bumps", retries["bump"], False, "fewer", None),
            Row("C3o", "  8 held-open inserts: conflicted, of 8", held_agg, "",
                "8 held-open counter bumps", held_counter, False, "fewer", None)]

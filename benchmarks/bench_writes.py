"""P1 and P1d: single-insert mutations, in memory and durable in a DuckDB file.

Ours: ``backend.mutation(send, {...})`` — a registered mutation with validated args inserting
one document into a table with a schema and an index. Anchor: raw DuckDB single-row
transactions (``BEGIN; INSERT one row (id PK, ts, JSON doc); COMMIT``) on the same kind of
database (in memory for P1, a file for P1d), measured in the same run.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
import uuid
from typing import Any

import convex_lab as cl
from benchmarks._common import Row, interleave, rounds
from convex_lab import define_schema, define_table, v


def make_app() -> tuple[cl.App, Any]:
    app = cl.App()
    app.schema = define_schema({
        "messages": define_table({"author": v.string(), "body": v.string(), "n": v.float64()})
        .index("by_author", ["author"]),
    })

    @app.mutation(args={"author": v.string(), "body": v.string(), "n": v.float64()})
    def send(ctx: Any, author: str, body: str, n: float) -> Any:
        return ctx.db.insert("messages", {"author": author, "body": body, "n": n})

    return app, send


ARGS = {"author": "ada", "body": "hello, world", "n": 1.0}


def raw_duckdb(path: str | None) -> tuple[Any, Any]:
    import duckdb

    con = duckdb.connect(path or ":memory:")
    con.execute("CREATE TABLE IF NOT EXISTS docs(id VARCHAR PRIMARY KEY, ts DOUBLE, doc VARCHAR)")

    def one() -> None:
        con.execute("BEGIN")
        con.execute("INSERT INTO docs VALUES (?, ?, ?)",
                    [uuid.uuid4().hex, time.time() * 1000, json.dumps(ARGS)])
        con.execute("COMMIT")

    return con, one


def raw_rate(one: Any, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        one()
    return n / (time.perf_counter() - t0)


def ours_rate(backend: cl.Backend, fn: Any, n: int) -> float:
    mutation = backend.mutation
    t0 = time.perf_counter()
    for _ in range(n):
        mutation(fn, ARGS)
    return n / (time.perf_counter() - t0)


def threaded_rate(call: Any, threads: int, per_thread: int) -> float:
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


def bench_p1() -> list[Row]:
    app, send = make_app()
    backend = cl.Backend(app=app)
    con, one = raw_duckdb(None)
    ours_rate(backend, send, 2000)  # warm up (JIT-free, but caches, ID pools, allocator)
    raw_rate(one, 200)
    ours, anchor, ratio = interleave(lambda: ours_rate(backend, send, 5000),
                                     lambda: raw_rate(one, 1000), rounds())
    backend.close()
    con.close()
    return [
        Row("P1", "single-insert mutations, in memory", ours, "/s",
            "raw DuckDB 1-row tx (mem)", anchor, True, "≥ 40,000/s and ≥ 35×",
            ours >= 40_000 and ratio >= 35, ratio),
    ]


def bench_p1d() -> list[Row]:
    tmp = tempfile.mkdtemp(prefix="convex_lab_bench_")
    app, send = make_app()
    backend = cl.Backend(os.path.join(tmp, "ours.duckdb"), app=app)
    con, one = raw_duckdb(os.path.join(tmp, "raw.duckdb"))
    ours_rate(backend, send, 200)
    raw_rate(one, 200)
    seq, anchor, ratio = interleave(lambda: ours_rate(backend, send, 1000),
                                    lambda: raw_rate(one, 1000), rounds())

    def ours8() -> float:
        return threaded_rate(lambda: backend.mutation(send, ARGS), 8, 250)

    def raw8() -> float:
        def one_cursor_per_call() -> None:
            cur = con.cursor()
            try:
                cur.execute("BEGIN")
                cur.execute("INSERT INTO docs VALUES (?, ?, ?)",
                            [uuid.uuid4().hex, time.time() * 1000, json.dumps(ARGS)])
                cur.execute("COMMIT")
            finally:
                cur.close()
        return threaded_rate(one_cursor_per_call, 8, 125)

    conc, anchor_seq2, ratio8 = interleave(ours8, lambda: raw_rate(one, 1000), rounds())
    _, raw_conc, _ = interleave(ours8, raw8, max(3, rounds() // 2))
    backend.close()
    con.close()
    return [
        Row("P1d", "durable mutations, 1 writer (file)", seq, "/s",
            "raw DuckDB 1-row tx (file)", anchor, True, "≥ 1.0× raw", ratio >= 1.0),
        Row("P1d", "durable mutations, 8 writers (file)", conc, "/s",
            "raw DuckDB 1-row tx (file)", anchor_seq2, True, "≥ 5× raw", ratio8 >= 5.0),
        Row("P1d", "  same, vs raw DuckDB with 8 writers", conc, "/s",
            "raw DuckDB, 8 threads", raw_conc, True, "(context)", None),
    ]

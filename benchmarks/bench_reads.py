"""P2: reads inside functions on a 1M-document table.

* ``ctx.db.get`` per call, inside one query execution doing many gets. Anchor: a plain Python
  dict lookup of the same IDs (the floor for any in-memory design).
* index ``eq`` + ``take(50)`` per query, inside one query execution. Anchor: the same work bare —
  ``bisect`` over a sorted list of ``(author, creation_time, id)`` keys, the next 50 keys, and a
  ``dict(doc)`` copy of each of the 50 documents.
* the same ``take(50)`` as a whole ``backend.query`` call (arguments validated, transaction,
  result converted, logged). Anchor: its body, measured inside the query as above.
"""

from __future__ import annotations

import bisect
import random
import time
from collections.abc import Iterator
from typing import Any

import convex_lab as cl
from benchmarks._common import Row, interleave, rounds
from convex_lab import define_schema, define_table, v

N_DOCS = 1_000_000
AUTHORS = 1000


def documents(n: int) -> Iterator[dict[str, Any]]:
    """The benchmark documents, generated lazily (as a loader reading a file would)."""
    return ({"author": f"user{i % AUTHORS}", "body": f"message body number {i}",
             "score": float(i % 97), "ts": i * 1.5, "ok": i % 3 == 0} for i in range(n))


def make_backend(n: int) -> tuple[cl.Backend, cl.App, list[str]]:
    app = cl.App()
    app.schema = define_schema({
        "docs": define_table({"author": v.string(), "body": v.string(), "score": v.float64(),
                              "ts": v.float64(), "ok": v.boolean()})
        .index("by_author", ["author"]).index("by_score", ["score"]),
    })
    backend = cl.Backend(app=app)
    ids = backend.import_documents("docs", documents(n))
    return backend, app, ids


def bench_p2() -> list[Row]:
    backend, app, ids = make_backend(N_DOCS)
    rng = random.Random(7)
    sample = rng.sample(ids, 4_000)  # Convex allows 4,096 reads per function
    authors = [f"user{rng.randrange(AUTHORS)}" for _ in range(500)]

    @app.query
    def gets(ctx: Any) -> float:
        get = ctx.db.get
        t0 = time.perf_counter()
        for i in sample:
            get(i)
        return (time.perf_counter() - t0) / len(sample) * 1e6

    @app.query
    def takes(ctx: Any) -> float:
        t0 = time.perf_counter()
        for a in authors:
            ctx.db.query("docs").with_index("by_author", lambda q, a=a: q.eq("author", a)).take(50)
        return (time.perf_counter() - t0) / len(authors) * 1e6

    table = backend.store.tables["docs"]
    docs = dict(table.docs)  # the same documents, in a plain dict

    def dict_gets() -> float:
        get = docs.get
        t0 = time.perf_counter()
        for i in sample:
            get(i)
        return (time.perf_counter() - t0) / len(sample) * 1e6

    # The same work as ours, bare: a sorted list of (author, creation time, id) keys, bisect to
    # the author, the next 50 keys, and a copy of each document (a caller may mutate what it
    # gets, so ours copies too).
    keys = sorted((d["author"], d["_creationTime"], d["_id"]) for d in docs.values())

    def bisect_takes() -> float:
        t0 = time.perf_counter()
        for a in authors:
            start = bisect.bisect_left(keys, (a,))
            [dict(docs[k[2]]) for k in keys[start : start + 50]]
        return (time.perf_counter() - t0) / len(authors) * 1e6

    @app.query(args={"author": v.string()})
    def by_author(ctx: Any, author: str) -> Any:
        return ctx.db.query("docs").with_index("by_author",
                                               lambda q: q.eq("author", author)).take(50)

    def whole_calls() -> float:
        t0 = time.perf_counter()
        for a in authors:
            backend.query(by_author, {"author": a})
        return (time.perf_counter() - t0) / len(authors) * 1e6

    g_ours, g_anchor, _ = interleave(lambda: backend.query(gets), dict_gets, rounds())
    t_ours, t_anchor, t_ratio = interleave(lambda: backend.query(takes), bisect_takes, rounds())
    c_ours, c_body, c_ratio = interleave(whole_calls, lambda: backend.query(takes), rounds())
    backend.close()
    return [
        Row("P2", "ctx.db.get (1M docs)", g_ours, "µs", "Python dict lookup", g_anchor, False,
            "≤ 5 µs", g_ours <= 5.0),
        Row("P2", "index eq + take(50) in a query (1M docs)", t_ours, "µs",
            "bisect + 50 dict copies", t_anchor, False, "≤ 1.5× anchor", t_ratio <= 1.5,
            t_ratio),
        Row("P2", "whole query call doing that take(50)", c_ours, "µs", "its body (above)",
            c_body, False, "≤ 1.5× body", c_ratio <= 1.5, c_ratio),
    ]

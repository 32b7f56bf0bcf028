"""S1: ``%%sql`` (``backend.sql``) over a 100,000-document table without a schema.

Ours: ``backend.sql(query)`` end to end — the snapshot, the column types, the views, DuckDB and the
DataFrame — for a whole-table read, an aggregate and a filter; "after a write" runs each query
right after a commit to the table (its column types are worked out again), "repeated" runs it
again on unchanged data (they are remembered). Anchor: the same query in raw DuckDB over a typed
table holding the same rows (no snapshot, no JSON, no views): the floor for answering it at all.

Run it alone with ``python benchmarks/bench_sql.py``; ``BENCH_ROUNDS`` sets the rounds.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import Row, print_table, rounds

N_DOCS = 100_000

QUERIES = {
    "SELECT *": "SELECT * FROM notes",
    "GROUP BY": "SELECT author, count(*) AS n, avg(score) AS s FROM notes GROUP BY author "
                "ORDER BY author",
    "WHERE": "SELECT title FROM notes WHERE score > 0.99",
}


def documents(n: int, start: int = 0) -> list[dict[str, Any]]:
    from convex_lab import Int64

    return [{"title": f"note {i}", "author": f"user{i % 50}", "score": (i * 7919 % 1000) / 1000,
             "count": Int64(i), "done": i % 3 == 0} for i in range(start, start + n)]


def _median_ms(fn: Callable[[], Any], n: int, before: Callable[[], Any] | None = None) -> float:
    times = []
    for _ in range(n):
        if before is not None:
            before()
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(times)


def bench_s1() -> list[Row]:
    import duckdb
    import pyarrow as pa

    import convex_lab as cl

    docs = documents(N_DOCS)
    backend = cl.Backend(app=cl.App())
    backend.import_documents("notes", docs)
    con = duckdb.connect()
    con.register("batch", pa.table({k: [d[k] for d in docs] for k in docs[0]}))
    con.execute("CREATE TABLE notes AS SELECT * FROM batch")
    added = [N_DOCS]

    def write() -> None:  # one more document: the table's column types are stale
        backend.import_documents("notes", documents(1, added[0]))
        added[0] += 1

    rows: list[Row] = []
    n = max(3, rounds())
    try:
        for what, query in QUERIES.items():
            backend.sql(query)  # warm up (imports, first connection)
            con.execute(query).df()
            anchor = _median_ms(lambda q=query: con.execute(q).df(), n)  # type: ignore[misc]
            fresh = _median_ms(lambda q=query: backend.sql(q), n, before=write)  # type: ignore[misc]
            again = _median_ms(lambda q=query: backend.sql(q), n)  # type: ignore[misc]
            for label, ours in (("after a write", fresh), ("repeated", again)):
                rows.append(Row("S1", f"%%sql {what}, 100k schemaless docs, {label}", ours, "ms",
                                "raw DuckDB, typed table", anchor, False, "(no goal)", None))
    finally:
        backend.close()
        con.close()
    return rows


if __name__ == "__main__":
    print_table(bench_s1())

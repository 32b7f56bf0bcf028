"""P6 (bulk import with validation) and M1 (memory of 1M documents with two indexes).

P6 ours: ``backend.import_documents`` of 1M five-field documents into a table with a schema and
two indexes (validated, indexed in memory, written to the in-memory DuckDB). Anchor: raw DuckDB
``INSERT … SELECT`` of the same rows from a prebuilt Arrow table (typed columns, no validation,
no indexes) — the floor for getting the data into DuckDB at all.

M1 runs each variant in a fresh subprocess and reports the RSS growth after loading.
Anchor: the same documents as a Python dict of dicts (no indexes, no DuckDB).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from benchmarks._common import Row
from benchmarks.bench_reads import N_DOCS, documents

ROOT = Path(__file__).resolve().parent.parent


def bench_p6() -> list[Row]:
    import duckdb
    import pyarrow as pa

    ours, anchor = [], []
    for _ in range(max(1, min(3, 5))):
        docs = list(documents(N_DOCS))
        t0 = time.perf_counter()
        backend, _, _ = _import_only(docs)
        ours.append(N_DOCS / (time.perf_counter() - t0))
        backend.close()
        cols = {k: [d[k] for d in docs] for k in docs[0]}
        table = pa.table(cols)
        con = duckdb.connect()
        con.execute("CREATE TABLE t(author VARCHAR, body VARCHAR, score DOUBLE, ts DOUBLE, "
                    "ok BOOLEAN)")
        t0 = time.perf_counter()
        con.register("batch", table)
        con.execute("INSERT INTO t SELECT * FROM batch")
        anchor.append(N_DOCS / (time.perf_counter() - t0))
        con.close()
    ours.sort()
    anchor.sort()
    o, a = ours[len(ours) // 2], anchor[len(anchor) // 2]
    return [Row("P6", "bulk import 1M docs, validated", o, "docs/s", "raw DuckDB Arrow insert",
                a, True, "≥ 200k docs/s", o >= 200_000)]


def _import_only(docs: list[dict[str, object]]):  # type: ignore[no-untyped-def]
    import convex_lab as cl
    from convex_lab import define_schema, define_table, v

    app = cl.App()
    app.schema = define_schema({
        "docs": define_table({"author": v.string(), "body": v.string(), "score": v.float64(),
                              "ts": v.float64(), "ok": v.boolean()})
        .index("by_author", ["author"]).index("by_score", ["score"]),
    })
    backend = cl.Backend(app=app)
    backend.import_documents("docs", docs)
    return backend, app, None


_M1_SCRIPT = """
import gc, json, resource, sys
sys.path.insert(0, {root!r})
def rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
from benchmarks.bench_reads import documents, make_backend
import convex_lab, duckdb, pyarrow, numpy, msgspec  # imports are not the data
kind = sys.argv[1]
gc.collect(); before = rss()
if kind == "ours":
    backend, app, ids = make_backend({n})
    del ids
    backend.store.flush()  # memory at rest: waits for the background compression too
else:
    docs = {{str(i): d for i, d in enumerate(documents({n}))}}
gc.collect()
print(json.dumps({{"mib": rss() - before}}))
"""


def bench_m1() -> list[Row]:
    script = _M1_SCRIPT.format(root=str(ROOT), n=N_DOCS)
    out = {}
    for kind in ("ours", "dict"):
        proc = subprocess.run([sys.executable, "-c", script, kind], capture_output=True,
                              text=True, check=True)
        out[kind] = json.loads(proc.stdout.strip().splitlines()[-1])["mib"]
    return [Row("M1", "RSS, 1M 5-field docs + 2 indexes", out["ours"], "MiB",
                "Python dict of dicts", out["dict"], False, "≤ 1024 MiB", out["ours"] <= 1024)]

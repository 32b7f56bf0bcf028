"""P6 (bulk import with validation), Z1/Z2 (snapshot ZIP export and re-import) and M1 (memory
of 1M documents with two indexes).

P6 ours: ``backend.import_table`` of 1M five-field documents from an Arrow table (P6) and from a
Parquet file, reading included (P6p), into a table with a schema and two indexes: validated
column by column, indexed in memory, written to the in-memory DuckDB. P6d is the row-wise
``backend.import_documents`` of the same documents as dicts (the figure before issue 14).
Anchors: DuckDB's own ``INSERT … SELECT`` from the same Arrow table (P6, P6d) or from
``read_parquet`` of the same file (P6p): typed columns, no validation, no indexes — the floor for
getting the data into DuckDB at all.

Z1 ours: ``backend.export_zip`` of those 1M documents (Convex's snapshot layout, Deflate);
Z1m: the process's peak RSS growth during that export (flat memory: it must not grow with the
export). Z2: ``backend.import_zip`` of that ZIP into a fresh backend (validated, IDs kept).
Anchors: DuckDB ``COPY … TO 'x.json.gz' (FORMAT json, COMPRESSION gzip)`` of the same rows (Z1),
the export's uncompressed JSON size (Z1m: what holding it in memory would cost), and DuckDB
``read_json`` of that file into a table (Z2).

M1 runs each variant in a fresh subprocess and reports the RSS growth after loading.
Anchor: the same documents as a Python dict of dicts (no indexes, no DuckDB).

``python -m benchmarks.bench_bulk [P6 Z1 M1]`` runs these alone.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._common import PeakRss, Row, print_table, rounds
from benchmarks.bench_reads import N_DOCS, documents

ROOT = Path(__file__).resolve().parent.parent
_COLUMNS = ("CREATE TABLE t(author VARCHAR, body VARCHAR, score DOUBLE, ts DOUBLE, "
            "ok BOOLEAN)")


def _arrow_table() -> Any:
    import pyarrow as pa

    docs = list(documents(N_DOCS))
    return pa.table({k: [d[k] for d in docs] for k in docs[0]})


def _app() -> Any:
    import convex_lab as cl
    from convex_lab import define_schema, define_table, v

    app = cl.App()
    app.schema = define_schema({
        "docs": define_table({"author": v.string(), "body": v.string(), "score": v.float64(),
                              "ts": v.float64(), "ok": v.boolean()})
        .index("by_author", ["author"]).index("by_score", ["score"]),
    })
    return app


def _duckdb_insert(sql_from: str, table: Any = None) -> float:
    import duckdb

    con = duckdb.connect()
    con.execute(_COLUMNS)
    t0 = time.perf_counter()
    if table is not None:
        con.register("batch", table)
    con.execute(f"INSERT INTO t SELECT * FROM {sql_from}")
    rate = N_DOCS / (time.perf_counter() - t0)
    con.close()
    return rate


def _median_pair(ours: list[float], anchor: list[float]) -> tuple[float, float, float]:
    ratios = [o / a for o, a in zip(ours, anchor, strict=True)]
    return statistics.median(ours), statistics.median(anchor), statistics.median(ratios)


def bench_p6() -> list[Row]:
    import convex_lab as cl

    table = _arrow_table()
    n = max(1, min(3, rounds()))
    out: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in ("P6", "P6p", "P6d")}
    with tempfile.TemporaryDirectory() as tmp:
        parquet = str(Path(tmp) / "docs.parquet")
        import pyarrow.parquet as pq

        pq.write_table(table, parquet)
        for _ in range(n):
            for key, source in (("P6", table), ("P6p", parquet)):
                backend = cl.Backend(app=_app())
                t0 = time.perf_counter()
                backend.import_table("docs", source, progress=False)
                out[key][0].append(N_DOCS / (time.perf_counter() - t0))
                backend.close()
            docs = list(documents(N_DOCS))
            backend = cl.Backend(app=_app())
            t0 = time.perf_counter()
            backend.import_documents("docs", docs)
            out["P6d"][0].append(N_DOCS / (time.perf_counter() - t0))
            backend.close()
            del docs
            out["P6"][1].append(_duckdb_insert("batch", table))
            out["P6d"][1].append(out["P6"][1][-1])
            out["P6p"][1].append(_duckdb_insert(f"read_parquet('{parquet}')"))
    rows = []
    for key, what, anchor_name, goal, target in (
            ("P6", "import_table 1M docs from Arrow, validated", "DuckDB Arrow insert",
             "≥ 500k docs/s", 500_000),
            ("P6p", "import_table 1M docs from Parquet, validated", "DuckDB read_parquet insert",
             "≥ 500k docs/s", 500_000),
            ("P6d", "import_documents 1M dicts, validated", "DuckDB Arrow insert",
             "≥ 200k docs/s", 200_000)):
        o, a, r = _median_pair(*out[key])
        rows.append(Row(key, what, o, "docs/s", anchor_name, a, True, goal, o >= target, r))
    return rows


def bench_z1() -> list[Row]:
    import duckdb

    import convex_lab as cl

    table = _arrow_table()
    n = max(1, min(3, rounds()))
    export, export_anchor, peak, imports, import_anchor = [], [], [], [], []
    text_mib = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "snapshot.zip"
        gz = Path(tmp) / "docs.json.gz"
        for _ in range(n):
            backend = cl.Backend(app=_app())
            backend.import_table("docs", table, progress=False)
            backend.store.flush()  # the in-memory DuckDB mirror is written: export alone
            time.sleep(0.5)  # ... and its background checkpoint (compression) has started,
            backend.store.flush()  # which this waits for: its memory is not the export's
            with PeakRss() as rss:
                t0 = time.perf_counter()
                backend.export_zip(path, progress=False)
                export.append(N_DOCS / (time.perf_counter() - t0))
            peak.append(rss.growth)
            backend.close()
            import zipfile

            with zipfile.ZipFile(path) as zf:
                text_mib = zf.getinfo("docs/documents.jsonl").file_size / 2**20
            target = cl.Backend(app=_app())
            t0 = time.perf_counter()
            target.import_zip(path, progress=False)
            imports.append(N_DOCS / (time.perf_counter() - t0))
            target.close()
            con = duckdb.connect()
            con.register("batch", table)
            t0 = time.perf_counter()
            con.execute(f"COPY batch TO '{gz}' (FORMAT json, COMPRESSION gzip)")
            export_anchor.append(N_DOCS / (time.perf_counter() - t0))
            con.execute(_COLUMNS)
            t0 = time.perf_counter()
            con.execute(f"INSERT INTO t SELECT * FROM read_json('{gz}')")
            import_anchor.append(N_DOCS / (time.perf_counter() - t0))
            con.close()
            os.unlink(path)
    e, ea, er = _median_pair(export, export_anchor)
    i, ia, ir = _median_pair(imports, import_anchor)
    p = statistics.median(peak)
    return [
        Row("Z1", "export_zip 1M docs (snapshot ZIP)", e, "docs/s", "DuckDB COPY to json.gz",
            ea, True, "≥ 200k docs/s", e >= 200_000, er),
        Row("Z1m", "peak RSS growth during that export", p, "MiB",
            "the export's JSON text", text_mib, False, "≤ 64 MiB (flat)", p <= 64),
        Row("Z2", "import_zip of that ZIP, validated", i, "docs/s", "DuckDB read_json insert",
            ia, True, "≥ 200k docs/s", i >= 200_000, ir),
    ]


_M1_SCRIPT = """
import gc, json, resource, sys
sys.path.insert(0, {root!r})
from benchmarks._common import rss_mib as rss
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


if __name__ == "__main__":
    chosen = sys.argv[1:] or ["P6", "Z1", "M1"]
    benches = {"P6": bench_p6, "Z1": bench_z1, "M1": bench_m1}
    found: list[Row] = []
    for name in chosen:
        found += benches[name]()
    print_table(found)

"""Run the benchmarks and print one table: ``python benchmarks/run.py [P1 P1d P2 P6 M1 ...]``.

Set ``BENCH_ROUNDS`` (default 5) for more or fewer interleaved rounds. Figures are medians;
ratios are medians of per-round ratios (ours / anchor, both measured in this run).

Each benchmark runs in a fresh process (``--one NAME`` prints its rows as JSON): one benchmark's
million documents, vectors or servers never weigh on the next one's figures, and running them
all needs no more memory than the largest one.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import (
    bench_bulk,
    bench_components,
    bench_http,
    bench_live,
    bench_reads,
    bench_scheduler,
    bench_search,
    bench_sql,
    bench_wire,
    bench_writes,
)
from benchmarks._common import Row, print_table

BENCHES = {
    "P1": bench_writes.bench_p1,
    "P1d": bench_writes.bench_p1d,
    "P2": bench_reads.bench_p2,
    "P3": bench_live.bench_p3,
    "P6": bench_bulk.bench_p6,
    "Z1": bench_bulk.bench_z1,
    "M1": bench_bulk.bench_m1,
    "P8": bench_scheduler.bench_p8,
    "S1": bench_sql.bench_s1,
    "P4": bench_search.bench_p4,
    "P5": bench_search.bench_p5,
    "P9": bench_http.bench_p9,
    "P10": bench_http.bench_p10,
    "W1": bench_wire.bench_w1,
    "W2": bench_wire.bench_w2,
    "C1": bench_components.bench_c1,
    "C3": bench_components.bench_c3,
}


def _run_one(name: str) -> list[Row]:
    """``name``'s rows, measured in a child process (module docstring)."""
    done = subprocess.run([sys.executable, __file__, "--one", name], stdout=subprocess.PIPE,
                          check=False, text=True)
    if done.returncode != 0:
        print(f"  {name} failed (exit {done.returncode}): no rows", file=sys.stderr)
        return []
    *said, last = done.stdout.strip().splitlines() or [""]
    for line in said:  # what the benchmark printed on the way (setup figures)
        print(line, file=sys.stderr)
    return [Row(**fields) for fields in json.loads(last)]


def main(argv: list[str]) -> int:
    if argv[:1] == ["--one"] and len(argv) == 2:  # the child: rows as one JSON line
        rows = BENCHES[argv[1]]()
        sys.stdout.flush()
        print(json.dumps([dataclasses.asdict(r) for r in rows]))
        return 0
    chosen = argv or list(BENCHES)
    unknown = [c for c in chosen if c not in BENCHES]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; choose from {list(BENCHES)}", file=sys.stderr)
        return 2
    print(f"convex_lab benchmarks on {platform.node()} ({platform.python_version()}, "
          f"{platform.machine()}), {time.strftime('%Y-%m-%d %H:%M:%S')}")
    rows: list[Row] = []
    for name in chosen:
        t0 = time.perf_counter()
        rows += _run_one(name)
        print(f"  {name} took {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    print()
    print_table(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""Shared helpers for the benchmarks: timing, interleaved rounds, the printed table.

Every benchmark prints our figure beside an anchor measured in the same run and the ratio between
them. Rounds interleave ours and the anchor so machine noise hits both alike; we report medians.
These are measurements, not tests: nothing here asserts.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Row:
    """One printed line: our figure, the anchor's, the ratio and the issue's goal."""

    id: str
    what: str
    ours: float
    unit: str
    anchor_name: str
    anchor: float
    higher_is_better: bool
    goal: str
    met: bool | None
    # The median of per-round ratios when the rounds were interleaved (what ``met`` judges);
    # otherwise the ratio of the two medians.
    median_ratio: float | None = None

    @property
    def ratio(self) -> float:
        if self.median_ratio is not None:
            return self.median_ratio
        if self.anchor == 0:
            return float("nan")
        return self.ours / self.anchor


def rounds() -> int:
    return int(os.environ.get("BENCH_ROUNDS", "5"))


def rate(fn: Callable[[], int]) -> float:
    """Operations per second of ``fn`` (which returns how many operations it did)."""
    t0 = time.perf_counter()
    n = fn()
    return n / (time.perf_counter() - t0)


def interleave(ours: Callable[[], float], anchor: Callable[[], float], n: int) -> tuple[
        float, float, float]:
    """Median of ours, of the anchor, and of the per-round ratios; order alternates per round."""
    a_vals, b_vals, ratios = [], [], []
    for i in range(n):
        if i % 2 == 0:
            a, b = ours(), anchor()
        else:
            b, a = anchor(), ours()
        a_vals.append(a)
        b_vals.append(b)
        ratios.append(a / b if b else float("nan"))
    return statistics.median(a_vals), statistics.median(b_vals), statistics.median(ratios)


def fmt(value: float, unit: str) -> str:
    if unit in ("/s", "docs/s"):
        return f"{value:,.0f} {unit}"
    if unit == "µs":
        return f"{value:.2f} µs"
    if unit == "ms":
        return f"{value:.2f} ms"
    if unit == "%":
        return f"{value:.2f} %"
    if unit == "MiB":
        return f"{value:,.0f} MiB"
    return f"{value:.3g} {unit}"


def print_table(rows: list[Row]) -> None:
    header = ("id", "what", "ours", "anchor", "anchor value", "ratio", "goal", "met")
    lines = [header]
    for r in rows:
        met = "—" if r.met is None else ("yes" if r.met else "NO")
        lines.append((r.id, r.what, fmt(r.ours, r.unit), r.anchor_name, fmt(r.anchor, r.unit),
                      f"{r.ratio:.2f}×", r.goal, met))
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    for j, line in enumerate(lines):
        print("  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)))
        if j == 0:
            print("  ".join("-" * w for w in widths))


def rss_mib() -> float:
    """This process's resident memory (Linux ``/proc``), in MiB; 0 where there is none."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class PeakRss:
    """The highest RSS seen while the ``with`` block runs (sampled every 2 ms): ``growth`` is
    that peak above the RSS at entry."""

    def __enter__(self) -> PeakRss:
        self.base = self.peak = rss_mib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, rss_mib())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mib())

    @property
    def growth(self) -> float:
        return self.peak - self.base

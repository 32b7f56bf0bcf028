"""Approximate nearest neighbours for ``.vector_index(..., approximate=True)``: usearch's HNSW.

A :class:`~convex_lab.store.vector_index.VectorIndex` marked approximate with at least
:data:`ANN_MIN` vectors gets an HNSW graph over its rows (keys are row numbers, inner product on
the normalised rows, connectivity 16, expansion 128 when adding and 64 when searching: recall@10
about 0.99 at 100,000 × 768 in the calibration). Building one takes tens of seconds at that size,
so it happens on a background thread, started by the first search that could use it; searches are
exact until it is ready. Rows the index changes meanwhile are noted and applied to the graph when
it is adopted (under the store's lock, like every other change), after which each change follows
at once (about 1 ms to add a vector).

Without the ``usearch`` package installed, approximate indexes are searched exactly.
"""

from __future__ import annotations

import importlib.util
import threading
from typing import Any, Final

import numpy as np

ANN_MIN: Final = 20_000
CONNECTIVITY: Final = 16
EXPANSION_ADD: Final = 128
EXPANSION_SEARCH: Final = 64


def available() -> bool:
    """Whether usearch is installed."""
    return importlib.util.find_spec("usearch") is not None


class Hnsw:
    """An HNSW graph over some rows of a matrix; ``search`` returns candidate row numbers."""

    def __init__(self, dimensions: int) -> None:
        from usearch.index import Index  # noqa: PLC0415 (optional, heavy)

        self.index = Index(ndim=dimensions, metric="ip", dtype="f32",
                           connectivity=CONNECTIVITY, expansion_add=EXPANSION_ADD,
                           expansion_search=EXPANSION_SEARCH)

    def add_rows(self, slots: np.ndarray[Any, Any], rows: np.ndarray[Any, Any]) -> None:
        if len(slots):
            self.index.add(slots.astype(np.uint64), rows, threads=0)

    def put(self, slot: int, row: np.ndarray[Any, Any] | None) -> None:
        """Make row ``slot`` hold ``row`` (``None``: remove it)."""
        if self.index.contains(slot):
            self.index.remove(slot)
        if row is not None:
            self.index.add(slot, row)

    def search(self, query: np.ndarray[Any, Any], count: int) -> np.ndarray[Any, Any]:
        matches = self.index.search(query, count)
        keys: np.ndarray[Any, Any] = np.asarray(matches.keys, dtype=np.intp)
        return keys


class Builder:
    """A graph built on a background thread from a copy of the rows taken when it started."""

    def __init__(self, dimensions: int, slots: np.ndarray[Any, Any],
                 rows: np.ndarray[Any, Any]) -> None:
        self.result: Hnsw | None = None
        self.error: BaseException | None = None
        self.pending: set[int] = set()  # rows changed since the copy (noted under the lock)
        self._thread = threading.Thread(target=self._build, args=(dimensions, slots, rows),
                                        name="convex_lab-hnsw", daemon=True)
        self._thread.start()

    def _build(self, dimensions: int, slots: np.ndarray[Any, Any],
               rows: np.ndarray[Any, Any]) -> None:
        try:
            graph = Hnsw(dimensions)
            graph.add_rows(slots, rows)
            self.result = graph
        except Exception as e:  # noqa: BLE001 (kept: the index stays exact and says why)
            self.error = e

    def done(self) -> bool:
        return not self._thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

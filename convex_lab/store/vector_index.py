"""A vector index over one table's latest committed documents (reference §11).

Structure (held under the store's lock, maintained by ``TableData.apply`` and ``bulk_load``):

* one float32 matrix of L2-normalised rows, one row (slot) per indexed document, so cosine
  similarity is a single matrix-vector product; rows are reused when documents go away, and a
  document whose vector changes keeps its row;
* per filter field, one integer code per slot (equal codes = equal Convex values, a missing field
  has its own code) and the slots holding each code, so a selective filter multiplies only the
  rows it keeps while a broad one masks the full product (never slower than no filter).

A document is indexed only when its vector field is a list of exactly ``dimensions`` floats, finite
in float32; others are skipped, as Convex skips them. Search is exact by default: ``_score`` is
the cosine similarity in float32, results by score descending, ties by document ID. An index
defined with ``approximate=True`` finds its unfiltered results' candidates in an HNSW graph once
it is large (``store/vector_ann.py``); their scores are still computed exactly.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping
from typing import Any, Final

import numpy as np

from convex_lab.store import vector_ann
from convex_lab.store.keys import get_path
from convex_lab.values import sort_key

_FLOATS: Final = {float}
# Float64 values from this magnitude up round to infinity in float32 (half an ulp above the
# largest float32; the tie goes to the even mantissa, which is infinity's).
_FLOAT32_LIMIT: Final = float(np.finfo(np.float32).max) + 2.0**103
_SUBSET_FRACTION: Final = 8  # a filter keeping under 1/8 of the rows multiplies only those rows


def vector_of(value: Any, dimensions: int) -> list[float] | None:
    """``value`` if it is a list of exactly ``dimensions`` finite floats, else ``None``."""
    if type(value) is not list or len(value) != dimensions:
        return None
    if set(map(type, value)) != _FLOATS:
        return None
    try:
        if not math.isfinite(math.fsum(value)):  # finite exactly when every element is
            return None
    except OverflowError:  # finite values whose exact sum overflows
        return None
    if max(map(abs, value)) >= _FLOAT32_LIMIT:  # stored as float32, as Convex does
        return None
    return value


def normalise(rows: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Rows divided by their L2 norms in float32 (a zero row stays zero)."""
    norms = np.linalg.norm(rows, axis=-1, keepdims=True)
    norms[norms == 0] = 1
    out: np.ndarray[Any, Any] = rows / norms
    return out


class VectorIndex:
    """One vector index of one table (see module docstring)."""

    def __init__(self, name: str, vector_field: str, dimensions: int,
                 filter_fields: Iterable[str], approximate: bool = False) -> None:
        self.name = name
        self.field = vector_field
        self.dimensions = dimensions
        self.filter_fields = tuple(filter_fields)
        self.approximate = approximate
        self.matrix = np.empty((0, dimensions), dtype=np.float32)
        self.n = 0  # rows in use or freed: slots are < n
        self.ids: list[str | None] = []
        self.slot_of: dict[str, int] = {}
        self.free: list[int] = []
        self.codes = [np.empty(0, dtype=np.int32) for _ in self.filter_fields]
        self.value_codes: list[dict[Any, int]] = [{} for _ in self.filter_fields]
        self.members: list[dict[int, set[int]]] = [{} for _ in self.filter_fields]
        self.ann: vector_ann.Hnsw | None = None
        self._builder: vector_ann.Builder | None = None
        self.ann_error: BaseException | None = None

    # Approximate search -----------------------------------------------------------------------
    def _note(self, slot: int) -> None:
        """Row ``slot`` changed (or was freed): tell the graph, or the graph being built."""
        if self.ann is not None:
            self.ann.put(slot, self.matrix[slot] if self.ids[slot] is not None else None)
        elif self._builder is not None:
            self._builder.pending.add(slot)

    def _use_ann(self) -> bool:
        """Whether this search may use the graph: adopt a finished build, or start one."""
        if not self.approximate:
            return False
        builder = self._builder
        if builder is not None and builder.done():
            self._builder = None
            if builder.result is None:
                self.ann_error = builder.error
                return False
            graph = builder.result
            for slot in builder.pending:
                graph.put(slot, self.matrix[slot] if self.ids[slot] is not None else None)
            self.ann = graph
        if (self.ann is None and self._builder is None and self.ann_error is None
                and len(self.slot_of) >= vector_ann.ANN_MIN and vector_ann.available()):
            slots = np.fromiter(self.slot_of.values(), dtype=np.intp, count=len(self.slot_of))
            self._builder = vector_ann.Builder(self.dimensions, slots, self.matrix[slots])
        return self.ann is not None

    def wait_for_ann(self, timeout: float | None = None) -> bool:
        """Wait for a graph being built (tests, benchmarks); ``True`` if none is pending."""
        builder = self._builder
        if builder is not None:
            builder.join(timeout)
            return builder.done()
        return True

    def __len__(self) -> int:
        return len(self.slot_of)

    def vector(self, doc: Mapping[str, Any]) -> list[float] | None:
        return vector_of(get_path(doc, self.field), self.dimensions)  # type: ignore[arg-type]

    def code(self, position: int, value: Any) -> int | None:
        """The code of a filter value (``None``: no document ever had it)."""
        return self.value_codes[position].get(sort_key(value))

    def _code(self, position: int, key: Any) -> int:
        codes = self.value_codes[position]
        code = codes.get(key)
        if code is None:
            code = codes[key] = len(codes)
        return code

    # Maintenance ------------------------------------------------------------------------------
    def _capacity(self, need: int) -> None:
        if need <= len(self.matrix):
            return
        size = max(need, len(self.matrix) + len(self.matrix) // 2, 16)  # 1.5×: rows are big
        matrix = np.zeros((size, self.dimensions), dtype=np.float32)
        matrix[: self.n] = self.matrix[: self.n]
        self.matrix = matrix
        for i, c in enumerate(self.codes):
            grown = np.full(size, -1, dtype=np.int32)
            grown[: self.n] = c[: self.n]
            self.codes[i] = grown

    def _set_codes(self, slot: int, doc: Mapping[str, Any]) -> None:
        for i, f in enumerate(self.filter_fields):
            old = int(self.codes[i][slot])
            code = self._code(i, sort_key(get_path(doc, f)))  # type: ignore[arg-type]
            if old != code:
                if old >= 0:
                    self.members[i][old].discard(slot)
                self.members[i].setdefault(code, set()).add(slot)
                self.codes[i][slot] = code

    def _clear(self, slot: int) -> None:
        for i, c in enumerate(self.codes):
            old = int(c[slot])
            if old >= 0:
                self.members[i][old].discard(slot)
            c[slot] = -1
        self.matrix[slot] = 0
        self.ids[slot] = None
        self.free.append(slot)
        self._note(slot)

    def apply(self, doc_id: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        """Follow one committed write ``old -> new`` of ``doc_id``."""
        slot = self.slot_of.get(doc_id)
        vec = self.vector(new) if new is not None else None
        if vec is None:
            if slot is not None:
                del self.slot_of[doc_id]
                self._clear(slot)
            return
        assert new is not None
        if slot is None:
            if self.free:
                slot = self.free.pop()
            else:
                slot = self.n
                self._capacity(slot + 1)
                self.ids.append(None)
                self.n += 1
            self.ids[slot] = doc_id
            self.slot_of[doc_id] = slot
            self.matrix[slot] = normalise(np.array(vec, dtype=np.float32))
            self._note(slot)
        elif old is None or self.vector(old) != vec:
            self.matrix[slot] = normalise(np.array(vec, dtype=np.float32))
            self._note(slot)
        self._set_codes(slot, new)

    def bulk_load(self, docs: list[dict[str, Any]]) -> None:
        """Index many new documents at once: one matrix conversion and normalisation."""
        dims, field = self.dimensions, self.field
        rows = [(d, v) for d in docs
                if type(v := get_path(d, field)) is list and len(v) == dims
                and set(map(type, v)) == _FLOATS]
        if not rows:
            return
        with np.errstate(over="ignore", invalid="ignore"):  # too large for float32: inf
            block = np.fromiter(itertools.chain.from_iterable(v for _, v in rows),
                                dtype=np.float32, count=len(rows) * dims).reshape(len(rows), dims)
        finite = np.asarray(np.isfinite(block).all(axis=1))  # NaN, ±inf: skipped
        if not finite.all():
            keep = [bool(ok) for ok in finite]
            rows = [r for r, ok in zip(rows, keep, strict=True) if ok]
            block = block[finite]
        start = self.n
        end = start + len(rows)
        self._capacity(end)
        self.matrix[start:end] = normalise(block)
        del block
        self.ids += [d["_id"] for d, _ in rows]
        for i, (d, _) in enumerate(rows, start):
            self.slot_of[d["_id"]] = i
        for p, f in enumerate(self.filter_fields):
            codes = [self._code(p, sort_key(get_path(d, f))) for d, _ in rows]
            self.codes[p][start:end] = codes
            members = self.members[p]
            for i, code in enumerate(codes, start):
                members.setdefault(code, set()).add(i)
        self.n = end
        if self.ann is not None:
            self.ann.add_rows(np.arange(start, end), self.matrix[start:end])
        elif self._builder is not None:
            self._builder.pending.update(range(start, end))

    # Searching --------------------------------------------------------------------------------
    def search(self, query: np.ndarray[Any, Any], limit: int,
               allowed: list[tuple[int, list[Any]]] | None,
               overlay: Mapping[str, dict[str, Any] | None] | None,
               ) -> list[tuple[float, str]]:
        """The ``limit`` most similar documents as ``(score, _id)``, best first (ties by ID).

        ``query`` is a normalised float32 vector; ``allowed`` is ``None`` (no filter) or the
        filter as ``(filter field position, sort keys of values)`` pairs, any of which may
        match (OR);
        ``overlay`` maps IDs whose version differs from the latest (``Transaction.overlay``) to
        that version. Callers hold the store lock.
        """
        n = self.n
        excluded = [self.slot_of[i] for i in overlay or () if i in self.slot_of]
        scores: np.ndarray[Any, Any] | None = None
        slots: np.ndarray[Any, Any] | None = None
        if self._use_ann() and allowed is None:
            assert self.ann is not None
            found = self.ann.search(query, limit + len(excluded))
            slots = np.unique(found[found >= 0])
            scores = self.matrix[slots] @ query  # exact scores for the candidates
            freed = np.fromiter((self.ids[i] is None for i in slots.tolist()), dtype=np.bool_,
                                count=len(slots))
            scores[freed] = -np.inf
        elif allowed is not None:
            coded = [(p, [c for k in keys if (c := self.value_codes[p].get(k)) is not None])
                     for p, keys in allowed]
            chosen = [self.members[p].get(c, set()) for p, codes in coded for c in codes]
            count = sum(map(len, chosen))
            if count * _SUBSET_FRACTION < len(self.slot_of):
                slots = np.fromiter(set().union(*chosen), dtype=np.intp, count=-1)
                slots.sort()
                scores = self.matrix[slots] @ query
            else:
                keep = np.zeros(n, dtype=np.bool_)
                for p, codes in coded:
                    keep |= np.isin(self.codes[p][:n], codes)
                scores = self.matrix[:n] @ query
                scores[~keep] = -np.inf
        else:
            scores = self.matrix[:n] @ query
        if slots is None:
            if self.free:
                scores[self.free] = -np.inf
            if excluded:
                scores[excluded] = -np.inf
        elif excluded:
            scores[np.isin(slots, excluded)] = -np.inf
        out = _top(scores, limit)
        ids = self.ids
        result = []
        for s, i in out:
            slot = int(slots[i]) if slots is not None else i
            doc_id = ids[slot]
            if doc_id is not None:
                result.append((s, doc_id))
        if overlay:
            result += self._score_overlay(query, allowed, overlay)
        result.sort(key=lambda r: (-r[0], r[1]))
        return result[:limit]

    def _score_overlay(self, query: np.ndarray[Any, Any],
                       allowed: list[tuple[int, list[Any]]] | None,
                       overlay: Mapping[str, dict[str, Any] | None]) -> list[tuple[float, str]]:
        out = []
        for doc_id, doc in overlay.items():
            vec = self.vector(doc) if doc is not None else None
            if vec is None or doc is None:
                continue
            if allowed is not None and not any(
                    sort_key(get_path(doc, self.filter_fields[p])) in keys
                    for p, keys in allowed):
                continue
            row = normalise(np.array(vec, dtype=np.float32))
            out.append((float(row @ query), doc_id))
        return out


def _top(scores: np.ndarray[Any, Any], limit: int) -> list[tuple[float, int]]:
    """``(score, position)`` of the ``limit`` best finite scores, with every score tied with the
    last one kept (the caller orders ties by document ID)."""
    n = len(scores)
    if n == 0:
        return []
    if n > limit:
        kth = np.partition(scores, n - limit)[n - limit]
        picked = np.flatnonzero(scores >= kth)
    else:
        picked = np.arange(n)
    picked = picked[np.isfinite(scores[picked])]
    return list(zip(scores[picked].astype(np.float64).tolist(), picked.tolist(), strict=True))

"""What a transaction read, and whether a write touches it: the one answer to that question.

A read set holds point reads (a document by ID) and scans of index ranges. It answers "does
writing ``old -> new`` of this document touch what was read?" for two users (docs/architecture.md,
"The path of a commit"):

* **OCC** (:meth:`ReadSet.conflict_with`): at commit, any later commit that touches the read set
  is a conflict and the mutation re-runs (reference §5.2).
* **Live queries** (:class:`~convex_lab.store.readindex.ReadIndex`): a commit re-runs exactly the
  live queries whose read sets it touches (reference §6). The index only narrows the candidates;
  the answer is each read's own :meth:`RangeRead.contains`.

A write touches a read when the written document's ID was point-read, or its old or new key in an
index lies in an interval scanned from that index, or (:class:`SearchRead`) its old or new version
matches a full-text search's filter values and one of its terms. Every kind of read has the same
methods — ``family()`` and ``bucket()`` say where an index of reads files it, ``probe(table,
family, version)`` computes what a written version looks like to reads of that kind, ``hit(probe)``
answers for one read — and both users pick them up unchanged.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING, Any, Final

from convex_lab.store.keys import Interval, Key
from convex_lab.store.text_tokens import tokenize

if TYPE_CHECKING:
    from convex_lab.store.commits import Commit
    from convex_lab.store.tables import TableData

# Slots taken by one value after its type rank (see values.sort_key): undefined and null have
# none, float64 has two (value, tie-break), every other type one.
_GROUP_LEN: Final = {0: 1, 1: 1, 2: 2, 3: 3, 4: 2, 5: 2, 6: 2, 7: 2, 8: 2}

WIDE: Final = None
"""The bucket of a read that may contain keys of many first-field values."""

GONE: Final = object()
"""The probe of a version when its index went away with a schema push: every read hits it."""


def first_group(kind: str, key: Key) -> Key | None:
    """The slots of a key's first field, or ``None`` if the key is too short to have them."""
    if not key:
        return None
    if kind != "user":
        return key[:1]
    rank = key[0]
    length = _GROUP_LEN.get(rank) if type(rank) is int else None
    if length is None or len(key) < length:
        return None
    return key[:length]


class RangeRead:
    """One scan of an index range ``[lo, hi)``; it grows as the scan consumes more keys."""

    __slots__ = ("hi", "index", "lo", "table")

    def __init__(self, table: str, index: str, lo: Key, hi: Key) -> None:
        self.table = table
        self.index = index
        self.lo = lo
        self.hi = hi

    # The read protocol (see the module docstring) --------------------------------------------
    def family(self) -> Hashable:
        """Reads of one family are compared against the same probe of a written version."""
        return ("range", self.table, self.index)

    def is_empty(self) -> bool:
        return not self.lo < self.hi

    def bucket(self, kinds: Mapping[tuple[str, str], str]) -> Hashable:
        """Where an index of reads files this one: under its first index field's value when both
        ends share it (every range with an ``eq`` on the first field), else :data:`WIDE`.
        ``kinds`` maps ``(table, index)`` to the index kind ("user", "by_creation_time",
        "by_id")."""
        kind = kinds.get((self.table, self.index), "user")
        g = first_group(kind, self.lo)
        return g if g is not None and first_group(kind, self.hi) == g else WIDE

    @staticmethod
    def probe(table: TableData, family: Hashable, version: dict[str, Any]) -> tuple[Any, Any]:
        """``(key, bucket)`` of a written version for reads of ``family``."""
        spec = table.specs.get(family[2])  # type: ignore[index]
        if spec is None:  # the index went away with a schema push
            return GONE, WIDE
        key = spec.key(version)
        return key, first_group(spec.kind, key)

    def hit(self, probe: Any) -> bool:
        return probe is GONE or self.lo <= probe < self.hi

    # ------------------------------------------------------------------------------------------
    def contains(self, key: Key) -> bool:
        return self.lo <= key < self.hi

    def interval(self) -> Interval:
        return Interval(self.lo, self.hi)

    def __repr__(self) -> str:
        return f"RangeRead({self.table}.{self.index}, {self.lo!r}, {self.hi!r})"


class SearchRead:
    """One full-text search (reference §10): its terms and its filter values.

    A written version touches it when the version matches every filter value (``filters``:
    field → sort key of the value, ``UNDEFINED`` for a missing field) and, if the search has
    terms, its search field's tokens contain one of them (any token starting with the last,
    prefix term). A search with no terms (empty text) reads every version matching its filters.
    """

    __slots__ = ("filters", "first", "index", "prefix", "table", "terms")

    def __init__(self, table: str, index: str, terms: list[tuple[str, bool]],
                 filters: dict[str, Any], first: Any = WIDE) -> None:
        """``filters`` maps filter fields to sort keys of the values; ``first`` is the sort key
        this search requires of the index's first filter field, if it filters on it."""
        self.table = table
        self.index = index
        self.terms = frozenset(t for t, prefix in terms if not prefix)
        self.prefix = tuple(t for t, prefix in terms if prefix)
        self.filters = filters
        self.first = first

    def family(self) -> Hashable:
        return ("search", self.table, self.index)

    def is_empty(self) -> bool:
        return False

    def bucket(self, kinds: Mapping[tuple[str, str], str]) -> Hashable:
        """Filed under its value of the index's first filter field when it has one (a probe's
        bucket is the written version's value there); else :data:`WIDE`."""
        return ("f", self.first) if self.first is not WIDE else WIDE

    @staticmethod
    def probe(table: TableData, family: Hashable, version: dict[str, Any]) -> tuple[Any, Any]:
        """``((filter values, tokens or None), bucket)`` of a written version."""
        index = table.search.get(family[2])  # type: ignore[index]
        if index is None:  # the index went away with a schema push
            return GONE, WIDE
        keys = index.filter_keys(version)
        values = dict(zip(index.filter_fields, keys, strict=True))
        text = index.text_of(version)
        tokens = frozenset(tokenize(text)) if text is not None else None
        bucket = ("f", keys[0]) if keys else WIDE
        return (values, tokens), bucket

    def hit(self, probe: Any) -> bool:
        if probe is GONE:
            return True
        values, tokens = probe
        for field, key in self.filters.items():
            if values.get(field, key) != key:  # a field the index lost: conservatively a hit
                return False
        if not self.terms and not self.prefix:
            return True
        if tokens is None:
            return False
        if not self.terms.isdisjoint(tokens):
            return True
        return any(t.startswith(p) for p in self.prefix for t in tokens)

    def __repr__(self) -> str:
        return (f"SearchRead({self.table}.{self.index}, {sorted(self.terms)!r}, "
                f"prefix={self.prefix!r})")


class ReadSet:
    """Point reads and the other reads of one transaction (or one query execution)."""

    __slots__ = ("_count", "points", "reads")

    def __init__(self) -> None:
        self.points: set[tuple[str, str]] = set()
        self.reads: dict[str, list[Any]] = {}  # table -> reads (RangeRead, ...)
        self._count = 0

    def add_point(self, table: str, doc_id: str) -> None:
        self.points.add((table, doc_id))

    def add_range(self, table: str, index: str, lo: Key, hi: Key) -> RangeRead:
        r = RangeRead(table, index, lo, hi)
        self.add(r)
        return r

    def add(self, read: Any) -> None:
        """Add a read of any kind (it follows the read protocol of the module docstring)."""
        self.reads.setdefault(read.table, []).append(read)
        self._count += 1

    @property
    def ranges(self) -> dict[str, list[Any]]:
        """The non-point reads by table (the name predates search reads)."""
        return self.reads

    def __len__(self) -> int:
        return len(self.points) + self._count

    def touched_by(self, table: TableData, doc_id: str,
                   old: dict[str, Any] | None, new: dict[str, Any] | None) -> bool:
        """Whether writing ``old -> new`` of ``doc_id`` in ``table`` touches these reads."""
        name = table.name
        if (name, doc_id) in self.points:
            return True
        reads = self.reads.get(name)
        if not reads:
            return False
        probes: dict[Hashable, list[Any]] = {}
        for r in reads:
            family = r.family()
            got = probes.get(family)
            if got is None:
                got = probes[family] = [r.probe(table, family, v)[0]
                                        for v in (old, new) if v is not None]
            if any(r.hit(p) for p in got):
                return True
        return False

    def conflict_with(self, commit: Commit, tables: dict[str, TableData]) -> str | None:
        """The name of a table where ``commit`` wrote into these reads, or ``None``."""
        points = self.points
        for name, docs in commit.writes.items():
            if name not in self.reads and not points:
                continue
            table = tables[name]
            for doc_id, (old, new) in docs.items():
                if self.touched_by(table, doc_id, old, new):
                    return name
        return None

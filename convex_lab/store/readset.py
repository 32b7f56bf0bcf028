"""What a transaction read: point reads by ID and intervals of index keys.

Used twice: at commit, to test for OCC conflicts against later commits (reference §5.2), and by
subscriptions, to decide which live queries a commit invalidates (reference §6). A write touches
a read when the written document's ID was point-read, or when its old or new key in an index lies
in an interval read from that index.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from convex_lab.store.keys import Interval, Key

if TYPE_CHECKING:
    from convex_lab.store.engine import Commit
    from convex_lab.store.tables import TableData


class RangeRead:
    """One scan's interval; it grows as the scan consumes more keys."""

    __slots__ = ("hi", "index", "lo", "table")

    def __init__(self, table: str, index: str, lo: Key, hi: Key) -> None:
        self.table = table
        self.index = index
        self.lo = lo
        self.hi = hi

    def contains(self, key: Key) -> bool:
        return self.lo <= key < self.hi

    def interval(self) -> Interval:
        return Interval(self.lo, self.hi)

    def __repr__(self) -> str:
        return f"RangeRead({self.table}.{self.index}, {self.lo!r}, {self.hi!r})"


class ReadSet:
    """Point reads and range reads of one transaction (or one query execution)."""

    __slots__ = ("_range_count", "points", "ranges")

    def __init__(self) -> None:
        self.points: set[tuple[str, str]] = set()
        self.ranges: dict[str, list[RangeRead]] = {}
        self._range_count = 0

    def add_point(self, table: str, doc_id: str) -> None:
        self.points.add((table, doc_id))

    def add_range(self, table: str, index: str, lo: Key, hi: Key) -> RangeRead:
        r = RangeRead(table, index, lo, hi)
        self.ranges.setdefault(table, []).append(r)
        self._range_count += 1
        return r

    def __len__(self) -> int:
        return len(self.points) + self._range_count

    def touched_by(self, table: TableData, doc_id: str,
                   old: dict[str, Any] | None, new: dict[str, Any] | None) -> bool:
        """Whether writing ``old -> new`` of ``doc_id`` in ``table`` touches these reads."""
        name = table.name
        if (name, doc_id) in self.points:
            return True
        ranges = self.ranges.get(name)
        if not ranges:
            return False
        specs = table.specs
        for r in ranges:
            spec = specs.get(r.index)
            if spec is None:  # the index went away with a schema push: be conservative
                return True
            if old is not None and r.contains(spec.key(old)):
                return True
            if new is not None and r.contains(spec.key(new)):
                return True
        return False

    def conflict_with(self, commit: Commit, tables: dict[str, TableData]) -> str | None:
        """The name of a table where ``commit`` wrote into these reads, or ``None``."""
        for name, docs in commit.writes.items():
            if name not in self.ranges and not self.points:
                continue
            table = tables[name]
            for doc_id, (old, new) in docs.items():
                if self.touched_by(table, doc_id, old, new):
                    return name
        return None

"""Which live queries a commit invalidates, at a cost set by the commit, not by the subscribers.

Each live query registers its read set (reference §6): point reads ``(table, id)`` and half-open
intervals of index keys. A commit invalidates a query when a written document's ID was
point-read, or its old or new key in an index lies in an interval read from that index.

Intervals are kept in buckets. A key starts with its first field's slots (the type rank and value
slots of ``values.sort_key``; one raw slot for ``by_creation_time``/``by_id``). An interval whose
two ends start with the same first-field slots — every range with an ``eq`` on the first index
field, which is how live queries usually read — can only contain keys starting with those slots,
so it is filed under them. A written key is then compared with the intervals of its own bucket
and with the few "wide" intervals only (full scans, bounds on the first field). Ten thousand
subscriptions on distinct ``eq`` ranges cost a dict lookup per written key, not ten thousand
comparisons.

A commit with very many writes to a table (bulk imports) simply invalidates every subscriber that
read that table, rather than testing each key.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterable
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from convex_lab.store.engine import Commit
    from convex_lab.store.keys import Key
    from convex_lab.store.readset import ReadSet
    from convex_lab.store.tables import TableData

# Slots taken by one value after its type rank (see values.sort_key): undefined and null have
# none, float64 has two (value, tie-break), every other type one.
_GROUP_LEN: Final = {0: 1, 1: 1, 2: 2, 3: 3, 4: 2, 5: 2, 6: 2, 7: 2, 8: 2}
BULK_WRITES: Final = 5_000

Entry = tuple[Any, Any, Hashable]  # (lo, hi, owner)


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


class _IndexReads:
    __slots__ = ("buckets", "count", "wide")

    def __init__(self) -> None:
        self.buckets: dict[Key, list[Entry]] = {}
        self.wide: list[Entry] = []
        self.count = 0


class InvalidationIndex:
    """Read sets of live queries ("owners"), searchable by written document. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._points: dict[str, dict[str, set[Hashable]]] = {}
        self._ranges: dict[tuple[str, str], _IndexReads] = {}
        self._tables: dict[str, dict[Hashable, int]] = {}  # table -> owner -> registrations
        self._owned: dict[Hashable, list[tuple[Any, ...]]] = {}

    def __len__(self) -> int:
        return len(self._owned)

    def add(self, owner: Hashable, reads: ReadSet, kinds: dict[tuple[str, str], str]) -> None:
        """Register ``owner``'s reads (replacing earlier ones). ``kinds`` maps ``(table,
        index)`` to the index kind ("user", "by_creation_time", "by_id")."""
        with self._lock:
            self._remove(owner)
            undo: list[tuple[Any, ...]] = []
            for table, doc_id in reads.points:
                self._points.setdefault(table, {}).setdefault(doc_id, set()).add(owner)
                undo.append(("point", table, doc_id))
                self._note_table(table, owner)
            for table, ranges in reads.ranges.items():
                for r in ranges:
                    if not r.lo < r.hi:
                        continue
                    entry = (r.lo, r.hi, owner)
                    slot = self._ranges.setdefault((table, r.index), _IndexReads())
                    kind = kinds.get((table, r.index), "user")
                    g = first_group(kind, r.lo)
                    if g is not None and first_group(kind, r.hi) == g:
                        slot.buckets.setdefault(g, []).append(entry)
                        undo.append(("bucket", slot, g, entry))
                    else:
                        slot.wide.append(entry)
                        undo.append(("wide", slot, entry))
                    slot.count += 1
                    self._note_table(table, owner)
            self._owned[owner] = undo

    def _note_table(self, table: str, owner: Hashable) -> None:
        owners = self._tables.setdefault(table, {})
        owners[owner] = owners.get(owner, 0) + 1

    def remove(self, owner: Hashable) -> None:
        with self._lock:
            self._remove(owner)

    def _remove(self, owner: Hashable) -> None:
        undo = self._owned.pop(owner, None)
        if not undo:
            return
        for item in undo:
            if item[0] == "point":
                _, table, doc_id = item
                owners = self._points[table][doc_id]
                owners.discard(owner)
                if not owners:
                    del self._points[table][doc_id]
            elif item[0] == "bucket":
                _, slot, g, entry = item
                bucket = slot.buckets[g]
                bucket.remove(entry)
                if not bucket:
                    del slot.buckets[g]
                slot.count -= 1
            else:
                _, slot, entry = item
                slot.wide.remove(entry)
                slot.count -= 1
        for counts in self._tables.values():
            counts.pop(owner, None)

    def affected(self, commit: Commit, tables: dict[str, TableData]) -> set[Hashable]:
        """Owners whose reads ``commit`` wrote into."""
        out: set[Hashable] = set()
        with self._lock:
            for name, docs in commit.writes.items():
                owners = self._tables.get(name)
                if not owners:
                    continue
                table = tables.get(name)
                if table is None or len(docs) > BULK_WRITES:
                    out.update(owners)
                    continue
                self._affected_in(name, table, docs.items(), out)
        return out

    def _affected_in(self, name: str, table: TableData, writes: Iterable[tuple[str, Any]],
                     out: set[Hashable]) -> None:
        points = self._points.get(name)
        indexed = [(index, slot) for (t, index), slot in self._ranges.items()
                   if t == name and slot.count]
        for doc_id, (old, new) in writes:
            if points:
                hit = points.get(doc_id)
                if hit:
                    out.update(hit)
            for index, slot in indexed:
                spec = table.specs.get(index)
                if spec is None:  # the index went away with a schema push: all its readers
                    for entries in slot.buckets.values():
                        out.update(e[2] for e in entries)
                    out.update(e[2] for e in slot.wide)
                    continue
                for version in (old, new):
                    if version is None:
                        continue
                    key = spec.key(version)
                    g = first_group(spec.kind, key)
                    if g is not None:
                        for lo, hi, owner in slot.buckets.get(g, ()):
                            if lo <= key < hi:
                                out.add(owner)
                    for lo, hi, owner in slot.wide:
                        if lo <= key < hi:
                            out.add(owner)

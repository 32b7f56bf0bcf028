"""Which owners' read sets a commit touches, at a cost set by the commit, not by the owners.

Owners are live queries (later: wire-protocol subscriptions). Each registers its last
:class:`~convex_lab.store.readset.ReadSet`; :meth:`ReadIndex.affected` returns the owners a commit
touches. The answer for each read is the read's own (``RangeRead.hit``, the same predicate OCC
uses); this index only narrows which reads are asked.

Reads are filed by family (one index of one table, say) and, within it, by bucket: a range whose
two ends share their first-field slots — every range with an ``eq`` on the first index field,
which is how live queries usually read — can only contain keys with those slots, so it is filed
under them; other reads are "wide". A written version is probed once per family that has readers
and compared with its own bucket and the wide reads only: ten thousand live queries on distinct
``eq`` ranges cost a dict lookup per written key, not ten thousand comparisons.

A commit with very many writes to a table (bulk imports) simply touches every owner that read that
table, rather than probing each document.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterable
from typing import TYPE_CHECKING, Any, Final

from convex_lab.store.readset import WIDE

if TYPE_CHECKING:
    from convex_lab.store.commits import Commit
    from convex_lab.store.readset import ReadSet
    from convex_lab.store.tables import TableData

BULK_WRITES: Final = 5_000


class _Family:
    """The reads of one family: filed by bucket, plus the wide ones."""

    __slots__ = ("buckets", "count", "probe", "wide")

    def __init__(self, probe: Any) -> None:
        self.probe = probe  # the family's probe function (a read class's ``probe``)
        self.buckets: dict[Hashable, list[tuple[Any, Hashable]]] = {}
        self.wide: list[tuple[Any, Hashable]] = []
        self.count = 0


class ReadIndex:
    """Read sets of owners, searchable by written document. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._points: dict[str, dict[str, set[Hashable]]] = {}
        self._families: dict[str, dict[Hashable, _Family]] = {}  # table -> family -> reads
        self._tables: dict[str, dict[Hashable, int]] = {}  # table -> owner -> registrations
        self._owned: dict[Hashable, list[tuple[Any, ...]]] = {}

    def __len__(self) -> int:
        return len(self._owned)

    def add(self, owner: Hashable, reads: ReadSet, kinds: dict[tuple[str, str], str]) -> None:
        """Register ``owner``'s reads (replacing earlier ones). ``kinds`` maps ``(table,
        index)`` to the index kind, for the reads' buckets (``RangeRead.bucket``)."""
        with self._lock:
            self._remove(owner)
            undo: list[tuple[Any, ...]] = []
            for table, doc_id in reads.points:
                self._points.setdefault(table, {}).setdefault(doc_id, set()).add(owner)
                undo.append(("point", table, doc_id))
                self._note_table(table, owner)
            for table, table_reads in reads.reads.items():
                families = self._families.setdefault(table, {})
                for r in table_reads:
                    if r.is_empty():
                        continue  # reads nothing
                    fam_key = r.family()
                    fam = families.get(fam_key)
                    if fam is None:
                        fam = families[fam_key] = _Family(type(r).probe)
                    entry = (r, owner)
                    bucket = r.bucket(kinds)
                    if bucket is WIDE:
                        fam.wide.append(entry)
                    else:
                        fam.buckets.setdefault(bucket, []).append(entry)
                    undo.append(("read", fam, bucket, entry))
                    fam.count += 1
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
                continue
            _, fam, bucket, entry = item
            if bucket is WIDE:
                fam.wide.remove(entry)
            else:
                entries = fam.buckets[bucket]
                entries.remove(entry)
                if not entries:
                    del fam.buckets[bucket]
            fam.count -= 1
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
        families = [(key, fam) for key, fam in self._families.get(name, {}).items() if fam.count]
        for doc_id, (old, new) in writes:
            if points:
                hit = points.get(doc_id)
                if hit:
                    out.update(hit)
            for fam_key, fam in families:
                for version in (old, new):
                    if version is None:
                        continue
                    probe, bucket = fam.probe(table, fam_key, version)
                    if bucket is not WIDE:
                        for read, owner in fam.buckets.get(bucket, ()):
                            if owner not in out and read.hit(probe):
                                out.add(owner)
                    else:  # the probe fits no one bucket (an index that went away): ask all
                        for entries in fam.buckets.values():
                            for read, owner in entries:
                                if owner not in out and read.hit(probe):
                                    out.add(owner)
                    for read, owner in fam.wide:
                        if owner not in out and read.hit(probe):
                            out.add(owner)

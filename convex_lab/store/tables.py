"""The in-memory, index-ordered view of one table's latest committed documents.

Invariants (held under the store's lock):

* ``docs`` maps every live document ID to its latest committed document (a dict holding
  ``_id`` and ``_creationTime``). Documents are never mutated in place: a write replaces the dict.
* For every index ``i`` in ``indexes``, ``entries[i]`` holds exactly ``spec.key(doc)`` for every
  doc in ``docs``. ``by_id`` is built lazily (first ranged read) because ``docs`` already answers
  point reads; ``by_creation_time`` always exists.
* ``max_doc_size`` is an upper bound of the Convex size of any document ever written here; it lets
  readers skip exact byte accounting until the bytes-read limit could be reached.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sortedcontainers import SortedList  # type: ignore[import-untyped]

from convex_lab.store.keys import IndexSpec, Interval, Key, user_index_specs


class TableData:
    """Documents and indexes of one table (see module docstring)."""

    __slots__ = ("docs", "entries", "max_doc_size", "name", "number", "specs")

    def __init__(self, name: str, number: int, indexes: dict[str, list[str]] | None = None) -> None:
        self.name = name
        self.number = number
        self.docs: dict[str, dict[str, Any]] = {}
        self.specs: dict[str, IndexSpec] = user_index_specs(indexes or {})
        self.entries: dict[str, SortedList] = {
            n: SortedList() for n in self.specs if n != "by_id"
        }
        self.max_doc_size = 0

    # Index maintenance ----------------------------------------------------------------------
    def set_indexes(self, indexes: dict[str, list[str]]) -> None:
        """Replace the user indexes (a schema push) and rebuild the ones that changed."""
        new_specs = user_index_specs(indexes)
        for name, spec in new_specs.items():
            old = self.specs.get(name)
            if old is None or old.fields != spec.fields or name not in self.entries:
                if name == "by_id" and "by_id" not in self.entries:
                    continue
                self.entries[name] = SortedList(spec.key(d) for d in self.docs.values())
        for name in list(self.entries):
            if name not in new_specs:
                del self.entries[name]
        self.specs = new_specs

    def entries_for(self, index: str) -> SortedList:
        got = self.entries.get(index)
        if got is None:  # by_id, built on first use
            got = self.entries[index] = SortedList((i,) for i in self.docs)
        return got

    def apply(self, doc_id: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        """Replace the latest version of one document (``None`` = absent) and its index keys."""
        specs = self.specs
        for name, entries in self.entries.items():
            key = specs[name].key
            if old is not None:
                if new is not None:
                    k_old, k_new = key(old), key(new)
                    if k_old == k_new:
                        continue
                    entries.remove(k_old)
                    entries.add(k_new)
                    continue
                entries.remove(key(old))
            elif new is not None:
                entries.add(key(new))
        if new is None:
            self.docs.pop(doc_id, None)
        else:
            self.docs[doc_id] = new

    def bulk_load(self, docs: list[dict[str, Any]]) -> None:
        """Add many new documents at once (opening a file, imports): one sort per index."""
        table_docs = self.docs
        for d in docs:
            table_docs[d["_id"]] = d
        for name, entries in self.entries.items():
            key = self.specs[name].key
            if len(entries) == 0:
                entries.update(key(d) for d in docs)
            else:
                for d in docs:
                    entries.add(key(d))

    def scan(self, index: str, interval: Interval, *, reverse: bool = False) -> Iterator[Key]:
        """Keys of ``index`` inside ``interval``, in order (or reversed)."""
        return self.entries_for(index).irange(  # type: ignore[no-any-return]
            interval.lo, interval.hi, inclusive=(True, False), reverse=reverse
        )

    def __len__(self) -> int:
        return len(self.docs)

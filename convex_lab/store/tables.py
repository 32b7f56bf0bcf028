"""The in-memory, index-ordered view of one table's latest committed documents.

Invariants (held under the store's lock):

* ``docs`` maps every live document ID to its latest committed document (a dict holding
  ``_id`` and ``_creationTime``). Documents are never mutated in place: a write replaces the dict.
* For every index ``i`` in ``indexes``, ``entries[i]`` holds exactly ``spec.key(doc)`` for every
  doc in ``docs``. ``by_id`` is built lazily (first ranged read) because ``docs`` already answers
  point reads; ``by_creation_time`` always exists.
* ``search`` and ``vectors`` hold the table's full-text and vector indexes by name
  (``store/text_index.py``, ``store/vector_index.py``), kept equal to ``docs`` by the same writes.
* ``max_doc_size`` is an upper bound of the Convex size of any document ever written here; it lets
  readers skip exact byte accounting until the bytes-read limit could be reached.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Mapping, Sequence
from operator import itemgetter
from typing import Any

from sortedcontainers import SortedList

from convex_lab.store.keys import IndexSpec, Interval, Key, user_index_specs
from convex_lab.store.text_index import TextIndex
from convex_lab.store.vector_index import VectorIndex


def _presort(keys: list[Key]) -> None:
    """Sort keys of documents given in creation order, fast when it is safe.

    A key is ``(rank, value, …, creation_time, id)``; the constant rank slot defeats CPython's
    fast path for sorting tuples. When every key is a one-field string key, or a finite non-zero
    float key, the order is the value's order with ties kept in creation order: a stable sort on
    the value alone, which compares plain strings or floats.
    """
    if len(keys) < 2 or len(keys[0]) not in (4, 5):
        keys.sort()
        return
    width = len(keys[0])
    strings = width == 4 and all(k[0] == 5 for k in keys)
    plain_floats = width == 5 and all(k[0] == 3 and k[2] == 0 for k in keys)
    if strings or plain_floats:
        keys.sort(key=itemgetter(1))
    else:
        keys.sort()


def _bulk_keys(spec: IndexSpec, docs: list[dict[str, Any]]) -> list[Key]:
    """``spec.key`` of every document; for a one-field index whose values are all strings or
    all ordinary floats, built without a call per document (same keys, see ``keys.py``)."""
    fields = spec.fields
    if spec.kind == "user" and len(fields) == 1 and "." not in fields[0] and docs:
        f = fields[0]
        values = [d.get(f) for d in docs]
        if all(type(v) is str for v in values):
            return [(5, v, d["_creationTime"], d["_id"]) for v, d in zip(values, docs, strict=True)]
        if all(type(v) is float and v - v == 0.0 and v != 0.0 for v in values):
            return [(3, v, 0, d["_creationTime"], d["_id"])
                    for v, d in zip(values, docs, strict=True)]
    return list(map(spec.key, docs))


def _fill_sorted(entries: SortedList, keys: list[Key]) -> None:
    """Load sorted ``keys`` into an empty SortedList without sorting them again.

    This is ``SortedList.update`` minus its ``sorted()`` call, written against sortedcontainers'
    documented internals (``_lists``, ``_maxes``, ``_load``, ``_len``, ``_index``), which have been
    stable since 2.0; the package is pinned below 3.
    """
    load = entries._load
    lists = [keys[i : i + load] for i in range(0, len(keys), load)]
    entries._lists[:] = lists
    entries._maxes[:] = [sub[-1] for sub in lists]
    entries._len = len(keys)
    del entries._index[:]


def take_keys(entries: SortedList, lo: Key, hi: Key, n: int, reverse: bool) -> list[Key]:
    """The first ``n`` keys of ``entries`` in ``[lo, hi)`` (the last ``n``, in descending order,
    when ``reverse``): ``list(islice(entries.irange(lo, hi, inclusive=(True, False)), n))``
    without the iterator machinery — two bisections, then list slices of the sublists.

    Written against the same documented SortedList internals as :func:`_fill_sorted`.
    """
    maxes, lists = entries._maxes, entries._lists
    if not maxes or n <= 0:
        return []
    out: list[Key] = []
    if not reverse:
        pos = bisect_left(maxes, lo)
        if pos == len(maxes):
            return out
        sub = lists[pos]
        idx = bisect_left(sub, lo)
        while True:
            chunk = sub[idx : idx + n - len(out)]
            if chunk and not chunk[-1] < hi:  # the range ends inside this chunk
                out += chunk[: bisect_left(chunk, hi)]
                return out
            out += chunk
            pos += 1
            if len(out) >= n or pos == len(lists):
                return out
            sub, idx = lists[pos], 0
    pos = bisect_left(maxes, hi)
    if pos == len(maxes):
        pos -= 1
        idx = len(lists[pos])
    else:
        idx = bisect_left(lists[pos], hi)
    while True:
        sub = lists[pos]
        chunk = sub[max(0, idx - (n - len(out))) : idx]
        if chunk and chunk[0] < lo:  # the range starts inside this chunk
            chunk = chunk[bisect_left(chunk, lo) :]
            chunk.reverse()
            out += chunk
            return out
        chunk.reverse()
        out += chunk
        pos -= 1
        if len(out) >= n or pos < 0:
            return out
        idx = len(lists[pos])


class TableData:
    """Documents and indexes of one table (see module docstring)."""

    __slots__ = ("docs", "entries", "max_doc_size", "name", "nested", "number", "search",
                 "specs", "vectors")

    def __init__(self, name: str, number: int,
                 indexes: Mapping[str, Sequence[str]] | None = None,
                 search: Mapping[str, Mapping[str, Any]] | None = None,
                 vectors: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.name = name
        self.number = number
        self.docs: dict[str, dict[str, Any]] = {}
        self.specs: dict[str, IndexSpec] = user_index_specs(indexes or {})
        self.entries: dict[str, SortedList] = {
            n: SortedList() for n in self.specs if n != "by_id"
        }
        self.max_doc_size = 0
        self.nested = False  # some document ever held an array or object (copies must be deep)
        self.search: dict[str, TextIndex] = {}
        self.vectors: dict[str, VectorIndex] = {}
        self.set_search_indexes(search or {}, vectors or {})

    def set_search_indexes(self, search: Mapping[str, Mapping[str, Any]],
                           vectors: Mapping[str, Mapping[str, Any]]) -> None:
        """Replace the search and vector index definitions (schema ``search_indexes`` /
        ``vector_indexes`` entries); an index whose definition changed is rebuilt from the
        documents, an unchanged one is kept."""
        text: dict[str, TextIndex] = {}
        for name, d in search.items():
            old = self.search.get(name)
            fields = tuple(d.get("filter_fields", ()))
            if old is not None and old.field == d["search_field"] and old.filter_fields == fields:
                text[name] = old
                continue
            text[name] = TextIndex(name, d["search_field"], fields)
            if self.docs:
                text[name].bulk_load(list(self.docs.values()))
        vec: dict[str, VectorIndex] = {}
        for name, d in vectors.items():
            got = self.vectors.get(name)
            fields = tuple(d.get("filter_fields", ()))
            if (got is not None and got.field == d["vector_field"] and got.filter_fields == fields
                    and got.dimensions == d["dimensions"]):
                if got.approximate != bool(d.get("approximate", False)):
                    got.approximate = not got.approximate
                    got.ann = None  # exact again (or built again when needed)
                vec[name] = got
                continue
            vec[name] = VectorIndex(name, d["vector_field"], d["dimensions"], fields,
                                    bool(d.get("approximate", False)))
            if self.docs:
                vec[name].bulk_load(list(self.docs.values()))
        self.search = text
        self.vectors = vec

    # Index maintenance ----------------------------------------------------------------------
    def set_indexes(self, indexes: Mapping[str, Sequence[str]]) -> None:
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
        for text in self.search.values():
            text.apply(doc_id, old, new)
        for vec in self.vectors.values():
            vec.apply(doc_id, old, new)
        if new is None:
            self.docs.pop(doc_id, None)
        else:
            self.docs[doc_id] = new

    def bulk_load(self, docs: list[dict[str, Any]], *, nested: bool | None = None) -> None:
        """Add many new documents at once (opening a file, imports): one sort per index.

        ``docs`` must be in ``(_creationTime, _id)`` order, as imports and reloads produce them.
        ``nested`` says whether any of them holds an array or object, when the caller knows.
        """
        table_docs = self.docs
        for d in docs:
            table_docs[d["_id"]] = d
        if nested is None:  # unknown (documents read back from a file): look
            nested = any(type(v) is list or type(v) is dict for d in docs for v in d.values())
        self.nested = self.nested or nested
        for name, entries in self.entries.items():
            keys = _bulk_keys(self.specs[name], docs)
            if len(entries) == 0:
                _presort(keys)
                _fill_sorted(entries, keys)
            else:
                entries.update(keys)
        for text in self.search.values():
            text.bulk_load(docs)
        for vec in self.vectors.values():
            vec.bulk_load(docs)

    def scan(self, index: str, interval: Interval, *, reverse: bool = False) -> Iterator[Key]:
        """Keys of ``index`` inside ``interval``, in order (or reversed)."""
        return self.entries_for(index).irange(  # type: ignore[no-any-return]
            interval.lo, interval.hi, inclusive=(True, False), reverse=reverse
        )

    def __len__(self) -> int:
        return len(self.docs)

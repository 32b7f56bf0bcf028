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
from itertools import repeat
from operator import itemgetter
from typing import Any

from sortedcontainers import SortedList

from convex_lab.store.keys import IndexSpec, Interval, Key, user_index_specs
from convex_lab.store.text_index import TextIndex
from convex_lab.store.vector_index import VectorIndex


def _presort(keys: list[Key], order: str) -> None:
    """Sort keys of documents given in creation order (``order`` from :func:`_bulk_keys`).

    A key is ``(rank, value, …, creation_time, id)``; the constant rank slot defeats CPython's
    fast path for sorting tuples. ``"by_value"`` (every key a one-field string key, or a float
    key without a tiebreak): the order is the value's order with ties kept in creation order, a
    stable sort on the value alone, which compares plain strings or floats. Otherwise a full
    sort (linear on keys already in order, such as the creation-time index's).
    """
    if order == "by_value":
        keys.sort(key=itemgetter(1))
    else:
        keys.sort()


def _bulk_keys(spec: IndexSpec, docs: list[dict[str, Any]]) -> tuple[list[Key], str]:
    """``spec.key`` of every document in ``docs`` (in creation order), and how they sort (see
    :func:`_presort`). The creation-time index, and a one-field index whose values are all
    strings, or all floats other than NaN and -0.0 (whose keys carry a tiebreak; otherwise
    ``sort_key`` gives ``(3, v, 0)``), are built with C-level iteration, not a call per
    document (the same keys)."""
    fields = spec.fields
    if spec.kind == "by_creation_time":
        return list(zip(map(_CT, docs), map(_ID, docs), strict=True)), "full"
    if spec.kind == "user" and len(fields) == 1 and "." not in fields[0] and docs:
        f = fields[0]
        try:
            values = list(map(itemgetter(f), docs))
        except KeyError:  # some document lacks the field: its key holds UNDEFINED
            return list(map(spec.key, docs)), "full"
        kinds = set(map(type, values))
        cts, ids = map(_CT, docs), map(_ID, docs)
        if kinds == {str}:
            return list(zip(repeat(5), values, cts, ids)), "by_value"
        if kinds == {float}:
            import numpy as np  # noqa: PLC0415 (numpy comes with the store)

            arr = np.fromiter(values, dtype=np.float64, count=len(values))
            if not (np.isnan(arr).any() or (np.signbit(arr) & (arr == 0.0)).any()):
                return list(zip(repeat(3), values, repeat(0), cts, ids)), "by_value"
    return list(map(spec.key, docs)), "full"


_CT, _ID = itemgetter("_creationTime"), itemgetter("_id")


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
        self.docs.update(zip(map(_ID, docs), docs, strict=True))
        if nested is None:  # unknown (documents read back from a file): look
            nested = any(type(v) is list or type(v) is dict for d in docs for v in d.values())
        self.nested = self.nested or nested
        for name, entries in self.entries.items():
            keys, order = _bulk_keys(self.specs[name], docs)
            if len(entries) == 0:
                _presort(keys, order)
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

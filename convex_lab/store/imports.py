"""Bulk loads into the store, each as ONE commit (``Store.import_documents``,
``Store.load_documents``; ``store/engine.py`` delegates here).

* :func:`import_documents`: new documents (fresh IDs and creation times), validated like
  ``insert`` (the one-pass builder when the schema allows), consumed in chunks so a generator
  is never materialised; an error names the document's position and nothing is written.
* :func:`load_documents`: given documents (``store.bulk_load.BulkLoad``: IDs and creation times
  kept, validated by the caller: snapshot ZIPs, DataFrames) into one or more tables, with
  ``mode`` ``"require_empty"``, ``"append"`` or ``"replace"``, checked under the store lock
  before anything changes; :func:`reserve_ids` / :func:`reserve_times` give such a caller
  fresh ones.

Both append one commit to the log, enqueue it for DuckDB, fill the in-memory indexes with one
sort per index (``TableData.bulk_load``), make it visible and trim the log at once (it holds
every loaded document); GC is off while they run and a million documents are frozen out of the
collector's walk afterwards. Function limits (16,000 writes) do not apply, as with Convex's
import.
"""

from __future__ import annotations

import gc
import itertools
import math
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from convex_lab.errors import ConvexLabError, InvalidValueError
from convex_lab.ids import generate_ids
from convex_lab.store.bulk_vectors import array_size, float_array_fields, split_float_arrays
from convex_lab.store.commits import GC_FREEZE_DOCS, BulkInserts, Commit, freeze_after_load
from convex_lab.store.fastpath import Builder
from convex_lab.store.tables import TableData
from convex_lab.store.transaction import check_document
from convex_lab.values import MAX_DOCUMENT_SIZE, convert_document

if TYPE_CHECKING:
    from convex_lab.store.engine import Store

IMPORT_CHUNK = 65_536


def import_documents(store: Store, table_name: str,
                     documents: Iterable[Mapping[str, Any]]) -> list[str]:
    """Insert many documents as one commit, validated like ``insert``; returns their IDs.

    For bulk loads (DataFrames, snapshots, benchmarks): documents are checked and converted
    first (nothing is written if one fails, and the error names its position), then indexed
    with one sort per index and written to DuckDB in one transaction. Function limits such as
    16,000 writes do not apply, as with Convex's import.
    """
    from convex_lab.store.database import check_table_name  # noqa: PLC0415

    check_table_name(table_name)
    if isinstance(documents, Mapping | str | bytes) or not isinstance(documents, Iterable):
        raise InvalidValueError(
            f"import_documents() takes an iterable of documents (dicts), e.g. a list; got "
            f"{type(documents).__name__}.")
    schema = store.schema
    table_def = schema.table(table_name) if schema is not None else None
    validate = (table_def.validate_document
                if table_def is not None and schema is not None and schema.schema_validation
                else None)
    build = store.builder(table_name)
    table, _ = store.ensure_table(table_name)
    now = store.now()
    with store.lock:
        ct = max(store._creation_next, now)
    gc_was_enabled = gc.isenabled()
    gc.disable()  # a million new dicts would trigger full collections over and over
    try:
        return _import(store, table, iter(documents), now=now, ct=ct, validate=validate,
                            build=build)
    finally:
        if gc_was_enabled:
            gc.enable()

def _import(store: Store, table: TableData, documents: Iterator[Mapping[str, Any]], *, now: float,
            ct: float, validate: Any, build: Builder | None) -> list[str]:
    table_name = table.name
    lookup = store.table_name_for_number
    import numpy as np  # noqa: PLC0415

    table_def = store.schema.table(table_name) if store.schema is not None else None
    float_names = float_array_fields(
        table_def.document_validator if table_def is not None and validate else None,
        [d["vector_field"] for d in table_def.vector_indexes.values()]
        if table_def is not None else [])
    out: list[dict[str, Any]] = []
    ids: list[str] = []
    special: set[str] = set()
    max_size = 0
    position = 0
    nested = False
    # The input is consumed in chunks so a generator never needs to be materialised.
    while chunk := list(itertools.islice(documents, IMPORT_CHUNK)):
        chunk_ids = generate_ids(table.number, now, len(chunk))
        ids += chunk_ids
        # Successive creation times are successive floats: for a positive float the next
        # one up is the next integer bit pattern, so they come from one vectorised step.
        cts = (np.arange(len(chunk), dtype=np.int64) + np.float64(ct).view(np.int64)).view(
            np.float64).tolist()
        ct = math.nextafter(cts[-1], math.inf)
        i = 0
        while i < len(chunk):
            if build is not None:  # the fast path, until a document needs more care
                many = build.many  # type: ignore[attr-defined]
                stop, size = many(chunk, chunk_ids, cts, out, i)
                max_size = max(max_size, size)
                position += stop - i
                i = stop
                if i == len(chunk):
                    break
            fields, doc_id, doc_ct = chunk[i], chunk_ids[i], cts[i]
            i += 1
            try:
                if not isinstance(fields, Mapping):
                    raise InvalidValueError(
                        f"A document must be a dict of fields; got {type(fields).__name__}.")
                if "_id" in fields or "_creationTime" in fields:
                    raise InvalidValueError(
                        "Imported documents get new _id and _creationTime values; remove "
                        "those fields.")
                arrays = split_float_arrays(fields, float_names) if float_names else None
                if arrays is not None:  # embeddings: checked in C (store/bulk_vectors.py)
                    fields = arrays[0]
                doc = (validate(dict(fields), table=table_name, tables=lookup)
                       if validate is not None else convert_document(fields))
                full = {"_id": doc_id, "_creationTime": doc_ct}
                full.update(doc)
                size, depth, is_special = check_document(full)
                if arrays is not None:
                    for name, values in arrays[1]:
                        full[name] = values
                        size += array_size(values)
                    if size > MAX_DOCUMENT_SIZE:
                        check_document(full)  # raises Convex's error
                nested = nested or depth > 1
            except ConvexLabError as e:
                raise type(e)(f"Document {position} of the import into {table_name!r}: "
                              f"{e}", code=e.code) from None
            if is_special:
                special.add(doc_id)
            max_size = max(max_size, size)
            out.append(full)
            position += 1
    with store.lock:
        store.ts += 1
        writes = {table_name: BulkInserts(ids, out)}
        commit = Commit(store.ts, writes, special=special)  # type: ignore[arg-type]
        store._log.append(commit)  # before the indexes change: older snapshots need it
        seq = store.persist.enqueue(commit, store)
        table.bulk_load(out, nested=nested)
        table.max_doc_size = max(table.max_doc_size, max_size)
        store._creation_next = max(store._creation_next, ct)
    store._finish(commit, seq)
    store.persist.after_import()  # a file: durable already; in memory: written behind
    with store.lock:
        store._trim_log(force=True)  # the import's commit holds a million-entry list
    if len(out) >= GC_FREEZE_DOCS:
        freeze_after_load(store)  # out of the collector's walk until the store closes
    return ids

def reserve_times(store: Store, n: int) -> list[float]:
    """``n`` successive creation times, reserved now: later writes get later ones."""
    import numpy as np  # noqa: PLC0415

    with store.lock:
        ct = max(store._creation_next, store.now())
        cts: list[float] = (np.arange(n, dtype=np.int64)
                            + np.float64(ct).view(np.int64)).view(np.float64).tolist()
        if cts:
            store._creation_next = math.nextafter(cts[-1], math.inf)
    return cts

def reserve_ids(store: Store, table_name: str, n: int) -> tuple[int, list[str], list[float]]:
    """``n`` fresh IDs of ``table_name`` (made if needed) and ``n`` creation times
    (:meth:`reserve_times`): for a bulk load whose documents the caller builds
    (``convex_lab/interop/``). Returns the table number, the IDs and the times."""
    from convex_lab.store.database import check_table_name  # noqa: PLC0415

    check_table_name(table_name)
    table, _ = store.ensure_table(table_name)
    ids = generate_ids(table.number, store.now(), n) if n else []
    return table.number, ids, reserve_times(store, n)

def load_documents(store: Store, loads: list[Any], *, mode: str = "append") -> int:
    """Bulk-load given documents (``store.bulk_load.BulkLoad``: IDs and creation times kept)
    into one or more tables as ONE commit; returns its ts.

    ``mode``: ``"require_empty"`` (every target table must be empty), ``"append"`` (IDs
    must be new to their table), ``"replace"`` (each target table's documents are deleted in
    the same commit). Checked here, under the store lock, before anything changes: a table's
    number (a new table is made with the load's ``number``; an existing one must have it),
    every ID well-formed for that number and unique. Documents were validated by the caller.
    Nothing is written if a check fails.
    """
    from convex_lab.store.bulk_load import check_load, load_number  # noqa: PLC0415
    from convex_lab.store.database import check_table_name  # noqa: PLC0415

    if mode not in ("require_empty", "append", "replace"):
        raise InvalidValueError(f"mode must be 'require_empty', 'append' or 'replace'; got "
                                f"{mode!r}.")
    names = [ld.table for ld in loads]
    if len(set(names)) != len(names):
        raise InvalidValueError(f"A bulk load lists a table twice: {sorted(names)}.")
    for name in names:
        if name != "_storage":  # a snapshot's files: the one system table a load writes
            for part in name.split("/", 1):  # "<component>/<table>": a component's table
                check_table_name(part)
    gc_was_enabled = gc.isenabled()
    gc.disable()  # a million new dicts would trigger full collections over and over
    try:
        with store.lock:
            numbers: dict[str, int] = {}
            for ld in loads:
                numbers[ld.table] = load_number(store, ld)
            if mode == "require_empty":
                full = [n for n in names if n in store.tables and store.tables[n].docs]
                if full:
                    raise InvalidValueError(
                        f"Table(s) {', '.join(map(repr, full))} already hold documents, and "
                        "this import requires empty tables (mode='require_empty', Convex's "
                        "default). Use mode='append' to add to them or mode='replace' to "
                        "replace them.")
            for ld in loads:
                if not ld.fresh:  # fresh IDs and times (reserve_ids) need no checking
                    check_load(store, ld, numbers[ld.table], mode)
            commit, seq = _load_commit(store, loads, numbers, mode)
        store._finish(commit, seq)
        store.persist.after_import()  # a file: durable already; in memory: written behind
        with store.lock:
            store._trim_log(force=True)  # the commit holds every loaded document
        if sum(len(ld.docs) for ld in loads) >= GC_FREEZE_DOCS:
            freeze_after_load(store)
        return commit.ts
    finally:
        if gc_was_enabled:
            gc.enable()

def _load_commit(store: Store, loads: list[Any], numbers: dict[str, int], mode: str,
                 ) -> tuple[Commit, int]:
    """Apply a checked bulk load as one commit (callers hold the lock); returns the commit
    and its persistence sequence for :meth:`_finish`."""
    from convex_lab.store.bulk_load import in_creation_order  # noqa: PLC0415

    writes: dict[str, Any] = {}
    special: set[str] = set()
    replaced: list[tuple[TableData, list[dict[str, Any]]]] = []
    appended: list[tuple[TableData, Any]] = []
    for ld in loads:
        t = store.tables.get(ld.table)
        if t is None:
            t = store._add_table(ld.table, numbers[ld.table])
        docs = ld.docs if ld.fresh else in_creation_order(ld.docs)
        special |= ld.special
        if mode == "replace" and t.docs:
            old = t.docs
            out: dict[str, tuple[Any, Any]] = {i: (d, None) for i, d in old.items()}
            for d in docs:
                out[d["_id"]] = (old.get(d["_id"]), d)
            writes[ld.table] = out
            replaced.append((t, docs))
        else:
            ids = ld.ids if ld.ids is not None and docs is ld.docs else [
                d["_id"] for d in docs]
            writes[ld.table] = BulkInserts(ids, docs)
            appended.append((t, docs))
        if docs:
            store._creation_next = max(store._creation_next,
                                      math.nextafter(docs[-1]["_creationTime"], math.inf))
    store.ts += 1
    commit = Commit(store.ts, writes, special=special)
    store._log.append(commit)  # before the tables change: older snapshots need it
    seq = store.persist.enqueue(commit, store)
    for ld in loads:
        t = store.tables[ld.table]
        t.max_doc_size = max(t.max_doc_size, ld.max_size)
    for t, docs in replaced:
        _reset_table(store, t)
        t.bulk_load(docs, nested=any(ld.nested for ld in loads if ld.table == t.name))
    for t, docs in appended:
        t.bulk_load(docs, nested=any(ld.nested for ld in loads if ld.table == t.name))
    return commit, seq

def _reset_table(store: Store, t: TableData) -> None:
    """Empty ``t`` in place (a replace), keeping its indexes' definitions."""
    fresh = store._add_table_data(t.name, t.number)
    for slot in TableData.__slots__:
        setattr(t, slot, getattr(fresh, slot))

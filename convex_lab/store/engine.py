"""The store: serializable transactions over in-memory indexes, with DuckDB as the store of record.

Model
-----
* **Latest state in memory.** Each table's latest committed documents and their index keys live
  in :class:`~convex_lab.store.tables.TableData` (dicts and sorted lists), so reads inside functions
  never pay a SQL round trip.
* **Snapshots from a commit log.** Commit ``ts`` values are consecutive integers. A transaction
  reads at ``snapshot_ts``; commits after it (kept in ``_log`` with the version each one replaced)
  are subtracted on the fly, so a reader sees exactly the state at its snapshot while writers go on.
* **OCC.** A transaction records what it read: point reads by ID and half-open intervals of index
  keys (what a scan actually consumed). At commit, every document written by a later commit is
  tested, old and new version, against those reads (reference §5.2): any hit is a conflict and the
  caller re-runs the function. There is no separate write-write test: patch, replace and delete
  always read their target first.
* **Durability.** Validation and application happen under one lock, then the commit is handed to
  the persistence layer in commit order. A file-backed store waits until DuckDB has committed it
  (group commit: one writer flushes everything queued, so concurrent mutations share a DuckDB
  transaction); only then does ``visible_ts`` move, so no reader ever sees a write that a crash
  could take back. An in-memory store makes commits visible at once and writes them behind.
* **The ``commits`` event** is emitted after a commit becomes visible, once per commit, in commit
  order, outside the lock (live queries, the scheduler and widgets subscribe to it).

Errors raised to the caller are ``ConvexLabError``s; :class:`Conflict` is a ``BaseException`` so
that a user's ``except Exception`` inside a function cannot swallow an OCC retry.
"""

from __future__ import annotations

import atexit
import gc
import itertools
import math
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from convex_lab._annotations import VModel
from convex_lab.errors import (
    CLOSED_MESSAGE,
    BackendClosedError,
    ConvexLabError,
    FileInUseError,
    InvalidValueError,
    SchemaError,
)
from convex_lab.events import Event
from convex_lab.ids import FIRST_USER_TABLE_NUMBER, encode_id, generate_ids
from convex_lab.store.bulk_vectors import array_size, float_array_fields, split_float_arrays
from convex_lab.store.fastpath import Builder, build_schemaless, compile_builder
from convex_lab.store.persist import FilePersistence, Persistence, open_persistence
from convex_lab.store.tables import TableData
from convex_lab.store.transaction import (
    Conflict,
    Transaction,
    check_document,
    run_with_retries,
)
from convex_lab.values import MAX_DOCUMENT_SIZE, convert_document, loads_export

if TYPE_CHECKING:
    from convex_lab.schema import Schema

T = TypeVar("T")

SYSTEM_TABLES: dict[str, int] = {"_scheduled_functions": 1, "_storage": 2, "_cron_jobs": 3}
IMPORT_CHUNK = 65_536
GC_FREEZE_DOCS = 100_000


@dataclass(slots=True)
class Commit:
    """One committed transaction: its ts and, per table, ``id -> (old, new)`` documents."""

    ts: int
    writes: dict[str, dict[str, tuple[dict[str, Any] | None, dict[str, Any] | None]]]
    schema_json: str | None = None
    special: set[str] = field(default_factory=set)  # IDs whose documents need lossless JSON


class BulkInserts(Mapping[str, tuple[None, dict[str, Any]]]):
    """``id -> (None, doc)`` for a bulk import, without building a million-entry dict up front.

    Persistence reads the parallel lists directly; the dict is built only if something asks for
    a single ID (a transaction whose snapshot predates the import, or a conflict check).
    """

    __slots__ = ("_dict", "docs", "ids")

    def __init__(self, ids: list[str], docs: list[dict[str, Any]]) -> None:
        self.ids = ids
        self.docs = docs
        self._dict: dict[str, tuple[None, dict[str, Any]]] | None = None

    def _map(self) -> dict[str, tuple[None, dict[str, Any]]]:
        if self._dict is None:
            self._dict = dict(zip(self.ids, zip(itertools.repeat(None), self.docs), strict=True))
        return self._dict

    def __getitem__(self, key: str) -> tuple[None, dict[str, Any]]:
        return self._map()[key]

    def __contains__(self, key: object) -> bool:
        return key in self._map()

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids)

    def __len__(self) -> int:
        return len(self.ids)

    def items(self) -> Any:
        return zip(self.ids, zip(itertools.repeat(None), self.docs), strict=True)

    def values(self) -> Any:
        return zip(itertools.repeat(None), self.docs)


def wall_clock_ms() -> float:
    return time.time() * 1000.0


_unfreeze_registered = False


def _unfreeze_at_exit() -> None:
    """Give frozen objects back to the collector at exit, so extension modules that check for
    leaks at shutdown (DuckDB's bindings do) see them collected."""
    global _unfreeze_registered  # once per process
    if not _unfreeze_registered:
        _unfreeze_registered = True
        atexit.register(gc.unfreeze)


# One writer per file: DuckDB shares one database instance between connections to the same file
# in a process, so two stores on one file would both write, each with its own idea of the data
# and of the next table number. A file is claimed by the store that opens it until it closes.
_open_files: dict[str, weakref.ref[Store]] = {}
_open_files_lock = threading.Lock()


def _claim_file(path: str, store: Store) -> str:
    key = os.path.realpath(os.path.expanduser(path))
    with _open_files_lock:
        ref = _open_files.get(key)
        holder = ref() if ref is not None else None
        if holder is not None and not holder.closed:
            raise FileInUseError(
                f"{path!r} is already open in this process by another Backend. One DuckDB file "
                "has one writer: two would lose each other's writes. Keep using the open backend, "
                "or close it first (backend.close()) and open the file again. In a notebook, "
                "`%convex open PATH` switches the default backend and closes the old one.")
        _open_files[key] = weakref.ref(store)
    return key


def _release_file(key: str | None, store: Store) -> None:
    if key is None:
        return
    with _open_files_lock:
        ref = _open_files.get(key)
        if ref is not None and ref() in (store, None):
            del _open_files[key]


class Store:
    """A deployment's data: tables, indexes, schema, and transactions over them.

    ``path=None`` keeps everything in memory (an in-memory DuckDB mirrors it); a path opens or
    creates a DuckDB file that is the store of record and survives restarts.
    """

    def __init__(self, path: str | None = None, *,
                 now: Callable[[], float] = wall_clock_ms) -> None:
        self.lock = threading.RLock()
        self.now = now
        self.path = path
        self.tables: dict[str, TableData] = {}
        self.by_number: dict[int, TableData] = {}
        self.schema: Schema | None = None
        self.schema_epoch = 0
        self.ts = 0
        self.visible_ts = 0
        self._log: list[Commit] = []
        self._active: dict[int, int] = {}
        self._serials = itertools.count(1)
        self._creation_next = 0.0
        self._next_table_number = FIRST_USER_TABLE_NUMBER
        # Emitted once per visible commit, in commit order (see _notify): live queries, the
        # scheduler and widgets subscribe; this layer imports none of them.
        self.commits: Event[Commit] = Event("commit")
        self._id_pools: dict[int, tuple[int, list[str]]] = {}
        self._builders: dict[str, Builder | None] = {}
        self._prefixes: dict[str, TableData] = {}
        self._query_setups: dict[Any, Any] = {}
        self._notify_lock = threading.Lock()
        self._notifier: int | None = None  # the thread delivering commits to listeners
        self._notified_ts = 0
        self.closed = False
        self._file_key = _claim_file(path, self) if path is not None else None
        try:
            self.persist: Persistence = open_persistence(path)
        except BaseException:
            _release_file(self._file_key, self)
            raise
        if isinstance(self.persist, FilePersistence):
            self.persist.siblings = self._active.__len__
        try:
            self._load()
        except BaseException:
            self.closed = True
            try:
                self.persist.close()
            finally:
                _release_file(self._file_key, self)
            raise

    # Opening ---------------------------------------------------------------------------------
    def _load(self) -> None:
        state = self.persist.load()
        for name, number in SYSTEM_TABLES.items():
            self._add_table(name, number)
        for name, number in state.tables:
            if name not in self.tables:
                self._add_table(name, number)
        if state.schema_json:
            from convex_lab.schema import Schema  # noqa: PLC0415 (schema imports validators)

            self._install_schema(Schema.from_json(loads_export(state.schema_json)))
        for name, docs in state.documents.items():
            self.tables[name].bulk_load(docs)
            for d in docs:
                self._creation_next = max(self._creation_next, d["_creationTime"])
        self.ts = self.visible_ts = self._notified_ts = state.ts
        if state.documents:
            self._creation_next = math.nextafter(self._creation_next, math.inf)

    def _add_table(self, name: str, number: int) -> TableData:
        indexes = search = vectors = None
        if self.schema is not None and (t := self.schema.table(name)) is not None:
            indexes, search, vectors = dict(t.indexes), t.search_indexes, t.vector_indexes
        table = TableData(name, number, indexes, search, vectors)
        self.tables[name] = table
        self.by_number[number] = table
        if 128 <= number < 16_384:
            self._prefixes[encode_id(number, bytes(16))[:3]] = table
        self._next_table_number = max(self._next_table_number, number + 1)
        return table

    # Tables ----------------------------------------------------------------------------------
    def table(self, name: str) -> TableData | None:
        return self.tables.get(name)

    def ensure_table(self, name: str) -> tuple[TableData, bool]:
        """The table called ``name``, created (empty, with a fresh number) if needed."""
        with self.lock:
            t = self.tables.get(name)
            if t is not None:
                return t, False
            return self._add_table(name, self._next_table_number), True

    def next_id(self, table: TableData, now_ms: float) -> str:
        """A fresh document ID for ``table``, from a pool generated in batches."""
        day = int(now_ms // 86_400_000)
        pool = self._id_pools.get(table.number)
        if pool is None or pool[0] != day or not pool[1]:
            pool = self._id_pools[table.number] = (
                day, generate_ids(table.number, now_ms, 256 if pool is not None else 16))
        return pool[1].pop()

    def query_setup(self, table_name: str, table: TableData | None, schema: Any) -> Any:
        """Per-table query setup (see ``database.query_setup``), cached per schema version."""
        key = (table_name, table is not None, id(schema))
        got = self._query_setups.get(key)
        if got is None:
            from convex_lab.store.database import query_setup  # noqa: PLC0415

            table_def = schema.table(table_name) if schema is not None else None
            got = self._query_setups[key] = query_setup(table, table_def)
        return got

    def table_for_id_prefix(self, doc_id: str) -> TableData | None:
        """The table whose number an ID's first three characters spell, if that is decisive.

        A 2-byte VInt table number (user tables, 128 … 16,383) fills the first 16 bits of an ID;
        its first three base32 characters hold 15 of them, so two tables (numbers differing in
        bit 7) can share a prefix and the later one wins. Callers must therefore check the ID
        (e.g. that it is a key of ``table.docs``): this is a lookup hint, not validation.
        """
        return self._prefixes.get(doc_id[:3])

    def table_name_for_number(self, number: int) -> str | None:
        t = self.by_number.get(number)
        return t.name if t is not None else None

    def user_tables(self) -> list[str]:
        return sorted(n for n in self.tables if not n.startswith("_"))

    # Schema ----------------------------------------------------------------------------------
    def set_schema(self, schema: Schema | None) -> None:
        """Push a schema: every existing document of each listed table must match it first."""
        with self.lock:
            if schema is not None:
                for name, table_def in schema.tables.items():
                    t = self.tables.get(name)
                    if t is None or not t.docs:
                        continue
                    bad: list[str] = []
                    first_error = ""
                    for doc in t.docs.values():
                        fields = {k: v for k, v in doc.items() if k not in ("_id", "_creationTime")}
                        try:
                            table_def.validate_document(fields, table=name,
                                                        tables=self.table_name_for_number)
                        except Exception as e:  # noqa: BLE001 (collect, then report)
                            if not bad:
                                first_error = str(e)
                            bad.append(doc["_id"])
                            if len(bad) >= 5:
                                break
                    if bad:
                        raise SchemaError(
                            f"Schema validation failed: {len(bad)}{'+' if len(bad) >= 5 else ''} "
                            f"existing document(s) in table \"{name}\" do not match the new schema "
                            f"(first offenders: {', '.join(bad)}).\n{first_error}\n"
                            "Fix or delete those documents, or change the schema (e.g. "
                            "v.optional(...) for a field some documents lack).")
            from convex_lab.values import dumps_export  # noqa: PLC0415

            schema_json = dumps_export(schema.to_json()) if schema is not None else ""
            self._install_schema(schema)
            self.schema_epoch += 1
            # A schema push is a commit: it is ordered with the data and persisted with it.
            self.ts += 1
            commit = Commit(self.ts, {}, schema_json=schema_json)
            self._log.append(commit)
            seq = self.persist.enqueue(commit, self)
        self._finish(commit, seq)

    def builder(self, table_name: str) -> Builder | None:
        """The one-pass document builder for ``table_name`` (see ``store.fastpath``)."""
        try:
            return self._builders[table_name]
        except KeyError:
            pass
        schema = self.schema
        table_def = schema.table(table_name) if schema is not None else None
        b: Builder | None
        if table_def is None or schema is None or not schema.schema_validation:
            b = build_schemaless
        elif isinstance(table_def.document_validator, VModel):
            b = None  # define_table(Model): every document goes through pydantic
        else:
            b = compile_builder(table_def.document_validator)
        self._builders[table_name] = b
        return b

    def _install_schema(self, schema: Schema | None) -> None:
        self.schema = schema
        self._builders = {}
        self._query_setups = {}
        for name, t in self.tables.items():
            table_def = schema.table(name) if schema is not None else None
            t.set_indexes(dict(table_def.indexes) if table_def is not None else {})
            if table_def is not None:
                t.set_search_indexes(table_def.search_indexes, table_def.vector_indexes)
            else:
                t.set_search_indexes({}, {})

    # Transactions ----------------------------------------------------------------------------
    def pin(self) -> tuple[int, int]:
        """Hold the current snapshot so transactions can still begin at it later:
        ``(token, ts)``; release with :meth:`end` ``(token)``. Live queries refresh together at
        one pinned snapshot."""
        with self.lock:
            serial = next(self._serials)
            self._active[serial] = self.visible_ts
            return serial, self.visible_ts

    def begin(self, *, read_only: bool = False, snapshot: int | None = None) -> Transaction:
        """A transaction at the latest visible snapshot, or at ``snapshot`` (which must be
        pinned, see :meth:`pin`)."""
        if self.closed:
            raise BackendClosedError(CLOSED_MESSAGE)
        with self.lock:
            snapshot = self.visible_ts if snapshot is None else min(snapshot, self.visible_ts)
            serial = next(self._serials)
            self._active[serial] = snapshot
            creation = max(self._creation_next, self.now())
        return Transaction(self, snapshot, serial, read_only=read_only, creation_base=creation)

    def end(self, serial: int) -> None:
        """Release a transaction's or a pin's snapshot (idempotent)."""
        with self.lock:
            if self._active.pop(serial, None) is not None:
                self._trim_log()

    def _trim_log(self, force: bool = False) -> None:
        """Drop commits no consumer needs any more (callers hold the lock).

        Consumers of the log: every active transaction or pinned snapshot (it reads commits
        after its snapshot), and the commit notifier (it delivers commits after
        ``_notified_ts``). A commit is kept while any of them may still ask for it, so
        :meth:`commits_after` never fails for a live consumer.
        """
        log = self._log
        if len(log) < 64 and not (force and log):  # trim in batches: a few small commits
            return  # kept longer cost nothing (a bulk import's asks for force)
        horizon = min(self._active.values(), default=self.visible_ts)
        horizon = min(horizon, self.visible_ts, self._notified_ts)
        drop = horizon - log[0].ts + 1
        if drop > 0:
            del log[:drop]

    def commits_after(self, ts: int) -> list[Commit]:
        """Commits with ``commit.ts > ts`` still in the log (callers hold the lock)."""
        log = self._log
        if not log or self.ts <= ts:
            return []
        start = ts + 1 - log[0].ts
        if start < 0:
            raise RuntimeError("snapshot older than the commit log")  # an active snapshot is kept
        return log[start:]

    def commit(self, tx: Transaction) -> int:
        """Validate and commit ``tx``; returns its commit ts. Raises :class:`Conflict`.

        The transaction's snapshot is released either way (its serial leaves ``_active`` under
        the lock that applies the commit, so group commit does not wait for it).
        """
        if not tx.has_writes():
            self.end(tx.serial)
            return tx.snapshot_ts
        try:
            with self.lock:
                if tx.schema_epoch != self.schema_epoch:
                    raise Conflict("(schema)")
                for c in self.commits_after(tx.snapshot_ts):
                    table = tx.reads.conflict_with(c, self.tables)
                    if table is not None:
                        raise Conflict(table)
                self.ts += 1
                writes: dict[str, dict[str, tuple[Any, Any]]] = {}
                for name, docs in tx.writes.items():
                    if not docs:
                        continue
                    t = self.tables[name]
                    out = writes[name] = {}
                    t_docs = t.docs
                    for doc_id, new in docs.items():
                        old = t_docs.get(doc_id)
                        if old is None and new is None:
                            continue  # inserted then deleted inside the transaction
                        t.apply(doc_id, old, new)
                        out[doc_id] = (old, new)
                    t.max_doc_size = max(t.max_doc_size, tx.max_doc_size)
                    if name in tx.nested_tables:
                        t.nested = True
                commit = Commit(self.ts, writes, special=tx.special)
                self._log.append(commit)
                self._creation_next = max(self._creation_next, tx.creation_next)
                self._active.pop(tx.serial, None)
                seq = self.persist.enqueue(commit, self)
        except BaseException:
            self.end(tx.serial)
            raise
        self._finish(commit, seq)
        return commit.ts

    def _finish(self, commit: Commit, seq: int) -> None:
        """Wait for durability, publish the commit to readers, then tell the listeners."""
        self.persist.wait(seq)
        with self.lock:
            self.visible_ts = max(self.visible_ts, commit.ts)
            if not self.commits:  # nobody to tell: nothing is owed
                self._notified_ts = self.visible_ts
            self._trim_log()
        if self.commits:
            self._notify()

    def _notify(self) -> None:
        """Emit ``commits`` for each visible commit not yet emitted, once each and in order.

        A listener's failure is reported (stderr) and never reaches the committing caller: its
        commit has happened, and an error would invite a retry that applies it twice.
        """
        me = threading.get_ident()
        if self._notifier == me:
            # A listener committed (e.g. the scheduler starting up): the loop below, already
            # running in this thread, delivers that commit next, after the current one.
            return
        with self._notify_lock:  # listeners see commits once each, in order
            self._notifier = me
            try:
                while True:
                    with self.lock:
                        first, last = self._notified_ts + 1, self.visible_ts
                        if first > last:
                            return
                        # Commit ts are consecutive and the log keeps every commit after
                        # _notified_ts (see _trim_log): the pending ones are one slice.
                        log = self._log
                        base = log[0].ts
                        pending = log[first - base : last + 1 - base]
                        self._notified_ts = last
                    emit = self.commits.emit
                    for c in pending:
                        emit(c)
            finally:
                self._notifier = None

    def import_documents(self, table_name: str,
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
        schema = self.schema
        table_def = schema.table(table_name) if schema is not None else None
        validate = (table_def.validate_document
                    if table_def is not None and schema is not None and schema.schema_validation
                    else None)
        build = self.builder(table_name)
        table, _ = self.ensure_table(table_name)
        now = self.now()
        with self.lock:
            ct = max(self._creation_next, now)
        gc_was_enabled = gc.isenabled()
        gc.disable()  # a million new dicts would trigger full collections over and over
        try:
            return self._import(table, iter(documents), now=now, ct=ct, validate=validate,
                                build=build)
        finally:
            if gc_was_enabled:
                gc.enable()

    def _import(self, table: TableData, documents: Iterator[Mapping[str, Any]], *, now: float,
                ct: float, validate: Any, build: Builder | None) -> list[str]:
        table_name = table.name
        lookup = self.table_name_for_number
        import numpy as np  # noqa: PLC0415

        table_def = self.schema.table(table_name) if self.schema is not None else None
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
        with self.lock:
            self.ts += 1
            writes = {table_name: BulkInserts(ids, out)}
            commit = Commit(self.ts, writes, special=special)  # type: ignore[arg-type]
            self._log.append(commit)  # before the indexes change: older snapshots need it
            seq = self.persist.enqueue(commit, self)
            table.bulk_load(out, nested=nested)
            table.max_doc_size = max(table.max_doc_size, max_size)
            self._creation_next = max(self._creation_next, ct)
        self._finish(commit, seq)
        self.persist.after_import()  # a file: durable already; in memory: written behind
        with self.lock:
            self._trim_log(force=True)  # the import's commit holds a million-entry list
        if len(out) >= GC_FREEZE_DOCS:
            # A full collection walks every live object: with a million documents that is a
            # 200+ ms pause each time. Documents hold no cycles, so move them out of its sight.
            gc.freeze()
            _unfreeze_at_exit()
        return ids

    def reserve_times(self, n: int) -> list[float]:
        """``n`` successive creation times, reserved now: later writes get later ones."""
        import numpy as np  # noqa: PLC0415

        with self.lock:
            ct = max(self._creation_next, self.now())
            cts: list[float] = (np.arange(n, dtype=np.int64)
                                + np.float64(ct).view(np.int64)).view(np.float64).tolist()
            if cts:
                self._creation_next = math.nextafter(cts[-1], math.inf)
        return cts

    def reserve_ids(self, table_name: str, n: int) -> tuple[int, list[str], list[float]]:
        """``n`` fresh IDs of ``table_name`` (made if needed) and ``n`` creation times
        (:meth:`reserve_times`): for a bulk load whose documents the caller builds
        (``convex_lab/interop/``). Returns the table number, the IDs and the times."""
        from convex_lab.store.database import check_table_name  # noqa: PLC0415

        check_table_name(table_name)
        table, _ = self.ensure_table(table_name)
        ids = generate_ids(table.number, self.now(), n) if n else []
        return table.number, ids, self.reserve_times(n)

    def load_documents(self, loads: list[Any], *, mode: str = "append") -> int:
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
            with self.lock:
                numbers: dict[str, int] = {}
                for ld in loads:
                    numbers[ld.table] = load_number(self, ld)
                if mode == "require_empty":
                    full = [n for n in names if n in self.tables and self.tables[n].docs]
                    if full:
                        raise InvalidValueError(
                            f"Table(s) {', '.join(map(repr, full))} already hold documents, and "
                            "this import requires empty tables (mode='require_empty', Convex's "
                            "default). Use mode='append' to add to them or mode='replace' to "
                            "replace them.")
                for ld in loads:
                    if not ld.fresh:  # fresh IDs and times (reserve_ids) need no checking
                        check_load(self, ld, numbers[ld.table], mode)
                commit, seq = self._load_commit(loads, numbers, mode)
            self._finish(commit, seq)
            self.persist.after_import()  # a file: durable already; in memory: written behind
            with self.lock:
                self._trim_log(force=True)  # the commit holds every loaded document
            if sum(len(ld.docs) for ld in loads) >= GC_FREEZE_DOCS:
                gc.freeze()  # as in _import: keep a million documents out of the collector's walk
                _unfreeze_at_exit()
            return commit.ts
        finally:
            if gc_was_enabled:
                gc.enable()

    def _load_commit(self, loads: list[Any], numbers: dict[str, int], mode: str,
                     ) -> tuple[Commit, int]:
        """Apply a checked bulk load as one commit (callers hold the lock); returns the commit
        and its persistence sequence for :meth:`_finish`."""
        from convex_lab.store.bulk_load import in_creation_order  # noqa: PLC0415

        writes: dict[str, Any] = {}
        special: set[str] = set()
        replaced: list[tuple[TableData, list[dict[str, Any]]]] = []
        appended: list[tuple[TableData, Any]] = []
        for ld in loads:
            t = self.tables.get(ld.table)
            if t is None:
                t = self._add_table(ld.table, numbers[ld.table])
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
                self._creation_next = max(self._creation_next,
                                          math.nextafter(docs[-1]["_creationTime"], math.inf))
        self.ts += 1
        commit = Commit(self.ts, writes, special=special)
        self._log.append(commit)  # before the tables change: older snapshots need it
        seq = self.persist.enqueue(commit, self)
        for ld in loads:
            t = self.tables[ld.table]
            t.max_doc_size = max(t.max_doc_size, ld.max_size)
        for t, docs in replaced:
            self._reset_table(t)
            t.bulk_load(docs, nested=any(ld.nested for ld in loads if ld.table == t.name))
        for t, docs in appended:
            t.bulk_load(docs, nested=any(ld.nested for ld in loads if ld.table == t.name))
        return commit, seq

    def _reset_table(self, t: TableData) -> None:
        """Empty ``t`` in place (a replace), keeping its indexes' definitions."""
        fresh = self._add_table_data(t.name, t.number)
        for slot in TableData.__slots__:
            setattr(t, slot, getattr(fresh, slot))

    def _add_table_data(self, name: str, number: int) -> TableData:
        indexes = search = vectors = None
        if self.schema is not None and (d := self.schema.table(name)) is not None:
            indexes, search, vectors = dict(d.indexes), d.search_indexes, d.vector_indexes
        return TableData(name, number, indexes, search, vectors)

    def vector_search(self, table: str, index: str, vector: Any = None, limit: Any = 10,
                      filter: Any = None) -> list[dict[str, Any]]:
        """``ctx.vector_search`` (``store/search_query.py``): at the latest visible snapshot."""
        from convex_lab.store.search_query import vector_search  # noqa: PLC0415 (numpy)

        if self.closed:
            raise BackendClosedError(CLOSED_MESSAGE)
        return vector_search(self, table, index, vector=vector, limit=limit, filter=filter)

    def run(self, body: Callable[[Transaction], T], *, read_only: bool = False,
            retries: int = 4, snapshot: int | None = None) -> T:
        """Run ``body`` in a transaction and commit it, re-running it on OCC conflicts.
        ``snapshot`` (read-only runs) reads at a pinned snapshot instead of the latest."""
        return run_with_retries(self, body, read_only=read_only, retries=retries,
                                snapshot=snapshot)

    # Housekeeping ----------------------------------------------------------------------------
    def flush(self) -> None:
        """Write everything committed so far to DuckDB (a no-op when nothing is pending)."""
        self.persist.flush()

    def sql(self) -> Any:
        """A DuckDB cursor over the store of record, after a flush (read-only use, please)."""
        self.persist.flush()
        return self.persist.cursor()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.persist.close()
        finally:
            _release_file(self._file_key, self)

    def __len__(self) -> int:
        return sum(len(t) for n, t in self.tables.items() if not n.startswith("_"))

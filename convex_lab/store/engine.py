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

import itertools
import math
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from convex_lab._annotations import VModel
from convex_lab.errors import (
    CLOSED_MESSAGE,
    BackendClosedError,
    FileInUseError,
    SchemaError,
)
from convex_lab.events import Event
from convex_lab.ids import FIRST_USER_TABLE_NUMBER, encode_id, generate_ids
from convex_lab.store import imports
from convex_lab.store.commits import Commit, thaw
from convex_lab.store.fastpath import Builder, build_schemaless, compile_builder
from convex_lab.store.persist import FilePersistence, Persistence, open_persistence
from convex_lab.store.tables import TableData
from convex_lab.store.transaction import (
    Conflict,
    Transaction,
    run_with_retries,
)
from convex_lab.values import loads_export

if TYPE_CHECKING:
    from convex_lab.schema import Schema

T = TypeVar("T")

SYSTEM_TABLES: dict[str, int] = {"_scheduled_functions": 1, "_storage": 2, "_cron_jobs": 3}


def wall_clock_ms() -> float:
    return time.time() * 1000.0


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

    # Bulk loads (store/imports.py) ---------------------------------------------------------
    def import_documents(self, table_name: str,
                         documents: Iterable[Mapping[str, Any]]) -> list[str]:
        """Insert many new documents as one commit, validated like ``insert``; returns their IDs
        (:func:`convex_lab.store.imports.import_documents`)."""
        return imports.import_documents(self, table_name, documents)

    def load_documents(self, loads: list[Any], *, mode: str = "append") -> int:
        """Bulk-load given documents (IDs and creation times kept) into one or more tables as ONE
        commit; returns its ts (:func:`convex_lab.store.imports.load_documents`)."""
        return imports.load_documents(self, loads, mode=mode)

    def reserve_ids(self, table_name: str, n: int) -> tuple[int, list[str], list[float]]:
        """``n`` fresh IDs of ``table_name`` and creation times, for a bulk load whose documents
        the caller builds (:func:`convex_lab.store.imports.reserve_ids`)."""
        return imports.reserve_ids(self, table_name, n)

    def reserve_times(self, n: int) -> list[float]:
        """``n`` successive creation times, reserved now: later writes get later ones."""
        return imports.reserve_times(self, n)

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
            thaw(self)  # a bulk load's frozen heap: collectable once this store is dropped

    def __len__(self) -> int:
        return sum(len(t) for n, t in self.tables.items() if not n.startswith("_"))

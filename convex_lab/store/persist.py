"""DuckDB as the store of record: an append-only log of document versions, one table per table.

Layout (DuckDB schema ``_convex``)::

    _convex._tables(name VARCHAR, number INTEGER)            one row per Convex table, ever
    _convex._schema(ts BIGINT, json VARCHAR)                 every schema push, in order
    _convex."<table>"(_id VARCHAR, _creationTime DOUBLE, _ts BIGINT, _deleted BOOLEAN,
                      doc VARCHAR)                           every version of every document

``doc`` is the whole document in Convex's lossless ``export_json`` text. Writes are only appends,
so they batch well (Arrow for big batches) and never meet DuckDB's update/delete conflict traps;
the latest version of each ``_id`` is the live document. Opening a file rebuilds the in-memory
state from the latest versions and compacts tables whose history has grown large.

Durability contract: :meth:`FilePersistence.wait` returns only after the DuckDB transaction holding
that commit has committed, and one DuckDB transaction holds whole Convex commits only, so a
SIGKILL keeps every acknowledged mutation and no partial one. Concurrent committers share DuckDB
transactions (group commit): whoever holds the writer lock flushes everything queued.

Connections: one writer connection guarded by a lock; SQL readers get their own ``cursor()``
(a DuckDB connection is not safe to share between threads). Every connection is made with
:data:`DUCKDB_CONFIG`: DuckDB never installs or loads an extension by itself and its settings are
locked (what keeps ``%%sql`` from downloading code or changing settings, see
``interop/sql_guard.py``).

Opening a file never writes to a file it cannot load (``store/opening.py``); reading it back is
``store/loading.py``; the documents' text is ``store/codec.py``.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from convex_lab.errors import PersistenceError
from convex_lab.store.codec import encode_document, encode_documents, quote_table
from convex_lab.store.loading import LoadedState, create_catalog, read
from convex_lab.store.opening import DUCKDB_CONFIG, open_file

if TYPE_CHECKING:
    from convex_lab.store.commits import Commit
    from convex_lab.store.engine import Store

SMALL_BATCH = 32  # rows; above this, Arrow beats parameterised VALUES
MEMORY_FLUSH_ROWS = 4096
BULK_CHUNK = 65_536
BULK_CHUNK_BYTES = 64 << 20


def release_free_memory() -> None:
    """Hand memory freed by a big write back to the OS (Arrow's pool, then glibc's heap).

    A bulk write's temporaries (JSON text, Arrow buffers) sit between long-lived documents, so
    the allocators keep the pages unless asked; measured at about 250 MiB per million documents.
    """
    if "pyarrow" in sys.modules:
        import pyarrow as pa  # noqa: PLC0415

        pa.default_memory_pool().release_unused()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").malloc_trim(0)


_second = itemgetter(1)
_creation_time = itemgetter("_creationTime")


class _Columns:
    """Rows for one DuckDB table, kept as columns (what Arrow wants)."""

    __slots__ = ("cts", "deleted", "docs", "ids", "tss")

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.cts: list[float] = []
        self.tss: list[int] = []
        self.deleted: list[bool] = []
        self.docs: list[str | None] = []

    def add_inserts(self, ids: list[str], docs: list[dict[str, Any]], ts: int,
                    special: set[str]) -> None:
        n = len(ids)
        self.ids += ids
        self.tss += [ts] * n
        self.cts += map(_creation_time, docs)
        self.deleted += [False] * n
        if special:
            self.docs += [encode_document(d, d["_id"] in special) for d in docs]
        else:
            self.docs += encode_documents(docs)

    def add_commits(self, commits: list[tuple[int, Mapping[str, tuple[Any, Any]], set[str]]],
                    ) -> None:
        """The versions written by ``commits`` (``(ts, id -> (old, new), special)``), in order.

        The common case — no deletes, no document needing lossless JSON — is columns built with
        C-level maps and one msgspec call for all documents; the rest goes row by row."""
        pairs: list[tuple[Any, Any]] = []
        plain = True
        for ts, writes, special in commits:
            n = len(writes)
            self.ids += writes
            self.tss += [ts] * n
            pairs += writes.values()
            if special and plain and not special.isdisjoint(writes):
                plain = False
        news = list(map(_second, pairs))
        if plain and None not in news:
            self.cts += map(_creation_time, news)
            self.deleted += [False] * len(news)
            self.docs += encode_documents(news)
            return
        specials = set().union(*(c[2] for c in commits))
        for doc_id, (old, new) in zip(self.ids[len(self.docs):], pairs, strict=True):
            if new is None:
                self.cts.append(old["_creationTime"])
                self.deleted.append(True)
                self.docs.append(None)
            else:
                self.cts.append(new["_creationTime"])
                self.deleted.append(False)
                self.docs.append(encode_document(new, doc_id in specials))


class Persistence:
    """Writes commits to DuckDB. Subclasses decide when (see module docstring)."""

    def __init__(self, path: str | None) -> None:
        """Connect to an in-memory database (``path=None``) or open the file at ``path``.

        A file is read and checked in full before it is opened for writing (module docstring);
        anything wrong raises :class:`StoreOpenError` with the file untouched and no connection
        left open. :meth:`load` then returns what was read.
        """
        # DuckDB's bundled jemalloc keeps freed pages for 10 s by default, so memory released by
        # a checkpoint (which compresses tables) stays in RSS; return it at once instead. Read
        # when DuckDB loads, so it only applies if nothing imported duckdb before us, and a
        # user's own setting wins.
        os.environ.setdefault("DUCKDB_JE_MALLOC_CONF", "dirty_decay_ms:0,muzzy_decay_ms:0")
        import duckdb  # noqa: PLC0415 (heavy import, only when a backend is made)

        self.path = path
        self.con: Any = None
        self._loaded: LoadedState | None = None
        self._write_lock = threading.Lock()
        self._queue_lock = threading.Lock()
        self._queue: list[tuple[int, Commit, Store]] = []
        self._seq = 0
        self._durable_seq = 0
        self._last_batch = 1
        self._known_tables: set[str] = set()
        self._statements: dict[tuple[str, int], Any] = {}
        self._closed = False
        self._abandon = False  # set by an in-memory store's close(): stop writing
        self._failed: BaseException | None = None
        self.text_bytes = 0  # characters of document text written so far
        if path is None:
            self.con = duckdb.connect(":memory:", config=DUCKDB_CONFIG)
            create_catalog(self.con)
            self._loaded = LoadedState()
        else:
            self.con, self._loaded = open_file(duckdb, path)

    # Opening and loading ---------------------------------------------------------------------
    def load(self) -> LoadedState:
        """The tables, latest schema, live documents and last commit timestamp of the store."""
        state, self._loaded = self._loaded, None
        if state is None:  # loaded before: read it again (it was checked when opened)
            state = read(self.con, self.path or ":memory:").state
        self._known_tables.update(name for name, _ in state.tables)
        return state

    # Writing -------------------------------------------------------------------------------
    def enqueue(self, commit: Commit, store: Store) -> int:
        """Queue a commit (called in commit order, under the store lock); returns its sequence."""
        with self._queue_lock:
            self._seq += 1
            self._queue.append((self._seq, commit, store))
            return self._seq

    def wait(self, seq: int) -> None:
        """Return when commit ``seq`` may be shown to readers (subclasses decide)."""
        raise NotImplementedError

    def flush(self) -> None:
        """Write everything queued, now."""
        with self._write_lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        if self._failed is not None:
            raise PersistenceError(
                f"The store could not write to DuckDB earlier ({self._failed}); it refuses further "
                "writes so that memory and disk cannot disagree. Reopen the backend.")
        with self._queue_lock:
            batch, self._queue = self._queue, []
        if not batch:
            return
        self._last_batch = len(batch)
        try:
            written = self._write(batch)
        except BaseException as e:
            self._failed = e
            raise PersistenceError(f"Writing to DuckDB failed: {e}") from e
        self._durable_seq = batch[-1][0]
        if written >= BULK_CHUNK:
            release_free_memory()

    def _write(self, batch: list[tuple[int, Commit, Store]]) -> int:
        """Write ``batch`` in one DuckDB transaction; returns how many versions it wrote."""
        rows: dict[str, list[tuple[int, Any, set[str]]]] = defaultdict(list)
        schemas: list[tuple[int, str]] = []
        new_tables: list[tuple[str, int]] = []
        bulk: list[tuple[str, Any, int, set[str]]] = []
        known = self._known_tables
        written = 0
        for _, commit, store in batch:
            ts = commit.ts
            if commit.schema_json is not None:
                schemas.append((ts, commit.schema_json))
            for name, docs in commit.writes.items():
                if name not in known:
                    known.add(name)
                    new_tables.append((name, store.tables[name].number))
                written += len(docs)
                if type(docs) is dict:
                    rows[name].append((ts, docs, commit.special))
                else:  # commits.BulkInserts: written in chunks below
                    bulk.append((name, docs, ts, commit.special))
        tables = {}
        for name, commits in rows.items():
            columns = tables[name] = _Columns()
            columns.add_commits(commits)
        con = self.con
        if not new_tables and not schemas and not bulk and len(tables) == 1:
            # One statement is its own transaction in DuckDB: as atomic and durable as
            # BEGIN/INSERT/COMMIT, with one GIL hand-over instead of three (each hand-over can
            # wait for a busy Python thread, which is what limits group commit under load).
            ((name, columns),) = tables.items()
            if columns.ids:
                self._append(name, columns)
            return written
        con.execute("BEGIN")
        try:
            for name, number in new_tables:
                con.execute(f"CREATE TABLE IF NOT EXISTS {quote_table(name)}(_id VARCHAR, "
                            "_creationTime DOUBLE, _ts BIGINT, _deleted BOOLEAN, doc VARCHAR)")
                con.execute("INSERT INTO _convex._tables VALUES (?, ?)", [name, number])
            for name, columns in tables.items():
                if columns.ids:
                    self._append(name, columns)
            for name, inserts, ts, special in bulk:
                # In chunks: a million JSON strings and Arrow buffers at once would leave
                # hundreds of MiB of freed-but-fragmented heap beside the documents. Chunks of
                # large documents (embeddings) hold fewer rows: about BULK_CHUNK_BYTES each.
                size = max(1, batch[0][2].tables[name].max_doc_size)
                step = max(256, min(BULK_CHUNK, BULK_CHUNK_BYTES // size))
                for start in range(0, len(inserts.ids), step):
                    if self._abandon:  # an in-memory store closing: nothing to keep
                        raise PersistenceError("write abandoned: the in-memory store closed")
                    columns = _Columns()
                    columns.add_inserts(inserts.ids[start : start + step],
                                        inserts.docs[start : start + step], ts, special)
                    self._append(name, columns)
            for ts, text in schemas:
                con.execute("INSERT INTO _convex._schema VALUES (?, ?)", [ts, text])
            con.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(Exception):  # DuckDB may have rolled back already
                con.execute("ROLLBACK")
            for name, _ in new_tables:
                self._known_tables.discard(name)
            raise
        return written

    def _append(self, name: str, c: _Columns) -> None:
        con = self.con
        n = len(c.ids)
        self.text_bytes += sum(map(len, filter(None, c.docs)))
        if n <= SMALL_BATCH:
            params = [x for row in zip(c.ids, c.cts, c.tss, c.deleted, c.docs, strict=True)
                      for x in row]
            con.execute(self._insert_statement(name, n), params)
        else:
            import pyarrow as pa  # noqa: PLC0415

            batch = pa.table({
                "_id": pa.array(c.ids, pa.string()),
                "_creationTime": pa.array(c.cts, pa.float64()),
                "_ts": pa.array(c.tss, pa.int64()),
                "_deleted": pa.array(c.deleted, pa.bool_()),
                "doc": pa.array(c.docs, pa.string()),
            })
            con.register("_cx_batch", batch)
            try:
                con.execute(f"INSERT INTO {quote_table(name)} SELECT * FROM _cx_batch")
            finally:
                con.unregister("_cx_batch")

    def _insert_statement(self, name: str, n: int) -> Any:
        """A parsed ``INSERT … VALUES`` for ``n`` rows, kept: DuckDB's Python API re-parses SQL
        text on every call, and a pre-parsed statement skips that (about 0.75 of the time)."""
        key = (name, n)
        stmt = self._statements.get(key)
        if stmt is None:
            values = ", ".join(["(?, ?, ?, ?, ?)"] * n)
            sql = f"INSERT INTO {quote_table(name)} VALUES {values}"
            stmt = self.con.extract_statements(sql)[0]
            self._statements[key] = stmt
        return stmt

    def cursor(self) -> Any:
        return self.con.cursor()

    def after_import(self) -> None:
        """A bulk import's commit was queued: have it written (here: now)."""
        self.flush()

    def close(self) -> None:
        if self.con is None:  # never opened
            self._closed = True
            return
        try:
            self.flush()
        finally:
            with self._write_lock:  # waits for a background checkpoint
                self._closed = True
                self.con.close()


class MemoryPersistence(Persistence):
    """In-memory DuckDB, written behind in batches: commits are visible at once.

    After a large write (a bulk import) it checkpoints, which makes DuckDB compress the new rows
    (about 4 times smaller for document JSON) — unless those rows are long: DuckDB's string
    compression runs at about 20 MB/s on long texts (15 KB of JSON per 768-float embedding) for
    about a 2× gain, so compressing 100,000 embeddings would keep a core busy for two minutes and
    make the next flush (``%%sql``, ``close()``) wait for it. Long rows stay uncompressed.
    """

    CHECKPOINT_ROWS = 100_000
    CHECKPOINT_MAX_ROW_TEXT = 2048  # average characters per row above which we skip compression

    def _write(self, batch: list[tuple[int, Commit, Store]]) -> int:
        rows = super()._write(batch)
        self._since_checkpoint = getattr(self, "_since_checkpoint", 0) + rows
        if self._since_checkpoint >= self.CHECKPOINT_ROWS:
            text = self.text_bytes - getattr(self, "_text_at_checkpoint", 0)
            long_rows = text > self.CHECKPOINT_MAX_ROW_TEXT * self._since_checkpoint
            self._since_checkpoint = 0
            self._text_at_checkpoint = self.text_bytes
            if long_rows:
                return rows
            # Compression is for memory, not for correctness: do it in the background (DuckDB
            # runs a checkpoint without the GIL). It holds the writer lock, so later flushes
            # wait for it instead of racing it; flush() therefore also waits for it.
            # Not a daemon: the interpreter must not exit while DuckDB is checkpointing.
            threading.Thread(target=self._checkpoint, name="convex_lab-checkpoint").start()
        return rows

    def after_import(self) -> None:
        """Write a bulk import behind, on a thread: its documents are already readable, and the
        DuckDB mirror only serves SQL (``flush()``, hence ``%%sql``, waits for it). For 100,000
        embeddings that is ~15 s of JSON encoding the caller no longer waits for."""
        threading.Thread(target=self._write_behind, name="convex_lab-write-behind").start()

    def _write_behind(self) -> None:
        with self._write_lock:
            if self._closed:
                return
            with contextlib.suppress(PersistenceError):  # kept in _failed: the next flush says
                self._flush_locked()

    def close(self) -> None:
        """Close without writing what is still queued: an in-memory database ends here, so a
        write in progress is abandoned at its next chunk rather than finished."""
        if self.con is None:
            self._closed = True
            return
        self._abandon = True
        with self._write_lock:  # waits for a chunk or a checkpoint in progress
            self._closed = True
            self.con.close()

    def _checkpoint(self) -> None:
        with self._write_lock:
            if self._closed:
                return
            with contextlib.suppress(Exception):  # best effort: a busy database skips it
                self.con.execute("CHECKPOINT")
            release_free_memory()

    def wait(self, seq: int) -> None:
        if len(self._queue) >= MEMORY_FLUSH_ROWS and self._write_lock.acquire(blocking=False):
            try:
                self._flush_locked()
            finally:
                self._write_lock.release()


class FilePersistence(Persistence):
    """A DuckDB file: :meth:`wait` returns once the commit is durable (group commit).

    One waiter at a time is the leader and writes everything queued in one DuckDB transaction;
    the others sleep on a condition and are all woken when it finishes, so a commit made durable
    by someone else's flush returns at once instead of queueing for the writer lock.
    """

    COMMIT_DELAY_S = 0.0005

    def __init__(self, path: str | None) -> None:
        super().__init__(path)
        self._cond = threading.Condition()
        self._flushing = False
        self._last_batch = 1
        self.siblings: Callable[[], int] = lambda: 0  # set by the store: transactions in flight

    def wait(self, seq: int) -> None:
        with self._cond:
            while self._durable_seq < seq:
                if not self._flushing:
                    self._flushing = True
                    break
                self._cond.wait()
            else:
                return
        try:
            # Like PostgreSQL's commit_delay: when other writers are about to commit (running
            # now, or as many as joined the last flush), give them a moment — until they have
            # queued, at most COMMIT_DELAY_S — to join this flush instead of each paying for a
            # DuckDB commit of its own. A lone writer never waits.
            want = max(len(self._queue) + self.siblings(), self._last_batch)
            if want > len(self._queue):
                deadline = time.perf_counter() + self.COMMIT_DELAY_S
                while len(self._queue) < want and time.perf_counter() < deadline:
                    time.sleep(0.00005)
            with self._write_lock:
                self._flush_locked()
        finally:
            with self._cond:
                self._flushing = False
                self._cond.notify_all()


def open_persistence(path: str | None) -> Persistence:
    if path is None or path == ":memory:":
        return MemoryPersistence(None)
    return FilePersistence(path)

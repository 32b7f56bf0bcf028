"""One transaction: reads at a snapshot, its own buffered writes, its read set and its limits.

Reads see the snapshot plus the transaction's own earlier writes (reference §4.4). Writes are
buffered per table as ``id -> new document or None`` and reach the store only at commit. Every
write is checked the way Convex checks it (field names, size, nesting, schema) before it is
buffered, so a bad write fails at the call that made it and commits nothing.

Limits (reference §2.4) are counted here; nested ``run_query``/``run_mutation`` share them.
"""

from __future__ import annotations

import heapq
import itertools
import math
import operator
import random
import time
from collections.abc import Callable, Mapping
from math import isfinite
from typing import TYPE_CHECKING, Any, TypeVar

from convex_lab.errors import (
    InvalidValueError,
    LimitExceededError,
    NonexistentDocumentError,
    OptimisticConcurrencyControlFailure,
    SchemaValidationError,
    ValidationError,
)
from convex_lab.ids import Id
from convex_lab.store.handout import HandedOut
from convex_lab.store.keys import KEY_AFTER, Interval, Key
from convex_lab.store.readset import ReadSet
from convex_lab.store.tables import take_keys
from convex_lab.values import (
    MAX_DOCUMENT_NESTING,
    MAX_DOCUMENT_SIZE,
    MAX_OBJECT_FIELDS,
    UNDEFINED,
    Int64,
    convert,
    convert_document,
    format_value,
    sort_key,
    too_many_fields,
    value_size,
)

if TYPE_CHECKING:
    from convex_lab.store.engine import Store
    from convex_lab.store.tables import TableData

T = TypeVar("T")


class Conflict(BaseException):
    """OCC conflict: something this transaction read was written by a later commit.

    A ``BaseException`` so that a handler's ``except Exception`` cannot swallow the retry.
    """

    def __init__(self, table: str) -> None:
        super().__init__(table)
        self.table = table

MAX_DOCS_READ = 32_000
MAX_BYTES_READ = 16 * 1024 * 1024
MAX_READ_INTERVALS = 4_096
MAX_DOCS_WRITTEN = 16_000
MAX_BYTES_WRITTEN = 16 * 1024 * 1024

_SYSTEM_FIELDS = ("_id", "_creationTime")
_MiB = 1024 * 1024

def measure(doc: dict[str, Any]) -> tuple[int, int, bool]:
    """(Convex size, nesting depth, special) of a canonical document in one walk.

    ``special`` is true when the document holds bytes or a non-finite float: values the fast
    JSON encoder cannot write losslessly (see ``persist.encode_document``). Flat documents (the
    common case) are measured without recursion.
    """
    size, deepest, special = 2, 0, False
    for k, v in doc.items():
        t = type(v)
        if t is str:
            s = 2 + (len(v) if v.isascii() else len(v.encode("utf-8")))
        elif t is float:
            s = 9
            if not isfinite(v):
                special = True
        elif t is Int64:
            s = 9
        elif t is dict or t is list:
            s, d, sp = _measure_nested(v)
            special |= sp
            deepest = max(deepest, d)
        else:
            s = value_size(v)
            if t is bytes:
                special = True
        size += len(k) + 1 + s
    return size, deepest + 1, special


def _measure_nested(value: Any) -> tuple[int, int, bool]:
    if type(value) is dict:
        return measure(value)
    size, deepest, special = 2, 0, False
    for v in value:
        t = type(v)
        if t is dict or t is list:
            s, d, sp = _measure_nested(v)
            special |= sp
            deepest = max(deepest, d)
        else:
            s = value_size(v)
            if t is bytes or (t is float and not isfinite(v)):
                special = True
        size += s
    return size, deepest + 1, special


def check_document(doc: dict[str, Any]) -> tuple[int, int, bool]:
    """Convex's document limits (1 MiB, nesting 16, 1024 fields counting ``_id`` and
    ``_creationTime``) on a full document; returns ``measure(doc)``."""
    if len(doc) > MAX_OBJECT_FIELDS:  # normally caught earlier; this gate guards every write
        raise too_many_fields(len(doc))
    size, depth, special = measure(doc)  # depth counts the top-level object as 1, like Convex
    if size > MAX_DOCUMENT_SIZE:
        raise LimitExceededError(
            f"Value is too large ({size / _MiB:.2f} MiB > maximum size 1 MiB). "
            "Store large data in file storage or split the document.",
            code="ValueTooLargeError")
    if depth > MAX_DOCUMENT_NESTING:
        raise LimitExceededError(
            f"Document is too nested (nested {depth} levels deep > maximum "
            f"{MAX_DOCUMENT_NESTING}).", code="TooNestedError")
    return size, depth, special


def copy_doc(doc: dict[str, Any]) -> dict[str, Any]:
    """A copy a caller may mutate freely: containers are copied, scalars shared."""
    out = dict(doc)
    for k, v in out.items():
        t = type(v)
        if t is list or t is dict:
            out[k] = _copy_value(v)
    return out


def _copy_value(v: Any) -> Any:
    t = type(v)
    if t is list:
        return [_copy_value(x) for x in v]
    if t is dict:
        return {k: _copy_value(x) for k, x in v.items()}
    return v


class Transaction:
    """See module docstring. Created by :meth:`Store.begin`; finished by commit or abort."""

    def __init__(self, store: Store, snapshot_ts: int, serial: int, *, read_only: bool,
                 creation_base: float) -> None:
        self.store = store
        self.snapshot_ts = snapshot_ts
        self.serial = serial
        self.read_only = read_only
        self.schema = store.schema
        self.schema_epoch = store.schema_epoch
        self.writes: dict[str, dict[str, dict[str, Any] | None]] = {}
        self.reads = ReadSet()
        self.creation_next = creation_base
        self.max_doc_size = 0
        self.docs_read = 0
        self.bytes_read = 0
        self._bytes_bound = 0
        self._exact_bytes = False
        self._read_log: list[Any] = []  # batches of documents read, until exact counting
        self.nested_tables: set[str] = set()  # tables this transaction wrote nested values to
        self._writing = ""
        self.docs_written = 0
        self.bytes_written = 0
        self.special: set[str] = set()  # IDs of written docs that need lossless JSON
        self.finished = False
        self.handed: HandedOut | None = None  # what ctx.db handed out (made on first use)

    # State ---------------------------------------------------------------------------------
    def has_writes(self) -> bool:
        return any(self.writes.values())

    def savepoint(self) -> tuple[Any, ...]:
        """State to return to if a nested mutation fails (reads are kept: conservative)."""
        return ({t: dict(d) for t, d in self.writes.items()}, self.docs_written,
                self.bytes_written, self.max_doc_size)

    def rollback(self, sp: tuple[Any, ...]) -> None:
        self.writes, self.docs_written, self.bytes_written, self.max_doc_size = (
            {t: dict(d) for t, d in sp[0].items()}, sp[1], sp[2], sp[3])

    def abort(self) -> None:
        if not self.finished:
            self.finished = True
            self.store.end(self.serial)

    def commit(self) -> int:
        if self.finished:
            raise RuntimeError("transaction already finished")
        self.finished = True
        return self.store.commit(self)

    # Limits --------------------------------------------------------------------------------
    def _count_reads(self, table: TableData, docs: list[dict[str, Any]]) -> None:
        """Count documents read against the limits (see ``_count_read``), a batch at once."""
        n = len(docs)
        self.docs_read += n
        if self.docs_read > MAX_DOCS_READ:
            self._too_many_docs()
        if self._exact_bytes:
            for d in docs:
                self._add_bytes(value_size(d))
            return
        self._bytes_bound += n * max(table.max_doc_size, self.max_doc_size)
        self._read_log.append(docs)
        if self._bytes_bound > MAX_BYTES_READ:
            self._go_exact()

    def _go_exact(self) -> None:
        self._exact_bytes = True
        for batch in self._read_log:
            for d in batch:
                self._add_bytes(value_size(d))
        self._read_log = []

    def _too_many_docs(self) -> None:
        raise LimitExceededError(
            f"Too many documents read in a single function execution (limit: {MAX_DOCS_READ})."
            " Consider using smaller limits in your queries, paginating your queries, or "
            "using indexed queries with a selective index range expression.",
            code="TooManyDocumentsRead")

    def _count_read(self, table: TableData, doc: dict[str, Any]) -> None:
        self.docs_read += 1
        if self.docs_read > MAX_DOCS_READ:
            raise LimitExceededError(
                f"Too many documents read in a single function execution (limit: {MAX_DOCS_READ})."
                " Consider using smaller limits in your queries, paginating your queries, or "
                "using indexed queries with a selective index range expression.",
                code="TooManyDocumentsRead")
        if self._exact_bytes:
            self._add_bytes(value_size(doc))
            return
        # Exact sizes cost a walk per document; skip them until the bytes-read limit could be
        # reached, using the largest document size ever written to the table as a bound.
        self._bytes_bound += max(table.max_doc_size, self.max_doc_size)
        self._read_log.append((doc,))
        if self._bytes_bound > MAX_BYTES_READ:
            self._go_exact()

    def _add_bytes(self, n: int) -> None:
        self.bytes_read += n
        if self.bytes_read > MAX_BYTES_READ:
            raise LimitExceededError(
                f"Too many bytes read in a single function execution (limit: {MAX_BYTES_READ} "
                "bytes). Consider using smaller limits in your queries, paginating your queries, "
                "or using indexed queries with a selective index range expression.",
                code="TooManyBytesRead")

    def _count_interval(self) -> None:
        if len(self.reads) > MAX_READ_INTERVALS:
            raise LimitExceededError(
                f"Too many reads in a single function execution (limit: {MAX_READ_INTERVALS}). "
                "Each db.get and each query counts; batch them or paginate.",
                code="TooManyReads")

    def _count_write(self, size: int) -> None:
        self.docs_written += 1
        if self.docs_written > MAX_DOCS_WRITTEN:
            raise LimitExceededError(
                f"Too many writes in a single function execution (limit: {MAX_DOCS_WRITTEN}). "
                "Split the work into several mutations (e.g. schedule the rest).",
                code="TooManyWrites")
        self.bytes_written += size
        if self.bytes_written > MAX_BYTES_WRITTEN:
            raise LimitExceededError(
                f"Too many bytes written in a single function execution (limit: "
                f"{MAX_BYTES_WRITTEN} bytes). Split the work into several mutations.",
                code="TooManyBytesWritten")

    # Reads ---------------------------------------------------------------------------------
    def _snapshot_version(self, table: TableData, doc_id: str) -> dict[str, Any] | None:
        """The committed version at this snapshot (callers hold the store lock)."""
        doc = table.docs.get(doc_id)
        if self.store.ts != self.snapshot_ts:
            name = table.name
            for c in self.store.commits_after(self.snapshot_ts):
                w = c.writes.get(name)
                if w is not None and doc_id in w:
                    return w[doc_id][0]
        return doc

    def get(self, table: TableData, doc_id: str) -> dict[str, Any] | None:
        """The document as this transaction sees it (the stored dict: copy before handing out)."""
        self.reads.add_point(table.name, doc_id)
        self._count_interval()
        own = self.writes.get(table.name)
        if own is not None and doc_id in own:
            doc = own[doc_id]
        else:
            # Read first, check second: a commit bumps ``store.ts`` before it changes any
            # document, so if ``ts`` still equals our snapshot after the read, the read saw no
            # later commit. (Checking first would race with a commit landing in between.)
            doc = table.docs.get(doc_id)
            if self.store.ts != self.snapshot_ts:
                with self.store.lock:
                    doc = self._snapshot_version(table, doc_id)
        if doc is not None:
            self._count_read(table, doc)
        return doc

    def overlay(self, table: TableData) -> dict[str, dict[str, Any] | None] | None:
        """``id -> version`` for documents whose version here differs from the latest committed
        one: writes committed after the snapshot (undone) and this transaction's own writes.
        ``None`` when there are none. Callers hold the store lock."""
        own = self.writes.get(table.name)
        out: dict[str, dict[str, Any] | None] | None = None
        if self.store.ts != self.snapshot_ts:
            name = table.name
            for c in reversed(self.store.commits_after(self.snapshot_ts)):
                w = c.writes.get(name)
                if w:
                    if out is None:
                        out = {}
                    for doc_id, (old, _new) in w.items():
                        out[doc_id] = old
        if own:
            if out is None:
                return own
            out.update(own)
        return out

    def scan(self, table: TableData, index: str, interval: Interval, *,
             reverse: bool = False) -> Scan:
        return Scan(self, table, index, interval, reverse)

    # Writes --------------------------------------------------------------------------------
    def _check_writable(self) -> None:
        if self.read_only:
            raise InvalidValueError("This transaction is read-only: queries cannot write.")

    def _validate(self, table_name: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        schema = self.schema
        table_def = schema.table(table_name) if schema is not None else None
        if table_def is None or not schema.schema_validation:  # type: ignore[union-attr]
            return convert_document(fields)
        try:
            return table_def.validate_document(
                dict(fields), table=table_name, tables=self.store.table_name_for_number)
        except (SchemaValidationError, InvalidValueError, LimitExceededError):
            raise
        except ValidationError as e:  # a validator's own error: wrap with Convex's text
            raise SchemaValidationError(
                f'Failed to insert or update a document in table "{table_name}" because it does '
                f"not match the schema: {e}") from None

    def hand_out(self, copies: list[dict[str, Any]], originals: list[dict[str, Any]]) -> None:
        """Remember that ``copies`` (returned to user code) shallow-copy ``originals``, so a
        result made of them needs no conversion (``store/handout.py``)."""
        handed = self.handed
        if handed is None:
            handed = self.handed = HandedOut()
        handed.documents(copies, originals)

    def hand_out_one(self, copy: dict[str, Any], original: dict[str, Any]) -> None:
        """Like :meth:`hand_out`, for one document (``db.get``)."""
        handed = self.handed
        if handed is None:
            handed = self.handed = HandedOut()
        handed.document(copy, original)

    def copier(self, table: TableData) -> Any:
        """How to copy a document of ``table`` for a caller: ``dict`` when no document there
        holds nested values (a shallow copy is then a full one), else :func:`copy_doc`."""
        if table.nested or table.name in self.nested_tables:
            return copy_doc
        return dict

    def _check_size(self, doc: dict[str, Any]) -> int:
        size, depth, special = check_document(doc)
        if depth > 1:
            self.nested_tables.add(self._writing)
        if special:
            self.special.add(doc["_id"])
        self.max_doc_size = max(self.max_doc_size, size)
        return size

    def insert(self, table_name: str, fields: Mapping[str, Any]) -> Id:
        self._check_writable()
        store = self.store
        table = store.tables.get(table_name)
        if table is not None:
            build = store.builder(table_name)
            if build is not None:
                ct = self.creation_next
                doc_id = store.next_id(table, ct)
                got = build(fields, doc_id, ct, store.table_name_for_number)
                if got is not None:
                    full, size = got
                    self.creation_next = math.nextafter(ct, math.inf)
                    self.max_doc_size = max(self.max_doc_size, size)
                    self._count_write(size)
                    own = self.writes.get(table_name)
                    if own is None:
                        own = self.writes[table_name] = {}
                    own[doc_id] = full
                    return Id(doc_id, table_name)
        return self._insert_general(table_name, fields)

    def _insert_general(self, table_name: str, fields: Mapping[str, Any]) -> Id:
        if not isinstance(fields, Mapping):
            raise InvalidValueError(
                f"insert() takes a dict of fields; got {type(fields).__name__}.")
        for k in _SYSTEM_FIELDS:
            if k in fields:
                raise InvalidValueError(
                    f"Provided field {k!r} is a system field: Convex sets _id and _creationTime "
                    "itself on insert. Remove it from the document.")
        doc = self._validate(table_name, fields)
        table, _ = self.store.ensure_table(table_name)
        ct = self.creation_next
        self.creation_next = math.nextafter(ct, math.inf)
        doc_id = self.store.next_id(table, ct)
        full = {"_id": doc_id, "_creationTime": ct}
        full.update(doc)
        self._writing = table_name
        self._count_write(self._check_size(full))
        own = self.writes.get(table_name)
        if own is None:
            own = self.writes[table_name] = {}
        own[doc_id] = full
        return Id(doc_id, table_name)

    def _current(self, table: TableData, doc_id: str, verb: str) -> dict[str, Any]:
        current = self.get(table, doc_id)
        if current is None:
            raise NonexistentDocumentError(
                f"{verb} on nonexistent document ID {doc_id}: it was deleted, or never existed in "
                f"table {table.name!r}.")
        return current

    def _check_system_fields(self, current: dict[str, Any], fields: Mapping[str, Any]) -> None:
        for k in _SYSTEM_FIELDS:
            # Compared as Convex values: a raw `!=` could be anything (a numpy array's is an
            # array, whose truth value raises).
            if (k in fields and fields[k] is not UNDEFINED
                    and sort_key(convert(fields[k])) != sort_key(current[k])):
                raise InvalidValueError(
                    f"Provided document ID or creation time doesn't match: {k} is "
                    f"{format_value(fields[k])} but the document's is {format_value(current[k])}. "
                    "System fields cannot be changed.")

    def _store_write(self, table: TableData, doc_id: str, current: dict[str, Any],
                     user_fields: dict[str, Any]) -> None:
        doc = self._validate(table.name, user_fields)
        new = {"_id": doc_id, "_creationTime": current["_creationTime"]}
        new.update(doc)
        if sort_key(new) == sort_key(current):
            return  # an unchanged document is not a write (reference §5.1)
        self._writing = table.name
        self._count_write(self._check_size(new))
        own = self.writes.get(table.name)
        if own is None:
            own = self.writes[table.name] = {}
        own[doc_id] = new

    def patch(self, table: TableData, doc_id: str, fields: Mapping[str, Any]) -> None:
        self._check_writable()
        doc_id = str(doc_id)  # an Id subclass must not end up inside documents
        if not isinstance(fields, Mapping):
            raise InvalidValueError(f"patch() takes a dict of fields; got {type(fields).__name__}.")
        current = self._current(table, doc_id, "Update")
        self._check_system_fields(current, fields)
        merged = {k: v for k, v in current.items() if k not in _SYSTEM_FIELDS}
        for k, v in fields.items():
            if k in _SYSTEM_FIELDS:
                continue
            if v is UNDEFINED:
                merged.pop(k, None)
            else:
                merged[k] = v
        self._store_write(table, doc_id, current, merged)

    def replace(self, table: TableData, doc_id: str, fields: Mapping[str, Any]) -> None:
        self._check_writable()
        doc_id = str(doc_id)  # an Id subclass must not end up inside documents
        if not isinstance(fields, Mapping):
            raise InvalidValueError(
                f"replace() takes a dict of fields; got {type(fields).__name__}.")
        current = self._current(table, doc_id, "Replace")
        self._check_system_fields(current, fields)
        user = {k: v for k, v in fields.items() if k not in _SYSTEM_FIELDS}
        self._store_write(table, doc_id, current, user)

    def delete(self, table: TableData, doc_id: str) -> None:
        self._check_writable()
        doc_id = str(doc_id)  # an Id subclass must not end up inside documents
        self._current(table, doc_id, "Delete")
        self._count_write(0)
        own = self.writes.get(table.name)
        if own is None:
            own = self.writes[table.name] = {}
        own[doc_id] = None


class Scan:
    """An ordered walk over one index range, in batches, as the transaction sees it.

    Each :meth:`fetch` takes the store lock once, merges the latest index entries with the
    transaction's overlay (see :meth:`Transaction.overlay`) and extends the recorded read
    interval to cover exactly what it returned (the whole range once exhausted).
    """

    __slots__ = ("_hi", "_lo", "done", "index", "last_key", "read", "reverse", "table", "tx")

    def __init__(self, tx: Transaction, table: TableData, index: str, interval: Interval,
                 reverse: bool) -> None:
        self.tx = tx
        self.table = table
        self.index = index
        self.reverse = reverse
        self._lo = interval.lo
        self._hi = interval.hi
        self.done = not interval.lo < interval.hi
        self.last_key: Key | None = None
        edge = interval.hi if reverse else interval.lo
        self.read = tx.reads.add_range(table.name, index, edge, edge)
        tx._count_interval()

    def fetch(self, n: int) -> list[dict[str, Any]]:
        """Up to ``n`` next documents; fewer means the range is exhausted. ``last_key`` is then
        the key of the last one returned. They are the stored dicts: copy them before handing
        them to user code."""
        if self.done or n <= 0:
            return []
        tx, table = self.tx, self.table
        lo, hi, reverse = self._lo, self._hi, self.reverse
        with tx.store.lock:
            overlay = tx.overlay(table)
            entries = table.entries_for(self.index)
            docs = table.docs
            if not overlay:
                keys = take_keys(entries, lo, hi, n, reverse)
                # C-level maps, not a Python loop: these lookups miss the CPU cache (documents
                # are spread over memory), and the loop's own overhead would double their cost.
                out = list(map(docs.__getitem__, map(_last, keys)))
                last = keys[-1] if keys else None
            else:
                mine = []
                for k in entries.irange(lo, hi, inclusive=(True, False), reverse=reverse):
                    if k[-1] not in overlay:
                        mine.append((k, docs[k[-1]]))
                        if len(mine) >= n:
                            break
                extra = []
                key = table.specs[self.index].key
                for d in overlay.values():
                    if d is not None:
                        kd = key(d)
                        if lo <= kd < hi:
                            extra.append((kd, d))
                extra.sort(key=_first, reverse=reverse)
                pairs = list(itertools.islice(
                    heapq.merge(mine, extra, key=_first, reverse=reverse), n))
                out = [d for _, d in pairs]
                last = pairs[-1][0] if pairs else None
        if last is not None:
            self.last_key = last
        if len(out) < n:
            self.done = True
            if reverse:
                self.read.lo = lo
            else:
                self.read.hi = hi
        elif reverse:
            self._hi = self.read.lo = last  # type: ignore[assignment]
        else:
            self._lo = self.read.hi = last + KEY_AFTER  # type: ignore[operator]
        tx._count_reads(table, out)
        return out


def _first(pair: tuple[Key, Any]) -> Key:
    return pair[0]


_last = operator.itemgetter(-1)  # a key's last slot: the document ID


# --------------------------------------------------------------------------------------------


def run_with_retries(store: Store, body: Callable[[Transaction], T], read_only: bool,
                     retries: int, snapshot: int | None = None) -> T:
    """Run ``body`` in a fresh transaction and commit; on an OCC conflict, run it again.

    After ``retries`` re-runs it raises ``OptimisticConcurrencyControlFailure`` with Convex's
    text. Backoff is jittered and short (a kernel, not a data centre).
    """
    attempt = 0
    while True:
        tx = store.begin(read_only=read_only, snapshot=snapshot)
        try:
            result = body(tx)
            tx.commit()
            return result
        except Conflict as c:
            tx.abort()
            attempt += 1
            if attempt > retries:
                raise OptimisticConcurrencyControlFailure(
                    f'Documents read from or written to the table "{c.table}" changed while this '
                    "mutation was being run and on every subsequent retry. Another call to this "
                    "mutation changed the document with ID \"...\" or another mutation wrote "
                    "to the same range. See https://docs.convex.dev/error#1") from None
            time.sleep(random.uniform(0, 0.002 * 2**attempt))
        except BaseException:
            tx.abort()
            raise

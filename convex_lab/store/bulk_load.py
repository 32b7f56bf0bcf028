"""Bulk loads of given documents (snapshot and table imports): what the caller hands the store,
and the vectorised checks the store makes on it.

A :class:`BulkLoad` carries documents that already have their ``_id`` and ``_creationTime`` (kept
from a snapshot, or reserved with ``Store.reserve_ids``) and were already validated against the
schema by the caller (``convex_lab/interop/`` does it column by column). The store checks what only
it can: that every ID is a well-formed ID of the table's number, unique in the load and, unless
the table is replaced, new to the table (``Store.load_documents``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from convex_lab.errors import InvalidIdError, InvalidValueError
from convex_lab.ids import ALPHABET, decode_id, encode_id

if TYPE_CHECKING:
    from convex_lab.store.engine import Store


@dataclass
class BulkLoad:
    """Documents for one table.

    Invariants the caller guarantees: every document is a canonical Convex document whose first
    two keys are ``_id`` then ``_creationTime`` (a finite float), validated against the table's
    schema; ``special`` holds the IDs of documents with bytes or non-finite floats (they need
    lossless JSON, ``store/codec.py``); ``max_size`` bounds their Convex sizes; ``nested`` says
    whether any holds an array or object. ``number`` is the table number the IDs carry: a table
    that does not exist yet is made with it.
    """

    table: str
    docs: list[dict[str, Any]]
    number: int | None = None
    special: set[str] = field(default_factory=set)
    max_size: int = 0
    nested: bool = False
    # Set by a caller that made the IDs and times itself (``Store.reserve_ids``): the IDs are
    # then well-formed, unique and new, the times finite and increasing, so the store skips
    # those checks and the sort. ``ids`` lists them in document order.
    fresh: bool = False
    ids: list[str] | None = None


_ID_CHUNK = 32_768


def first_bad_id(ids: Sequence[str], number: int) -> int:
    """The position of the first string in ``ids`` that is not a canonical ID of table
    ``number``, or -1 when they all are. Vectorised (numpy): about 0.1 µs per ID."""
    import numpy as np  # noqa: PLC0415 (only for bulk loads)

    n = len(ids)
    if n == 0:
        return -1
    if n > _ID_CHUNK:  # in slices that stay in cache: several times faster than one pass
        for start in range(0, n, _ID_CHUNK):
            bad = first_bad_id(ids[start : start + _ID_CHUNK], number)
            if bad >= 0:
                return start + bad
        return -1
    expected = encode_id(number, bytes(16))
    width = len(expected)
    try:
        text = "".join(ids).encode("ascii")
    except (UnicodeEncodeError, TypeError):
        return _first_bad_slow(ids, number)
    if len(text) != n * width:
        return _first_bad_slow(ids, number)
    chars = np.frombuffer(text, dtype=np.uint8).reshape(n, width)
    lut = np.full(256, 255, dtype=np.uint8)
    lut[np.frombuffer(ALPHABET.encode(), dtype=np.uint8)] = np.arange(32, dtype=np.uint8)
    values = lut[chars]
    bad = (values == 255).any(axis=1)
    # Base32 by hand, in uint8 arithmetic: every 8 characters (40 bits) are 5 bytes; pad to
    # whole groups with zero characters.
    groups = -(-width // 8)
    padded = np.zeros((n, groups * 8), dtype=np.uint8)
    padded[:, :width] = values
    c = [padded[:, k::8] for k in range(8)]  # (n, groups) each: the k-th character of a group
    out = np.empty((n, groups, 5), dtype=np.uint8)
    out[:, :, 0] = (c[0] << 3) | (c[1] >> 2)
    out[:, :, 1] = ((c[1] & 3) << 6) | (c[2] << 1) | (c[3] >> 4)
    out[:, :, 2] = ((c[3] & 15) << 4) | (c[4] >> 1)
    out[:, :, 3] = ((c[4] & 1) << 7) | (c[5] << 2) | (c[6] >> 3)
    out[:, :, 4] = ((c[6] & 7) << 5) | c[7]
    raw = out.reshape(n, groups * 5)
    nbytes = width * 5 // 8
    bad |= raw[:, nbytes:].any(axis=1)  # canonical form: the spare bits are zero
    raw = raw[:, :nbytes]
    head = np.frombuffer(bytes.fromhex(_head_hex(expected)), dtype=np.uint8)
    bad |= (raw[:, : len(head)] != head).any(axis=1)
    m = nbytes - 2
    body = raw[:, :m].astype(np.int64)
    bad |= (body.sum(axis=1) & 0xFF) != raw[:, m]
    bad |= ((body @ np.arange(m, 0, -1, dtype=np.int64)) & 0xFF) != raw[:, m + 1]
    hits = np.flatnonzero(bad)
    return int(hits[0]) if len(hits) else -1


def _head_hex(expected: str) -> str:
    """The VInt table-number bytes of an ID text (what every ID of that table starts with)."""
    number, _ = decode_id(expected)
    out = bytearray()
    while number >= 0x80:
        out.append((number & 0x7F) | 0x80)
        number >>= 7
    out.append(number)
    return out.hex()


def _first_bad_slow(ids: Sequence[str], number: int) -> int:
    for i, doc_id in enumerate(ids):
        try:
            if decode_id(doc_id)[0] != number:
                return i
        except InvalidIdError:
            return i
    return -1


def id_problem(doc_id: Any, number: int, table: str,
               table_of: Any) -> str:
    """Why ``doc_id`` cannot be an ``_id`` in ``table`` (number ``number``): for error texts."""
    try:
        got, _ = decode_id(doc_id)
    except InvalidIdError as e:
        return str(e)
    other = table_of(got)
    where = f"table {other!r}" if other else f"table number {got}"
    return (f"{doc_id!r} is an ID of {where}, not of {table!r} (table number {number}); IDs keep "
            "the number of the table they were made in")


def in_creation_order(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``docs`` in ``(_creationTime, _id)`` order (what ``TableData.bulk_load`` wants): as given
    when they already are (fresh imports, Convex's own exports), else sorted."""
    import numpy as np  # noqa: PLC0415

    if len(docs) < 2:
        return docs
    cts = np.fromiter((d["_creationTime"] for d in docs), dtype=np.float64, count=len(docs))
    if bool((np.diff(cts) > 0).all()):
        return docs
    return sorted(docs, key=lambda d: (d["_creationTime"], d["_id"]))


def check_load(store: Store, ld: BulkLoad, number: int, mode: str) -> None:
    """Given IDs and creation times: well-formed for the table, unique, new (callers hold
    the lock)."""
    import numpy as np  # noqa: PLC0415

    ids = [d["_id"] for d in ld.docs]
    bad = first_bad_id(ids, number)
    if bad >= 0:
        problem = id_problem(ids[bad], number, ld.table, store.table_name_for_number)
        raise InvalidValueError(f"Document {bad} of the import into {ld.table!r}: "
                                f"{problem}.", code="InvalidId")
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        dup = next(i for i in ids if i in seen or seen.add(i))  # type: ignore[func-returns-value]
        raise InvalidValueError(
            f"The import into {ld.table!r} holds _id {dup!r} twice (Convex: DuplicateId). "
            "Each document needs its own _id.", code="DuplicateId")
    existing = store.tables.get(ld.table)
    if mode == "append" and existing is not None and existing.docs:
        clash = existing.docs.keys() & ids
        if clash:
            raise InvalidValueError(
                f"{len(clash)} imported document(s) of {ld.table!r} have an _id that the "
                f"table already holds (e.g. {min(clash)!r}). Use mode='replace' to replace "
                "the table, or drop the _id column to get fresh IDs.",
                code="ImportConflict")
    cts = [d["_creationTime"] for d in ld.docs]
    ok = all(type(c) is float for c in cts) and bool(np.isfinite(np.array(cts)).all())
    if not ok:
        i = next(i for i, c in enumerate(cts) if type(c) is not float or c - c != 0.0)
        raise InvalidValueError(
            f"Document {ids[i]!r} of the import into {ld.table!r}: _creationTime must be a "
            f"finite float (ms since the epoch); got {cts[i]!r}.")


def load_number(store: Store, ld: BulkLoad) -> int:
    """The table number ``ld``'s IDs must carry (callers hold the lock; nothing changes)."""
    t = store.tables.get(ld.table)
    if t is not None:
        if ld.number is not None and ld.number != t.number and (t.docs or ld.docs):
            raise InvalidValueError(
                f"Table {ld.table!r} here has table number {t.number}, but the imported IDs "
                f"belong to table number {ld.number}: Convex keeps IDs only within their "
                "table, so they cannot be kept here. Import into a backend where this table "
                "does not exist yet, or import the data without its _id column (fresh IDs).",
                code="ImportConflict")
        return t.number
    number = ld.number if ld.number is not None else store._next_table_number
    other = store.by_number.get(number)
    if other is not None:
        raise InvalidValueError(
            f"The imported table {ld.table!r} has table number {number}, which table "
            f"{other.name!r} already uses here, so its IDs cannot be kept. Import into a "
            "fresh backend, or import the table without its _id column.",
            code="ImportConflict")
    return number

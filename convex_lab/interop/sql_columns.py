"""The columns of ``%%sql``'s views and their SQL types (docs/api.md, "SQL views").

Contract
--------
Each view has ``_id`` (VARCHAR), ``_creationTime`` (TIMESTAMP, UTC, to the millisecond) and one
column per top-level field, typed so that SQL reads naturally (``WHERE title = 'hello'``,
``n + 1``):

* **From the schema** where a field's validator admits one SQL type (:func:`validator_type`):
  ``v.string()``/``v.id()``/string literals VARCHAR, ``v.float64()``/``v.number()`` DOUBLE,
  ``v.int64()`` BIGINT, ``v.boolean()`` BOOLEAN, the same under ``v.optional``/``v.nullable``.
* **From the data** when no schema says — tables without one (or with
  ``schema_validation=False``), and fields a schema leaves open (``v.any()``, a union of several
  types): strings VARCHAR, float64 DOUBLE, int64 BIGINT, booleans BOOLEAN, when every value of
  the field is of that one type or null (:func:`data_type`).
* **JSON** otherwise: arrays, objects and bytes, and fields mixing types (float64 with int64
  included: no SQL number type holds both exactly).

In a typed column a missing field and a Convex ``null`` are both SQL NULL; in a JSON column a
missing field is SQL NULL and ``null`` is JSON ``null``.

Snapshot safety
---------------
The views show one commit ``ts``; the store's memory holds the latest state, which may include
commits after ``ts`` that are not visible yet. :func:`snapshot_documents`, called under the
store's lock, returns for each table the documents in memory *plus* the versions that commits
after ``ts`` replaced: a superset of the values at ``ts``. A type chosen from a superset holds
every value at ``ts`` (at worst a column is JSON that could have been typed), so a cast in a view
never fails.

Cost
----
Typing from the data reads every document once per field, at C speed (``map`` over ``dict.get``):
about as long as listing the fields took before columns were typed. When every document has
the first one's fields (the usual case), that pass also proves there are no others, so the
field listing is skipped. Columns are remembered per table until a commit writes that table
(:class:`ColumnCache`): queries in a row over unchanged data type nothing again.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain, repeat
from typing import TYPE_CHECKING, Any, Final

from convex_lab.values import Int64

if TYPE_CHECKING:
    from convex_lab.schema import Schema, TableDefinition
    from convex_lab.store.engine import Store
    from convex_lab.validators import Validator

JSON: Final = "JSON"
SYSTEM_FIELDS: Final = ("_id", "_creationTime")
_DATA_TYPES: Final[dict[type, str]] = {
    str: "VARCHAR", float: "DOUBLE", Int64: "BIGINT", bool: "BOOLEAN"}
_NULL: Final = type(None)


def validator_type(validator: Validator) -> str:
    """The one SQL type holding every value ``validator`` admits, else ``"JSON"``."""
    from convex_lab.validators import (  # noqa: PLC0415 (validators load with a backend)
        VBoolean,
        VFloat64,
        VId,
        VInt64,
        VLiteral,
        VNull,
        VString,
        VUnion,
    )

    validator = validator.as_required()
    if isinstance(validator, (VString, VId)):
        return "VARCHAR"
    if isinstance(validator, VFloat64):
        return "DOUBLE"
    if isinstance(validator, VInt64):
        return "BIGINT"
    if isinstance(validator, VBoolean):
        return "BOOLEAN"
    if isinstance(validator, VLiteral):
        value = validator.value
        return ("VARCHAR" if isinstance(value, str) else "BOOLEAN" if isinstance(value, bool)
                else "BIGINT" if isinstance(value, int) else "DOUBLE")
    if isinstance(validator, VUnion):
        # v.nullable(x) and unions of literals: null becomes SQL NULL, the rest must agree.
        types = {validator_type(m) for m in validator.members if not isinstance(m, VNull)}
        if len(types) == 1:
            return types.pop()
    return JSON


def schema_columns(table_def: TableDefinition) -> dict[str, str] | None:
    """Field → SQL type from a table's document validator (``"JSON"`` where it leaves the type
    open); ``None`` for a ``v.any()`` table."""
    from convex_lab.validators import VObject, VUnion  # noqa: PLC0415 (as above)

    doc = table_def.document_validator
    members: Sequence[Any]
    if isinstance(doc, VObject):
        members = [doc]
    elif isinstance(doc, VUnion):  # a union of objects (schema.py allows only those)
        members = doc.members
    else:
        return None
    per_field: dict[str, set[str]] = {}
    for member in members:
        assert isinstance(member, VObject)
        for name, field_validator in member.fields.items():
            per_field.setdefault(name, set()).add(validator_type(field_validator))
    return {name: (types.pop() if len(types) == 1 else JSON)
            for name, types in per_field.items()}


def _types(docs: list[dict[str, Any]], field: str) -> set[type]:
    # C-level: dict.get and type() run inside map, no Python frame per document.
    return set(map(type, map(dict.get, docs, repeat(field))))


def _one_type(types: set[type]) -> str:
    """One scalar type, nulls and missing values aside (both SQL NULL), else JSON."""
    scalars = types - {_NULL}
    if len(scalars) == 1:
        return _DATA_TYPES.get(scalars.pop(), JSON)
    return JSON


def data_type(docs: list[dict[str, Any]], field: str) -> str:
    """The SQL type of ``field`` across ``docs`` (module docstring)."""
    return _one_type(_types(docs, field))


def data_columns(docs: list[dict[str, Any]]) -> dict[str, str]:
    """Field → SQL type for a table typed entirely by its documents, fields in first-seen
    order."""
    if not docs:
        return {}
    first = docs[0]
    types = {f: _types(docs, f) for f in first if f not in SYSTEM_FIELDS}
    if set(map(len, docs)) == {len(first)} and all(_NULL not in t for t in types.values()):
        # Every document has each of the first one's fields (no None: none is missing) and as
        # many fields as it: so exactly its fields. No need to list every document's keys.
        return {f: _one_type(t) for f, t in types.items()}
    seen = dict.fromkeys(chain.from_iterable(docs))  # first-seen order at C speed
    return {f: _one_type(types[f]) if f in types else data_type(docs, f)
            for f in seen if f not in SYSTEM_FIELDS}


def _typed_by_schema(schema: Schema | None, name: str) -> dict[str, str] | None:
    table_def = schema.table(name) if schema is not None else None
    if table_def is None or schema is None or not schema.schema_validation:
        return None
    return schema_columns(table_def)


def _columns(schema: Schema | None, name: str, docs: list[dict[str, Any]]) -> dict[str, str]:
    columns = _typed_by_schema(schema, name)
    if columns is None:
        return data_columns(docs)
    return {field: (data_type(docs, field) if sql_type == JSON and docs else sql_type)
            for field, sql_type in columns.items()}


class ColumnCache:
    """A store's columns per table, valid until a commit writes the table or the schema
    changes. Stamped with the store's last applied commit (``store.ts``) when the documents
    they came from were read: still valid if no commit since wrote the table, which the store's
    commit log tells while it holds every commit since (it is trimmed; otherwise: recompute)."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[int, Any, dict[str, str]]] = {}
        self._lock = threading.Lock()

    def lookup(self, store: Store, schema: Schema | None, name: str) -> dict[str, str] | None:
        """Columns still valid for ``name`` (call under ``store.lock``), else ``None``."""
        with self._lock:
            entry = self._entries.get(name)
        if entry is None or entry[1] is not schema:
            return None
        stamp = entry[0]
        if store.ts != stamp:
            try:
                since = store.commits_after(stamp)
            except RuntimeError:  # trimmed past the stamp
                return None
            if len(since) != store.ts - stamp or any(name in c.writes for c in since):
                return None  # written since, or the log no longer says
        return entry[2]

    def remember(self, stamp: int, schema: Schema | None, name: str,
                 columns: dict[str, str]) -> None:
        with self._lock:
            self._entries[name] = (stamp, schema, columns)


_caches: weakref.WeakKeyDictionary[Any, ColumnCache] = weakref.WeakKeyDictionary()
_caches_lock = threading.Lock()


def _cache_of(store: Store) -> ColumnCache:
    with _caches_lock:
        cache = _caches.get(store)
        if cache is None:
            cache = _caches[store] = ColumnCache()
        return cache


@dataclass
class Plan:
    """What :func:`table_columns` needs, taken under the store's lock (:func:`plan_columns`)."""

    stamp: int
    known: dict[str, dict[str, str]]  # tables whose columns need no documents
    docs: dict[str, list[dict[str, Any]]]  # the rest: a superset of their documents at ts
    widened: set[str]  # tables whose superset holds versions replaced after ts: not cached


def plan_columns(store: Store, schema: Schema | None, ts: int) -> Plan:
    """Under ``store.lock``: the columns known without reading documents (the schema types
    every field, or the cache holds them), and for every other table a superset of its
    documents at ``ts`` (module docstring)."""
    cache = _cache_of(store)
    known: dict[str, dict[str, str]] = {}
    docs: dict[str, list[dict[str, Any]]] = {}
    names = set(store.user_tables())
    if schema is not None:
        names.update(schema.tables)
    for name in names:
        columns = _typed_by_schema(schema, name)
        data = store.tables.get(name)
        if columns is not None and (JSON not in columns.values() or data is None):
            known[name] = columns  # the data cannot change these types
            continue
        cached = cache.lookup(store, schema, name)
        if cached is not None:
            known[name] = cached
        elif data is None:
            known[name] = columns or {}
        else:
            docs[name] = list(data.docs.values())  # one C call
    widened: set[str] = set()
    for commit in store.commits_after(ts):
        for name, writes in commit.writes.items():
            table_docs = docs.get(name)
            if table_docs is not None:
                table_docs += [old for old, _ in writes.values() if old is not None]
                widened.add(name)
    return Plan(store.ts, known, docs, widened)


def table_columns(store: Store, schema: Schema | None, plan: Plan) -> dict[str, dict[str, str]]:
    """Every user table (in the store or the schema) → its columns (field → SQL type), sorted
    by table name; computes what ``plan`` left to the data, and remembers it."""
    cache = _cache_of(store)
    out = dict(plan.known)
    for name, docs in plan.docs.items():
        out[name] = _columns(schema, name, docs)
        if name not in plan.widened:  # the next query, at a later ts, may type them closer
            cache.remember(plan.stamp, schema, name, out[name])
    return dict(sorted(out.items()))

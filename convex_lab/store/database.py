"""``ctx.db``: Convex's database reader and writer over one transaction.

Both Convex call forms are accepted (docs/api.md): ``get(id)`` / ``get(table, id)``, and the same
for ``patch``, ``replace`` and ``delete``. User tables are reached through ``db``; system tables
(``_scheduled_functions``, ``_storage``) only through ``db.system``, and read-only there.

Every document handed out is a fresh copy: callers may mutate what they get back.

One reader or writer object serves one function execution, which is where Convex's "one
``paginate()`` per function" rule is counted; nested calls get their own object over the same
transaction. It also carries that execution's :class:`QueryJournal` (live queries: the end of
its ``paginate()`` call, reference §4.5) and reports notices through the ``warn`` it was given.

A query's ``ctx.db`` is read-only: ``insert``, ``patch``, ``replace`` and ``delete`` raise an
``AttributeError`` saying that writes belong in a mutation; ``ctx.db.system`` is read-only
everywhere. Querying a table that neither exists nor is in the pushed schema returns nothing,
as in Convex, with an :class:`UnknownTableWarning` naming the closest schema table (once per
execution and name); without a schema, or for a table that has documents, nothing is said —
Convex without a schema answers an unknown table with an empty result too.

Components: a reader or writer made with ``namespace="<component>/"`` serves a mounted
component's function. Its table ``t`` is the store's ``"<component>/t"``; it reaches no other
table (another namespace's ID reads as a missing document), and the app's (``namespace=""``)
reaches no ``"<component>/..."`` table: a table name with ``/`` is an ``InvalidTableError``.
"""

from __future__ import annotations

import difflib
import sys
import warnings
from typing import TYPE_CHECKING, Any

from convex_lab.errors import (
    ConvexLabError,
    InvalidIdError,
    InvalidTableError,
    InvalidValueError,
    NonexistentDocumentError,
    UnknownTableWarning,
)
from convex_lab.ids import Id, decode_id
from convex_lab.store.keys import IndexSpec, user_index_specs
from convex_lab.store.query import Query
from convex_lab.values import Int64, convert, safe_repr

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from convex_lab.store.tables import TableData
    from convex_lab.store.transaction import Transaction


_good_table_names: set[str] = set()
_VERB_TEXT = {"patch": "Update", "replace": "Replace", "delete": "Delete"}
_WRITES = frozenset({"insert", "patch", "replace", "delete"})


class QueryJournal:
    """What a query's run decided, for its next runs to decide the same (Convex's query
    journal, reference §4.5): the end of its ``paginate()`` call.

    A live query keeps one per execution. A run reads ``end_cursor`` (when set, its
    ``paginate()`` without an ``endCursor`` reads up to there: the page grows or shrinks but
    never shifts) and, when it succeeds, the executor stores the end that run reached.
    """

    __slots__ = ("end_cursor",)

    def __init__(self, end_cursor: str | None = None) -> None:
        self.end_cursor = end_cursor

    def __repr__(self) -> str:
        return f"<QueryJournal end_cursor={'set' if self.end_cursor else None}>"


def warn_in_user_code(message: str, category: type[Warning]) -> None:
    """Issue a warning attributed to the innermost caller outside convex_lab (a notebook cell,
    a user's module), shown on every call: not once per location as ``warnings.warn`` would."""
    frame = sys._getframe(1)
    while frame.f_back is not None and str(frame.f_globals.get("__name__", "")).startswith(
            "convex_lab"):
        frame = frame.f_back
    warnings.warn_explicit(message, category, frame.f_code.co_filename, frame.f_lineno,
                           module=str(frame.f_globals.get("__name__", "")), registry=None,
                           module_globals=frame.f_globals)


def _identifier_ok(name: str) -> bool:
    if type(name) is not str:
        return False
    if name in _good_table_names:
        return True
    ok = (0 < len(name) <= 64 and name.isascii()
            and (name[0].isalpha() or name[0] == "_")
            and all(c.isalnum() or c == "_" for c in name) and name.strip("_") != "")
    if ok and len(_good_table_names) < 10_000:
        _good_table_names.add(name)
    return ok


def check_table_name(table_name: Any) -> None:
    """Convex's rules for a user table name, with the fix in the message."""
    if not _identifier_ok(table_name) or table_name.startswith("_"):
        raise InvalidTableError(
            f"Invalid table name {safe_repr(table_name)}: table names are identifiers (letters, "
            "digits and underscores, starting with a letter, at most 64 characters) and may not "
            "start with '_'.", code="InvalidTableName")


class DatabaseReader:
    """The ``ctx.db`` of a query: get, query, normalize_id and system (module docstring)."""

    def __init__(self, tx: Transaction,
                 warn: Callable[[str, type[Warning]], None] | None = None,
                 journal: QueryJournal | None = None, *, namespace: str = "") -> None:
        self._tx = tx
        # "" for the app; "<component>/" for a mounted component's functions, whose table
        # "t" is the store's "<component>/t" (module docstring, "Components").
        self._ns = namespace
        self._store = tx.store
        self._paginated = False
        self._warn = warn
        self._journal = journal
        self.page_end: str | None = None  # where this execution's paginate() ended
        self._warned: set[str] | None = None

    def __getattr__(self, name: str) -> Any:
        if name in _WRITES:
            raise AttributeError(self._read_only(name))
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def _read_only(self, verb: str) -> str:
        return (f"ctx.db.{verb}() is not available in a query: queries are read-only (they "
                "read one snapshot and may re-run at any time). Write in a mutation instead — "
                "@mutation or %%mutation — and call it from the notebook, a client, an action "
                "(ctx.run_mutation) or the scheduler.")

    # Resolution ----------------------------------------------------------------------------
    def _note_paginate(self) -> str | None:
        """Count this execution's ``paginate()``; returns the end its journal recorded."""
        if self._paginated:
            raise ConvexLabError(
                "This query or mutation function ran multiple paginated queries. Convex only "
                "supports a single paginated query in each function.",
                code="MultiplePaginatedDatabaseQueries")
        self._paginated = True
        journal = self._journal
        return journal.end_cursor if journal is not None else None

    def _note_unknown_table(self, name: str) -> None:
        """Warn (once per execution) about a query of a table that exists nowhere."""
        schema = self._tx.schema
        if schema is None or name in schema.tables or self._system():
            return
        warned = self._warned
        if warned is None:
            warned = self._warned = set()
        if name in warned:
            return
        warned.add(name)
        cut = len(self._ns)  # a component is told about its own tables, by its own names
        tables = sorted(t[cut:] for t in schema.tables if self._owns(t))
        name = name[cut:]
        hint = difflib.get_close_matches(name, tables, n=1, cutoff=0.6)
        did_you_mean = f" Did you mean {hint[0]!r}?" if hint else ""
        message = (f"ctx.db.query({name!r}): there is no table {name!r} (it is not in the "
                   f"schema and has no documents), so the query returns nothing.{did_you_mean} "
                   f"The schema's tables: {', '.join(tables) or 'none'}.")
        (self._warn or warn_in_user_code)(message, UnknownTableWarning)

    def _system(self) -> bool:
        return False

    def _owns(self, store_name: str) -> bool:
        """Whether this ``ctx.db`` may reach the store's table ``store_name``: the app only
        its own tables, a component only its ``<component>/`` ones."""
        ns = self._ns
        if not ns:
            return "/" not in store_name
        return store_name.startswith(ns) and "/" not in store_name[len(ns):]

    def _user_table(self, name: Any) -> str:
        """A table name given to ``ctx.db`` → the store's name for it (checked)."""
        self._check_table_kind(name)
        if "/" in name:
            raise InvalidTableError(
                f"Invalid table name {safe_repr(name)}: a component's tables ('<component>/"
                "<table>') are private to it. Read or change them through the component's "
                "functions (app.components.<name>.<module>.<fn> with ctx.run_query/"
                "run_mutation).", code="InvalidTable")
        checked: str = name  # _check_table_kind made sure it is a str
        return checked if checked[:1] == "_" else self._ns + checked

    def _check_table_kind(self, name: str) -> None:
        if not isinstance(name, str):
            raise InvalidValueError(f"A table name must be a string; got {safe_repr(name)}.")
        system = name.startswith("_")
        if system and not self._system():
            raise InvalidTableError(
                f"System table {safe_repr(name)} can only be read through ctx.db.system "
                f"(e.g. ctx.db.system.query({name!r}), ctx.db.system.get(id)).",
                code="InvalidTable")
        if not system and self._system():
            raise InvalidTableError(
                f"ctx.db.system only reaches system tables; {safe_repr(name)} is a user table: "
                "use ctx.db.",
                code="InvalidTable")

    def _resolve(self, verb: str, a: Any, b: Any) -> tuple[TableData | None, str]:
        """(table or None if it does not exist, id) for the one- and two-argument forms."""
        if b is None:
            doc_id = a
            if type(doc_id) is str:  # an ID of a live document: no decoding (see get)
                table = self._store.table_for_id_prefix(doc_id)
                if (table is not None and doc_id in table.docs and table.name[0] != "_" and (
                        "/" not in table.name if not self._ns else self._owns(table.name))):
                    return table, doc_id
            try:
                number, _ = decode_id(doc_id)
            except InvalidIdError as e:
                raise InvalidIdError(f"Invalid argument `id` for `db.{verb}`: {e}") from None
            table = self._store.by_number.get(number)
            if table is not None:
                if not self._owns(table.name):
                    return None, str(doc_id)  # another namespace's table: not there for us
                self._check_table_kind(table.name)
            return table, str(doc_id)
        name, doc_id = a, b
        name = self._user_table(name)
        try:
            number, _ = decode_id(doc_id)
        except InvalidIdError as e:
            raise InvalidIdError(f"Invalid argument `id` for `db.{verb}`: {e}") from None
        table = self._store.tables.get(name)
        if table is None:
            return None, str(doc_id)
        if number != table.number:
            other = self._store.table_name_for_number(number) or f"table number {number}"
            if not self._owns(other):
                other = "a table this function cannot reach"
            shown = name[len(self._ns):]
            raise InvalidTableError(
                f'Invalid argument `id` for `db.{verb}`: expected to be an Id<"{shown}">, got '
                f'Id<"{other}"> instead.', code="InvalidTable")
        return table, str(doc_id)

    # Reads ---------------------------------------------------------------------------------
    def get(self, table_or_id: Any, doc_id: Any = None) -> dict[str, Any] | None:
        """The document with this ID, or ``None`` (deleted, or the table does not exist)."""
        table = None
        if doc_id is None:
            # Fast path: an ID of a live document needs no decoding, since only valid IDs are
            # stored; its table is found from the ID's first characters (the table number).
            if type(table_or_id) is str:
                table = self._store.table_for_id_prefix(table_or_id)
                if table is not None and table_or_id not in table.docs:
                    table = None
                if table is not None and (table.name[0] == "_" or (
                        "/" in table.name if not self._ns else not self._owns(table.name))):
                    table = None  # system tables and other namespaces': _resolve decides
            i = table_or_id
        elif (type(doc_id) is str and type(table_or_id) is str and table_or_id[:1] != "_"
              and "/" not in table_or_id):
            table = self._store.tables.get(self._ns + table_or_id)
            if table is not None and doc_id not in table.docs:
                table = None
            i = doc_id
        if table is None:
            table, i = self._resolve("get", table_or_id, doc_id)
            if table is None:
                return None
        doc = self._tx.get(table, i)
        if doc is None:
            return None
        copy = self._tx.copier(table)
        if copy is not dict:
            return copy(doc)  # type: ignore[no-any-return]
        out = dict(doc)
        self._tx.hand_out_one(out, doc)
        return out

    def query(self, table_name: str) -> Query:
        """A query over ``table_name`` (empty if the table does not exist yet)."""
        if (self._ns or type(table_name) is not str or table_name[:1] == "_" or self._system()
                or "/" in table_name):
            table_name = self._user_table(table_name)
        table = self._store.tables.get(table_name)
        if table is None:
            self._note_unknown_table(table_name)
        setup = self._store.query_setup(table_name, table, self._tx.schema)
        return Query(self, table_name, table, specs=setup[0], field_converter=setup[1],
                     filter_builder=setup[2])

    def normalize_id(self, table_name: str, id_text: Any) -> Id | None:
        """``id_text`` as an ID of ``table_name`` if it is one (existence is not checked)."""
        table = self._store.tables.get(self._user_table(table_name))
        if table is None or not isinstance(id_text, str):
            return None
        try:
            number, _ = decode_id(id_text)
        except InvalidIdError:
            return None
        return Id(str(id_text), table_name) if number == table.number else None

    @property
    def system(self) -> SystemReader:
        return SystemReader(self._tx, self._warn)


def _plain(_field: str, value: Any) -> Any:
    return convert(value)


def query_setup(table: TableData | None, table_def: Any) -> tuple[
        dict[str, IndexSpec], Callable[[str, Any], Any], Callable[[], Any]]:
    """What every query on a table needs (index specs, literal conversion, filter builder),
    computed once per table and schema version (``Store.query_setup`` caches it)."""
    from convex_lab.store.filters import FilterBuilder  # noqa: PLC0415
    from convex_lab.validators import field_validator_at  # noqa: PLC0415

    specs: dict[str, IndexSpec]
    if table is not None:
        specs = table.specs
    else:
        specs = user_index_specs(dict(table_def.indexes) if table_def is not None else {})
    if table_def is None:
        return specs, _plain, FilterBuilder
    doc_validator = table_def.document_validator
    int64_fields: dict[str, bool] = {}

    def conv(field: str, value: Any) -> Any:
        # Index-bound conversion: plain ints stay int64 on fields the schema makes int64.
        if type(value) is int:
            wide = int64_fields.get(field)
            if wide is None:
                fv = field_validator_at(doc_validator, field)
                wide = int64_fields[field] = fv is not None and fv.admits_int64()
            if wide:
                return Int64(value)
        return convert(value)

    def builder() -> Any:
        return FilterBuilder(lambda path: field_validator_at(doc_validator, path))

    return specs, conv, builder


class SystemReader(DatabaseReader):
    """``ctx.db.system``: read-only access to system tables."""

    def _system(self) -> bool:
        return True

    def _read_only(self, verb: str) -> str:
        return (f"ctx.db.system.{verb}() is not available: system tables are read-only "
                "everywhere, Convex writes them itself. Schedule and cancel functions with "
                "ctx.scheduler (run_after, run_at, cancel); write your own data with ctx.db in "
                "a mutation.")

    @property
    def system(self) -> SystemReader:
        return self


class DatabaseWriter(DatabaseReader):
    """The ``ctx.db`` of a mutation: a reader plus insert, patch, replace and delete."""

    def insert(self, table_name: str, document: Mapping[str, Any]) -> Id:
        """Insert a document; returns its new ID."""
        # An existing user table's name passed every check when the table was made.
        if self._ns or type(table_name) is not str or table_name not in self._store.tables or (
                table_name[0] == "_") or "/" in table_name:
            full = self._user_table(table_name)
            check_table_name(table_name)
            table_name = full
        return self._tx.insert(table_name, document)

    def _target(self, verb: str, a: Any, b: Any, c: Any) -> tuple[TableData, str, Any]:
        if c is None and b is not None and not isinstance(b, str):
            table, doc_id = self._resolve(verb, a, None)
            value = b
        else:
            table, doc_id = self._resolve(verb, a, b if c is not None else None)
            value = c
        if table is None:
            raise NonexistentDocumentError(
                f"{_VERB_TEXT[verb]} on nonexistent document ID {doc_id}: its table does not "
                "exist.")
        return table, doc_id, value

    def patch(self, table_or_id: Any, id_or_fields: Any, fields: Any = None) -> None:
        """Shallow-merge ``fields`` into the document; a field set to UNDEFINED is removed."""
        table, doc_id, value = self._target("patch", table_or_id, id_or_fields, fields)
        self._tx.patch(table, doc_id, value)

    def replace(self, table_or_id: Any, id_or_fields: Any, fields: Any = None) -> None:
        """Replace the document's fields wholesale (system fields are kept)."""
        table, doc_id, value = self._target("replace", table_or_id, id_or_fields, fields)
        self._tx.replace(table, doc_id, value)

    def delete(self, table_or_id: Any, doc_id: Any = None) -> None:
        """Delete the document (an error if it does not exist)."""
        table, i = self._resolve("delete", table_or_id, doc_id)
        if table is None:
            raise NonexistentDocumentError(
                f"Delete on nonexistent document ID {i}: its table does not exist.")
        self._tx.delete(table, i)

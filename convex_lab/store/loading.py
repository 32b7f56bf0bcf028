"""Reading a store's DuckDB file back: the catalog, the latest schema and every live document,
checked as they are read.

Layout (DuckDB schema ``_convex``, see ``store/persist.py``)::

    _convex._tables(name VARCHAR, number INTEGER)            one row per Convex table, ever
    _convex._schema(ts BIGINT, json VARCHAR)                 every schema push, in order
    _convex."<table>"(_id, _creationTime, _ts, _deleted, doc)  every version of every document

:func:`read` returns a :class:`LoadedState` or raises :class:`~convex_lab.errors.StoreOpenError`
naming what is damaged (a catalog row, a column type, a schema row, a document by table and
``_id``). Nothing here writes, except :func:`create_catalog` and :func:`compact`, which the opener
calls only once everything has been read and checked.
"""

from __future__ import annotations

import contextlib
import math
import re
from dataclasses import dataclass, field
from typing import Any

from convex_lab.errors import StoreOpenError
from convex_lab.ids import ALPHABET, encode_id
from convex_lab.store.codec import decode_document, quote_table
from convex_lab.store.file_errors import _damaged, _duckdb_error, _open_error
from convex_lab.values import loads_export

_DOC_COLUMNS = [("_id", "VARCHAR"), ("_creationTime", "DOUBLE"), ("_ts", "BIGINT"),
                ("_deleted", "BOOLEAN"), ("doc", "VARCHAR")]
_CATALOG_COLUMNS = {"_tables": [("name", "VARCHAR"), ("number", "INTEGER")],
                    "_schema": [("ts", "BIGINT"), ("json", "VARCHAR")]}
# What the store writes as table names (see store/database.py: Convex identifiers, at most 64
# characters, or a mounted component's "<component>/<table>"); anything else in the catalog is
# damage, and would not be safe inside quote_table()'s quotes.
_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}(/[A-Za-z_][A-Za-z0-9_]{0,63})?")


@dataclass
class LoadedState:
    tables: list[tuple[str, int]] = field(default_factory=list)
    schema_json: str | None = None
    documents: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    ts: int = 0



def create_catalog(con: Any) -> None:
    # One transaction: a crash cannot leave half a catalog behind.
    con.execute("BEGIN")
    try:
        con.execute("CREATE SCHEMA IF NOT EXISTS _convex")
        con.execute("CREATE TABLE IF NOT EXISTS _convex._tables(name VARCHAR, number INTEGER)")
        con.execute("CREATE TABLE IF NOT EXISTS _convex._schema(ts BIGINT, json VARCHAR)")
        con.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(Exception):
            con.execute("ROLLBACK")
        raise


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass
class Reading:
    """What :func:`read` found: the state to load and what to do once open for writing."""

    state: LoadedState
    fresh: bool = False  # no convex_lab catalog yet: create it
    compact: list[str] = field(default_factory=list)  # tables whose history to compact
    fingerprint: tuple[Any, ...] = ()


def fingerprint(con: Any) -> tuple[Any, ...]:
    """Changes whenever the store is written (it only appends): its tables and their row counts."""
    tables = con.execute("SELECT schema_name, table_name FROM duckdb_tables() WHERE "
                         "database_name = current_database() ORDER BY ALL").fetchall()
    counts = [con.execute(f"SELECT count(*) FROM _convex.{_ident(t)}").fetchone()
              for s, t in tables if s == "_convex"]
    return (tuple(tables), tuple(counts))


def _latest(t: str) -> str:
    return (f"SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY _id ORDER BY _ts "
            f"DESC) AS _rn FROM {t}) WHERE _rn = 1 AND NOT _deleted")


def _columns_problem(table: str, got: list[tuple[str, str]],
                     want: list[tuple[str, str]]) -> str | None:
    if got == want:
        return None
    have = dict(got)
    for name, sql_type in want:
        if name not in have:
            return f"its table {table} has no column {name}"
        if have[name] != sql_type:
            return f"column {name} of {table} has type {have[name]}, not {sql_type}"
    extra = [name for name, _ in got if name not in dict(want)]
    return f"its table {table} has columns convex_lab does not write ({', '.join(extra)})"


def read(con: Any, where: str) -> Reading:
    """Read and check the whole store through ``con``; raises StoreOpenError, never writes."""
    import duckdb  # noqa: PLC0415 (loaded by now)

    try:
        return _read_checked(con, where)
    except duckdb.Error as e:  # e.g. a checksum error in a data block, met while reading rows
        raise _duckdb_error(e, where) from None


def _read_checked(con: Any, where: str) -> Reading:
    state = LoadedState()
    has_schema = con.execute(
        "SELECT count(*) FROM duckdb_schemas() WHERE database_name = current_database() AND "
        "schema_name = '_convex'").fetchone()[0]
    objects = con.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = "
        "current_database() UNION ALL SELECT schema_name, view_name FROM duckdb_views() WHERE "
        "database_name = current_database() AND NOT internal ORDER BY ALL").fetchall()
    if not has_schema:
        if objects:  # someone else's database: adding our tables to it would be a write
            names = ", ".join(f"{s}.{t}" for s, t in objects[:5])
            raise _open_error(
                where, "not_a_store", f"it is a DuckDB database but not a convex_lab store (no "
                f"_convex schema; it holds {names}{', ...' if len(objects) > 5 else ''})",
                "Open another path: a backend keeps its data in a file of its own. To bring "
                "these tables into a backend, read them with DuckDB and pass the rows to "
                "backend.import_documents(table, rows). The file was left untouched.")
        return Reading(state, fresh=True, fingerprint=fingerprint(con))
    code = [row[0] for row in con.execute(
        "SELECT 'macro ' || schema_name || '.' || function_name FROM duckdb_functions() WHERE NOT "
        "internal AND database_name = current_database() UNION ALL SELECT 'view ' || "
        "schema_name || '.' || view_name FROM duckdb_views() WHERE NOT internal AND "
        "database_name = current_database() ORDER BY 1").fetchall()]
    if code:
        # The store writes no SQL code; a macro in the file would even replace a DuckDB function
        # of the same name (main.lower(x) wins over lower) in every %%sql query.
        raise _damaged(where, f"it holds SQL code convex_lab never writes ({', '.join(code[:5])}"
                       f"{', ...' if len(code) > 5 else ''}), which SQL over the store would run "
                       "(a macro even replaces DuckDB's function of the same name)",
                       "Drop it with DuckDB (DROP MACRO / DROP VIEW) if you made it, restore the "
                       "file from a copy, or open another path.", reason="foreign_code")
    columns: dict[str, list[tuple[str, str]]] = {}
    for table, column, sql_type in con.execute(
            "SELECT c.table_name, c.column_name, c.data_type FROM duckdb_columns() c JOIN "
            "duckdb_tables() t USING (database_name, schema_name, table_name) WHERE "
            "c.database_name = current_database() AND c.schema_name = '_convex' "
            "ORDER BY c.table_name, c.column_index").fetchall():
        columns.setdefault(table, []).append((column, sql_type))
    data_tables = {t: c for t, c in columns.items() if t not in _CATALOG_COLUMNS}
    missing = [t for t in _CATALOG_COLUMNS if t not in columns]
    if missing:
        present = [t for t in _CATALOG_COLUMNS if t in columns]
        if not data_tables and all(
                con.execute(f"SELECT count(*) FROM _convex.{t}").fetchone()[0] == 0
                for t in present):
            # An empty store whose catalog was never finished (files made before the catalog was
            # created in one transaction): nothing to lose, it is completed once open.
            return Reading(state, fresh=True, fingerprint=fingerprint(con))
        raise _damaged(where, f"its catalog table _convex.{missing[0]} is missing")
    for table, want in _CATALOG_COLUMNS.items():
        problem = _columns_problem(f"_convex.{table}", columns[table], want)
        if problem:
            raise _damaged(where, f"its catalog is damaged: {problem}")

    state.tables = _read_tables(con, where, data_tables)
    ts = _read_schema(con, where, state)
    reading = Reading(state)
    for name, number in state.tables:
        t = quote_table(name)
        bad_row = f"{_BAD_ROW} OR {_bad_id(number)}"
        total, live, max_ts, bad = con.execute(
            f"SELECT count(*), count(DISTINCT _id), max(_ts), count(*) FILTER (WHERE "
            f"{bad_row}) FROM {t}").fetchone()
        if bad:
            raise _bad_row(con, where, name, bad_row)
        if max_ts is not None:
            ts = max(ts, int(max_ts))
        if total > 1000 and total > 1.25 * live:
            reading.compact.append(name)
        rows = con.execute(
            f"SELECT _id, _creationTime, doc FROM ({_latest(t)}) ORDER BY _creationTime, _id"
        ).fetchall()
        try:
            docs = [decode_document(*r) for r in rows]
        except Exception:  # find the row, to name it
            for doc_id, creation_time, text in rows:
                try:
                    decode_document(doc_id, creation_time, text)
                except Exception as e:  # noqa: BLE001 (any decoding failure is a bad row)
                    raise _damaged(
                        where, f"a document of table {name!r} is damaged: the doc column of "
                        f"its row with _id {doc_id!r} is not a document ({e})",
                        f"Restore the file from a copy, or repair or delete that row with DuckDB "
                        f"(table _convex.\"{name}\" holds one row per version of each document; "
                        f"the newest _ts is the current one) and open the file again.",
                        reason="bad_row") from None
            raise
        state.documents[name] = docs
    state.ts = ts
    reading.fingerprint = fingerprint(con)
    return reading


def _read_tables(con: Any, where: str,
                 data_tables: dict[str, list[tuple[str, str]]]) -> list[tuple[str, int]]:
    """The catalog ``_convex._tables``, checked against the tables there and the store's rules."""
    from convex_lab.store.engine import SYSTEM_TABLES  # noqa: PLC0415 (engine imports us)

    system_numbers = {n: name for name, n in SYSTEM_TABLES.items()}
    by_name: dict[str, int] = {}
    by_number: dict[int, str] = {}
    fix_row = "Restore the file from a copy, or open another path."
    for name, number in con.execute("SELECT name, number FROM _convex._tables").fetchall():
        listed = f"_convex._tables lists {name!r} with number {number}"
        if name is None or number is None:
            missing = "name" if name is None else "number"
            raise _damaged(where, f"its catalog is damaged: a row of _convex._tables has no table "
                           f"{missing} ({listed})", fix_row)
        if not _TABLE_NAME.fullmatch(name):
            raise _damaged(where, f"its catalog is damaged: {listed}, which is not a table name",
                           fix_row)
        if name.startswith("_") and name not in SYSTEM_TABLES:
            raise _damaged(where, f"its catalog lists a system table {name!r} this convex_lab "
                           "does not know (was the file written by a newer convex_lab?)",
                           "Open it with the convex_lab that wrote it, or open another path.")
        expected = SYSTEM_TABLES.get(name)
        wrong = ("not a table number (they start at 1)" if number < 1
                 else f"but that system table's number is {expected}"
                 if expected is not None and number != expected
                 else f"the number of system table {system_numbers[number]!r}"
                 if expected is None and number in system_numbers else None)
        if wrong:
            raise _damaged(where, f"its catalog is damaged: {listed}, {wrong}", fix_row)
        if name in by_name:
            raise _damaged(where, f"its catalog is damaged: _convex._tables lists table {name!r} "
                           f"twice (numbers {by_name[name]} and {number})", fix_row)
        if number in by_number:
            raise _damaged(where, f"its catalog is damaged: tables {by_number[number]!r} and "
                           f"{name!r} both have table number {number} in _convex._tables "
                           "(document IDs encode it, so it must be unique)", fix_row)
        by_name[name] = number
        by_number[number] = name
        if name not in data_tables:
            raise _damaged(where, f"its catalog is damaged: {listed}, but the table "
                           f"_convex.\"{name}\" holding its documents does not exist", fix_row)
        problem = _columns_problem(f'_convex."{name}"', data_tables[name], _DOC_COLUMNS)
        if problem:
            raise _damaged(where, f"table {name!r} is damaged: {problem}", fix_row)
    unlisted = sorted(set(data_tables) - set(by_name))
    if unlisted:
        raise _damaged(where, f"its catalog is damaged: _convex holds table {unlisted[0]!r}, "
                       "which _convex._tables does not list (so it has no table number)")
    return sorted(by_name.items(), key=lambda item: item[1])


def _read_schema(con: Any, where: str, state: LoadedState) -> int:
    """Checks every schema push's timestamp and the latest schema; returns its timestamp."""
    from convex_lab.schema import Schema  # noqa: PLC0415 (schema imports validators)

    nulls = con.execute("SELECT count(*) FROM _convex._schema WHERE ts IS NULL").fetchone()[0]
    if nulls:
        raise _damaged(where, f"its catalog is damaged: {nulls} row(s) of _convex._schema have "
                       "no timestamp (ts)")
    row = con.execute("SELECT ts, json FROM _convex._schema ORDER BY ts DESC LIMIT 1").fetchone()
    if row is None:
        return 0
    state.schema_json = row[1] or None  # "" records that the schema was removed
    if state.schema_json is not None:
        try:
            Schema.from_json(loads_export(state.schema_json))
        except Exception as e:  # noqa: BLE001 (JSON or schema errors alike: a damaged row)
            raise _damaged(where, f"its latest schema (the _convex._schema row with ts "
                           f"{row[0]}) is not a valid schema ({type(e).__name__}: {e})",
                           "Restore the file from a copy, delete that row with DuckDB to fall "
                           "back to the schema pushed before it (the app's schema is pushed "
                           "again when the backend opens), or open another path.") from None
    return int(row[0])


# A row no write of the store produces (see _write and encode_document).
_BAD_ROW = ("_id IS NULL OR _ts IS NULL OR _deleted IS NULL OR _creationTime IS NULL OR NOT "
            "isfinite(_creationTime) OR (doc IS NULL AND NOT _deleted)")


def _bad_id(number: int) -> str:
    """SQL: ``_id`` is not shaped like an ID of table ``number``.

    Every ID of a table has one length and starts with the same characters (its table number,
    see ids.py), in Convex's base32 alphabet; checking that in SQL costs nothing next to reading
    the rows, where decoding every ID in Python would cost seconds per million documents. (An
    ID with a good shape and a bad checksum still passes: only a deliberate forgery makes one.)
    """
    sample = encode_id(number, bytes(16))
    vint_bytes = 1 + (number >= 1 << 7) + (number >= 1 << 14) + (number >= 1 << 21) + (
        number >= 1 << 28)
    prefix = sample[: 8 * vint_bytes // 5]  # the characters made of table-number bits only
    return (f"(length(_id) <> {len(sample)} OR NOT starts_with(_id, '{prefix}') OR NOT "
            f"regexp_full_match(_id, '[{ALPHABET}]+'))")


def _bad_row(con: Any, where: str, name: str, bad_row: str) -> StoreOpenError:
    doc_id, creation_time, ts, deleted, no_doc = con.execute(
        f"SELECT _id, _creationTime, _ts, _deleted, doc IS NULL FROM {quote_table(name)} "
        f"WHERE {bad_row} LIMIT 1").fetchone()
    what = ("no _id" if doc_id is None else "no commit timestamp (_ts)" if ts is None
            else "no _deleted flag" if deleted is None
            else "no creation time" if creation_time is None
            else f"creation time {creation_time}, not a finite number"
            if not math.isfinite(creation_time) else "no document (doc is NULL)" if no_doc
            else "an _id that is not a document ID of this table")
    row = "a row" if doc_id is None else f"the row with _id {doc_id!r}"
    return _damaged(where, f"a document of table {name!r} is damaged: {row} has {what}",
                    f"Restore the file from a copy, or repair or delete that row with DuckDB "
                    f"(table _convex.\"{name}\") and open the file again.", reason="bad_row")



def compact(con: Any, name: str) -> None:
    """Keep only the latest version of each live document of ``name`` (one transaction)."""
    t = quote_table(name)
    con.execute("BEGIN")
    try:
        con.execute(f"CREATE TABLE _convex._compact AS SELECT _id, _creationTime, _ts, "
                    f"_deleted, doc FROM ({_latest(t)})")
        con.execute(f"DROP TABLE {t}")
        con.execute(f'ALTER TABLE _convex._compact RENAME TO "{name}"')
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise

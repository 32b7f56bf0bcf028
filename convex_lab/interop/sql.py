"""Read-only DuckDB SQL over a deployment's tables, at one snapshot (docs/api.md).

Contract
--------
``snapshot_sql(backend_or_store, query, *, params=None) -> pandas.DataFrame`` (and
``Backend.sql(query, params=None)``, which calls it):

* **One view per Convex user table**, named like the table, with ``_id`` (VARCHAR),
  ``_creationTime`` (DOUBLE) and one column per top-level field. A field is typed from the schema
  where the type is one SQL type: ``v.string()``/``v.id()``/string literals → VARCHAR,
  ``v.float64()``/``v.number()`` → DOUBLE (NaN and ±inf included), ``v.int64()`` → BIGINT,
  ``v.boolean()`` → BOOLEAN, the same wrapped in ``v.optional``/``v.nullable`` → the same type,
  NULL when missing. Anything else is a JSON column in Convex's ``export_json`` form (int64 as a
  JSON integer, bytes as ``{"$bytes": ...}``); a missing field is SQL NULL, a Convex ``null`` is
  JSON ``null``. Tables without a schema (or with ``schema_validation=False``) get one JSON column
  per top-level field found in their documents.
* **One snapshot.** Every view shows the latest version of each document as of one commit
  timestamp ``ts`` and hides deleted documents, so a join across tables never sees half a
  mutation. The store of record keeps every version (``store/persist.py``), which is what makes
  this possible without copying anything.
* **Read-only.** Only statements that read are accepted: SELECT/WITH/FROM/VALUES/TABLE/DESCRIBE/
  SHOW/SUMMARIZE/PIVOT/UNPIVOT, and EXPLAIN [ANALYZE] of those. Reading local files is allowed
  (``read_csv('x.csv')``, ``FROM 'data.parquet'``); writing files (COPY ... TO however wrapped,
  EXPORT DATABASE, ATTACH), installing or loading extensions (INSTALL, LOAD, and the automatic
  loading a ``https://`` or ``s3://`` path would trigger), changing settings (SET, RESET, PRAGMA,
  CALL, settings-changing table functions such as ``enable_logging()``) and running SQL from a
  string (``query('...')``) are refused with a :class:`SqlError` naming what and why. What passes
  runs inside a DuckDB ``READ ONLY`` transaction on a private cursor, so nothing (not even
  ``EXPLAIN ANALYZE INSERT ...``) can write to the ``_convex`` tables that are the store of
  record. The views are TEMP views of that cursor: they vanish with it. (How: see
  ``interop/sql_guard.py``; the store's DuckDB connections also have extension autoloading off and
  their configuration locked, ``store/persist.py`` ``DUCKDB_CONFIG``.)
* Errors are :class:`SqlError` with one message naming the problem and the fix (unknown table →
  the tables there are; a missing extension → why it is not loaded; DuckDB errors → DuckDB's
  message).

pandas and DuckDB load only when this runs: ``import convex_lab`` stays light.
"""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from convex_lab.errors import CLOSED_MESSAGE, BackendClosedError, SqlError
from convex_lab.interop.sql_guard import check_read_only, extension_needed

if TYPE_CHECKING:
    import pandas

    from convex_lab.backend import Backend
    from convex_lab.schema import Schema, TableDefinition
    from convex_lab.store.engine import Store
    from convex_lab.validators import Validator

# Non-finite float64 values are stored as {"$float": base64(little-endian IEEE 754)}; every such
# value is ±inf or a NaN (finite ones, -0.0 included, are plain JSON numbers).
_POS_INF = "AAAAAAAA8H8="
_NEG_INF = "AAAAAAAA8P8="


# ---------------------------------------------------------------------------------------------
# Column types from validators


def _sql_type(validator: Validator) -> str:
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
        types = {_sql_type(m) for m in validator.members if not isinstance(m, VNull)}
        if len(types) == 1:
            return types.pop()
    return "JSON"


def _schema_columns(table_def: TableDefinition) -> dict[str, str] | None:
    """Field → SQL type from a table's document validator; ``None`` for ``v.any()`` tables."""
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
            per_field.setdefault(name, set()).add(_sql_type(field_validator))
    return {name: (types.pop() if len(types) == 1 else "JSON")
            for name, types in per_field.items()}


def _column_expr(fragment: str, sql_type: str) -> str:
    """SQL turning ``fragment`` (a JSON value, or NULL when the field is missing) into a column."""
    text = f"({fragment} ->> '$')"
    if sql_type == "JSON":
        return fragment
    if sql_type == "VARCHAR":
        return text
    if sql_type == "DOUBLE":
        return (f"CASE WHEN json_type({fragment}) = 'OBJECT' THEN "
                f"(CASE json_extract_string({fragment}, '/$float') WHEN '{_POS_INF}' THEN "
                f"'inf'::DOUBLE WHEN '{_NEG_INF}' THEN '-inf'::DOUBLE ELSE 'nan'::DOUBLE END) "
                f"ELSE CAST({text} AS DOUBLE) END")
    return f"CAST({text} AS {sql_type})"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _pointer(field: str) -> str:
    # A JSON Pointer (RFC 6901) path: any printable field name works once ~ and / are escaped.
    return "/" + field.replace("~", "~0").replace("/", "~1")


def view_sql(table: str, columns: Mapping[str, str], ts: int, *, persisted: bool) -> str:
    """``CREATE TEMP VIEW`` text for ``table`` at commit ``ts`` (``columns``: field → SQL type).

    ``persisted=False``: the table has no rows in DuckDB yet (e.g. a schema table never written),
    so the view is empty but keeps its columns and types.
    """
    names = list(columns)
    if persisted:
        paths = ", ".join(_literal(_pointer(n)) for n in names)
        extract = f", json_extract(doc, [{paths}]) AS _f" if names else ""
        # Latest version per _id as of ts; the store only appends, so this is the document
        # state at that commit, whatever happened after it.
        source = (f"SELECT _id, _creationTime{extract} FROM _convex.{_ident(table)} "
                  f"WHERE _ts <= {int(ts)} QUALIFY row_number() OVER "
                  "(PARTITION BY _id ORDER BY _ts DESC) = 1 AND NOT _deleted")
    else:
        source = ("SELECT NULL::VARCHAR AS _id, NULL::DOUBLE AS _creationTime, "
                  "NULL::JSON[] AS _f WHERE false")
    cols = ["_id", '_creationTime AS "_creationTime"']
    cols += [f"{_column_expr(f'_f[{i}]', t)} AS {_ident(n)}"
             for i, (n, t) in enumerate(columns.items(), start=1)]
    return (f"CREATE TEMP VIEW {_ident(table)} AS SELECT {', '.join(cols)} FROM ({source}) "
            "ORDER BY _creationTime, _id")


def table_columns(store: Store, schema: Schema | None) -> dict[str, dict[str, str]]:
    """Every user table (in the store or the schema) → its columns (field → SQL type)."""
    names = set(store.user_tables())
    if schema is not None:
        names.update(schema.tables)
    out: dict[str, dict[str, str]] = {}
    for name in sorted(names):
        columns = None
        table_def = schema.table(name) if schema is not None else None
        if table_def is not None and schema is not None and schema.schema_validation:
            columns = _schema_columns(table_def)
        if columns is None:
            data = store.table(name)
            # list() of a dict's values is one C call, so no commit can change it mid-copy;
            # dict.fromkeys over all keys keeps first-seen order at C speed.
            docs = list(data.docs.values()) if data is not None else []
            seen = dict.fromkeys(itertools.chain.from_iterable(docs))
            columns = {f: "JSON" for f in seen if f not in ("_id", "_creationTime")}
        out[name] = columns
    return out


# ---------------------------------------------------------------------------------------------
# Running a query


def _store_of(target: Backend | Store) -> Store:
    store = getattr(target, "store", target)
    if getattr(store, "closed", False):
        raise BackendClosedError(CLOSED_MESSAGE)
    return store  # type: ignore[return-value]


_MISSING_TABLE = re.compile(r"Table with name (\S+) does not exist")


def _explain(error: Exception, tables: Sequence[str]) -> str:
    message = str(error).strip()
    extension = extension_needed(message)
    if extension is not None:
        return extension
    missing = _MISSING_TABLE.search(message)
    if missing:
        name = missing.group(1).strip("\"'!")
        hint = difflib.get_close_matches(name, tables, n=1, cutoff=0.6)
        listing = ", ".join(tables) if tables else "none yet (insert documents first)"
        did_you_mean = f" Did you mean {hint[0]!r}?" if hint else ""
        return f"Unknown table {name!r} in SQL.{did_you_mean} Tables: {listing}."
    return message


def snapshot_sql(target: Backend | Store, query: str, *,
                 params: Sequence[Any] | Mapping[str, Any] | None = None) -> pandas.DataFrame:
    """Run read-only DuckDB SQL over the tables at one snapshot; see the module docstring.

    >>> backend.sql("SELECT author, count(*) AS n FROM messages GROUP BY author ORDER BY n DESC")
    """
    import duckdb  # noqa: PLC0415 (heavy; loaded with a backend anyway)

    if not query.strip():
        raise SqlError("Give a SQL query, e.g. SELECT * FROM messages LIMIT 10.")
    store = _store_of(target)
    with store.lock:
        # ts first, flush second: a commit is queued for DuckDB before it becomes visible, so
        # after the flush DuckDB holds every commit <= ts (flushing first could miss one).
        ts = store.visible_ts
        schema = store.schema
    columns = table_columns(store, schema)
    cursor = store.sql()  # flushes; a private connection (DuckDB's are not thread-safe)
    try:
        try:
            statements = cursor.extract_statements(query)
        except duckdb.Error as e:
            raise SqlError(_explain(e, list(columns))) from None
        if not statements:
            raise SqlError("Give a SQL query, e.g. SELECT * FROM messages LIMIT 10.")
        check_read_only(statements)
        if params is not None and len(statements) > 1:
            raise SqlError("Parameters apply to one statement: run the statements one by one.")
        persisted = {row[0] for row in cursor.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = '_convex' AND "
            "database_name = current_database()").fetchall()}
        for name, cols in columns.items():
            cursor.execute(view_sql(name, cols, ts, persisted=name in persisted))
        cursor.execute("BEGIN TRANSACTION READ ONLY")
        try:
            result = None
            for statement in statements:
                result = cursor.execute(statement, params) if params is not None else (
                    cursor.execute(statement))
            assert result is not None
            return result.df()
        except duckdb.Error as e:
            raise SqlError(_explain(e, list(columns))) from None
        finally:
            cursor.execute("ROLLBACK")
    finally:
        cursor.close()


__all__ = ["SqlError", "snapshot_sql", "table_columns", "view_sql"]

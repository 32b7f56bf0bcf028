"""Read-only DuckDB SQL over a deployment's tables, at one snapshot (docs/api.md).

Contract
--------
``snapshot_sql(backend_or_store, query, *, params=None) -> pandas.DataFrame`` (and
``Backend.sql(query, params=None)``, which calls it):

* **One view per Convex user table**, named like the table, with ``_id`` (VARCHAR),
  ``_creationTime`` (TIMESTAMP: UTC, to the millisecond; ``epoch_ms(_creationTime)`` gives the
  milliseconds back) and one column per top-level field, typed from the schema where it says,
  from the data where it does not, JSON for nested or mixed values (``interop/sql_columns.py``
  has the rules). JSON columns hold Convex's ``export_json`` form (int64 as a JSON integer,
  bytes as ``{"$bytes": ...}``).
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
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from convex_lab.errors import CLOSED_MESSAGE, BackendClosedError, SqlError
from convex_lab.interop.sql_columns import plan_columns, table_columns
from convex_lab.interop.sql_guard import check_read_only, extension_needed

if TYPE_CHECKING:
    import pandas

    from convex_lab.backend import Backend
    from convex_lab.store.engine import Store

# Non-finite float64 values are stored as {"$float": base64(little-endian IEEE 754)}; every such
# value is ±inf or a NaN (finite ones, -0.0 included, are plain JSON numbers).
_POS_INF = "AAAAAAAA8H8="
_NEG_INF = "AAAAAAAA8P8="


# ---------------------------------------------------------------------------------------------
# Views


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
        source = (f"SELECT _id, _creationTime AS _ct{extract} FROM _convex.{_ident(table)} "
                  f"WHERE _ts <= {int(ts)} QUALIFY row_number() OVER "
                  "(PARTITION BY _id ORDER BY _ts DESC) = 1 AND NOT _deleted")
    else:
        source = ("SELECT NULL::VARCHAR AS _id, NULL::DOUBLE AS _ct, "
                  "NULL::JSON[] AS _f WHERE false")
    # Creation times are float ms with a fraction that only orders documents made in the same
    # millisecond: the column shows the millisecond, the view keeps the exact order.
    cols = ["_id", 'epoch_ms(floor(_ct)::BIGINT) AS "_creationTime"']
    cols += [f"{_column_expr(f'_f[{i}]', t)} AS {_ident(n)}"
             for i, (n, t) in enumerate(columns.items(), start=1)]
    return (f"CREATE TEMP VIEW {_ident(table)} AS SELECT {', '.join(cols)} FROM ({source}) "
            "ORDER BY _ct, _id")


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
        plan = plan_columns(store, schema, ts)  # documents that type columns: a superset at ts
    # Components' tables ("<component>/<table>") are private to them: no view (DESIGN §8).
    columns = {n: c for n, c in table_columns(store, schema, plan).items() if "/" not in n}
    del plan
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

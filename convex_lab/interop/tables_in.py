"""Tables in: ``backend.import_table(table, source, mode=...)`` (docs/api.md).

Contract
--------
``import_table(store, table, source, *, mode="require_empty", progress=None) -> int`` loads
``source`` into ``table`` as ONE commit and returns how many documents it wrote:

* ``source``: a pandas or polars DataFrame, a pyarrow Table or RecordBatch, a list (or iterable)
  of dicts, or a path to a ``.parquet``, ``.csv``, ``.jsonl``/``.ndjson`` or ``.json`` (an array
  of objects) file.
* DataFrames, Arrow and Parquet are validated column by column (``interop/arrow_in.py``: Arrow
  compute and numpy, no Python call per value for scalar fields). CSV goes the same way, with
  numbers read as float64 unless the schema says ``v.int64()`` — what ``npx convex import``
  does. Dicts and JSON/JSONL files are validated document by document with Convex's rules for
  Python values (a plain ``int`` is a float64 unless the field is ``v.int64()``).
* ``_id`` / ``_creationTime`` columns (or keys) are kept, as Convex's import keeps them: each
  ``_id`` must be an ID of this table (its table number) and new to it; without them documents
  get fresh IDs and creation times.
* ``mode``: ``"require_empty"`` (Convex's default: the table must be empty), ``"append"``,
  ``"replace"`` (the table's documents are replaced in the same commit).
* Any error names the row and the field, and nothing is written.
* ``progress``: ``None`` shows a bar for imports of 10,000 rows or more (tqdm's notebook bar in a
  kernel, text elsewhere), ``True`` always, ``False`` never.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from convex_lab.errors import ConvexLabError, InvalidValueError
from convex_lab.interop.arrow_in import ImportContext, documents_from_arrow
from convex_lab.interop.progress import bar
from convex_lab.store.bulk_load import BulkLoad

if TYPE_CHECKING:
    from convex_lab.store.engine import Store

CHUNK_ROWS = 262_144  # rows converted at a time: bounded temporaries, a moving progress bar
_SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".jsonl": "jsonl",
             ".ndjson": "jsonl", ".json": "json"}


def import_table(store: Store, table: str, source: Any, *, mode: str = "require_empty",
                 progress: bool | None = None) -> int:
    """See the module docstring."""
    if mode not in ("require_empty", "append", "replace"):
        raise InvalidValueError(f"mode must be 'require_empty', 'append' or 'replace'; got "
                                f"{mode!r}.")
    with no_gc():
        return _import(store, table, source, mode=mode, progress=progress)


@contextlib.contextmanager
def no_gc() -> Iterator[None]:
    """The cyclic collector off while a million new dicts are made: each would otherwise
    trigger collections that walk all of them again (documents hold no cycles)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _import(store: Store, table: str, source: Any, *, mode: str, progress: bool | None) -> int:
    data, csv = _as_arrow(source)
    if data is None:
        return _import_rows(store, table, _as_rows(source), mode=mode, progress=progress)
    attrs = getattr(source, "attrs", None)  # pandas: what to_pandas marked as JSON text
    json_columns = frozenset(attrs.get("convex_json", ())) if isinstance(attrs, dict) else (
        frozenset())
    return _import_arrow(store, table, data, mode=mode, progress=progress, csv=csv,
                         json_columns=json_columns)


def _as_arrow(source: Any) -> tuple[Any, bool]:
    """``(pyarrow.Table, read from CSV)`` for columnar sources; ``(None, False)`` for rows."""
    import pyarrow as pa  # noqa: PLC0415

    if isinstance(source, pa.Table):
        return source, False
    if isinstance(source, pa.RecordBatch):
        return pa.Table.from_batches([source]), False
    module = type(source).__module__.split(".")[0]
    if module == "pandas" and hasattr(source, "columns"):
        try:
            return pa.Table.from_pandas(source, preserve_index=False), False
        except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
            raise InvalidValueError(
                f"This DataFrame cannot be read column by column: {e}. A column holds values "
                "of several types; convert it (df[col].astype(...)) or pass "
                "df.to_dict('records') to import row by row.") from None
    if module == "polars" and hasattr(source, "to_arrow"):
        return source.to_arrow(), False  # polars types map onto Arrow's one to one
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        kind = _SUFFIXES.get(path.suffix.lower())
        if kind is None:
            raise InvalidValueError(
                f"{str(path)!r}: import_table reads .parquet, .csv, .jsonl/.ndjson and .json "
                "files (a snapshot .zip goes to import_zip). Rename the file or convert it.")
        if not path.is_file():
            raise InvalidValueError(f"No file at {str(path)!r}.")
        if kind == "parquet":
            import pyarrow.parquet as pq  # noqa: PLC0415

            return pq.read_table(path), False
        if kind == "csv":
            import pyarrow.csv as pcsv  # noqa: PLC0415

            try:
                return pcsv.read_csv(path), True
            except pa.ArrowInvalid as e:
                raise InvalidValueError(f"{str(path)!r} is not a CSV file with a header row "
                                        f"and one value per column: {e}") from None
    return None, False


def _as_rows(source: Any) -> list[Any]:
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        kind = _SUFFIXES[path.suffix.lower()]
        text = path.read_text(encoding="utf-8-sig")  # the CLI strips a BOM too
        try:
            if kind == "json":
                rows = json.loads(text)
                if not isinstance(rows, list):
                    raise InvalidValueError(f"{str(path)!r} holds one JSON value that is not an "
                                            "array: a .json import is an array of objects.")
                return rows
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as e:
            raise InvalidValueError(f"{str(path)!r} is not valid JSON: {e}.") from None
    if isinstance(source, Mapping | str | bytes) or not isinstance(source, Iterable):
        raise InvalidValueError(
            f"import_table() takes a DataFrame (pandas or polars), a pyarrow Table, a list of "
            f"dicts or a file path (.parquet, .csv, .jsonl, .json); got "
            f"{type(source).__name__}.")
    return list(source)


def _context(store: Store, table: str) -> ImportContext:
    def number_of(name: str) -> int | None:
        t = store.tables.get(name)
        return t.number if t is not None else None

    return ImportContext(table, number_of, store.table_name_for_number)


def _table_def(store: Store, table: str) -> Any:
    schema = store.schema
    if schema is None or not schema.schema_validation:
        return None
    return schema.table(table)


def _import_arrow(store: Store, table: str, data: Any, *, mode: str, progress: bool | None,
                  csv: bool, json_columns: frozenset[str]) -> int:
    import pyarrow as pa  # noqa: PLC0415

    n: int = data.num_rows
    table_def = _table_def(store, table)
    ids, cts, number = _system_columns(store, table, data)
    data_names = set(data.column_names)
    data = data.drop_columns([c for c in ("_id", "_creationTime") if c in data.column_names])
    if csv:
        data = _csv_numbers(data, table_def)
    ctx = _context(store, table)
    docs: list[dict[str, Any]] = []
    special: set[str] = set()
    max_size = 0
    nested = False
    with bar(n, f"import {table}", enabled=progress) as shown:
        for start in range(0, max(n, 1), CHUNK_ROWS):
            ctx.offset = start
            part = data.slice(start, CHUNK_ROWS)
            if isinstance(part, pa.RecordBatch):  # pragma: no cover (slice of a Table)
                part = pa.Table.from_batches([part])
            got = documents_from_arrow(part, ctx=ctx, table_def=table_def,
                                       ids=ids[start : start + CHUNK_ROWS],
                                       cts=cts[start : start + CHUNK_ROWS], number=number,
                                       json_columns=json_columns)
            docs += got.docs
            special |= got.special
            max_size = max(max_size, got.max_size)
            nested = nested or got.nested
            shown.update(part.num_rows)
        fresh = "_id" not in data_names and "_creationTime" not in data_names
        load = BulkLoad(table, docs, number=number, special=special, max_size=max_size,
                        nested=nested, fresh=fresh, ids=ids if fresh else None)
        del docs
        shown.set_postfix_str("indexing")
        store.load_documents([load], mode=mode)
    return n


def _system_columns(store: Store, table: str, data: Any) -> tuple[list[str], list[float],
                                                                    int | None]:
    """IDs and creation times: kept from ``_id`` / ``_creationTime`` columns, else fresh."""
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.compute as pc  # noqa: PLC0415

    n = data.num_rows
    names = data.column_names
    if "_id" in names:
        col = data.column("_id")
        if col.null_count or not (pa.types.is_string(col.type)
                                  or pa.types.is_large_string(col.type)):
            raise InvalidValueError(
                f"The _id column of the import into {table!r} must be text with no gaps (IDs of "
                "this table). Drop the column to give the documents fresh IDs.")
        ids = col.to_pylist()
        number = _kept_number(store, table, ids)
        cts = store.reserve_times(n)
    else:
        number, ids, cts = store.reserve_ids(table, n)
    if "_creationTime" in names:
        col = data.column("_creationTime")
        if pa.types.is_timestamp(col.type):
            col = pc.divide(pc.cast(pc.cast(col, pa.timestamp("us")), pa.int64()).cast(
                pa.float64()), 1000.0)
        if col.null_count or not pa.types.is_floating(col.type):
            raise InvalidValueError(
                f"The _creationTime column of the import into {table!r} must be float64 "
                "milliseconds since the epoch with no gaps. Drop the column to give the "
                "documents fresh creation times.")
        cts = pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False).tolist()
    return ids, cts, number


def _kept_number(store: Store, table: str, ids: list[Any]) -> int | None:
    """The table number kept IDs must carry: the table's, or (a new table) the first ID's."""
    from convex_lab.ids import decode_id  # noqa: PLC0415

    existing = store.tables.get(table)
    if existing is not None:
        return existing.number
    if not ids:
        return None
    try:
        return decode_id(ids[0])[0]
    except ConvexLabError as e:
        raise InvalidValueError(f'Row 0, field "_id" of the import into {table!r}: {e}') from None


def _csv_numbers(data: Any, table_def: Any) -> Any:
    """CSV as ``npx convex import`` reads it: numbers are float64 unless the schema says int64,
    and an empty cell of an optional field is a missing field."""
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.compute as pc  # noqa: PLC0415

    fields = (dict(table_def.document_validator.fields)
              if table_def is not None and table_def.document_validator.kind == "object" else {})
    for i, name in enumerate(data.column_names):
        fv = fields.get(name)
        typ = data.schema.field(i).type
        if pa.types.is_integer(typ) and (fv is None or fv.kind != "int64"):
            data = data.set_column(i, name, data.column(i).cast(pa.float64()))
        elif pa.types.is_string(typ) and fv is not None and fv.is_optional:
            col = data.column(i)
            empty = pc.equal(col, "")
            data = data.set_column(i, name, pc.if_else(empty, pa.scalar(None, pa.string()), col))
    return data


def _import_rows(store: Store, table: str, rows: list[Any], *, mode: str,
                 progress: bool | None) -> int:
    """Dicts (and JSON files): validated one document at a time, Python's rules for values."""
    from convex_lab.store.transaction import check_document  # noqa: PLC0415
    from convex_lab.values import convert_document  # noqa: PLC0415

    table_def = _table_def(store, table)
    n = len(rows)
    given = [isinstance(r, Mapping) and "_id" in r for r in rows]
    if any(given) and not all(given):
        raise InvalidValueError(f"Some rows of the import into {table!r} have an _id and "
                                "some do not: give every row its _id, or none.")
    if any(given):
        fresh_ids: list[str] = []
        fresh_cts = store.reserve_times(n)
        fresh_number = _kept_number(store, table, [r["_id"] for r in rows])
    else:
        fresh_number, fresh_ids, fresh_cts = store.reserve_ids(table, n)
    docs: list[dict[str, Any]] = []
    special: set[str] = set()
    max_size = 0
    nested = False
    lookup = store.table_name_for_number
    with bar(n, f"import {table}", enabled=progress) as shown:
        for i, row in enumerate(rows):
            try:
                if not isinstance(row, Mapping):
                    raise InvalidValueError(f"a row must be a dict of fields; got "
                                            f"{type(row).__name__}.")
                fields = {k: x for k, x in row.items() if k not in ("_id", "_creationTime")}
                doc = (table_def.validate_document(fields, table=table, tables=lookup)
                       if table_def is not None else convert_document(fields))
                ct = row.get("_creationTime", fresh_cts[i])
                doc_id = str(row["_id"]) if given[i] else fresh_ids[i]
                full: dict[str, Any] = {"_id": doc_id,
                        "_creationTime": float(ct) if type(ct) is int else ct}
                full.update(doc)
                size, depth, is_special = check_document(full)
            except ConvexLabError as e:
                raise type(e)(f"Row {i} of the import into {table!r}: {e}", code=e.code) from None
            if is_special:
                special.add(doc_id)
            nested = nested or depth > 1
            max_size = max(max_size, size)
            docs.append(full)
            if i % 10_000 == 9_999:
                shown.update(10_000)
        fresh = not any(given) and not any(
            isinstance(r, Mapping) and "_creationTime" in r for r in rows)
        store.load_documents([BulkLoad(table, docs, number=fresh_number, special=special,
                                       max_size=max_size, nested=nested, fresh=fresh)],
                             mode=mode)
    return n

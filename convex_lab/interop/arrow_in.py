"""Arrow columns → Convex documents, validated against the table's schema column by column.

Contract: :func:`documents_from_arrow` turns an Arrow table (one column per top-level field; no
``_id``/``_creationTime`` columns — the caller takes those out) plus one ID and creation time per
row into a :class:`~convex_lab.store.bulk_load.BulkLoad` of canonical documents, exactly the ones
``ctx.db.insert`` would store for the same values, or raises one ``ConvexLabError`` naming the
row, the field, the problem and the fix. Nothing is half-converted: it either returns every
document or raises.

How values map (docs/api.md, "Tables in and out"):

* A column is checked as a whole against its field's validator with Arrow compute and numpy
  (type, nulls, ranges, sizes, finiteness, IDs): no Python call per value for ``v.string()``,
  ``v.float64()``, ``v.int64()``, ``v.boolean()``, ``v.bytes()``, ``v.id()`` and ``v.null()``
  fields. Other validators (arrays, objects, unions, literals, ``v.any()``) validate their
  column value by value — only that column.
* A null (pandas' NaN/None/NA) is a missing field when the field is optional (or there is no
  schema), ``null`` when the validator admits null, and an error otherwise.
* Integer columns are int64 in a schemaless table and for ``v.int64()``; they become float64 for
  ``v.float64()`` (exactly, up to 2^53). Float columns holding only whole numbers fill a
  ``v.int64()`` field (pandas turns an int column with a gap into floats). Timestamps become
  float64 milliseconds since the epoch. A text column for an array or object field is read as
  Convex export JSON (what :func:`~convex_lab.interop.tables_out.to_arrow` writes for those).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from convex_lab.errors import ConvexLabError, SchemaValidationError
from convex_lab.store.bulk_load import BulkLoad, first_bad_id, id_problem
from convex_lab.values import (
    MAX_DOCUMENT_SIZE,
    MAX_DOCUMENT_USER_FIELDS,
    Int64,
    check_field_name,
    convert,
    loads_export,
    nesting,
    value_size,
)

_SYSTEM_SIZE = 2 + (3 + 1 + 2) + (13 + 1 + 9)  # braces, "_id" (+ its text), "_creationTime"
_SCALARS = ("string", "id", "float64", "int64", "boolean", "bytes", "null")
_MAX_SAFE = 2**53


@dataclass
class _Column:
    name: str
    values: list[Any]
    missing: Any  # numpy bool array (True: the field is absent in that row) or None
    sizes: Any  # numpy int64 array: the field's share of each document's Convex size
    special: Any  # numpy bool array (bytes or non-finite floats) or None
    nested: bool = False


class ImportContext:
    """What column checks need from the store: table names ↔ numbers (``v.id`` fields)."""

    def __init__(self, table: str, number_of: Any, name_of: Any) -> None:
        self.table = table
        self.offset = 0  # row number of this chunk's first row in the whole import
        self.number_of = number_of  # table name -> number or None
        self.name_of = name_of  # number -> table name or None

    def error(self, row: int, field: str, problem: str) -> SchemaValidationError:
        return SchemaValidationError(
            f'Row {row + self.offset}, field "{field}" of the import into table '
            f'"{self.table}": {problem}')


def documents_from_arrow(data: Any, *, ctx: ImportContext, table_def: Any, ids: list[str],
                         cts: list[float], number: int | None,
                         json_columns: frozenset[str] = frozenset()) -> BulkLoad:
    """See the module docstring. ``table_def`` is the schema's table (``None``: no schema);
    ``json_columns`` (and fields marked ``{"convex": "json"}``) hold Convex export JSON text."""
    import numpy as np  # noqa: PLC0415

    n = data.num_rows
    names = list(data.column_names)
    if len(set(names)) != len(names):
        dup = next(x for x in names if names.count(x) > 1)
        raise SchemaValidationError(f"Column {dup!r} appears twice in the import into "
                                    f"{ctx.table!r}: rename or drop one.")
    for name in names:
        try:
            check_field_name(name, top_level=True)
        except ConvexLabError as e:
            raise type(e)(f"Column {name!r} of the import into {ctx.table!r} cannot be a field: "
                          f"{e} Rename the column.", code=e.code) from None
    if len(names) > MAX_DOCUMENT_USER_FIELDS:
        raise SchemaValidationError(f"{len(names)} columns: a document holds at most "
                                    f"{MAX_DOCUMENT_USER_FIELDS} fields.")
    fields = _schema_fields(table_def)
    if fields is None and table_def is not None and not _is_any(table_def):
        return _row_wise(data, ctx=ctx, table_def=table_def, ids=ids, cts=cts, number=number)
    if fields is not None:
        extra = [x for x in names if x not in fields]
        if extra:
            raise SchemaValidationError(
                f"Column(s) {extra} of the import are not fields of table {ctx.table!r} in the "
                f"schema (its fields: {sorted(fields)}). Drop them (df.drop(columns=[...])) or "
                "add them to the schema.")
        absent = [f for f, fv in fields.items() if f not in names and not fv.is_optional]
        if absent and n:
            raise SchemaValidationError(
                f"The schema of table {ctx.table!r} requires field(s) {absent}, and the import "
                "has no such column. Add the column, or make the field v.optional(...).")
    json_columns = json_columns | {f.name for f in data.schema
                                   if f.metadata and f.metadata.get(b"convex") == b"json"}
    columns = [_column(name, data.column(name), fields[name] if fields is not None else None,
                       ctx, name in json_columns) for name in names]
    sizes = np.full(n, _SYSTEM_SIZE, dtype=np.int64) + np.fromiter(map(len, ids), np.int64, n)
    special = np.zeros(n, dtype=bool)
    for c in columns:
        sizes += c.sizes
        if c.special is not None:
            special |= c.special
    if n and int(sizes.max()) > MAX_DOCUMENT_SIZE:
        row = int(np.argmax(sizes > MAX_DOCUMENT_SIZE))
        raise SchemaValidationError(
            f"Row {row + ctx.offset} of the import into {ctx.table!r} is "
            f"{int(sizes[row]) / 2**20:.2f} MiB: a "
            "document is at most 1 MiB. Store large data in file storage or split the row.")
    docs = _assemble([c.name for c in columns])(ids, cts, *[c.values for c in columns])
    for c in columns:
        if c.missing is not None:
            name = c.name
            for i in np.flatnonzero(c.missing).tolist():
                del docs[i][name]
    return BulkLoad(ctx.table, docs, number=number,
                    special={ids[i] for i in np.flatnonzero(special).tolist()},
                    max_size=int(sizes.max()) if n else 0,
                    nested=any(c.nested for c in columns))


def _schema_fields(table_def: Any) -> dict[str, Any] | None:
    """The document validator's fields when it is one object (the vectorised case)."""
    if table_def is None:
        return None
    validator = table_def.document_validator
    if validator.kind != "object":
        return None
    return dict(validator.fields)


def _is_any(table_def: Any) -> bool:
    return bool(table_def.document_validator.kind == "any")


_assemblers: dict[tuple[str, ...], Any] = {}


def _assemble(names: list[str]) -> Any:
    """``f(ids, cts, *columns)`` → one dict per row, ``_id`` and ``_creationTime`` first (the
    store's invariant), from a generated comprehension: about 0.3 µs per five-field row.
    Names were checked as Convex field names (identifier characters only), so ``repr`` is safe.
    """
    key = tuple(names)
    f = _assemblers.get(key)
    if f is None:
        args = [f"c{i}" for i in range(len(names))]
        row = [f"x{i}" for i in range(len(names))]
        items = "".join(f", {name!r}: {x}" for name, x in zip(names, row, strict=True))
        zipped = ", ".join(["ids", "cts", *args])
        targets = ", ".join(["i", "t", *row])
        src = (f"lambda ids, cts{''.join(', ' + a for a in args)}: "
               f"[{{'_id': i, '_creationTime': t{items}}} for {targets} in zip({zipped})]")
        f = _assemblers[key] = eval(src)  # generated from checked field names only
    return f


def _admits_null(fv: Any) -> bool:
    if fv.kind in ("null", "any"):
        return True
    return fv.kind == "union" and any(_admits_null(m) for m in fv.members)


def _column(name: str, col: Any, fv: Any, ctx: ImportContext, json_text: bool) -> _Column:
    import numpy as np  # noqa: PLC0415
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.compute as pc  # noqa: PLC0415

    n = len(col)
    if pa.types.is_dictionary(col.type):  # pandas categoricals
        col = col.cast(col.type.value_type)
    missing = None
    if col.null_count:
        isnull = col.is_null().to_numpy(zero_copy_only=False)
        if fv is None or fv.is_optional:
            missing = isnull
        elif not _admits_null(fv):
            row = int(np.argmax(isnull))
            raise ctx.error(row, name, f"the value is missing (null/NaN), and the schema's "
                            f"{fv.display()} is required. Fill the gap, drop the row, or make "
                            "the field v.optional(...).")
    kind = fv.kind if fv is not None else _inferred_kind(col.type)
    if json_text and pa.types.is_string(col.type) and (fv is None or fv.kind != "string"):
        kind = "json"
    present = ~missing if missing is not None else None
    overhead = len(name) + 1
    if kind in ("string", "id"):
        if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)
                or pa.types.is_string_view(col.type)):
            raise _type_error(ctx, name, col, fv, "text")
        if kind == "id":
            _check_ids(name, col, fv, missing, ctx)
        sizes = pc.binary_length(col).to_numpy(zero_copy_only=False)
        sizes = np.nan_to_num(sizes, nan=0).astype(np.int64) + (2 + overhead)
        return _Column(name, col.to_pylist(), missing, _masked(sizes, present), None)
    if kind == "float64":
        arr = _floats(name, col, fv, ctx)
        values = arr.tolist()
        bad = ~np.isfinite(arr)
        special = bad if present is None else bad & present
        sizes = np.full(n, 9 + overhead, dtype=np.int64)
        return _Column(name, values, missing, _masked(sizes, present),
                       special if special.any() else None)
    if kind == "int64":
        ints = _ints(name, col, fv, ctx, present)
        sizes = np.full(n, 9 + overhead, dtype=np.int64)
        return _Column(name, list(map(Int64, ints)), missing, _masked(sizes, present), None)
    if kind == "boolean":
        if not pa.types.is_boolean(col.type):
            raise _type_error(ctx, name, col, fv, "true/false")
        sizes = np.full(n, 1 + overhead, dtype=np.int64)
        return _Column(name, col.to_pylist(), missing, _masked(sizes, present), None)
    if kind == "bytes":
        if not (pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type)
                or pa.types.is_fixed_size_binary(col.type)):
            raise _type_error(ctx, name, col, fv, "bytes")
        sizes = pc.binary_length(col).to_numpy(zero_copy_only=False)
        sizes = np.nan_to_num(sizes, nan=0).astype(np.int64) + (2 + overhead)
        special = present if present is not None else np.ones(n, dtype=bool)
        return _Column(name, col.to_pylist(), missing, _masked(sizes, present), special)
    if kind == "null":
        if col.null_count != n:
            row = int(np.argmax(~col.is_null().to_numpy(zero_copy_only=False)))
            raise ctx.error(row, name, f"{col[row].as_py()!r} is not null, as the schema's "
                            "v.null() requires.")
        return _Column(name, [None] * n, None, np.full(n, 1 + overhead, dtype=np.int64), None)
    if kind == "missing":  # a schemaless column with nothing in it
        return _Column(name, [None] * n, np.ones(n, dtype=bool), np.zeros(n, np.int64), None)
    return _general(name, col, fv, ctx, missing, json_text=json_text)


def _masked(sizes: Any, present: Any) -> Any:
    return sizes if present is None else sizes * present


def _inferred_kind(typ: Any) -> str:
    import pyarrow as pa  # noqa: PLC0415

    if pa.types.is_null(typ):
        return "missing"
    if pa.types.is_string(typ) or pa.types.is_large_string(typ) or pa.types.is_string_view(typ):
        return "string"
    if pa.types.is_floating(typ) or pa.types.is_timestamp(typ) or pa.types.is_date(typ):
        return "float64"
    if pa.types.is_integer(typ):
        return "int64"
    if pa.types.is_boolean(typ):
        return "boolean"
    if pa.types.is_binary(typ) or pa.types.is_large_binary(typ):
        return "bytes"
    return "general"


def _type_error(ctx: ImportContext, name: str, col: Any, fv: Any, wanted: str) -> ConvexLabError:
    valid = col.drop_null() if col.null_count else col
    row = 0
    if col.null_count and len(valid):
        row = int(col.is_valid().to_numpy(zero_copy_only=False).argmax())
    sample = repr(valid[0].as_py()) if len(valid) else "null"
    want = fv.display() if fv is not None else wanted
    return ctx.error(row, name, f"the column holds {col.type} values ({sample}), and the "
                     f"schema's {want} needs {wanted}. Convert the column (e.g. df[{name!r}]"
                     ".astype(...)) or change the schema.")


def _floats(name: str, col: Any, fv: Any, ctx: ImportContext) -> Any:
    import numpy as np  # noqa: PLC0415
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.compute as pc  # noqa: PLC0415

    typ = col.type
    if pa.types.is_timestamp(typ) or pa.types.is_date(typ):
        ms = pc.cast(pc.cast(col, pa.timestamp("us")), pa.int64())
        return ms.to_numpy(zero_copy_only=False).astype(np.float64) / 1000.0
    if pa.types.is_integer(typ):
        ints = col.to_numpy(zero_copy_only=False)
        big = np.abs(np.nan_to_num(ints.astype(np.float64))) > _MAX_SAFE
        if big.any():
            row = int(np.argmax(big))
            raise ctx.error(row, name, f"{int(ints[row])} does not fit a float64 exactly (beyond "
                            "±2^53). Use v.int64() for the field.")
        return ints.astype(np.float64)
    if not pa.types.is_floating(typ):
        raise _type_error(ctx, name, col, fv, "numbers")
    return pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False)


def _ints(name: str, col: Any, fv: Any, ctx: ImportContext, present: Any) -> list[int]:
    import numpy as np  # noqa: PLC0415
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.compute as pc  # noqa: PLC0415

    typ = col.type
    if pa.types.is_integer(typ):
        if pa.types.is_uint64(typ) and col.null_count < len(col):
            top = pc.max(col).as_py()
            if top is not None and top > 2**63 - 1:
                row = int(np.argmax(col.to_numpy(zero_copy_only=False) > 2**63 - 1))
                raise ctx.error(row, name, f"{top} is beyond int64's range (2^63−1).")
        filled = pc.fill_null(pc.cast(col, pa.int64()), 0)
        return filled.to_numpy(zero_copy_only=False).tolist()  # type: ignore[no-any-return]
    if pa.types.is_floating(typ):
        arr = pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False)
        ok = np.isfinite(arr) & (np.floor(arr) == arr) & (np.abs(arr) < 2**63)
        if present is not None:
            ok |= ~present
        if not ok.all():
            row = int(np.argmax(~ok))
            want = fv.display() if fv is not None else "v.int64()"
            raise ctx.error(row, name, f"{float(arr[row])!r} is not a whole number, and the "
                            f"schema's {want} needs one.")
        return np.nan_to_num(arr).astype(np.int64).tolist()  # type: ignore[no-any-return]
    raise _type_error(ctx, name, col, fv, "whole numbers")


def _check_ids(name: str, col: Any, fv: Any, missing: Any, ctx: ImportContext) -> None:
    import numpy as np  # noqa: PLC0415

    target = fv.table_name
    number = ctx.number_of(target)
    values = col.to_pylist()
    rows = (np.flatnonzero(~missing).tolist() if missing is not None
            else range(len(values)))
    present = [values[i] for i in rows] if missing is not None else values
    if not present:
        return
    if number is None:
        raise ctx.error(rows[0], name, f"the schema's {fv.display()} refers to table "
                        f"{target!r}, which holds no documents here yet. Import that table "
                        "first.")
    bad = first_bad_id(present, number)
    if bad >= 0:
        row = rows[bad]
        raise ctx.error(row, name, id_problem(present[bad], number, target, ctx.name_of) + ".")


def _general(name: str, col: Any, fv: Any, ctx: ImportContext, missing: Any, *,
             json_text: bool) -> _Column:
    """Arrays, objects, unions, literals, ``v.any()``: validated value by value."""
    import numpy as np  # noqa: PLC0415
    import pyarrow as pa  # noqa: PLC0415

    n = len(col)
    values = col.to_pylist()
    text = pa.types.is_string(col.type) or pa.types.is_large_string(col.type)
    decode = text and (json_text or (fv is not None
                                     and fv.kind in ("array", "object", "record")))
    sizes = np.zeros(n, dtype=np.int64)
    special = np.zeros(n, dtype=bool)
    nested = False
    skip = missing.tolist() if missing is not None else None
    overhead = len(name) + 1
    for i, raw in enumerate(values):
        if skip is not None and skip[i]:
            continue
        try:
            given = loads_export(raw) if decode and isinstance(raw, str) else raw
            value = (fv.validate(given, path=(name,)) if fv is not None
                     else convert(json_ints(given)))
        except ConvexLabError as e:
            raise ctx.error(i, name, str(e)) from None
        except ValueError as e:  # bad JSON text
            raise ctx.error(i, name, f"the text is not Convex JSON ({e}).") from None
        if type(value) is list or type(value) is dict:
            nested = True
            if nesting(value) > 15:
                raise ctx.error(i, name, "the value is nested more than 16 levels deep.")
        values[i] = value
        sizes[i] = overhead + value_size(value)
        special[i] = is_special(value)
    return _Column(name, values, missing, sizes, special if special.any() else None, nested)


def json_ints(value: Any, as_float: bool = False) -> Any:
    """JSON integers inside ``value`` as int64 (Arrow's integers; snapshot ZIPs with a
    ``"uniform"`` generated schema) or, ``as_float``, float64 (ZIPs without one): ``convert``
    alone would read a plain ``int`` as float64, the rule for numbers typed in Python code."""
    t = type(value)
    if t is int:
        return float(value) if as_float else Int64(value)
    if t is list:
        return [json_ints(v, as_float) for v in value]
    if t is dict:
        return {k: json_ints(v, as_float) for k, v in value.items()}
    return value


def is_special(value: Any) -> bool:
    t = type(value)
    if t is bytes:
        return True
    if t is float:
        return bool(value - value != 0.0)
    if t is list:
        return any(map(is_special, value))
    if t is dict:
        return any(map(is_special, value.values()))
    return False


def _row_wise(data: Any, *, ctx: ImportContext, table_def: Any, ids: list[str],
              cts: list[float], number: int | None) -> BulkLoad:
    """A document validator that is not one object (a union of shapes, a model): each row is
    validated as a whole, as ``ctx.db.insert`` would. Nulls are missing fields."""
    from convex_lab.store.transaction import check_document  # noqa: PLC0415

    docs: list[dict[str, Any]] = []
    special: set[str] = set()
    max_size = 0
    nested = False
    for i, row in enumerate(data.to_pylist()):
        fields = {k: x for k, x in row.items() if x is not None}
        try:
            doc = table_def.validate_document(fields, table=ctx.table, tables=ctx.name_of)
            full = {"_id": ids[i], "_creationTime": cts[i]}
            full.update(doc)
            size, depth, is_special = check_document(full)
        except ConvexLabError as e:
            raise type(e)(f"Row {i} of the import into {ctx.table!r}: {e}", code=e.code) from None
        nested = nested or depth > 1
        if is_special:
            special.add(ids[i])
        max_size = max(max_size, size)
        docs.append(full)
    return BulkLoad(ctx.table, docs, number=number, special=special, max_size=max_size,
                    nested=nested)

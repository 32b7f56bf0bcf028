"""Tables out: ``backend.to_arrow(table)``, ``backend.to_pandas(table)``, ``live.to_pandas()``
and Parquet export (docs/api.md).

Contract
--------
* :func:`snapshot_documents` reads tables at ONE snapshot (the latest visible commit): what a
  query would see; the documents are the store's own immutable dicts, not copies.
* :func:`documents_to_arrow` makes one Arrow column per top-level field, after ``_id`` (string)
  and ``_creationTime`` (float64 ms): typed from the schema where it types the field
  (``v.string()``/``v.id()`` → string, ``v.float64()`` → float64, ``v.int64()`` → int64,
  ``v.boolean()`` → bool, ``v.bytes()`` → binary), from the data otherwise (one scalar type in
  every document that has the field → that type). Anything else — arrays, objects, mixed types,
  explicit nulls — is a string column of Convex export JSON, marked with the field metadata
  ``{"convex": "json"}`` (and ``DataFrame.attrs["convex_json"]`` in pandas), which
  ``import_table`` reads back. A missing field is a null. So ``import_table(to_arrow(t))``
  gives back the same documents: int64, bytes, NaN/±inf, IDs and creation times included.
* :func:`to_pandas` uses pandas' Arrow-backed dtypes (``int64[pyarrow]``, ``double[pyarrow]``,
  ``binary[pyarrow]``, ``string[pyarrow]``, ``bool[pyarrow]``): a missing field is ``<NA>``
  and a stored NaN stays NaN.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from convex_lab.errors import InvalidValueError
from convex_lab.values import Int64, dumps_export

if TYPE_CHECKING:
    from convex_lab.store.engine import Store

JSON_META = {b"convex": b"json"}
_ARROW_OF_KIND = {"string": "string", "id": "string", "float64": "float64", "int64": "int64",
                  "boolean": "bool_", "bytes": "binary"}
_ARROW_OF_TYPE = {str: "string", float: "float64", Int64: "int64", bool: "bool_",
                  bytes: "binary"}


def snapshot_documents(store: Store, names: Iterable[str]) -> tuple[int, dict[str, list[Any]]]:
    """``(ts, {table: documents})`` at the latest visible commit ``ts``, every table at once."""
    with store.lock:
        ts = store.visible_ts
        out = {}
        for name in names:
            t = store.tables.get(name)
            out[name] = list(t.docs.values()) if t is not None else []
        later = store.commits_after(ts)  # applied but not yet visible (a file's group commit)
        if later:
            for name, docs in out.items():
                undo: dict[str, Any] = {}
                for commit in reversed(later):
                    for doc_id, (old, _new) in commit.writes.get(name, {}).items():
                        undo[doc_id] = old
                if undo:
                    kept = {d["_id"]: d for d in docs if d["_id"] not in undo}
                    kept.update({i: d for i, d in undo.items() if d is not None})
                    out[name] = sorted(kept.values(), key=lambda d: (d["_creationTime"],
                                                                     d["_id"]))
    return ts, out


def table_validators(store: Store, table: str) -> dict[str, Any]:
    """Field → validator when the schema types ``table`` as one object; else ``{}``."""
    schema = store.schema
    if schema is None or not schema.schema_validation:
        return {}
    table_def = schema.table(table)
    validator: Any = table_def.document_validator if table_def is not None else None
    if validator is None or validator.kind != "object":
        return {}
    return dict(validator.fields)


def documents_to_arrow(docs: list[Any], validators: dict[str, Any] | None = None,
                       *, system: bool = True) -> Any:
    """Documents (dicts) → a pyarrow Table; see the module docstring."""
    import pyarrow as pa  # noqa: PLC0415

    validators = validators or {}
    names: dict[str, None] = dict.fromkeys(("_id", "_creationTime") if system else ())
    names.update(dict.fromkeys(validators))
    for d in docs:
        if type(d) is not dict:
            raise InvalidValueError(f"Rows must be dicts to make a table; got "
                                    f"{type(d).__name__}.")
        names.update(dict.fromkeys(d))
    fields: list[Any] = []
    arrays: list[Any] = []
    for name in names:
        if not system and name in ("_id", "_creationTime"):
            continue
        values = [d.get(name, _MISSING) for d in docs]
        arrow_type = _column_type(name, values, validators.get(name))
        present = [None if x is _MISSING else x for x in values]
        if arrow_type == "json":
            arrays.append(pa.array([None if x is None and values[i] is _MISSING
                                    else dumps_export(x) for i, x in enumerate(present)],
                                   pa.string()))
            fields.append(pa.field(name, pa.string(), metadata=JSON_META))
        else:
            typ = getattr(pa, arrow_type)()
            arrays.append(pa.array(present, typ))
            fields.append(pa.field(name, typ))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


class _Missing:
    __slots__ = ()


_MISSING = _Missing()


def _column_type(name: str, values: list[Any], validator: Any) -> str:
    """The Arrow type name for a field's values, or ``"json"``."""
    if name == "_id":
        return "string"
    if name == "_creationTime":
        return "float64"
    kinds = set(map(type, values))
    kinds.discard(_Missing)
    if validator is not None and validator.kind in _ARROW_OF_KIND and type(None) not in kinds:
        return _ARROW_OF_KIND[validator.kind]
    if len(kinds) == 1:
        (kind,) = kinds
        got = _ARROW_OF_TYPE.get(kind)
        if got is not None:
            return got
    if not kinds:
        return "string"  # never present: an all-null column
    return "json"


def to_arrow(store: Store, table: str) -> Any:
    """``table``'s documents at the latest snapshot as a pyarrow Table. A table that neither
    holds documents nor is in the schema is an error (a typo would be an empty frame)."""
    schema = store.schema
    if not isinstance(table, str):
        raise InvalidValueError(f"A table name is a string, such as 'messages'; got "
                                f"{type(table).__name__} {table!r:.60}.")
    if table not in store.tables and (schema is None or schema.table(table) is None):
        import difflib  # noqa: PLC0415

        known = sorted({*store.user_tables(), *(schema.tables if schema is not None else ())})
        close = difflib.get_close_matches(table, known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise InvalidValueError(f"There is no table {table!r}.{hint} Tables: "
                                f"{', '.join(known) or '(none yet)'}.")
    _, docs = snapshot_documents(store, [table])
    return documents_to_arrow(docs[table], table_validators(store, table))


def arrow_to_pandas(data: Any) -> Any:
    """A pyarrow Table → pandas with Arrow-backed dtypes; JSON columns listed in ``attrs``."""
    import pandas as pd  # noqa: PLC0415

    frame = data.to_pandas(types_mapper=pd.ArrowDtype)
    frame.attrs["convex_json"] = [f.name for f in data.schema
                                  if f.metadata and f.metadata.get(b"convex") == b"json"]
    return frame


def to_pandas(store: Store, table: str) -> Any:
    return arrow_to_pandas(to_arrow(store, table))


def value_to_pandas(value: Any) -> Any:
    """A query result as a DataFrame: a list of dicts (documents, or any rows) is one row each;
    a page (``{"page": [...], ...}``) is its page; one dict is one row."""
    if isinstance(value, dict) and isinstance(value.get("page"), list) and "isDone" in value:
        value = value["page"]
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise InvalidValueError(
            f"live.to_pandas() needs a query result that is a list of dicts (or one dict, or a "
            f"page); this one is {type(value).__name__}. Use live.value instead.")
    system = bool(value) and all(isinstance(d, dict) and "_id" in d and "_creationTime" in d
                                 for d in value)
    return arrow_to_pandas(documents_to_arrow(value, system=system))


def write_parquet(store: Store, table: str, path: Any) -> int:
    """``table`` at the latest snapshot to a Parquet file; returns the row count."""
    import pyarrow.parquet as pq  # noqa: PLC0415

    data = to_arrow(store, table)
    pq.write_table(data, path)
    return int(data.num_rows)

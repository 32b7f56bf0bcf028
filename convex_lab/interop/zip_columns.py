"""The columnar path of a snapshot import: a table whose schema types every field as a string,
ID, float64, int64 or boolean is read with Arrow's JSON reader (C++, an explicit schema from the
validators) and validated by ``interop/arrow_in.py`` column by column.

Contract: :func:`arrow_load` returns the table's ``BulkLoad`` — the same documents the row path
(``interop/row_build.py``) would build — or ``None`` when this path does not apply and the caller
must take the row path: a field of another kind, a line Arrow cannot read under that schema (an
extra field, a ``{"$float": ...}`` value, a number out of range), a line without ``_id`` or
``_creationTime``, or an explicit ``null`` (Arrow cannot tell it from a missing field; the row
path gives Convex's error or value). Nothing is loaded here; the caller commits.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

from convex_lab.interop.arrow_in import ImportContext, documents_from_arrow
from convex_lab.interop.tables_out import table_validators
from convex_lab.store.bulk_load import BulkLoad

if TYPE_CHECKING:
    import zipfile

    from convex_lab.store.engine import Store

CHUNK_ROWS = 262_144
BLOCK = 16 << 20
_KINDS = ("string", "id", "float64", "int64", "boolean")


class _Watched(io.RawIOBase):
    """A ZIP entry read through, watching for text that only the row path decodes right."""

    def __init__(self, raw: IO[bytes], progress: Callable[[int], Any]) -> None:
        self.raw = raw
        self.progress = progress
        self.suspicious = False
        self._tail = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        if n:
            seen = self._tail + data
            if b":null" in seen or b'"$' in seen:  # explicit nulls; $-encoded values
                self.suspicious = True
            self._tail = data[-8:]
            self.progress(n)
        return n


def arrow_load(zf: zipfile.ZipFile, entry: str, *, store: Store, table: str,
               number: int | None, name_of: Callable[[int], str | None],
               number_of: Callable[[str], int | None],
               progress: Callable[[int], Any]) -> BulkLoad | None:
    """See the module docstring."""
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.json as pajson  # noqa: PLC0415

    validators = table_validators(store, table)
    if not validators or any(fv.kind not in _KINDS for fv in validators.values()):
        return None
    types = {"string": pa.string(), "id": pa.string(), "float64": pa.float64(),
             "int64": pa.int64(), "boolean": pa.bool_()}
    schema = pa.schema([("_id", pa.string()), ("_creationTime", pa.float64())]
                       + [(name, types[fv.kind]) for name, fv in validators.items()])
    with zf.open(entry) as raw:
        watched = _Watched(raw, progress)
        try:
            reader = pajson.open_json(
                io.BufferedReader(watched, BLOCK),
                read_options=pajson.ReadOptions(block_size=BLOCK),
                parse_options=pajson.ParseOptions(explicit_schema=schema,
                                                  unexpected_field_behavior="error"))
            data = pa.Table.from_batches(list(reader), schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError, StopIteration):
            return None
    if watched.suspicious or data.column("_id").null_count or data.column(
            "_creationTime").null_count:
        return None
    ids: list[str] = data.column("_id").to_pylist()
    cts: list[float] = data.column("_creationTime").to_numpy().tolist()
    if number is None and ids:
        from convex_lab.ids import table_number_of  # noqa: PLC0415

        number = table_number_of(ids[0])
    data = data.drop_columns(["_id", "_creationTime"])
    ctx = ImportContext(table, number_of, name_of)
    table_def = store.schema.table(table) if store.schema is not None else None
    docs: list[dict[str, Any]] = []
    special: set[str] = set()
    max_size = 0
    for start in range(0, data.num_rows, CHUNK_ROWS):
        ctx.offset = start
        got = documents_from_arrow(data.slice(start, CHUNK_ROWS), ctx=ctx, table_def=table_def,
                                   ids=ids[start : start + CHUNK_ROWS],
                                   cts=cts[start : start + CHUNK_ROWS], number=number)
        docs += got.docs
        special |= got.special
        max_size = max(max_size, got.max_size)
    return BulkLoad(table, docs, number=number, special=special, max_size=max_size)

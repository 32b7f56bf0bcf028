"""Documents decoded from JSON lines (snapshot imports) → a validated ``BulkLoad``, in blocks.

Contract: :class:`RowBuilder` takes decoded rows (dicts that may hold ``_id`` and
``_creationTime``) block by block and builds canonical documents exactly as ``ctx.db.insert``
would validate them against the deployed schema (a table without one takes any document),
keeping the given ``_id`` (else a fresh one) and a float ``_creationTime`` (else a fresh one).
Ordinary documents go through the store's one-pass builders (``store/fastpath.py``, no call per
document); the rest through the schema's validator. Errors name the line (0-based) and table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from convex_lab.errors import ConvexLabError, InvalidValueError
from convex_lab.ids import decode_id, generate_ids
from convex_lab.store.bulk_load import BulkLoad
from convex_lab.store.transaction import check_document
from convex_lab.values import convert_document

if TYPE_CHECKING:
    from convex_lab.store.engine import Store

_STORAGE_FIELDS = ("sha256", "size", "contentType")


class RowBuilder:
    """Builds one table's documents (see the module docstring)."""

    def __init__(self, store: Store, table: str, number: int | None, name_of: Any) -> None:
        self.store = store
        self.table = table
        self.storage = table == "_storage"
        schema = store.schema
        table_def = (schema.table(table) if schema is not None and schema.schema_validation
                     and not self.storage else None)
        self.validate = table_def.validate_document if table_def is not None else None
        self.build = None if self.storage else store.builder(table)
        existing = store.tables.get(table)
        self.number = number if number is not None else (
            existing.number if existing is not None else None)
        self.name_of = name_of
        self.docs: list[dict[str, Any]] = []
        self.special: set[str] = set()
        self.max_size = 0
        self.nested = False
        self.position = 0

    def add(self, rows: list[Any]) -> None:
        """Validate and build one block of decoded rows."""
        fields_list: list[Any] = []
        ids: list[Any] = []
        cts: list[Any] = []
        for i, row in enumerate(rows):
            if type(row) is not dict:
                raise InvalidValueError(f"Line {self.position + i} of {self.table}/documents.jsonl "
                                        f"is not a JSON object.")
            ids.append(row.pop("_id", None))
            cts.append(row.pop("_creationTime", None))
            fields_list.append(_storage_fields(row) if self.storage else row)
        self._fill_system(ids, cts)
        out = self.docs
        build = self.build
        i = 0
        while i < len(fields_list):
            if build is not None:
                stop, size = build.many(fields_list, ids, cts, out, i)  # type: ignore[attr-defined]
                self.max_size = max(self.max_size, size)
                i = stop
                if i == len(fields_list):
                    break
            fields = fields_list[i]
            try:
                doc = (self.validate(fields, table=self.table, tables=self.name_of)
                       if self.validate is not None else convert_document(fields))
                full = {"_id": ids[i], "_creationTime": cts[i]}
                full.update(doc)
                size, depth, is_special = check_document(full)
            except ConvexLabError as e:
                raise type(e)(f"Line {self.position + i} of {self.table}/documents.jsonl "
                              f"(_id {ids[i]!r}): {e}", code=e.code) from None
            self.nested = self.nested or depth > 1
            if is_special:
                self.special.add(ids[i])
            self.max_size = max(self.max_size, size)
            out.append(full)
            i += 1
        self.position += len(rows)

    def _fill_system(self, ids: list[Any], cts: list[Any]) -> None:
        """Fresh IDs for rows without one, fresh times for rows without a float time."""
        for i, doc_id in enumerate(ids):
            if doc_id is not None and type(doc_id) is not str:
                raise InvalidValueError(f"Line {self.position + i} of {self.table}/documents."
                                        f"jsonl: _id must be a string; got {doc_id!r}.")
        if self.number is None:
            first = next((x for x in ids if x is not None), None)
            if first is not None:
                try:
                    self.number = decode_id(first)[0]
                except ConvexLabError as e:
                    raise InvalidValueError(f"{self.table}/documents.jsonl: {e}") from None
        holes = [i for i, x in enumerate(ids) if x is None]
        if holes:
            if self.number is None:
                self.number, fresh, _ = self.store.reserve_ids(self.table, len(holes))
            else:
                fresh = generate_ids(self.number, self.store.now(), len(holes))
            for i, doc_id in zip(holes, fresh, strict=True):
                ids[i] = doc_id
        late = [i for i, x in enumerate(cts) if type(x) is not float]
        if late:
            for i, ct in zip(late, self.store.reserve_times(len(late)), strict=True):
                cts[i] = ct

    def finish(self) -> BulkLoad:
        return BulkLoad(self.table, self.docs, number=self.number, special=self.special,
                        max_size=self.max_size, nested=self.nested)


def _storage_fields(row: dict[str, Any]) -> dict[str, Any]:
    """A Convex ``_storage`` line → this store's ``_storage`` document fields."""
    try:
        return {"sha256": str(row["sha256"]), "size": float(row["size"]),
                "contentType": row.get("contentType")}
    except (KeyError, TypeError, ValueError) as e:
        raise InvalidValueError(f"_storage/documents.jsonl has a line without sha256 and size "
                                f"({e}).") from None

"""Schemas: ``define_schema`` / ``define_table`` with indexes, search and vector indexes.

Contract
--------
* ``define_table(fields)`` takes a dict of validators, a ``v.object``, a union of objects or
  ``v.any()``; top-level ``_id`` / ``_creationTime`` validators are dropped (Convex filters them;
  they are system fields), any other top-level ``_`` field is rejected. Every definition error is
  raised eagerly, at the line that made it, as ``SchemaError`` naming the problem and the fix,
  with Convex's error code (``IndexNameReserved``, ``IndexNotUnique``, ...) as ``.code``.
* Rules (reference §2.1, §2.3): table and index names are identifiers; user tables do not start
  with ``_``; index names are not ``by_id``/``by_creation_time`` nor ``_``-prefixed and are unique
  per table across all index kinds; index fields are 1 to 15 distinct dotted identifier paths
  without ``_``-prefixed segments (so no ``_id``/``_creationTime``) and two indexes may not have
  the same list; a search index has exactly one search field and ≤ 16 filter fields; a vector
  index has 2 to 4096 dimensions, ≤ 16 filter fields and a field that can hold
  ``v.array(v.float64())``; a table has ≤ 32 indexes in all, ≤ 4 search and ≤ 4 vector
  indexes (docs figures).
* ``TableDefinition`` is immutable in effect: the chain methods add to it and return it, as in
  Convex; ``Schema.to_json()`` / ``Schema.from_json()`` round-trip (the store persists it) in
  Convex's own JSON shape (``crates/common/src/schemas/json.rs``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from convex_lab.errors import SchemaError, SchemaValidationError, ValidationError
from convex_lab.validators import (
    TableLookup,
    Validator,
    VAny,
    VArray,
    VFloat64,
    VObject,
    VUnion,
    field_validator_at,
    from_pydantic,
    identifier_problem,
    is_pydantic_model,
    validator_from_json,
)
from convex_lab.values import check_document_field_count, convert_document

MAX_INDEXES_PER_TABLE: Final = 32
MAX_SEARCH_INDEXES_PER_TABLE: Final = 4
MAX_VECTOR_INDEXES_PER_TABLE: Final = 4
MAX_INDEX_FIELDS: Final = 15  # 16 including the implicit _creationTime
MAX_FILTER_FIELDS: Final = 16
MIN_VECTOR_DIMENSIONS: Final = 2
MAX_VECTOR_DIMENSIONS: Final = 4096
RESERVED_INDEX_NAMES: Final = frozenset({"by_id", "by_creation_time"})
SYSTEM_FIELDS: Final = ("_id", "_creationTime")


def _field_path_problem(path: object) -> str | None:
    if not isinstance(path, str) or not path:
        return f"{path!r} is not a field path; use a string such as 'author' or 'address.city'."
    for segment in path.split("."):
        problem = identifier_problem(segment)
        if problem is not None:
            return f"Invalid index field: {path!r}. {problem}"
    return None


def _document_validator(fields: Any) -> Validator:
    if is_pydantic_model(fields):  # define_table(Model): documents validated by pydantic
        fields = from_pydantic(fields)
    if isinstance(fields, Mapping):
        fields = VObject(fields)
    if isinstance(fields, VObject):
        return _strip_system_fields(fields)
    if isinstance(fields, VUnion) and all(isinstance(m, VObject) for m in fields.members):
        return VUnion(*(_strip_system_fields(m) for m in fields.members))  # type: ignore[arg-type]
    if isinstance(fields, VAny):
        return fields
    raise SchemaError(
        f"define_table() takes a dict of field validators, v.object({{...}}), a v.union() of "
        f"objects or v.any(); got {fields!r}. Example: define_table({{'name': v.string()}}).",
        code="InvalidTopLevelTypeInSchema",
    )


def _strip_system_fields(obj: VObject) -> VObject:
    for name in obj.fields:
        if name.startswith("_") and name not in SYSTEM_FIELDS:
            raise SchemaError(
                f"Field `{name}` starts with '_', which is reserved for system fields. "
                "Rename the field.",
                code="InvalidFieldName",
            )
    if any(name in obj.fields for name in SYSTEM_FIELDS):
        return obj.omit(*SYSTEM_FIELDS)
    return obj


def _can_hold_float_vector(validator: Validator | None, parts: list[str]) -> bool:
    """Convex's ``overlaps_with_array_float64``: can the field at ``parts`` be a float array?"""
    if not parts:
        return (
            validator is None
            or isinstance(validator, VAny)
            or (isinstance(validator, VArray) and isinstance(validator.element, (VFloat64, VAny)))
            or (
                isinstance(validator, VUnion)
                and any(_can_hold_float_vector(m, []) for m in validator.members)
            )
        )
    if validator is None or isinstance(validator, VAny):
        return True
    if isinstance(validator, VUnion):
        return any(_can_hold_float_vector(m, parts) for m in validator.members)
    if isinstance(validator, VObject):
        sub = validator.fields.get(parts[0])
        return sub is None or _can_hold_float_vector(sub.as_required(), parts[1:])
    return False


class TableDefinition:
    """One table of a schema: its document validator and index definitions."""

    def __init__(self, fields: Mapping[str, Validator] | Validator | type) -> None:
        self.document_validator: Validator = _document_validator(fields)
        self.indexes: dict[str, list[str]] = {}
        self.search_indexes: dict[str, dict[str, Any]] = {}
        self.vector_indexes: dict[str, dict[str, Any]] = {}
        self._field_cache: dict[str, Validator | None] = {}

    # -- index definitions -----------------------------------------------------------------

    def _check_new_index_name(self, name: object) -> str:
        problem = identifier_problem(name)
        if problem is not None:
            raise SchemaError(
                f"Invalid index name: {name!r}. {problem}", code="InvalidIndexName"
            )
        assert isinstance(name, str)
        if name in RESERVED_INDEX_NAMES or name.startswith("_"):
            raise SchemaError(
                f'Cannot name an index "{name}" because the name is reserved. Indexes may not '
                'start with an underscore or be named "by_id" or "by_creation_time". '
                "Choose another name, such as by_<field>.",
                code="IndexNameReserved",
            )
        if name in self.indexes or name in self.search_indexes or name in self.vector_indexes:
            raise SchemaError(
                f'This table has two or more definitions of index "{name}". Give each index '
                "a distinct name.",
                code="IndexNamesNotUnique",
            )
        total = len(self.indexes) + len(self.search_indexes) + len(self.vector_indexes)
        if total >= MAX_INDEXES_PER_TABLE:
            raise SchemaError(
                f"A table cannot have more than {MAX_INDEXES_PER_TABLE} indexes (database, "
                "search and vector indexes together). Remove an index you do not query.",
                code="TooManyIndexes",
            )
        return name

    @staticmethod
    def _check_field(index: str, path: object) -> str:
        problem = _field_path_problem(path)
        if problem is not None:
            raise SchemaError(f'In index "{index}": {problem}', code="InvalidIndexField")
        assert isinstance(path, str)
        segments = path.split(".")
        if path == "_id":
            raise SchemaError(
                f'In index "{index}": `_id` is not a valid index field. To load documents by '
                "ID, use `db.get(id)`.",
                code="IndexFieldsContainId",
            )
        if path == "_creationTime":
            raise SchemaError(
                f'In index "{index}": `_creationTime` is automatically added to the end of each '
                "index. It should not be added explicitly in the index definition. See "
                "https://docs.convex.dev/using/indexes for more details.",
                code="IndexFieldsContainCreationTime",
            )
        if any(s.startswith("_") for s in segments):
            raise SchemaError(
                f'In index "{index}": reserved fields (starting with `_`) are not allowed in '
                f"indexes: {path!r}.",
                code="IndexFieldNameReserved",
            )
        return path

    @staticmethod
    def _field_list(what: str, fields: object) -> list[object]:
        if isinstance(fields, str) or not isinstance(fields, Iterable):
            raise SchemaError(
                f"{what} must be a list of field paths, e.g. [{fields!r}]; got {fields!r}.",
                code="InvalidIndexField",
            )
        return list(fields)

    def index(self, name: str, fields: list[str]) -> TableDefinition:
        """Add a database index on ``fields`` (``_creationTime`` is appended automatically)."""
        name = self._check_new_index_name(name)
        paths = [self._check_field(name, f) for f in self._field_list("Index fields", fields)]
        if not paths:
            raise SchemaError(
                f'Index "{name}" must have at least one field, e.g. .index("{name}", ["field"]). '
                "Queries in _creationTime order need no index.",
                code="EmptyIndex",
            )
        if len(paths) > MAX_INDEX_FIELDS:
            raise SchemaError(
                f'Index "{name}" has {len(paths)} fields; indexes may have up to '
                f"{MAX_INDEX_FIELDS} fields (16 with the implicit _creationTime).",
                code="IndexTooManyFields",
            )
        seen: set[str] = set()
        for p in paths:
            if p in seen:
                raise SchemaError(
                    f'In index "{name}": duplicate field {p}. Index fields must be unique '
                    "within an index.",
                    code="FieldsNotUniqueWithinIndex",
                )
            seen.add(p)
        for other, other_fields in self.indexes.items():
            if other_fields == paths:
                raise SchemaError(
                    f'Index "{name}" and index "{other}" have the same fields. Indexes must be '
                    "unique within a table: keep one of them.",
                    code="IndexNotUnique",
                )
        self.indexes[name] = paths
        return self

    def _filter_fields(self, name: str, filter_fields: object) -> list[str]:
        out: list[str] = []
        for f in self._field_list("filter_fields", filter_fields):
            path = self._check_field(name, f)
            if path not in out:  # Convex keeps them in a set: duplicates collapse
                out.append(path)
        if len(out) > MAX_FILTER_FIELDS:
            raise SchemaError(
                f'Index "{name}" has {len(out)} filter fields; search and vector indexes may '
                f"have up to {MAX_FILTER_FIELDS} filter fields.",
                code="IndexTooManyFilterFields",
            )
        return out

    def search_index(
        self, name: str, *, search_field: str, filter_fields: Iterable[str] = ()
    ) -> TableDefinition:
        """Add a full-text search index over the string field ``search_field``."""
        name = self._check_new_index_name(name)
        if len(self.search_indexes) >= MAX_SEARCH_INDEXES_PER_TABLE:
            raise SchemaError(
                f"A table cannot have more than {MAX_SEARCH_INDEXES_PER_TABLE} search indexes.",
                code="TooManySearchIndexes",
            )
        if not isinstance(search_field, str):
            raise SchemaError(
                f'Search index "{name}" needs exactly one search field, a string such as '
                f"search_field='body'; got {search_field!r}.",
                code="InvalidIndexField",
            )
        field = self._check_field(name, search_field)
        filters = self._filter_fields(name, filter_fields)
        for other, spec in self.search_indexes.items():
            if spec["search_field"] == field:
                raise SchemaError(
                    f'Search index "{name}" and search index "{other}" have the same '
                    "`searchField`. Combine them into one index with all the filter fields "
                    "and use different subsets of them at query time.",
                    code="SearchIndexFieldNotUnique",
                )
        self.search_indexes[name] = {"search_field": field, "filter_fields": filters}
        return self

    def vector_index(
        self,
        name: str,
        *,
        vector_field: str,
        dimensions: int,
        filter_fields: Iterable[str] = (),
        approximate: bool = False,
    ) -> TableDefinition:
        """Add a vector index over ``vector_field`` (an array of ``dimensions`` float64s).

        Search is exact; ``approximate=True`` lets a large index use an approximate
        nearest-neighbour structure instead (convex_lab's option, not Convex's)."""
        name = self._check_new_index_name(name)
        if len(self.vector_indexes) >= MAX_VECTOR_INDEXES_PER_TABLE:
            raise SchemaError(
                f"A table cannot have more than {MAX_VECTOR_INDEXES_PER_TABLE} vector indexes.",
                code="TooManyVectorIndexes",
            )
        if not isinstance(vector_field, str):
            raise SchemaError(
                f'Vector index "{name}" needs one vector field, a string such as '
                f"vector_field='embedding'; got {vector_field!r}.",
                code="InvalidIndexField",
            )
        field = self._check_field(name, vector_field)
        given: object = dimensions
        if (  # an Int64 (a schema read back from its JSON) is an int too; a bool is not
            not isinstance(given, int)
            or isinstance(given, bool)
            or not MIN_VECTOR_DIMENSIONS <= dimensions <= MAX_VECTOR_DIMENSIONS
        ):
            raise SchemaError(
                f'Vector index "{name}": dimensions must be an integer between '
                f"{MIN_VECTOR_DIMENSIONS} and {MAX_VECTOR_DIMENSIONS}; got {dimensions!r}.",
                code="InvalidVectorDimensions",
            )
        if not _can_hold_float_vector(self.document_validator, field.split(".")):
            raise SchemaError(
                f'Vector index "{name}": field `{field}` can never hold an array of float64s. '
                "Declare it as v.array(v.float64()).",
                code="InvalidVectorField",
            )
        dimensions = int(dimensions)
        filters = self._filter_fields(name, filter_fields)
        for other, spec in self.vector_indexes.items():
            if spec["vector_field"] == field and spec["dimensions"] == dimensions:
                raise SchemaError(
                    f'Vector index "{name}" and vector index "{other}" have the same '
                    "`vectorField`. Combine them into one index with all the filter fields.",
                    code="VectorIndexFieldNotUnique",
                )
        if not isinstance(approximate, bool):
            raise SchemaError(
                f'Vector index "{name}": approximate must be True or False; got {approximate!r}.',
                code="InvalidVectorIndex",
            )
        self.vector_indexes[name] = {
            "vector_field": field,
            "dimensions": dimensions,
            "filter_fields": filters,
        }
        if approximate:
            self.vector_indexes[name]["approximate"] = True
        return self

    # -- documents -------------------------------------------------------------------------

    def field_validator(self, path: str) -> Validator | None:
        """The validator of the field at dotted ``path`` (``None`` if unknown); cached."""
        try:
            return self._field_cache[path]
        except KeyError:
            found = field_validator_at(self.document_validator, path)
            self._field_cache[path] = found
            return found

    def validate_document(
        self, fields: Mapping[str, Any], *, table: str, tables: TableLookup | None = None
    ) -> dict[str, Any]:
        """User fields of a document → converted dict; system fields are stripped first.

        Raises ``SchemaValidationError`` with Convex's "Failed to insert or update ..." text, and
        ``TooManyFieldsError`` past ``MAX_DOCUMENT_USER_FIELDS`` fields (whatever the validator:
        the system fields count toward Convex's 1024 per object).
        """
        check_document_field_count(fields)
        if any(k in fields for k in SYSTEM_FIELDS):
            fields = {k: x for k, x in fields.items() if k not in SYSTEM_FIELDS}
        if isinstance(self.document_validator, VAny):
            return convert_document(fields)
        try:
            out: dict[str, Any] = self.document_validator.validate(fields, tables=tables)
        except ValidationError as exc:
            raise SchemaValidationError(
                f'Failed to insert or update a document in table "{table}" because it does not '
                f"match the schema: {exc}"
            ) from None
        return out

    # -- JSON ------------------------------------------------------------------------------

    def to_json(self, table_name: str) -> dict[str, Any]:
        return {
            "tableName": table_name,
            "indexes": [
                {"indexDescriptor": n, "fields": list(f)} for n, f in self.indexes.items()
            ],
            "searchIndexes": [
                {
                    "indexDescriptor": n,
                    "searchField": s["search_field"],
                    "filterFields": list(s["filter_fields"]),
                }
                for n, s in self.search_indexes.items()
            ],
            "vectorIndexes": [
                {
                    "indexDescriptor": n,
                    "vectorField": s["vector_field"],
                    "dimensions": s["dimensions"],
                    "filterFields": list(s["filter_fields"]),
                    **({"approximate": True} if s.get("approximate") else {}),
                }
                for n, s in self.vector_indexes.items()
            ],
            "documentType": self.document_validator.to_json(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TableDefinition:
        doc_type = data.get("documentType")
        table = cls(validator_from_json(doc_type) if doc_type else VAny())
        for idx in data.get("indexes", ()):
            table.index(idx["indexDescriptor"], idx["fields"])
        for idx in data.get("searchIndexes") or ():
            table.search_index(
                idx["indexDescriptor"],
                search_field=idx["searchField"],
                filter_fields=idx.get("filterFields", ()),
            )
        for idx in data.get("vectorIndexes") or ():
            table.vector_index(
                idx["indexDescriptor"],
                vector_field=idx["vectorField"],
                dimensions=idx.get("dimensions", idx.get("dimension")),
                filter_fields=idx.get("filterFields", ()),
                approximate=idx.get("approximate", False) is True,
            )
        return table

    def __repr__(self) -> str:
        text = f"define_table({self.document_validator!r})"
        for n, f in self.indexes.items():
            text += f".index({n!r}, {f!r})"
        for n, s in self.search_indexes.items():
            text += (
                f".search_index({n!r}, search_field={s['search_field']!r}, "
                f"filter_fields={s['filter_fields']!r})"
            )
        for n, s in self.vector_indexes.items():
            text += (
                f".vector_index({n!r}, vector_field={s['vector_field']!r}, "
                f"dimensions={s['dimensions']!r}, filter_fields={s['filter_fields']!r}"
                + (", approximate=True)" if s.get("approximate") else ")")
            )
        return text

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TableDefinition):
            return NotImplemented
        return self.to_json("t") == other.to_json("t")

    # Mutable while being chained, so not hashable.
    __hash__ = None  # type: ignore[assignment]


def define_table(fields: Mapping[str, Validator] | Validator | type) -> TableDefinition:
    """Convex's ``defineTable``: chain ``.index()``, ``.search_index()``, ``.vector_index()``.
    ``fields`` may be a pydantic model: documents are then validated (and transformed) by it."""
    return TableDefinition(fields)


class Schema:
    """A set of table definitions plus Convex's schema options."""

    def __init__(
        self,
        tables: Mapping[str, TableDefinition],
        *,
        schema_validation: bool = True,
        strict_table_name_types: bool = True,
    ) -> None:
        self.tables: dict[str, TableDefinition] = {}
        for name, definition in tables.items():
            self.tables[_check_table_name(name)] = _as_table(name, definition)
        self.schema_validation = bool(schema_validation)
        self.strict_table_name_types = bool(strict_table_name_types)

    def table(self, name: str) -> TableDefinition | None:
        return self.tables.get(name)

    def validate_document(
        self, table: str, fields: Mapping[str, Any], *, tables: TableLookup | None = None
    ) -> dict[str, Any]:
        """Fields of a document written to ``table`` → converted dict.

        Unlisted tables are free-form; with ``schema_validation=False`` a mismatch is not an
        error (the validator still converts what it can, e.g. ints of int64 fields).
        """
        definition = self.tables.get(table)
        if definition is None:
            return convert_document(fields)
        try:
            return definition.validate_document(fields, table=table, tables=tables)
        except SchemaValidationError:
            if self.schema_validation:
                raise
            return convert_document({k: x for k, x in fields.items() if k not in SYSTEM_FIELDS})

    def to_json(self) -> dict[str, Any]:
        return {
            "tables": [d.to_json(name) for name, d in self.tables.items()],
            "schemaValidation": self.schema_validation,
            "strictTableNameTypes": self.strict_table_name_types,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Schema:
        tables = {t["tableName"]: TableDefinition.from_json(t) for t in data.get("tables", ())}
        # A merged schema (with_components) names components' tables "<component>/<table>".
        own = {n: d for n, d in tables.items() if "/" not in n}
        schema = cls(
            own,
            # Convex defaults a missing flag to false (schemas older than validation)
            schema_validation=bool(data.get("schemaValidation", False)),
            strict_table_name_types=bool(data.get("strictTableNameTypes", True)),
        )
        for name, definition in tables.items():
            if "/" in name:
                component, _, table = name.partition("/")
                _check_table_name(component)
                schema.tables[name] = _as_table(_check_table_name(table), definition)
        return schema

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Schema):
            return NotImplemented
        return self.to_json() == other.to_json()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        inner = ", ".join(f"{n!r}: {d!r}" for n, d in self.tables.items())
        return f"define_schema({{{inner}}})"


def with_components(schema: Schema | None,
                    components: Mapping[str, Schema | None]) -> Schema:
    """The schema the store gets when components are mounted (DESIGN §8): the app's tables,
    then each component's table ``t`` as ``"<component>/t"``, its ``v.id("t")`` validators
    renamed to match. The app's schema options apply; without an app schema its own tables
    stay free-form (unlisted)."""
    merged = Schema(schema.tables if schema is not None else {},
                    schema_validation=schema.schema_validation if schema is not None else True,
                    strict_table_name_types=(schema.strict_table_name_types
                                             if schema is not None else True))
    for component, own in components.items():
        if own is None:
            continue
        prefix = _check_table_name(component) + "/"
        for table, definition in own.tables.items():
            merged.tables[prefix + table] = _namespaced(definition, prefix, set(own.tables))
    return merged


def _namespaced(definition: TableDefinition, prefix: str, tables: set[str]) -> TableDefinition:
    """``definition`` with ``v.id(t)`` of the component's tables ``t`` renamed ``prefix + t``
    (the same object when it has none)."""
    data = definition.to_json("_")
    text = str(data)
    if "'id'" not in text:
        return definition

    def rename(node: Any) -> Any:
        if isinstance(node, dict):
            if node.get("type") == "id" and node.get("tableName") in tables:
                return {**node, "tableName": prefix + node["tableName"]}
            return {k: rename(x) for k, x in node.items()}
        if isinstance(node, list):
            return [rename(x) for x in node]
        return node

    return TableDefinition.from_json(rename(data))


def _check_table_name(name: object) -> str:
    problem = identifier_problem(name)
    if problem is not None:
        raise SchemaError(
            f"Invalid table name: {name!r}. {problem} Table names must start with a letter "
            "and can only contain letters, digits, and underscores.",
            code="InvalidTableName",
        )
    assert isinstance(name, str)
    if name.startswith("_"):
        raise SchemaError(
            f"{name} is a reserved table name: names starting with '_' are system tables. "
            "Rename the table.",
            code="TableNameReserved",
        )
    return name


def _as_table(name: str, definition: object) -> TableDefinition:
    if isinstance(definition, TableDefinition):
        return definition
    if isinstance(definition, (Mapping, Validator)):
        return TableDefinition(definition)  # a bare dict of validators is a friendly shorthand
    raise SchemaError(
        f"Table {name!r} must be a define_table(...) definition; got {definition!r}.",
        code="InvalidTableDefinition",
    )


def define_schema(
    tables: Mapping[str, TableDefinition],
    *,
    schema_validation: bool = True,
    strict_table_name_types: bool = True,
) -> Schema:
    """Convex's ``defineSchema``."""
    if not isinstance(tables, Mapping):
        raise SchemaError(
            "define_schema() takes a dict of table name → define_table(...); "
            f"got {tables!r}.",
            code="InvalidSchema",
        )
    return Schema(
        tables,
        schema_validation=schema_validation,
        strict_table_name_types=strict_table_name_types,
    )


FieldValidatorLookup = Callable[[str], "Validator | None"]

__all__ = [
    "MAX_INDEXES_PER_TABLE",
    "FieldValidatorLookup",
    "Schema",
    "TableDefinition",
    "define_schema",
    "define_table",
]

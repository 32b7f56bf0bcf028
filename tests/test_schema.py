"""Schemas: definitions, name rules and limits, document validation, JSON round trips."""

import pytest

from convex_lab.errors import InvalidValueError, SchemaError, SchemaValidationError
from convex_lab.ids import encode_id
from convex_lab.schema import Schema, TableDefinition, define_schema, define_table
from convex_lab.validators import v
from convex_lab.values import Int64


def chat_schema() -> Schema:
    return define_schema(
        {
            "channels": define_table({"name": v.string()}),
            "messages": define_table(
                {
                    "channel": v.id("channels"),
                    "author": v.string(),
                    "body": v.string(),
                    "likes": v.optional(v.int64()),
                    "embedding": v.optional(v.array(v.float64())),
                }
            )
            .index("by_channel", ["channel"])
            .index("by_channel_author", ["channel", "author"])
            .search_index("search_body", search_field="body", filter_fields=["channel"])
            .vector_index("by_embedding", vector_field="embedding", dimensions=3),
        }
    )


def code_of(fn: object) -> str:
    with pytest.raises(SchemaError) as info:
        fn()  # type: ignore[operator]
    return info.value.code


def test_schema_shape() -> None:
    schema = chat_schema()
    assert set(schema.tables) == {"channels", "messages"}
    messages = schema.table("messages")
    assert isinstance(messages, TableDefinition)
    assert schema.table("nope") is None
    assert messages.indexes == {
        "by_channel": ["channel"],
        "by_channel_author": ["channel", "author"],
    }
    assert messages.search_indexes == {
        "search_body": {"search_field": "body", "filter_fields": ["channel"]}
    }
    assert messages.vector_indexes == {
        "by_embedding": {"vector_field": "embedding", "dimensions": 3, "filter_fields": []}
    }
    assert schema.schema_validation is True and schema.strict_table_name_types is True


def test_json_round_trip() -> None:
    schema = chat_schema()
    data = schema.to_json()
    assert data["schemaValidation"] is True
    messages = next(t for t in data["tables"] if t["tableName"] == "messages")
    assert messages["indexes"][0] == {"indexDescriptor": "by_channel", "fields": ["channel"]}
    assert messages["searchIndexes"][0] == {
        "indexDescriptor": "search_body",
        "searchField": "body",
        "filterFields": ["channel"],
    }
    assert messages["vectorIndexes"][0]["dimensions"] == 3
    assert messages["documentType"]["type"] == "object"
    again = Schema.from_json(data)
    assert again == schema
    assert again.to_json() == data
    other = define_schema({"t": define_table(v.any())}, schema_validation=False)
    assert Schema.from_json(other.to_json()) == other


def test_from_json_defaults_like_convex() -> None:
    schema = Schema.from_json({"tables": [{"tableName": "t", "indexes": []}]})
    assert schema.schema_validation is False  # older schemas predate validation
    assert schema.table("t").document_validator == v.any()  # type: ignore[union-attr]


def test_document_validation_converts_and_strips_system_fields() -> None:
    messages = chat_schema().table("messages")
    assert messages is not None
    cid = encode_id(10_001, bytes(16))
    got = messages.validate_document(
        {"_id": "x", "_creationTime": 1.0, "channel": cid, "author": "a", "body": "b", "likes": 2},
        table="messages",
    )
    assert got == {"author": "a", "body": "b", "channel": cid, "likes": 2}
    assert type(got["likes"]) is Int64


def test_document_validation_error_text() -> None:
    channels = chat_schema().table("channels")
    assert channels is not None
    with pytest.raises(SchemaValidationError) as info:
        channels.validate_document({"name": 5.0}, table="channels")
    assert str(info.value) == (
        'Failed to insert or update a document in table "channels" because it does not match the '
        "schema: Value does not match validator.\nPath: .name\nValue: 5\nValidator: v.string()"
    )
    with pytest.raises(SchemaValidationError, match="extra field `topic`"):
        channels.validate_document({"name": "x", "topic": "y"}, table="channels")


def test_id_fields_checked_against_table_mapping() -> None:
    messages = chat_schema().table("messages")
    assert messages is not None
    wrong = encode_id(10_002, bytes(16))
    with pytest.raises(SchemaValidationError, match="from table `messages`"):
        messages.validate_document(
            {"channel": wrong, "author": "a", "body": "b"},
            table="messages",
            tables={10_001: "channels", 10_002: "messages"}.get,
        )


def test_schema_level_document_validation() -> None:
    schema = chat_schema()
    assert schema.validate_document("free", {"a": 1}) == {"a": 1.0}  # unlisted: free-form
    with pytest.raises(InvalidValueError):
        schema.validate_document("free", {"_a": 1})
    with pytest.raises(SchemaValidationError):
        schema.validate_document("channels", {"name": 1})
    loose = define_schema({"t": define_table({"n": v.int64()})}, schema_validation=False)
    assert loose.validate_document("t", {"n": "text"}) == {"n": "text"}
    assert type(loose.validate_document("t", {"n": 1})["n"]) is Int64


def test_union_and_any_documents() -> None:
    table = define_table(
        v.union(
            v.object({"kind": v.literal("a"), "x": v.float64()}),
            v.object({"kind": v.literal("b")}),
        )
    )
    assert table.validate_document({"kind": "b"}, table="t") == {"kind": "b"}
    with pytest.raises(SchemaValidationError):
        table.validate_document({"kind": "c"}, table="t")
    free = define_table(v.any())
    assert free.validate_document({"n": 1}, table="t") == {"n": 1.0}


def test_system_fields_in_validator_are_dropped_and_others_rejected() -> None:
    table = define_table({"_id": v.id("t"), "_creationTime": v.float64(), "a": v.string()})
    assert table.document_validator == v.object({"a": v.string()})
    assert code_of(lambda: define_table({"_secret": v.string()})) == "InvalidFieldName"
    assert code_of(lambda: define_table(v.string())) == "InvalidTopLevelTypeInSchema"


def test_field_validator_lookup() -> None:
    messages = chat_schema().table("messages")
    assert messages is not None
    assert messages.field_validator("likes") == v.int64()
    assert messages.field_validator("channel") == v.id("channels")
    assert messages.field_validator("missing") is None


# --------------------------------------------------------------------------------------------
# Name rules


@pytest.mark.parametrize(
    ("name", "code"),
    [("_users", "TableNameReserved"), ("my-table", "InvalidTableName"), ("", "InvalidTableName"),
     ("a" * 65, "InvalidTableName"), ("__", "InvalidTableName"), ("1abc", "InvalidTableName")],
)  # fmt: skip
def test_table_name_rules(name: str, code: str) -> None:
    assert code_of(lambda: define_schema({name: define_table({})})) == code


def test_valid_names_pass() -> None:
    users = define_table({"a": v.string()}).index("by_a", ["a"])
    schema = define_schema({"a" * 64: define_table({}), "Users_2": users})
    assert len(schema.tables) == 2


@pytest.mark.parametrize(
    ("name", "code"),
    [("by_id", "IndexNameReserved"), ("by_creation_time", "IndexNameReserved"),
     ("_mine", "IndexNameReserved"), ("by-a", "InvalidIndexName"), ("", "InvalidIndexName")],
)  # fmt: skip
def test_index_name_rules(name: str, code: str) -> None:
    assert code_of(lambda: define_table({"a": v.string()}).index(name, ["a"])) == code


def test_index_names_unique_across_kinds() -> None:
    table = define_table({"a": v.string()}).index("idx", ["a"])
    assert code_of(lambda: table.index("idx", ["b"])) == "IndexNamesNotUnique"
    assert code_of(lambda: table.search_index("idx", search_field="a")) == "IndexNamesNotUnique"


@pytest.mark.parametrize(
    ("fields", "code"),
    [([], "EmptyIndex"), (["_id"], "IndexFieldsContainId"),
     (["_creationTime"], "IndexFieldsContainCreationTime"),
     (["a", "a"], "FieldsNotUniqueWithinIndex"),
     (["a._b"], "IndexFieldNameReserved"), (["a..b"], "InvalidIndexField"),
     (["my-field"], "InvalidIndexField"), ("a", "InvalidIndexField"),
     ([f"f{i}" for i in range(16)], "IndexTooManyFields")],
)  # fmt: skip
def test_index_field_rules(fields: object, code: str) -> None:
    assert code_of(lambda: define_table({}).index("idx", fields)) == code  # type: ignore[arg-type]


def test_index_field_messages_name_the_fix() -> None:
    with pytest.raises(SchemaError, match=r"use `db.get\(id\)`"):
        define_table({}).index("idx", ["_id"])
    with pytest.raises(SchemaError, match="automatically added to the end of each index"):
        define_table({}).index("idx", ["a", "_creationTime"])


def test_index_limits() -> None:
    define_table({}).index("ok", [f"f{i}" for i in range(15)])
    define_table({}).index("nested", ["a.b.c"])
    table = define_table({}).index("one", ["a"])
    assert code_of(lambda: table.index("two", ["a"])) == "IndexNotUnique"
    many = define_table({})
    for i in range(32):
        many.index(f"i{i}", [f"f{i}"])
    assert code_of(lambda: many.index("i32", ["g"])) == "TooManyIndexes"


def test_search_index_rules() -> None:
    table = define_table({"a": v.string(), "b": v.string()})
    two_fields = ["a", "b"]
    assert code_of(lambda: table.search_index("s", search_field=two_fields)) == "InvalidIndexField"
    filters = [f"f{i}" for i in range(17)]
    assert code_of(lambda: table.search_index("s", search_field="a", filter_fields=filters)) == (
        "IndexTooManyFilterFields"
    )
    table.search_index("s1", search_field="a", filter_fields=["b", "b"])
    assert table.search_indexes["s1"]["filter_fields"] == ["b"]
    assert code_of(lambda: table.search_index("s2", search_field="a")) == (
        "SearchIndexFieldNotUnique"
    )
    for i in range(3):
        table.search_index(f"x{i}", search_field=f"f{i}")
    assert code_of(lambda: table.search_index("x9", search_field="z")) == "TooManySearchIndexes"


def test_vector_index_rules() -> None:
    table = define_table({"e": v.array(v.float64()), "s": v.string(), "o": v.any()})
    for dims in (1, 4097, 2.5):
        assert code_of(
            lambda d=dims: table.vector_index("vi", vector_field="e", dimensions=d)  # type: ignore[misc]
        ) == "InvalidVectorDimensions"
    assert code_of(lambda: table.vector_index("vi", vector_field="s", dimensions=4)) == (
        "InvalidVectorField"
    )
    table.vector_index("v1", vector_field="e", dimensions=2)
    table.vector_index("v2", vector_field="o.inner", dimensions=4096, filter_fields=["s"])
    assert code_of(lambda: table.vector_index("v3", vector_field="e", dimensions=2)) == (
        "VectorIndexFieldNotUnique"
    )
    table.vector_index("v3", vector_field="e", dimensions=8)
    table.vector_index("v4", vector_field="e", dimensions=16)
    assert code_of(lambda: table.vector_index("v5", vector_field="e", dimensions=32)) == (
        "TooManyVectorIndexes"
    )


def test_define_schema_input_errors() -> None:
    assert code_of(lambda: define_schema([])) == "InvalidSchema"  # type: ignore[arg-type]
    assert code_of(lambda: define_schema({"t": 5})) == "InvalidTableDefinition"  # type: ignore[dict-item]
    shorthand = define_schema({"t": {"a": v.string()}})  # type: ignore[dict-item]
    assert shorthand.table("t").document_validator == v.object({"a": v.string()})  # type: ignore[union-attr]


def test_repr() -> None:
    table = define_table({"a": v.string()}).index("by_a", ["a"])
    assert repr(table) == "define_table(v.object({a: v.string()})).index('by_a', ['a'])"

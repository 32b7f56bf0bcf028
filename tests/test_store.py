"""The store through ctx.db: CRUD, patch semantics, errors, copies, schemas, limits, isolation.

Reference: convex-semantics.md §2.2, §2.4, §3, §5.1, §5.2; DESIGN §2, §7, §8.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable
from typing import Any

import pytest

from convex_lab.errors import (
    InvalidIdError,
    InvalidTableError,
    InvalidValueError,
    LimitExceededError,
    NonexistentDocumentError,
    SchemaError,
    SchemaValidationError,
)
from convex_lab.ids import Id, decode_id, encode_id
from convex_lab.schema import define_schema, define_table
from convex_lab.store.database import DatabaseReader, DatabaseWriter
from convex_lab.store.engine import Store
from convex_lab.validators import v
from convex_lab.values import UNDEFINED, Int64, sort_key

Body = Callable[[DatabaseWriter], Any]


@pytest.fixture
def store() -> Store:
    s = Store()
    yield s
    s.close()


def write(store: Store, body: Body) -> Any:
    return store.run(lambda tx: body(DatabaseWriter(tx)))


def read(store: Store, body: Callable[[DatabaseReader], Any]) -> Any:
    return store.run(lambda tx: body(DatabaseReader(tx)), read_only=True)


def fields(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: x for k, x in doc.items() if not k.startswith("_")}


def other_id(doc_id: str) -> str:
    """A well-formed ID of the same table that names no document."""
    number, _ = decode_id(doc_id)
    return encode_id(number, b"\x01" * 16)


# --------------------------------------------------------------------------------------------
# CRUD


def test_insert_returns_id_and_get_returns_document(store: Store) -> None:
    doc_id = write(store, lambda db: db.insert("messages", {"body": "hi", "n": 1}))
    assert isinstance(doc_id, Id)
    assert doc_id.table == "messages"
    assert len(doc_id) == 32
    doc = read(store, lambda db: db.get(doc_id))
    assert doc["_id"] == doc_id
    assert type(doc["_creationTime"]) is float
    assert 0 < doc["_creationTime"] < 2**53
    assert fields(doc) == {"body": "hi", "n": 1.0}
    assert type(doc["n"]) is float  # a plain int is a float64
    assert read(store, lambda db: db.get("messages", doc_id)) == doc


def test_values_keep_their_convex_types(store: Store) -> None:
    value = {"i": Int64(-(2**63)), "f": -0.0, "nan": math.nan, "b": b"\x00\xff", "t": True,
             "n": None, "arr": [Int64(1), 1.0, "s", [], {}], "obj": {"_nested": {"x": b""}}}
    doc_id = write(store, lambda db: db.insert("t", value))
    doc = read(store, lambda db: db.get(doc_id))
    assert sort_key(fields(doc)) == sort_key(value)
    assert type(doc["i"]) is Int64
    assert math.copysign(1.0, doc["f"]) == -1.0


def test_patch_is_a_shallow_merge(store: Store) -> None:
    doc_id = write(store, lambda db: db.insert("t", {"a": 1, "b": {"x": 1, "y": 2}, "c": "keep"}))
    write(store, lambda db: db.patch(doc_id, {"a": 2, "b": {"x": 9}, "d": True}))
    doc = read(store, lambda db: db.get(doc_id))
    # nested objects are replaced wholesale, omitted fields untouched
    assert fields(doc) == {"a": 2.0, "b": {"x": 9.0}, "c": "keep", "d": True}


def test_patch_undefined_removes_field(store: Store) -> None:
    doc_id = write(store, lambda db: db.insert("t", {"a": 1, "b": 2}))
    write(store, lambda db: db.patch("t", doc_id, {"a": UNDEFINED, "zzz": UNDEFINED}))
    assert fields(read(store, lambda db: db.get(doc_id))) == {"b": 2.0}


def test_patch_keeps_system_fields_and_accepts_equal_ones(store: Store) -> None:
    doc_id = write(store, lambda db: db.insert("t", {"a": 1}))
    before = read(store, lambda db: db.get(doc_id))
    write(store, lambda db: db.patch(doc_id, {"_id": doc_id,
                                               "_creationTime": before["_creationTime"],
                                               "a": 2}))
    after = read(store, lambda db: db.get(doc_id))
    assert after["_id"] == before["_id"]
    assert after["_creationTime"] == before["_creationTime"]
    assert after["a"] == 2.0


@pytest.mark.parametrize("verb", ["patch", "replace"])
def test_changing_system_fields_is_rejected(store: Store, verb: str) -> None:
    doc_id = write(store, lambda db: db.insert("t", {"a": 1}))
    other = write(store, lambda db: db.insert("t", {"a": 2}))
    for bad in ({"_id": other}, {"_creationTime": 1.0}):
        with pytest.raises(InvalidValueError, match="doesn't match"):
            write(store, lambda db, bad=bad: getattr(db, verb)(doc_id, {**bad, "a": 5}))
    assert read(store, lambda db: db.get(doc_id))["a"] == 1.0


def test_patch_rejects_new_underscore_fields(store: Store) -> None:
    doc_id = write(store, lambda db: db.insert("t", {"a": 1}))
    with pytest.raises(InvalidValueError, match="reserved for system fields"):
        write(store, lambda db: db.patch(doc_id, {"_hidden": 1}))


def test_insert_rejects_system_fields_and_bad_names(store: Store) -> None:
    with pytest.raises(InvalidValueError, match="system field"):
        write(store, lambda db: db.insert("t", {"_id": "x"}))
    with pytest.raises(InvalidValueError, match="system field"):
        write(store, lambda db: db.insert("t", {"_creationTime": 1.0}))
    with pytest.raises(InvalidValueError, match="reserved for system fields"):
        write(store, lambda db: db.insert("t", {"_private": 1}))
    with pytest.raises(InvalidValueError):
        write(store, lambda db: db.insert("t", {"$bad": 1}))
    for table in ("", "1abc", "a-b", "x" * 65, "___"):
        with pytest.raises(InvalidTableError):
            write(store, lambda db, table=table: db.insert(table, {}))
    assert read(store, lambda db: db.query("t").collect()) == []


def test_unchanged_patch_is_not_a_write(store: Store) -> None:
    doc_id = write(store, lambda db: db.insert("t", {"a": 1, "b": [1, 2]}))
    # A transaction that read the document...
    reader = store.begin()
    rdb = DatabaseWriter(reader)
    assert rdb.get(doc_id)["a"] == 1.0
    rdb.insert("other", {"x": 1})
    # ...is not invalidated by a patch that changes nothing.
    write(store, lambda db: db.patch(doc_id, {"a": 1, "b": [1, 2]}))
    write(store, lambda db: db.patch(doc_id, {"missing": UNDEFINED}))
    reader.commit()  # no Conflict
    assert len(read(store, lambda db: db.query("other").collect())) == 1


def test_replace_overwrites_everything_but_system_fields(store: Store) -> None:
    doc_id = write(store, lambda db: db.insert("t", {"a": 1, "b": 2}))
    before = read(store, lambda db: db.get(doc_id))
    write(store, lambda db: db.replace(doc_id, {"c": "new"}))
    after = read(store, lambda db: db.get(doc_id))
    assert fields(after) == {"c": "new"}
    assert after["_creationTime"] == before["_creationTime"]
    write(store, lambda db: db.replace("t", doc_id, {}))
    assert fields(read(store, lambda db: db.get(doc_id))) == {}


def test_delete(store: Store) -> None:
    a = write(store, lambda db: db.insert("t", {"a": 1}))
    b = write(store, lambda db: db.insert("t", {"a": 2}))
    write(store, lambda db: db.delete(a))
    write(store, lambda db: db.delete("t", b))
    assert read(store, lambda db: db.get(a)) is None
    assert read(store, lambda db: db.get("t", b)) is None
    assert read(store, lambda db: db.query("t").collect()) == []


def test_insert_then_delete_in_one_transaction_leaves_nothing(store: Store) -> None:
    def body(db: DatabaseWriter) -> str:
        i = db.insert("t", {"a": 1})
        db.patch(i, {"a": 2})
        db.delete(i)
        assert db.get(i) is None
        return i

    doc_id = write(store, body)
    assert read(store, lambda db: db.get(doc_id)) is None
    assert read(store, lambda db: db.query("t").collect()) == []


@pytest.mark.parametrize(
    ("verb", "text"),
    [("patch", "Update on nonexistent document ID"),
     ("replace", "Replace on nonexistent document ID"),
     ("delete", "Delete on nonexistent document ID")],
)
def test_nonexistent_document_errors(store: Store, verb: str, text: str) -> None:
    doc_id = write(store, lambda db: db.insert("t", {"a": 1}))
    write(store, lambda db: db.delete(doc_id))
    args: tuple[Any, ...] = (doc_id,) if verb == "delete" else (doc_id, {"a": 2})
    for call in (args, ("t", *args)):
        with pytest.raises(NonexistentDocumentError, match=text) as e:
            write(store, lambda db, call=call: getattr(db, verb)(*call))
        assert e.value.code == "NonexistentDocument"
        assert doc_id in str(e.value)
    never = other_id(doc_id)
    with pytest.raises(NonexistentDocumentError, match=text):
        write(store, lambda db: getattr(db, verb)(never, *args[1:]))


def test_nonexistent_table_document_error_is_nonexistent_document(store: Store) -> None:
    ghost = encode_id(12_345, bytes(16))
    with pytest.raises(NonexistentDocumentError, match="Update on nonexistent document ID"):
        write(store, lambda db: db.patch(ghost, {"a": 1}))
    with pytest.raises(NonexistentDocumentError, match="Replace on nonexistent document ID"):
        write(store, lambda db: db.replace(ghost, {"a": 1}))
    with pytest.raises(NonexistentDocumentError, match="Delete on nonexistent document ID"):
        write(store, lambda db: db.delete(ghost))


def test_writes_in_a_failed_transaction_commit_nothing(store: Store) -> None:
    def body(db: DatabaseWriter) -> None:
        db.insert("t", {"a": 1})
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write(store, body)
    assert read(store, lambda db: db.query("t").collect()) == []


def test_read_only_transaction_cannot_write(store: Store) -> None:
    with pytest.raises(InvalidValueError, match="read-only"):
        store.run(lambda tx: DatabaseWriter(tx).insert("t", {}), read_only=True)


# --------------------------------------------------------------------------------------------
# get: 1- and 2-argument forms, other tables, system tables, normalize_id


def test_get_with_id_of_another_table_is_invalid_table(store: Store) -> None:
    user = write(store, lambda db: db.insert("users", {"name": "a"}))
    write(store, lambda db: db.insert("messages", {"body": "b"}))
    with pytest.raises(InvalidTableError) as e:
        read(store, lambda db: db.get("messages", user))
    assert e.value.code == "InvalidTable"
    assert 'expected to be an Id<"messages">, got Id<"users"> instead.' in str(e.value)


def test_get_on_missing_table_or_document_is_none(store: Store) -> None:
    user = write(store, lambda db: db.insert("users", {"name": "a"}))
    assert read(store, lambda db: db.get("nosuchtable", user)) is None
    assert read(store, lambda db: db.get(encode_id(12_345, bytes(16)))) is None
    assert read(store, lambda db: db.get(other_id(user))) is None


@pytest.mark.parametrize("bad", ["", "not-an-id", "z43zp6c3e75gkmz1kfwj6mbbx5sw281j", 5])
def test_get_with_malformed_id_is_an_argument_error(store: Store, bad: Any) -> None:
    write(store, lambda db: db.insert("users", {}))
    with pytest.raises(InvalidIdError, match=re.escape("Invalid argument `id` for `db.get`")):
        read(store, lambda db: db.get(bad))
    with pytest.raises(InvalidIdError):
        read(store, lambda db: db.get("users", bad))


def test_system_tables_only_through_db_system(store: Store) -> None:
    sys_id = encode_id(2, bytes(16))  # _storage
    with pytest.raises(InvalidTableError):
        read(store, lambda db: db.query("_storage"))
    with pytest.raises(InvalidTableError):
        read(store, lambda db: db.get(sys_id))
    with pytest.raises(InvalidTableError):
        write(store, lambda db: db.insert("_storage", {"x": 1}))
    assert read(store, lambda db: db.system.query("_storage").collect()) == []
    assert read(store, lambda db: db.system.get(sys_id)) is None
    assert read(store, lambda db: db.system.get("_storage", sys_id)) is None
    user = write(store, lambda db: db.insert("users", {}))
    with pytest.raises(InvalidTableError):
        read(store, lambda db: db.system.get(user))
    with pytest.raises(InvalidTableError):
        read(store, lambda db: db.system.query("users"))
    assert not hasattr(write(store, lambda db: db.system), "insert")


def test_normalize_id(store: Store) -> None:
    user = write(store, lambda db: db.insert("users", {}))
    write(store, lambda db: db.insert("messages", {}))
    got = read(store, lambda db: db.normalize_id("users", str(user)))
    assert got == user
    assert isinstance(got, Id)
    assert got.table == "users"
    missing = other_id(user)  # existence is not checked
    assert read(store, lambda db: db.normalize_id("users", missing)) == missing
    assert read(store, lambda db: db.normalize_id("messages", user)) is None
    assert read(store, lambda db: db.normalize_id("nosuchtable", user)) is None
    assert read(store, lambda db: db.normalize_id("users", "garbage")) is None
    assert read(store, lambda db: db.normalize_id("users", 42)) is None


# --------------------------------------------------------------------------------------------
# Returned documents are copies


def test_returned_documents_are_copies(store: Store) -> None:
    doc_id = write(store, lambda db: db.insert("t", {"xs": [1], "o": {"k": [2]}}))

    def mutate(db: DatabaseWriter) -> None:
        for doc in (db.get(doc_id), db.query("t").first(), *db.query("t").collect(),
                    *list(db.query("t")), db.query("t").paginate({"numItems": 5,
                                                                   "cursor": None})["page"][0]):
            doc["xs"].append(99)
            doc["o"]["k"].clear()
            doc["new"] = True
            del doc["_id"]
        again = db.get(doc_id)
        assert fields(again) == {"xs": [1.0], "o": {"k": [2.0]}}

    write(store, mutate)
    assert fields(read(store, lambda db: db.get(doc_id))) == {"xs": [1.0], "o": {"k": [2.0]}}


def test_inputs_are_copied_on_write(store: Store) -> None:
    xs: list[Any] = [1]
    doc_id = write(store, lambda db: db.insert("t", {"xs": xs}))
    xs.append(2)
    patch = {"ys": [3]}
    write(store, lambda db: db.patch(doc_id, patch))
    patch["ys"].append(4)
    assert fields(read(store, lambda db: db.get(doc_id))) == {"xs": [1.0], "ys": [3.0]}


# --------------------------------------------------------------------------------------------
# Schemas


def counter_schema() -> Any:
    return define_schema({
        "counters": define_table({"name": v.string(), "value": v.int64(),
                                  "note": v.optional(v.string())}),
    })


def test_schema_validates_every_write(store: Store) -> None:
    store.set_schema(counter_schema())
    doc_id = write(store, lambda db: db.insert("counters", {"name": "a", "value": 1}))
    doc = read(store, lambda db: db.get(doc_id))
    assert type(doc["value"]) is Int64  # a plain int on a v.int64() field stays int64
    prefix = ('Failed to insert or update a document in table "counters" because it does not '
              "match the schema: ")
    bad_writes: list[Body] = [
        lambda db: db.insert("counters", {"name": "b"}),
        lambda db: db.insert("counters", {"name": "b", "value": 1.5}),
        lambda db: db.insert("counters", {"name": "b", "value": 1, "extra": 0}),
        lambda db: db.patch(doc_id, {"value": "x"}),
        lambda db: db.patch(doc_id, {"name": UNDEFINED}),
        lambda db: db.replace(doc_id, {"name": "only"}),
    ]
    for body in bad_writes:
        with pytest.raises(SchemaValidationError) as e:
            write(store, body)
        assert str(e.value).startswith(prefix)
    assert fields(read(store, lambda db: db.get(doc_id))) == {"name": "a", "value": Int64(1)}
    # an Int64 read back, incremented and written again stays int64
    write(store, lambda db: db.patch(doc_id, {"value": db.get(doc_id)["value"] + 1}))
    assert read(store, lambda db: db.get(doc_id))["value"] == Int64(2)
    # unlisted tables stay free-form
    write(store, lambda db: db.insert("free", {"anything": [1, "x"]}))


def test_schema_push_validates_existing_documents(store: Store) -> None:
    good = write(store, lambda db: db.insert("counters", {"name": "a", "value": Int64(1)}))
    bad = write(store, lambda db: db.insert("counters", {"name": "b", "value": 2.0}))
    with pytest.raises(SchemaError) as e:
        store.set_schema(counter_schema())
    assert bad in str(e.value)
    assert good not in str(e.value)
    assert "counters" in str(e.value)
    # the failed push changed nothing: the old shape can still be written
    write(store, lambda db: db.insert("counters", {"free": True}))
    write(store, lambda db: db.delete(bad))
    with pytest.raises(SchemaError):
        store.set_schema(counter_schema())  # the {"free": True} doc now offends
    write(store, lambda db: [db.delete(d["_id"]) for d in db.query("counters").collect()
                             if "free" in d])
    store.set_schema(counter_schema())
    with pytest.raises(SchemaValidationError):
        write(store, lambda db: db.insert("counters", {"free": True}))


# --------------------------------------------------------------------------------------------
# Limits (§2.2, §2.4)


def test_too_many_writes(store: Store) -> None:
    write(store, lambda db: [db.insert("t", {}) for _ in range(16_000)])
    with pytest.raises(LimitExceededError) as e:
        write(store, lambda db: [db.insert("u", {}) for _ in range(16_001)])
    assert e.value.code == "TooManyWrites"
    assert read(store, lambda db: len(db.query("t").collect())) == 16_000
    assert read(store, lambda db: db.query("u").first()) is None


def test_too_many_documents_read(store: Store) -> None:
    write(store, lambda db: [db.insert("t", {"i": i}) for i in range(16_000)])
    write(store, lambda db: [db.insert("t", {"i": i}) for i in range(16_000, 32_000)])
    write(store, lambda db: db.insert("t", {"i": 32_000}))
    assert read(store, lambda db: len(db.query("t").take(32_000))) == 32_000
    with pytest.raises(LimitExceededError) as e:
        read(store, lambda db: db.query("t").collect())
    assert e.value.code == "TooManyDocumentsRead"
    # filtered-out documents count as read too
    with pytest.raises(LimitExceededError):
        read(store, lambda db: db.query("t").filter(lambda q: q.eq(q.field("i"), -1.0)).collect())


def test_too_many_reads(store: Store) -> None:
    write(store, lambda db: db.insert("t", {}))

    def gets(n: int) -> Callable[[DatabaseReader], None]:
        def body(db: DatabaseReader) -> None:
            for i in range(n):
                db.get("t", encode_id(10_001, i.to_bytes(16, "big")))

        return body

    read(store, gets(4_096))
    with pytest.raises(LimitExceededError) as e:
        read(store, gets(4_097))
    assert e.value.code == "TooManyReads"


def test_document_size_limit(store: Store) -> None:
    # size = 2 + (_id: 3+1+34) + (_creationTime: 13+1+9) + (s: 1+1+2+L) = 67 + L
    limit = 1 << 20
    ok = write(store, lambda db: db.insert("t", {"s": "x" * (limit - 67)}))
    assert len(read(store, lambda db: db.get(ok))["s"]) == limit - 67
    with pytest.raises(LimitExceededError) as e:
        write(store, lambda db: db.insert("t", {"s": "x" * (limit - 66)}))
    assert e.value.code == "ValueTooLargeError"
    assert "1 MiB" in str(e.value)
    with pytest.raises(LimitExceededError):
        write(store, lambda db: db.patch(ok, {"more": "y"}))


def test_bytes_written_and_read_limits(store: Store) -> None:
    big = "x" * 1_000_000  # 17 of these exceed 16 MiB, 16 do not
    with pytest.raises(LimitExceededError) as e:
        write(store, lambda db: [db.insert("t", {"s": big}) for _ in range(17)])
    assert e.value.code == "TooManyBytesWritten"
    write(store, lambda db: [db.insert("t", {"s": big}) for _ in range(9)])
    write(store, lambda db: [db.insert("t", {"s": big}) for _ in range(8)])
    assert read(store, lambda db: len(db.query("t").take(16))) == 16
    with pytest.raises(LimitExceededError) as e:
        read(store, lambda db: db.query("t").collect())
    assert e.value.code == "TooManyBytesRead"


def test_document_nesting_limit(store: Store) -> None:
    def chain(depth: int) -> Any:
        value: Any = 1
        for _ in range(depth):
            value = [value]
        return value

    write(store, lambda db: db.insert("t", {"a": chain(15)}))  # document nesting 16
    with pytest.raises(LimitExceededError) as e:
        write(store, lambda db: db.insert("t", {"a": chain(16)}))
    assert e.value.code == "TooNestedError"


def _many_fields(n: int, prefix: str = "f") -> dict[str, Any]:
    return {f"{prefix}{i}": 1.0 for i in range(n)}


@pytest.mark.parametrize("schema", [None, "any", "wide"])
def test_field_limit_counts_system_fields_on_every_write(store: Store, schema: str | None) -> None:
    # Convex's 1024 fields per object include _id and _creationTime, so a document holds at most
    # 1022 of its own: what is accepted can then always be read back and returned.
    if schema == "any":
        store.set_schema(define_schema({"t": define_table(v.any())}))
    elif schema == "wide":  # a validator that declares more fields than a document may hold
        names = ["a", "extra", *_many_fields(1100), *_many_fields(1022, "g")]
        store.set_schema(define_schema({"t": define_table(
            {name: v.optional(v.float64()) for name in names})}))
    ok = write(store, lambda db: db.insert("t", _many_fields(1022)))
    assert len(read(store, lambda db: db.get(ok))) == 1024
    small = write(store, lambda db: db.insert("t", {"a": 1.0}))
    attempts: list[Body] = [
        lambda db: db.insert("t", _many_fields(1023)),
        lambda db: db.insert("t", _many_fields(1100)),
        lambda db: db.patch(ok, {"extra": 1.0}),
        lambda db: db.patch(small, _many_fields(1022, "g")),
        lambda db: db.replace(small, _many_fields(1023)),
    ]
    for attempt in attempts:
        # the second time too: field names seen once must not open a fast path
        for _ in range(2):
            with pytest.raises(LimitExceededError, match=r"fields \(\d+ > maximum 1024\)") as e:
                write(store, attempt)
            assert e.value.code == "TooManyFieldsError"
    with pytest.raises(LimitExceededError, match=r"\(1025 > maximum 1024\)"):
        write(store, lambda db: db.insert("t", _many_fields(1023)))


def test_insert_of_a_non_dict_into_a_compiled_schema_table(store: Store) -> None:
    store.set_schema(define_schema({"t": define_table({"a": v.float64()})}))
    write(store, lambda db: db.insert("t", {"a": 1.0}))  # the table exists: the fast path is on
    for bad in (None, 1.5, ["a"], "a"):
        with pytest.raises(InvalidValueError, match="takes a dict of fields"):
            write(store, lambda db, b=bad: db.insert("t", b))


def test_system_field_check_takes_any_value(store: Store) -> None:
    np = pytest.importorskip("numpy")
    doc_id = write(store, lambda db: db.insert("t", {"a": 1.0}))
    with pytest.raises(InvalidValueError, match="doesn't match"):
        write(store, lambda db: db.patch(doc_id, {"_id": np.array([1.0, 2.0])}))
    with pytest.raises(InvalidValueError, match="not a supported Convex value"):
        write(store, lambda db: db.replace(doc_id, {"_creationTime": {1, 2}}))


def test_odd_table_names_and_ids_are_argument_errors(store: Store) -> None:
    doc_id = write(store, lambda db: db.insert("t", {"a": 1.0}))
    huge = 10**5000  # its repr() raises ValueError: messages must describe it another way
    attempts: list[Body] = [
        lambda db: db.get(huge),
        lambda db: db.get("t", huge),
        lambda db: db.get(huge, doc_id),
        lambda db: db.insert(huge, {}),
        lambda db: db.patch(huge, {"a": 2.0}),
        lambda db: db.replace("t", huge, {"a": 2.0}),
        lambda db: db.delete("t", huge),
        lambda db: db.normalize_id(huge, doc_id),
        lambda db: db.query(huge).collect(),
    ]
    for attempt in attempts:
        with pytest.raises((InvalidIdError, InvalidTableError, InvalidValueError),
                           match="about 5001 digits"):
            write(store, attempt)
    for name in (["t"], huge, None):  # unhashable, unprintable, missing
        with pytest.raises(InvalidTableError, match="Invalid table name"):
            store.import_documents(name, [{"a": 1.0}])  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Creation times, own writes, snapshot isolation


def test_creation_times_strictly_increase(store: Store) -> None:
    ids = write(store, lambda db: [db.insert("t", {"i": i}) for i in range(50)])
    ids += write(store, lambda db: [db.insert("t", {"i": i}) for i in range(50, 60)])
    docs = [read(store, lambda db, i=i: db.get(i)) for i in ids]
    times = [d["_creationTime"] for d in docs]
    assert all(a < b for a, b in itertools.pairwise(times))
    by_creation = read(store, lambda db: db.query("t").collect())
    assert [d["_id"] for d in by_creation] == ids


def test_reads_see_own_writes(store: Store) -> None:
    store.set_schema(define_schema({
        "t": define_table({"n": v.float64(), "tag": v.optional(v.string())}).index("by_n", ["n"]),
    }))
    kept = write(store, lambda db: db.insert("t", {"n": 5}))
    moved = write(store, lambda db: db.insert("t", {"n": 6}))
    gone = write(store, lambda db: db.insert("t", {"n": 7}))

    def body(db: DatabaseWriter) -> None:
        new = db.insert("t", {"n": 5.5})
        assert db.get(new)["n"] == 5.5
        db.patch(moved, {"n": 100})
        db.delete(gone)
        db.patch(kept, {"tag": "x"})
        in_range = db.query("t").with_index("by_n", lambda q: q.gte("n", 5).lt("n", 10)).collect()
        assert [d["n"] for d in in_range] == [5.0, 5.5]
        assert in_range[0]["tag"] == "x"
        assert [d["n"] for d in db.query("t").order("desc").collect()] == [5.5, 100.0, 5.0]
        assert db.get(gone) is None

    write(store, body)
    assert [d["n"] for d in read(store, lambda db: db.query("t").with_index("by_n").collect())] \
        == [5.0, 5.5, 100.0]


def test_snapshot_isolation(store: Store) -> None:
    a = write(store, lambda db: db.insert("t", {"v": 1}))
    b = write(store, lambda db: db.insert("t", {"v": 2}))
    old = store.begin(read_only=True)
    old_db = DatabaseReader(old)
    assert old_db.get(a)["v"] == 1.0  # a read before and after the other commits
    write(store, lambda db: db.patch(a, {"v": 10}))
    write(store, lambda db: db.delete(b))
    c = write(store, lambda db: db.insert("t", {"v": 3}))
    write(store, lambda db: db.insert("brand_new", {"x": 1}))
    assert old_db.get(a)["v"] == 1.0
    assert old_db.get(b)["v"] == 2.0
    assert old_db.get(c) is None
    assert [d["v"] for d in old_db.query("t").collect()] == [1.0, 2.0]
    assert [d["v"] for d in old_db.query("t").order("desc").collect()] == [2.0, 1.0]
    assert old_db.query("brand_new").collect() == []
    old.commit()
    assert [d["v"] for d in read(store, lambda db: db.query("t").collect())] == [10.0, 3.0]


def test_file_backed_store_survives_reopen(tmp_path: Any) -> None:
    path = str(tmp_path / "x.duckdb")
    s = Store(path)
    kept = write(s, lambda db: db.insert("t", {"i": Int64(7), "f": -0.0, "b": b"\x00"}))
    gone = write(s, lambda db: db.insert("t", {"i": Int64(8)}))
    write(s, lambda db: db.patch(kept, {"x": math.inf}))
    write(s, lambda db: db.delete(gone))
    before = read(s, lambda db: db.query("t").collect())
    s.close()
    s2 = Store(path)
    after = read(s2, lambda db: db.query("t").collect())
    assert sort_key(after) == sort_key(before)
    assert read(s2, lambda db: db.get(gone)) is None
    new = write(s2, lambda db: db.insert("t", {"i": Int64(9)}))
    assert read(s2, lambda db: db.get(new))["_creationTime"] > after[-1]["_creationTime"]
    assert decode_id(new)[0] == decode_id(kept)[0]  # same table number after reopen
    s2.close()


def test_file_backed_store_keeps_its_schema(tmp_path: Any) -> None:
    path = str(tmp_path / "x.duckdb")
    s = Store(path)
    s.set_schema(counter_schema())
    write(s, lambda db: db.insert("counters", {"name": "a", "value": 1}))
    s.close()
    s2 = Store(path)
    try:
        with pytest.raises(SchemaValidationError):
            write(s2, lambda db: db.insert("counters", {"name": 1}))
        assert read(s2, lambda db: db.query("counters").unique())["value"] == Int64(1)
    finally:
        s2.close()


def test_sql_surface_sees_committed_documents(store: Store) -> None:
    write(store, lambda db: [db.insert("t", {"i": i}) for i in range(3)])
    cur = store.sql()
    rows = cur.execute('SELECT count(*) FROM _convex."t" WHERE NOT _deleted').fetchone()
    assert rows[0] == 3

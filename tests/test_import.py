"""Bulk import (``Backend.import_documents``) and the one-pass document builders behind it."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import convex_lab as cl
from convex_lab import Int64, define_schema, define_table, v
from convex_lab.errors import InvalidValueError, LimitExceededError, SchemaValidationError
from convex_lab.store.fastpath import build_schemaless, compile_builder
from convex_lab.store.transaction import check_document
from convex_lab.values import UNDEFINED, sort_key


def _schema_app() -> cl.App:
    app = cl.App()
    app.schema = define_schema({
        "people": define_table({"name": v.string(), "age": v.float64(), "score": v.int64(),
                                "nick": v.optional(v.string())}).index("by_name", ["name"]),
    })
    return app


def _all(backend: cl.Backend, table: str) -> list[dict[str, Any]]:
    @backend.app.query(name=f"all_{table}")
    def everything(ctx: Any) -> Any:
        return ctx.db.query(table).collect()

    return backend.query(everything)  # type: ignore[no-any-return]


def test_import_validates_converts_and_indexes() -> None:
    backend = cl.Backend(app=_schema_app())
    ids = backend.import_documents("people", [
        {"name": "ada", "age": 36, "score": 7},
        {"name": "bob", "age": 41.5, "score": Int64(3), "nick": "b"},
    ])
    assert len(ids) == 2
    docs = {d["name"]: d for d in _all(backend, "people")}
    assert docs["ada"]["age"] == 36.0 and type(docs["ada"]["age"]) is float
    assert docs["ada"]["score"] == 7 and type(docs["ada"]["score"]) is Int64
    assert docs["bob"]["nick"] == "b" and "nick" not in docs["ada"]
    assert docs["ada"]["_creationTime"] < docs["bob"]["_creationTime"]

    @backend.app.query(name="by_name")
    def by_name(ctx: Any, name: str) -> Any:
        return ctx.db.query("people").with_index("by_name", lambda q: q.eq("name", name)).unique()

    assert backend.query(by_name, {"name": "bob"})["_id"] == ids[1]
    backend.close()


def test_import_error_names_the_document_and_writes_nothing() -> None:
    backend = cl.Backend(app=_schema_app())
    with pytest.raises(SchemaValidationError, match=r"Document 2 of the import into 'people'"):
        backend.import_documents("people", [
            {"name": "a", "age": 1, "score": 1},
            {"name": "b", "age": 2, "score": 2},
            {"name": "c", "age": "old", "score": 3},
        ])
    assert _all(backend, "people") == []
    with pytest.raises(Exception, match="_id"):
        backend.import_documents("people", [{"_id": "x", "name": "a", "age": 1, "score": 1}])
    backend.close()


def test_import_takes_a_generator_larger_than_a_chunk() -> None:
    backend = cl.Backend(app=cl.App())
    n = 70_000  # more than one import chunk
    ids = backend.import_documents("rows", ({"i": i, "tag": f"t{i % 7}"} for i in range(n)))
    assert len(ids) == len(set(ids)) == n
    backend.store.flush()  # also waits for the background compression
    count = backend.store.sql().execute('SELECT count(*) FROM _convex."rows"').fetchone()
    assert count == (n,)
    backend.close()


def test_imported_special_values_survive_a_reopen(tmp_path: Any) -> None:
    path = tmp_path / "special.duckdb"
    backend = cl.Backend(path, app=cl.App())
    docs = [{"nan": math.nan, "inf": -math.inf, "neg0": -0.0, "b": b"\x00\xff",
             "nested": {"list": [Int64(2**62), None, True]}},
            {"plain": "x"}]
    backend.import_documents("odd", docs)
    before = sorted(_all(backend, "odd"), key=lambda d: d["_creationTime"])
    backend.close()
    reopened = cl.Backend(path, app=cl.App())
    after = sorted(_all(reopened, "odd"), key=lambda d: d["_creationTime"])
    assert [sort_key(d) for d in after] == [sort_key(d) for d in before]
    assert math.copysign(1.0, after[0]["neg0"]) < 0 and after[0]["b"] == b"\x00\xff"
    reopened.close()


# Hostile input (issue 7) ----------------------------------------------------------------------


def _nested_app() -> cl.App:
    app = cl.App()
    app.schema = define_schema({"nested": define_table({"tags": v.optional(v.array(v.string()))})})
    return app


@pytest.mark.parametrize("table", ["free", "people"])
def test_import_of_something_that_is_not_a_document(table: str) -> None:
    backend = cl.Backend(app=_schema_app())
    good = {"name": "a", "age": 1, "score": 1}
    for docs, position in (([None], 0), ([good, 5], 1), ([good, good, ["name", "a"]], 2),
                           ([good, "abc"], 1)):
        with pytest.raises(InvalidValueError, match=rf"Document {position} of the import.*dict"):
            backend.import_documents(table, docs)
    assert _all(backend, table) == []
    backend.close()


def test_import_of_a_non_document_into_a_table_without_a_builder() -> None:
    backend = cl.Backend(app=_nested_app())
    try:
        with pytest.raises(InvalidValueError, match="Document 0 of the import"):
            backend.import_documents("nested", [None])
        for not_documents in (None, 5, {"a": 1.0}, "text"):
            with pytest.raises(InvalidValueError, match="iterable of documents"):
                backend.import_documents("nested", not_documents)
    finally:
        backend.close()


@pytest.mark.parametrize("schema", [None, define_schema({"t": define_table(v.any())})],
                         ids=["schemaless", "schema"])
def test_import_counts_fields_with_the_system_fields(schema: Any) -> None:
    backend = cl.Backend(app=cl.App(schema=schema))
    table = "t"
    wide = {f"f{i}": 1.0 for i in range(1100)}
    for _ in range(2):  # the second time too (its field names are known by then)
        with pytest.raises(LimitExceededError, match=r"\(1102 > maximum 1024\)") as e:
            backend.import_documents(table, [wide])
        assert e.value.code == "TooManyFieldsError"
    with pytest.raises(LimitExceededError, match=r"Document 1 .*\(1025 > maximum 1024\)"):
        backend.import_documents(table, [{"a": 1.0}, {f"f{i}": 1.0 for i in range(1023)}])
    (ok,) = backend.import_documents(table, [{f"f{i}": 1.0 for i in range(1022)}])
    (doc,) = _all(backend, table)  # what was accepted reads back (1024 fields with _id etc.)
    assert doc["_id"] == ok and len(doc) == 1024
    backend.close()


# One-pass builders ----------------------------------------------------------------------------

_VALIDATOR = v.object({"s": v.string(), "f": v.float64(), "i": v.int64(), "b": v.boolean(),
                       "n": v.null(), "o": v.optional(v.string())})
_scalars = st.one_of(st.text(max_size=5), st.floats(), st.integers(-2**64, 2**64),
                     st.booleans(), st.none(), st.binary(max_size=3),
                     st.builds(Int64, st.integers(-2**63, 2**63 - 1)), st.just(UNDEFINED))
_fields = st.dictionaries(st.sampled_from(["s", "f", "i", "b", "n", "o", "x", "_id"]), _scalars)


def _general(fields: dict[str, Any]) -> tuple[dict[str, Any], int] | None:
    """What the general path makes of ``fields``, or None if it rejects them."""
    table_def = define_table(_VALIDATOR)
    try:
        doc = table_def.validate_document(dict(fields), table="t")
        full = {"_id": "j" * 32, "_creationTime": 1.5}
        full.update(doc)
        size, _, _ = check_document(full)
    except Exception:  # noqa: BLE001 (any rejection counts)
        return None
    return full, size


@settings(max_examples=400, deadline=None)
@given(_fields)
def test_compiled_builder_agrees_with_the_general_path(fields: dict[str, Any]) -> None:
    build = compile_builder(_VALIDATOR)
    assert build is not None
    got = build(fields, "j" * 32, 1.5, None)
    if got is None:
        return  # the builder may always decline; the general path then decides
    expected = _general(fields)
    assert expected is not None, f"builder accepted what the general path rejects: {fields!r}"
    assert sort_key(got[0]) == sort_key(expected[0])
    assert got[1] == expected[1]


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["a", "b", "_x", "$y", "c d"]), _scalars))
def test_schemaless_builder_agrees_with_the_general_path(fields: dict[str, Any]) -> None:
    from convex_lab.values import check_field_name, convert_document

    for k in fields:  # names the general path has already seen are what the builder trusts
        try:
            check_field_name(k)
        except Exception:  # noqa: BLE001 (an invalid name: the general path will say so)
            continue
    got = build_schemaless(fields, "j" * 32, 1.5, None)
    if got is None:
        return
    full = {"_id": "j" * 32, "_creationTime": 1.5}
    full.update(convert_document(fields))
    size, _, _ = check_document(full)
    assert sort_key(got[0]) == sort_key(full)
    assert got[1] == size


def test_get_finds_documents_when_two_tables_share_an_id_prefix() -> None:
    # Table numbers n and n ^ 128 spell the same first three ID characters.
    backend = cl.Backend(app=cl.App())
    store = backend.store
    first = backend.import_documents("t0", [{"k": 0}])[0]
    for i in range(1, 130):
        backend.import_documents(f"t{i}", [{"k": i}])
    number = store.tables["t0"].number
    twin = next(t for t in store.tables.values() if t.number == number ^ 128)
    twin_id = store.run(lambda tx: [d["_id"] for d in tx.store.tables[twin.name].docs.values()],
                        read_only=True)[0]
    assert first[:3] == twin_id[:3]

    @backend.app.query(name="get_both")
    def get_both(ctx: Any) -> Any:
        return [ctx.db.get(first)["k"], ctx.db.get(twin_id)["k"], ctx.db.get("t0", first)["k"]]

    assert backend.query(get_both) == [0.0, float((number ^ 128) - number), 0.0]
    backend.close()


@pytest.mark.parametrize("values", [
    [3.0, 0.0, 1.5, 0.0, -2.0, math.inf, -math.inf, 0.0],  # zeros take the fast path now
    [1.0, -0.0, 0.0, -0.0, 2.0],  # -0.0 sorts before 0.0: the general path
    [1.0, math.nan, 0.0, -math.nan, 2.0],  # NaNs sort beyond the infinities
    ["b", "a", "b", "", "a"],  # strings: the fast path
    ["b", 1.0, None, "a", 0.0],  # mixed: the general path
])
def test_bulk_loaded_index_order_is_convex_order_then_creation(values: list[Any]) -> None:
    """A bulk import builds its index keys without a call per document when it can; the index
    order must still be Convex's value order, ties in creation order, as inserts one by one."""
    app = cl.App()
    app.schema = define_schema({"t": define_table({"x": v.any(), "n": v.float64()})
                                .index("by_x", ["x"])})

    @app.query(name="by_x")
    def by_x(ctx: Any) -> list[float]:
        return [d["n"] for d in ctx.db.query("t").with_index("by_x").collect()]

    docs = [{"x": x, "n": float(i)} for i, x in enumerate(values)]
    expected = [d["n"] for d in sorted(docs, key=lambda d: sort_key(d["x"]))]  # stable: ties
    with cl.Backend(app=app) as bulk:
        bulk.import_documents("t", docs)
        assert bulk.query("by_x") == expected


def test_a_closed_backend_is_freed_after_a_bulk_import() -> None:
    """A large import moves the heap out of the collector's sight (no GC pauses over a million
    documents); closing the backend gives it back, so a notebook re-running its import cell
    does not keep every old backend alive (each one's documents are in cycles with it)."""
    import gc
    import weakref

    refs = []
    for _ in range(2):
        backend = cl.Backend()
        backend.import_documents("t", ({"n": float(i)} for i in range(120_000)))  # > freeze
        refs.append(weakref.ref(backend.store))
        backend.close()
        del backend
    gc.collect()
    assert [r() for r in refs] == [None, None]

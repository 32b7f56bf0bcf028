"""Queries through ctx.db.query: index ranges, order, filters, result methods, pagination.

Reference: convex-semantics.md §4.1 to §4.5, §1.2 (order); DESIGN §2, §8 (int64 bounds).
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable
from typing import Any

import pytest

from convex_lab.errors import ConvexLabError, EvalError, InvalidCursorError, InvalidIndexRangeError
from convex_lab.schema import define_schema, define_table
from convex_lab.store.database import DatabaseReader, DatabaseWriter, UnknownTableWarning
from convex_lab.store.engine import Store
from convex_lab.validators import v
from convex_lab.values import UNDEFINED, Int64, sort_key

NAN = float("nan")


def write(store: Store, body: Callable[[DatabaseWriter], Any]) -> Any:
    return store.run(lambda tx: body(DatabaseWriter(tx)))


def read(store: Store, body: Callable[[DatabaseReader], Any]) -> Any:
    return store.run(lambda tx: body(DatabaseReader(tx)), read_only=True)


SCHEMA = define_schema({
    "items": define_table({
        "a": v.optional(v.any()),
        "b": v.optional(v.any()),
        "tag": v.optional(v.string()),
    }).index("by_a", ["a"]).index("by_a_b", ["a", "b"]),
    "counts": define_table({"n": v.int64(), "label": v.string()}).index("by_n", ["n"]),
    "nested": define_table({"info": v.optional(v.any())}).index("by_city", ["info.city"]),
})


@pytest.fixture
def store() -> Store:
    s = Store()
    s.set_schema(SCHEMA)
    yield s
    s.close()


def insert_all(store: Store, table: str, docs: list[dict[str, Any]]) -> list[str]:
    return [write(store, lambda db, d=d: db.insert(table, d)) for d in docs]


def a_values(docs: list[dict[str, Any]]) -> list[Any]:
    return [d.get("a", UNDEFINED) for d in docs]


def same(xs: list[Any], ys: list[Any]) -> bool:
    return sort_key(xs) == sort_key(ys)


def by_a(store: Store, range_fn: Callable[[Any], Any] | None = None, order: str = "asc") -> list:
    return a_values(read(store, lambda db: db.query("items").with_index("by_a", range_fn)
                         .order(order).collect()))


MIXED = [{"a": "x"}, {"a": Int64(3)}, {}, {"a": 2.0}, {"a": None}, {"a": -0.0}, {"a": 0.0},
         {"a": NAN}, {"a": math.inf}, {"a": True}, {"a": False}, {"a": b"\x01"}, {"a": [1.0]},
         {"a": {"k": 1.0}}, {"a": Int64(-5)}, {"a": "X"}, {"a": -math.inf}]
MIXED_ORDER = [UNDEFINED, None, Int64(-5), Int64(3), -math.inf, -0.0, 0.0, 2.0, math.inf, NAN,
               False, True, "X", "x", b"\x01", [1.0], {"k": 1.0}]


# --------------------------------------------------------------------------------------------
# Index order and ranges


def test_index_order_is_convex_total_order(store: Store) -> None:
    insert_all(store, "items", MIXED)
    assert same(by_a(store), MIXED_ORDER)
    assert same(by_a(store, order="desc"), MIXED_ORDER[::-1])


def test_missing_field_sorts_before_null_and_eq_undefined_matches_it(store: Store) -> None:
    insert_all(store, "items", MIXED)
    assert same(by_a(store, lambda q: q.eq("a", UNDEFINED)), [UNDEFINED])
    assert same(by_a(store, lambda q: q.eq("a", None)), [None])
    assert same(by_a(store, lambda q: q.gt("a", UNDEFINED)), MIXED_ORDER[1:])
    assert same(by_a(store, lambda q: q.gte("a", None)), MIXED_ORDER[1:])
    assert same(by_a(store, lambda q: q.lt("a", None)), [UNDEFINED])


def test_eq_distinguishes_int64_float_and_signed_zero(store: Store) -> None:
    insert_all(store, "items", MIXED)
    assert same(by_a(store, lambda q: q.eq("a", 0.0)), [0.0])
    assert same(by_a(store, lambda q: q.eq("a", -0.0)), [-0.0])
    assert same(by_a(store, lambda q: q.eq("a", NAN)), [NAN])
    assert same(by_a(store, lambda q: q.eq("a", Int64(3))), [Int64(3)])
    assert by_a(store, lambda q: q.eq("a", 3.0)) == []  # float 3.0 never matches int64 3
    assert by_a(store, lambda q: q.eq("a", 3)) == []  # a plain int is a float64 on v.any()
    assert same(by_a(store, lambda q: q.eq("a", [1.0])), [[1.0]])
    assert same(by_a(store, lambda q: q.eq("a", {"k": 1.0})), [{"k": 1.0}])


def test_bounds_on_one_field(store: Store) -> None:
    insert_all(store, "items", MIXED)
    assert same(by_a(store, lambda q: q.gte("a", -0.0).lt("a", math.inf)), [-0.0, 0.0, 2.0])
    assert same(by_a(store, lambda q: q.gt("a", -0.0).lte("a", math.inf)), [0.0, 2.0, math.inf])
    assert same(by_a(store, lambda q: q.gt("a", math.inf).lt("a", True)), [NAN, False])
    assert same(by_a(store, lambda q: q.gte("a", "X")), ["X", "x", b"\x01", [1.0], {"k": 1.0}])
    assert same(by_a(store, lambda q: q.lte("a", Int64(3))), [UNDEFINED, None, Int64(-5),
                                                             Int64(3)])
    assert by_a(store, lambda q: q.gt("a", 5.0).lt("a", 1.0)) == []  # empty, not an error
    assert same(by_a(store, lambda q: q.gt("a", 1.0).lt("a", 3.0), order="desc"), [2.0])


def test_two_field_index(store: Store) -> None:
    rows = [(1.0, "a"), (1.0, "b"), (1.0, "c"), (2.0, "a"), (2.0, None), (1.0, UNDEFINED)]
    insert_all(store, "items", [{"a": a, "b": b} if b is not UNDEFINED else {"a": a}
                                for a, b in rows])

    def ab(range_fn: Callable[[Any], Any], order: str = "asc") -> list[tuple[Any, Any]]:
        docs = read(store, lambda db: db.query("items").with_index("by_a_b", range_fn)
                    .order(order).collect())
        return [(d.get("a"), d.get("b", UNDEFINED)) for d in docs]

    assert ab(lambda q: q.eq("a", 1.0)) == [(1.0, UNDEFINED), (1.0, "a"), (1.0, "b"), (1.0, "c")]
    assert ab(lambda q: q.eq("a", 1.0).gt("b", "a")) == [(1.0, "b"), (1.0, "c")]
    assert ab(lambda q: q.eq("a", 1.0).gte("b", "a").lt("b", "c")) == [(1.0, "a"), (1.0, "b")]
    assert ab(lambda q: q.eq("a", 1.0).lte("b", "b"), "desc") == [
        (1.0, "b"), (1.0, "a"), (1.0, UNDEFINED)]
    assert ab(lambda q: q.eq("a", 2.0).eq("b", None)) == [(2.0, None)]
    assert ab(lambda q: q.eq("b", "a").eq("a", 2.0)) == [(2.0, "a")]  # eqs in any order
    assert ab(lambda q: q.gt("a", 1.0)) == [(2.0, None), (2.0, "a")]
    assert ab(lambda q: q.eq("a", 1.0).eq("b", UNDEFINED)) == [(1.0, UNDEFINED)]


def test_dotted_field_path_index(store: Store) -> None:
    insert_all(store, "nested", [{"info": {"city": "Oslo"}}, {"info": "flat"}, {},
                                 {"info": {"city": "Bern"}}, {"info": {"zip": 1}}])

    def cities(range_fn: Callable[[Any], Any] | None = None) -> list[Any]:
        docs = read(store, lambda db: db.query("nested").with_index("by_city", range_fn)
                    .collect())
        return [d.get("info", UNDEFINED) for d in docs]

    # a path through a non-object or a missing key is undefined, first in the index
    assert cities(lambda q: q.eq("info.city", UNDEFINED)) == ["flat", UNDEFINED, {"zip": 1.0}]
    assert cities(lambda q: q.gt("info.city", UNDEFINED)) == [{"city": "Bern"}, {"city": "Oslo"}]


def test_ties_broken_by_creation_time(store: Store) -> None:
    ids = write(store, lambda db: [db.insert("items", {"a": 1.0, "b": i}) for i in range(5)])
    ids += insert_all(store, "items", [{"a": 1.0, "b": i} for i in range(5, 8)])
    got = read(store, lambda db: db.query("items").with_index("by_a", lambda q: q.eq("a", 1.0))
               .collect())
    assert [d["_id"] for d in got] == ids
    desc = read(store, lambda db: db.query("items").with_index("by_a").order("desc").collect())
    assert [d["_id"] for d in desc] == ids[::-1]


def test_equal_creation_times_are_broken_by_id() -> None:
    store = Store(now=lambda: 1_700_000_000_000.0)  # a frozen clock
    store.set_schema(SCHEMA)
    txs = [store.begin() for _ in range(6)]  # concurrent: all start at the same creation time
    ids = [DatabaseWriter(tx).insert("items", {"a": 1.0}) for tx in txs]
    for tx in txs:
        tx.commit()  # blind inserts read nothing, so none conflicts
    docs = read(store, lambda db: db.query("items").with_index("by_a").collect())
    assert len({d["_creationTime"] for d in docs}) == 1
    assert [d["_id"] for d in docs] == sorted(ids)
    by_ct = read(store, lambda db: db.query("items").order("desc").collect())
    assert [d["_id"] for d in by_ct] == sorted(ids, reverse=True)
    store.close()


def test_by_creation_time_and_by_id(store: Store) -> None:
    ids = insert_all(store, "items", [{"a": float(i)} for i in range(6)])
    docs = read(store, lambda db: db.query("items").collect())
    assert [d["_id"] for d in docs] == ids  # the default index is by_creation_time
    ct = [d["_creationTime"] for d in docs]
    mid = read(store, lambda db: db.query("items").with_index(
        "by_creation_time", lambda q: q.gt("_creationTime", ct[1]).lte("_creationTime", ct[4]))
        .collect())
    assert [d["_id"] for d in mid] == ids[2:5]
    exact = read(store, lambda db: db.query("items").with_index(
        "by_creation_time", lambda q: q.eq("_creationTime", ct[3]).eq("_id", ids[3])).collect())
    assert [d["_id"] for d in exact] == [ids[3]]
    by_id = read(store, lambda db: [d["_id"] for d in db.query("items").with_index("by_id")
                                    .collect()])
    assert by_id == sorted(ids)
    one = read(store, lambda db: db.query("items").with_index("by_id", lambda q: q.eq("_id",
                                                                                      ids[2]))
               .unique())
    assert one["_id"] == ids[2]
    after = read(store, lambda db: db.query("items").with_index(
        "by_id", lambda q: q.gt("_id", sorted(ids)[3])).collect())
    assert [d["_id"] for d in after] == sorted(ids)[4:]
    # user indexes end with _creationTime and _id too
    tail = read(store, lambda db: db.query("items").with_index(
        "by_a", lambda q: q.eq("a", 2.0).eq("_creationTime", ct[2])).collect())
    assert [d["_id"] for d in tail] == [ids[2]]


def test_int64_field_takes_plain_int_bounds(store: Store) -> None:
    insert_all(store, "counts", [{"n": i, "label": str(i)} for i in (5, 1, 3, 2**62)])
    got = read(store, lambda db: db.query("counts").with_index(
        "by_n", lambda q: q.gte("n", 2).lt("n", 2**62)).collect())
    assert [d["label"] for d in got] == ["3", "5"]
    assert all(type(d["n"]) is Int64 for d in got)
    big = read(store, lambda db: db.query("counts").with_index("by_n", lambda q: q.eq("n", 2**62))
               .unique())
    assert big["n"] == 2**62
    filtered = read(store, lambda db: db.query("counts").filter(lambda q: q.gt(q.field("n"), 2))
                    .collect())
    assert sorted(d["label"] for d in filtered) == ["3", "4611686018427387904", "5"]
    # a float bound never matches an int64 field
    floats = read(store, lambda db: db.query("counts").with_index(
        "by_n", lambda q: q.gte("n", 2.5)).collect())
    assert floats == []


# --------------------------------------------------------------------------------------------
# Range errors


@pytest.mark.parametrize(
    ("range_fn", "code"),
    [
        (lambda q: q.eq("b", 1.0), "InvalidIndexRange"),  # not a prefix
        (lambda q: q.gt("b", 1.0), "InvalidIndexRange"),
        (lambda q: q.eq("a", 1.0).gt("_creationTime", 1.0), "InvalidIndexRange"),
        (lambda q: q.eq("zzz", 1.0), "FieldNotInIndex"),
        (lambda q: q.gt("tag", "x"), "FieldNotInIndex"),
        (lambda q: q.gt("a", 1.0).gt("a", 2.0), "AlreadyDefinedBound"),
        (lambda q: q.lt("a", 1.0).lte("a", 2.0), "AlreadyDefinedBound"),
        (lambda q: q.eq("a", 1.0).eq("a", 1.0), "AlreadyDefinedBound"),
        (lambda q: q.eq("a", 1.0).gt("a", 1.0), "AlreadyDefinedBound"),
        (lambda q: q.gt("a", 1.0).lt("b", 2.0), "BoundsOnMultipleFields"),
        (lambda q: q.eq("a", 1.0).gt("b", 1.0).lt("a", 2.0), "BoundsOnMultipleFields"),
    ],
)
def test_invalid_ranges(store: Store, range_fn: Callable[[Any], Any], code: str) -> None:
    insert_all(store, "items", [{"a": 1.0, "b": 1.0}])
    with pytest.raises(InvalidIndexRangeError) as e:
        read(store, lambda db: db.query("items").with_index("by_a_b", range_fn).collect())
    assert e.value.code == code
    assert "by_a_b" in str(e.value)


def test_unknown_index_and_unknown_table(store: Store) -> None:
    insert_all(store, "items", [{"a": 1.0}])
    with pytest.raises(InvalidIndexRangeError) as e:
        read(store, lambda db: db.query("items").with_index("by_nothing").collect())
    assert e.value.code == "IndexNotFound"
    assert "by_nothing" in str(e.value)
    # a table that does not exist is simply empty (with a warning: it is not in the schema)
    with pytest.warns(UnknownTableWarning, match="no table 'ghosts'"):
        assert read(store, lambda db: db.query("ghosts").collect()) == []
    with pytest.warns(UnknownTableWarning):
        assert read(store, lambda db: db.query("ghosts").first()) is None
    # a declared index on a table with no documents yet works
    assert read(store, lambda db: db.query("counts").with_index("by_n", lambda q: q.eq("n", 1))
                .collect()) == []
    # tables without a schema only have the two implicit indexes
    write(store, lambda db: db.insert("free", {"a": 1}))
    with pytest.raises(InvalidIndexRangeError):
        read(store, lambda db: db.query("free").with_index("by_a").collect())


# --------------------------------------------------------------------------------------------
# Filters


@pytest.fixture
def people(store: Store) -> Store:
    insert_all(store, "items", [
        {"a": 10.0, "b": 3.0, "tag": "x"},
        {"a": 20.0, "b": -1.0, "tag": "y"},
        {"a": 30.0, "tag": "x"},
        {"a": Int64(7), "b": Int64(2)},
        {"a": "text", "b": {"deep": 5.0}},
    ])
    return store


def filtered(store: Store, predicate: Callable[[Any], Any]) -> list[Any]:
    return a_values(read(store, lambda db: db.query("items").filter(predicate).collect()))


def test_filter_comparisons(people: Store) -> None:
    assert filtered(people, lambda q: q.eq(q.field("tag"), "x")) == [10.0, 30.0]
    assert filtered(people, lambda q: q.neq(q.field("tag"), "x")) == [20.0, Int64(7), "text"]
    assert filtered(people, lambda q: q.lt(q.field("a"), 20.0)) == [10.0, Int64(7)]
    assert filtered(people, lambda q: q.lte(q.field("a"), 20.0)) == [10.0, 20.0, Int64(7)]
    assert filtered(people, lambda q: q.gt(q.field("a"), 20.0)) == [30.0, "text"]
    assert filtered(people, lambda q: q.gte(q.field("a"), 20)) == [20.0, 30.0, "text"]
    # missing is undefined, lowest of all
    assert filtered(people, lambda q: q.eq(q.field("b"), UNDEFINED)) == [30.0]
    assert filtered(people, lambda q: q.lt(q.field("b"), None)) == [30.0]
    assert filtered(people, lambda q: q.eq(q.field("b.deep"), 5.0)) == ["text"]
    assert filtered(people, lambda q: q.eq(q.field("a"), Int64(7))) == [Int64(7)]
    assert filtered(people, lambda q: q.eq(q.field("a"), 7.0)) == []
    assert filtered(people, lambda q: q.eq(q.field("a"), q.field("a"))) == [
        10.0, 20.0, 30.0, Int64(7), "text"]


def test_filter_logic_and_arithmetic(people: Store) -> None:
    assert filtered(people, lambda q: q.and_(q.eq(q.field("tag"), "x"),
                                             q.gt(q.field("a"), 15.0))) == [30.0]
    assert filtered(people, lambda q: q.or_(q.eq(q.field("tag"), "y"),
                                            q.eq(q.field("a"), "text"))) == [20.0, "text"]
    assert filtered(people, lambda q: q.not_(q.eq(q.field("tag"), "x"))) == [20.0, Int64(7),
                                                                              "text"]
    only_numbers = [10.0, 20.0]  # docs 1 and 2: float a and float b
    numeric = lambda q: q.and_(q.eq(q.field("tag"), "x"), q.eq(q.field("b"), 3.0))  # noqa: E731
    assert filtered(people, numeric) == [10.0]
    within = [lambda q: q.eq(q.add(q.field("a"), q.field("b")), 13.0),
              lambda q: q.eq(q.sub(q.field("a"), q.field("b")), 21.0),
              lambda q: q.eq(q.mul(q.field("b"), 2.0), 6.0),
              lambda q: q.eq(q.div(q.field("a"), 4.0), 5.0),
              lambda q: q.eq(q.mod(q.field("a"), 7.0), 6.0),
              lambda q: q.eq(q.neg(q.field("b")), 1.0)]
    expected = [[10.0], [20.0], [10.0], [20.0], [20.0], [20.0]]
    for predicate, want in zip(within, expected, strict=True):
        got = a_values(read(people, lambda db, p=predicate: db.query("items").with_index(
            "by_a", lambda q: q.gte("a", 10.0).lte("a", 20.0)).filter(p).collect()))
        assert got == want
        assert set(got) <= set(only_numbers)
    int_sum = read(people, lambda db: db.query("items").with_index(
        "by_a", lambda q: q.eq("a", Int64(7))).filter(
        lambda q: q.eq(q.add(q.field("a"), q.field("b")), Int64(9))).collect())
    assert len(int_sum) == 1


def test_filter_errors(people: Store) -> None:
    with pytest.raises(EvalError):  # mixed types: float + missing/string/int64
        read(people, lambda db: db.query("items").filter(
            lambda q: q.eq(q.add(q.field("a"), q.field("b")), 1.0)).collect())
    with pytest.raises(EvalError, match="as a Boolean"):
        read(people, lambda db: db.query("items").filter(lambda q: q.field("a")).collect())
    with pytest.raises(TypeError):
        read(people, lambda db: db.query("items").filter(
            lambda q: q.eq(q.field("a"), 1.0) and q.eq(q.field("b"), 2.0)).collect())


def test_filter_after_index_counts_and_chains(people: Store) -> None:
    got = read(people, lambda db: db.query("items").with_index("by_a", lambda q: q.gte("a", 0.0))
               .order("desc").filter(lambda q: q.eq(q.field("tag"), "x"))
               .filter(lambda q: q.lt(q.field("a"), 25.0)).collect())
    assert a_values(got) == [10.0]


# --------------------------------------------------------------------------------------------
# Result methods and the single-use builder


def test_take_first_unique_and_iteration(store: Store) -> None:
    ids = insert_all(store, "items", [{"a": float(i)} for i in range(5)])
    assert a_values(read(store, lambda db: db.query("items").take(2))) == [0.0, 1.0]
    assert read(store, lambda db: db.query("items").take(0)) == []
    assert len(read(store, lambda db: db.query("items").take(100))) == 5
    assert read(store, lambda db: db.query("items").order("desc").first())["a"] == 4.0
    with pytest.warns(UnknownTableWarning):
        assert read(store, lambda db: db.query("ghosts").first()) is None
    assert read(store, lambda db: [d["a"] for d in db.query("items").order("desc")]) == [
        4.0, 3.0, 2.0, 1.0, 0.0]
    one = read(store, lambda db: db.query("items").with_index("by_a", lambda q: q.eq("a", 3.0))
               .unique())
    assert one["_id"] == ids[3]
    assert read(store, lambda db: db.query("items").with_index(
        "by_a", lambda q: q.eq("a", 9.0)).unique()) is None
    with pytest.raises(ConvexLabError) as e:
        read(store, lambda db: db.query("items").unique())
    assert str(e.value).startswith("unique() query returned more than one result from table "
                                   "items:\n [")
    assert ids[0] in str(e.value)
    assert ids[1] in str(e.value)
    for bad in (-1, 1.5, "2", None):
        with pytest.raises(ConvexLabError):
            read(store, lambda db, bad=bad: db.query("items").take(bad))


def test_iteration_is_lazy_and_streams_past_batches(store: Store) -> None:
    write(store, lambda db: [db.insert("items", {"a": float(i)}) for i in range(250)])

    def body(db: DatabaseReader) -> list[float]:
        out = []
        for doc in db.query("items"):
            out.append(doc["a"])
            if len(out) == 120:
                break
        return out

    assert read(store, body) == [float(i) for i in range(120)]
    assert len(read(store, lambda db: list(db.query("items").order("desc")))) == 250


def test_queries_are_single_use(store: Store) -> None:
    insert_all(store, "items", [{"a": 1.0}])

    def body(db: DatabaseReader) -> None:
        q = db.query("items")
        q.collect()
        for again in (q.collect, q.first, lambda: q.take(1), lambda: list(q),
                      lambda: q.order("asc"), lambda: q.filter(lambda f: f.eq(1.0, 1.0)),
                      lambda: q.with_index("by_a"),
                      lambda: q.paginate({"numItems": 1, "cursor": None})):
            with pytest.raises(ConvexLabError, match="chained"):
                again()
        it = db.query("items")
        next(iter(it))
        with pytest.raises(ConvexLabError):
            it.first()
        with pytest.raises(ConvexLabError):
            db.query("items").order("asc").order("desc")
        with pytest.raises(ConvexLabError):
            db.query("items").order("up")
        with pytest.raises(ConvexLabError):
            db.query("items").filter(lambda f: f.eq(f.field("a"), 1.0)).with_index("by_a")
        with pytest.raises(ConvexLabError):
            db.query("items").with_index("by_a").with_index("by_a")

    read(store, body)


# --------------------------------------------------------------------------------------------
# Pagination


def all_pages(store: Store, make: Callable[[DatabaseReader], Any], n: int,
              **extra: Any) -> list[dict[str, Any]]:
    pages = []
    cursor = None
    for _ in range(1000):
        page = read(store, lambda db, c=cursor: make(db).paginate({"numItems": n, "cursor": c,
                                                                    **extra}))
        pages.append(page)
        if page["isDone"]:
            return pages
        cursor = page["continueCursor"]
    raise AssertionError("pagination never finished")


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("n", [1, 3, 7, 50])
def test_pages_concatenate_to_the_full_result(store: Store, order: str, n: int) -> None:
    insert_all(store, "items", MIXED * 2)

    def make(db: DatabaseReader) -> Any:
        return db.query("items").with_index("by_a", lambda q: q.gt("a", None)).order(order) \
            .filter(lambda q: q.neq(q.field("a"), "x"))

    pages = all_pages(store, make, n)
    flat = [d for p in pages for d in p["page"]]
    assert [d["_id"] for d in flat] == [d["_id"] for d in read(store, lambda db: make(db)
                                                               .collect())]
    assert all(not p["isDone"] for p in pages[:-1])
    assert pages[-1]["isDone"]
    assert all(isinstance(p["continueCursor"], str) for p in pages)
    assert all(len(p["page"]) <= n for p in pages)


def test_empty_and_exhausted_pagination(store: Store) -> None:
    with pytest.warns(UnknownTableWarning):
        page = read(store, lambda db: db.query("ghosts").paginate({"numItems": 5,
                                                                   "cursor": None}))
    assert page["page"] == []
    assert page["isDone"] is True
    insert_all(store, "items", [{"a": 1.0}])
    first = read(store, lambda db: db.query("items").paginate({"numItems": 5, "cursor": None}))
    assert len(first["page"]) == 1
    assert first["isDone"]
    again = read(store, lambda db: db.query("items").paginate(
        {"numItems": 5, "cursor": first["continueCursor"]}))
    assert again["page"] == []
    assert again["isDone"]


def test_bad_pagination_options(store: Store) -> None:
    insert_all(store, "items", [{"a": 1.0}])
    for opts in ({"numItems": 0, "cursor": None}, {"numItems": -3, "cursor": None},
                 {"cursor": None}, {"numItems": 32_001, "cursor": None},
                 {"numItems": 1, "cursor": None, "maximumRowsRead": 0}):
        with pytest.raises(ConvexLabError):
            read(store, lambda db, o=opts: db.query("items").paginate(o))


def test_cursor_from_another_query_is_invalid(store: Store) -> None:
    insert_all(store, "items", [{"a": float(i), "tag": "x"} for i in range(5)])
    page = read(store, lambda db: db.query("items").with_index("by_a", lambda q: q.gt("a", 1.0))
                .paginate({"numItems": 2, "cursor": None}))
    cursor = page["continueCursor"]
    others: list[Callable[[DatabaseReader], Any]] = [
        lambda db: db.query("items"),
        lambda db: db.query("items").with_index("by_a", lambda q: q.gt("a", 2.0)),
        lambda db: db.query("items").with_index("by_a", lambda q: q.gt("a", 1.0)).order("desc"),
        lambda db: db.query("items").with_index("by_a", lambda q: q.gt("a", 1.0))
        .filter(lambda q: q.eq(q.field("tag"), "x")),
        lambda db: db.query("counts"),
    ]
    for make in others:
        with pytest.raises(InvalidCursorError) as e:
            read(store, lambda db, m=make: m(db).paginate({"numItems": 2, "cursor": cursor}))
        assert e.value.code == "InvalidCursor"
        assert e.value.data == {"isConvexSystemError": True, "paginationError": "InvalidCursor"}
    for garbage in ("garbage", cursor[:-4], ""):
        with pytest.raises(InvalidCursorError):
            read(store, lambda db, g=garbage: db.query("items").with_index(
                "by_a", lambda q: q.gt("a", 1.0)).paginate({"numItems": 2, "cursor": g}))
    # the same query with the same arguments continues fine
    rest = read(store, lambda db: db.query("items").with_index("by_a", lambda q: q.gt("a", 1.0))
                .paginate({"numItems": 10, "cursor": cursor}))
    assert a_values(rest["page"]) == [4.0]


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_end_cursor_keeps_page_boundaries(store: Store, order: str) -> None:
    ids = insert_all(store, "items", [{"a": float(i)} for i in range(0, 100, 10)])

    def make(db: DatabaseReader) -> Any:
        return db.query("items").with_index("by_a").order(order)

    p1 = read(store, lambda db: make(db).paginate({"numItems": 3, "cursor": None}))
    p2 = read(store, lambda db: make(db).paginate({"numItems": 3, "cursor": p1["continueCursor"]}))
    first_page = a_values(p1["page"])
    second_page = a_values(p2["page"])
    inside1 = (first_page[0] + first_page[1]) / 2
    inside2 = (second_page[0] + second_page[1]) / 2
    # grow page 1 by two; in page 2 delete one document and insert another
    write(store, lambda db: db.insert("items", {"a": inside1}))
    write(store, lambda db: db.insert("items", {"a": inside1 + 0.5}))
    write(store, lambda db: db.delete(ids[int(second_page[1]) // 10]))
    write(store, lambda db: db.insert("items", {"a": inside2}))

    again1 = read(store, lambda db: make(db).paginate(
        {"numItems": 3, "cursor": None, "endCursor": p1["continueCursor"]}))
    again2 = read(store, lambda db: make(db).paginate(
        {"numItems": 3, "cursor": p1["continueCursor"], "endCursor": p2["continueCursor"]}))
    expected1 = sorted([*first_page, inside1, inside1 + 0.5], reverse=order == "desc")
    expected2 = sorted([second_page[0], inside2, second_page[2]], reverse=order == "desc")
    assert a_values(again1["page"]) == expected1
    assert a_values(again2["page"]) == expected2
    assert again1["continueCursor"] == p1["continueCursor"]
    assert again2["continueCursor"] == p2["continueCursor"]
    assert not again1["isDone"]
    # the page after them starts where it did before
    p3 = read(store, lambda db: make(db).paginate({"numItems": 100,
                                                   "cursor": p2["continueCursor"]}))
    expected_rest = [float(x) for x in range(0, 100, 10)]
    expected_rest = expected_rest[6:] if order == "asc" else expected_rest[::-1][6:]
    assert a_values(p3["page"]) == expected_rest
    assert p3["isDone"]


def test_maximum_rows_read_splits_the_page(store: Store) -> None:
    insert_all(store, "items", [{"a": float(i), "tag": "odd" if i % 2 else "even"}
                                for i in range(20)])

    def make(db: DatabaseReader) -> Any:
        return db.query("items").with_index("by_a").filter(lambda q: q.eq(q.field("tag"),
                                                                          "even"))

    page = read(store, lambda db: make(db).paginate({"numItems": 100, "cursor": None,
                                                     "maximumRowsRead": 5}))
    assert page["pageStatus"] == "SplitRequired"
    assert not page["isDone"]
    assert a_values(page["page"]) == [0.0, 2.0, 4.0]  # 5 rows read, 3 of them match
    rest = read(store, lambda db: make(db).paginate({"numItems": 100,
                                                     "cursor": page["continueCursor"]}))
    assert a_values(rest["page"]) == [float(i) for i in range(6, 20, 2)]
    assert rest["isDone"]
    assert rest["pageStatus"] != "SplitRequired"


def test_one_paginate_per_database_reader(store: Store) -> None:
    insert_all(store, "items", [{"a": 1.0}])

    def body(db: DatabaseReader) -> None:
        db.query("items").paginate({"numItems": 1, "cursor": None})
        with pytest.raises(ConvexLabError) as e:
            db.query("items").paginate({"numItems": 1, "cursor": None})
        assert e.value.code == "MultiplePaginatedDatabaseQueries"
        # other query kinds are still fine
        assert len(db.query("items").collect()) == 1

    read(store, body)
    # a new reader (another function execution) may paginate again
    store.run(lambda tx: [DatabaseReader(tx).query("items").paginate(
        {"numItems": 1, "cursor": None}) for _ in range(2)], read_only=True)


def test_paginate_sees_own_writes(store: Store) -> None:
    insert_all(store, "items", [{"a": 1.0}, {"a": 3.0}])

    def body(db: DatabaseWriter) -> list[Any]:
        db.insert("items", {"a": 2.0})
        return a_values(db.query("items").with_index("by_a").paginate(
            {"numItems": 10, "cursor": None})["page"])

    assert write(store, body) == [1.0, 2.0, 3.0]


# --------------------------------------------------------------------------------------------
# Hostile input (issue 7): odd arguments are convex_lab errors naming the fix, never a bare
# ValueError/TypeError from inside the query engine.


@pytest.mark.parametrize("key", ["numItems", "maximumRowsRead", "maximumBytesRead"])
@pytest.mark.parametrize("bad", [NAN, math.inf, -1.0, 1.5, "10", True, [1]],
                         ids=["nan", "inf", "negative", "fraction", "string", "bool", "list"])
def test_pagination_counts_must_be_whole_numbers(store: Store, key: str, bad: Any) -> None:
    # A fractional maximumRowsRead used to make the page loop forever; NaN and inf failed in
    # int(). Convex sends these counts as unsigned integers (usize).
    insert_all(store, "items", [{"a": float(i)} for i in range(3)])
    opts = {"numItems": 2, "cursor": None, key: bad}
    with pytest.raises(ConvexLabError, match=f"options.{key}` must be a positive whole") as e:
        read(store, lambda db: db.query("items").paginate(opts))
    assert e.value.code == "InvalidPaginationOptions"


def test_pagination_count_limits_keep_convex_texts(store: Store) -> None:
    insert_all(store, "items", [{"a": 1.0}])
    cases = [({"numItems": 0}, "Must request at least 1 document while paginating"),
             ({"numItems": 10**5000}, "at most 32000"),
             ({"numItems": 1, "maximumRowsRead": 0}, "must be greater than 0")]
    for extra, text in cases:
        with pytest.raises(ConvexLabError, match=text):
            read(store, lambda db, e=extra: db.query("items").paginate({"cursor": None, **e}))
    page = read(store, lambda db: db.query("items").paginate(
        {"numItems": 2.0, "cursor": None, "maximumRowsRead": 10**30}))
    assert a_values(page["page"]) == [1.0]  # whole floats and huge limits are fine


def _edit_cursor(cursor: str, position: Any) -> str:
    """The cursor with its position replaced. Cursors are base64 JSON (``query._cursor``): a
    client can read them, and so it can send back edited ones."""
    body = json.loads(base64.urlsafe_b64decode(cursor))
    body["p"] = position
    return base64.urlsafe_b64encode(json.dumps(body).encode()).decode()


def test_edited_cursors_are_invalid_cursors(store: Store) -> None:
    insert_all(store, "items", [{"a": float(i)} for i in range(5)])

    def make(db: DatabaseReader) -> Any:
        return db.query("items").with_index("by_a", lambda q: q.gt("a", 0.0))

    cursor = read(store, lambda db: make(db).paginate({"numItems": 2, "cursor": None}))[
        "continueCursor"]
    real = json.loads(base64.urlsafe_b64decode(cursor))["p"]
    edits = [
        "abc", 5, [], [{"i": "5"}], [{"i": "3"}, "x"], real[:-1], [*real, "extra"],
        [{"i": "99"}, *real[1:]], [{"f": 5}, *real[1:]],
        [{"i": "3"}, {"f": "0x1p0"}, "x", *real[3:]],
        [{"i": "7"}, "not-a-tuple", *real[2:]], [{"i": "1" * 5000}, *real[1:]], {"f": "nan"},
        [{"q": 1}], [[[[[[[[[[[[]]]]]]]]]]]],
    ]
    for position in edits:
        for field in ("cursor", "endCursor"):
            opts: dict[str, Any] = {"numItems": 2, "cursor": None}
            opts[field] = _edit_cursor(cursor, position)
            with pytest.raises(InvalidCursorError):
                read(store, lambda db, o=opts: make(db).paginate(o))
    for junk in (b"bytes", 123, ["list"], "\u00e9\u00e9", "x" * 10_000):
        with pytest.raises(InvalidCursorError):
            read(store, lambda db, j=junk: make(db).paginate({"numItems": 2, "cursor": j}))
    # the untouched cursor still continues where it left off
    rest = read(store, lambda db: make(db).paginate({"numItems": 10, "cursor": cursor}))
    assert a_values(rest["page"]) == [3.0, 4.0]


def test_odd_arguments_to_query_builders(store: Store) -> None:
    insert_all(store, "items", [{"a": 1.0}, {"a": 2.0}])
    attempts: list[tuple[Callable[[DatabaseReader], Any], str]] = [
        (lambda db: db.query("items").with_index(123).collect(), "not found"),
        (lambda db: db.query("items").with_index(["by_a"]).collect(), "not found"),
        (lambda db: db.query("items").with_index("by_a", 123).collect(), "function of the range"),
        (lambda db: db.query("items").with_index("by_a", lambda q: q.eq(["a"], 1)).collect(),
         "field name must be a string"),
        (lambda db: db.query("counts").with_index("by_n", lambda q: q.gt({"n"}, 1)).collect(),
         "field name must be a string"),
        (lambda db: db.query("items").with_index("by_a", lambda q: q.gt("", 1.0)).collect(),
         "uses the field '', which is not in the index"),  # found by test_fuzz.py
        (lambda db: db.query("items").filter(123).collect(), r"filter\(\) takes a function"),
        (lambda db: db.query("items").filter(lambda q: q.eq(q.field(10**5000), 1)).collect(),
         "Invalid field path"),
        (lambda db: db.query("items").order(["asc"]).collect(), "asc"),
        (lambda db: db.query("items").take(-1), "non-negative integer"),
        (lambda db: db.query("items").take(NAN), "non-negative integer"),
        (lambda db: db.query("items").take("2"), "non-negative integer"),
    ]
    for attempt, text in attempts:
        with pytest.raises(ConvexLabError, match=text):
            read(store, attempt)
    # huge n is just "everything" (it used to overflow islice), with or without filters
    assert len(read(store, lambda db: db.query("items").take(10**30))) == 2
    assert len(read(store, lambda db: db.query("items").filter(
        lambda q: q.eq(q.field("a"), q.field("a"))).take(10**30))) == 2


def test_python_and_or_on_filter_expressions_is_a_convex_lab_error(store: Store) -> None:
    insert_all(store, "items", [{"a": 1.0}])
    with pytest.raises(ConvexLabError, match=r"q\.and_") as e:
        read(store, lambda db: db.query("items").filter(
            lambda q: q.eq(q.field("a"), 1) and q.eq(q.field("b"), 2)).collect())
    assert isinstance(e.value, TypeError)  # still what Python expects from bool()

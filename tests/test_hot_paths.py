"""The shortcuts of the hot paths give exactly what the general paths give.

* ``tables.take_keys`` is ``islice(SortedList.irange(...), n)`` without the iterator machinery;
* a query result that is still exactly what ``ctx.db`` handed out skips conversion
  (``store/handout.py``), and any change to it — an edited field, a plain ``int``, an added
  document — goes through conversion as before;
* results of the common flat shapes are recognised as canonical without a per-value walk.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sortedcontainers import SortedList

import convex_lab as cl
from convex_lab import v
from convex_lab.errors import InvalidValueError
from convex_lab.store.tables import take_keys


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 60), max_size=400),
       st.tuples(st.integers(-2, 62), st.integers(-2, 62), st.integers(0, 500), st.booleans()),
       st.sampled_from([4, 16, 1000]))
def test_take_keys_is_islice_of_irange(values: list[int], walk: tuple[int, int, int, bool],
                                       load: int) -> None:
    lo, hi, n, reverse = walk
    entries = SortedList()
    entries._reset(load)  # small sublists: the walk crosses many of them
    entries.update(values)
    want = list(itertools.islice(
        entries.irange(lo, hi, inclusive=(True, False), reverse=reverse), n))
    assert take_keys(entries, lo, hi, n, reverse) == want


P = "test_hot_paths:"  # the module's functions' paths


@pytest.fixture
def backend() -> Any:
    app = cl.App()
    app.schema = cl.define_schema({
        "docs": cl.define_table({"author": v.string(), "n": v.float64()})
        .index("by_author", ["author"]),
    })

    @app.query
    def as_read(ctx: Any) -> Any:
        return ctx.db.query("docs").with_index("by_author", lambda q: q.eq("author", "a")).take(3)

    @app.query
    def edited(ctx: Any) -> Any:
        docs = ctx.db.query("docs").take(3)
        docs[0]["n"] = 7  # a plain int: must leave as a float64
        docs[1]["extra"] = [1, 2]
        return docs

    @app.query
    def reordered(ctx: Any) -> Any:
        docs = ctx.db.query("docs").collect()
        docs.reverse()
        return docs

    @app.query
    def grown(ctx: Any) -> Any:
        docs = ctx.db.query("docs").take(2)
        docs.append({"n": 3})
        return docs

    @app.query
    def bad(ctx: Any) -> Any:
        docs = ctx.db.query("docs").take(2)
        docs[0]["$bad"] = 1.0
        return docs

    @app.query
    def one(ctx: Any, id: str) -> Any:
        doc = ctx.db.get(id)
        doc["n"] = 2
        return doc

    @app.query
    def page(ctx: Any) -> Any:
        result = ctx.db.query("docs").paginate({"numItems": 2, "cursor": None})
        result["page"][0]["n"] = 5
        return result

    @app.mutation
    def add(ctx: Any, author: str, n: float) -> Any:
        return ctx.db.insert("docs", {"author": author, "n": n})

    with cl.Backend(app=app) as b:
        for i in range(3):
            b.mutation(add, {"author": "a", "n": float(i)})
        yield b


def test_a_result_handed_out_unchanged_is_the_documents(backend: cl.Backend) -> None:
    rows = backend.query(P + "as_read")
    assert [r["n"] for r in rows] == [0.0, 1.0, 2.0]
    assert all(type(r["n"]) is float for r in rows)


def test_changed_results_are_converted_as_before(backend: cl.Backend) -> None:
    rows = backend.query(P + "edited")
    assert rows[0]["n"] == 7.0 and type(rows[0]["n"]) is float
    assert rows[1]["extra"] == [1.0, 2.0] and all(type(x) is float for x in rows[1]["extra"])
    assert [r["n"] for r in backend.query(P + "reordered")] == [2.0, 1.0, 0.0]
    grown = backend.query(P + "grown")
    assert grown[-1] == {"n": 3.0} and type(grown[-1]["n"]) is float
    with pytest.raises(InvalidValueError, match=r"\$"):
        backend.query(P + "bad")
    first = backend.query(P + "as_read")[0]
    got = backend.query(P + "one", {"id": first["_id"]})
    assert got["n"] == 2.0 and type(got["n"]) is float
    page = backend.query(P + "page")
    assert page["page"][0]["n"] == 5.0 and type(page["page"][0]["n"]) is float


@pytest.mark.parametrize(("value", "canonical"), [
    ([{"a": 1.0, "b": "x"}], True),
    ([{"a": 1}], False),  # a plain int: float64 after conversion
    ([{"a": cl.Int64(1)}], False),  # an Int64's range is checked by conversion
    ([{"a": [1.0]}], False),  # nested values are converted
    ({"a": "é"}, True),
    ("é", False),
    ([1.0, 2.0], True),
    (["a"], False),
])
def test_flat_results_are_recognised_without_a_walk(value: Any, canonical: bool) -> None:
    from convex_lab._runtime import is_canonical_flat
    from convex_lab.values import check_field_name

    check_field_name("a")
    check_field_name("b")
    assert is_canonical_flat(value) is canonical


_ARG_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-2**60, 2**60),
                        st.floats(allow_nan=True), st.text(max_size=5),
                        st.integers(-5, 5).map(cl.Int64), st.just(cl.UNDEFINED))


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(["s", "f", "i", "b", "o", "x"]), _ARG_VALUES, max_size=6))
def test_the_compiled_args_checker_agrees_with_the_validator(args: dict[str, Any]) -> None:
    from convex_lab.errors import ConvexLabError
    from convex_lab.store.fastpath import compile_args
    from convex_lab.validators import VObject

    validator = VObject({"s": v.string(), "f": v.float64(), "i": v.int64(), "b": v.boolean(),
                         "o": v.optional(v.float64())})
    checker = compile_args(validator)
    assert checker is not None
    got = checker(args)
    try:
        want: Any = validator.validate(args)
    except ConvexLabError:
        want = "error"
    if got is None:  # the general path decides: nothing to compare
        return
    assert want != "error"
    assert got == want
    assert {k: type(x) for k, x in got.items()} == {k: type(x) for k, x in want.items()}

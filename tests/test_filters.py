"""Filter expressions: every operator, Convex's total order, EvalErrors, wire JSON, literals."""

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convex_lab.errors import EvalError, InvalidValueError
from convex_lab.store.filters import (
    Expr,
    FilterBuilder,
    compile_filter,
    expression_from_json,
    flatten_and,
    get_field_path,
)
from convex_lab.validators import v
from convex_lab.values import INT64_MAX, INT64_MIN, UNDEFINED, Int64, convert, sort_key

q = FilterBuilder()
ONE = "AQAAAAAAAAA="  # Int64(1) in internal JSON
DOC = {"name": "ada", "age": 36.0, "n": Int64(7), "nested": {"x": {"y": 1.0}}, "tags": ["a"]}


def ev(expr: Expr, doc: dict[str, Any] = DOC) -> Any:
    return expr.evaluate(doc)


# --------------------------------------------------------------------------------------------
# Fields


def test_field_paths_traverse_objects_only() -> None:
    assert ev(q.field("name")) == "ada"
    assert ev(q.field("nested.x.y")) == 1.0
    assert ev(q.field("nested.x")) == {"y": 1.0}
    assert ev(q.field("missing")) is UNDEFINED
    assert ev(q.field("name.length")) is UNDEFINED  # through a string
    assert ev(q.field("tags.0")) is UNDEFINED  # arrays are not traversed
    assert get_field_path(DOC, ("nested", "x", "y")) == 1.0
    assert get_field_path(DOC, "nested.zz.y") is UNDEFINED
    assert get_field_path(5, "a") is UNDEFINED


def test_invalid_field_path() -> None:
    for bad in ("", "a..b", 3):
        with pytest.raises(EvalError):
            q.field(bad)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Comparisons


@pytest.mark.parametrize(
    ("op", "expected"),
    [("eq", False), ("neq", True), ("lt", True), ("lte", True), ("gt", False), ("gte", False)],
)
def test_comparison_operators(op: str, expected: bool) -> None:
    expr = getattr(q, op)(q.field("age"), 40)
    assert ev(expr) is expected


def test_comparisons_on_equal_values() -> None:
    assert ev(q.eq(q.field("name"), "ada")) is True
    assert ev(q.lte(q.field("name"), "ada")) is True
    assert ev(q.gte(q.field("name"), "ada")) is True
    assert ev(q.lt(q.field("name"), "ada")) is False


def test_int64_never_equals_float64() -> None:
    assert ev(q.eq(q.field("n"), 7)) is False  # 7 is a float64 literal here
    assert ev(q.eq(q.field("n"), Int64(7))) is True
    assert ev(q.gte(q.field("n"), 18)) is False  # every int64 sorts below every float64
    assert ev(q.lt(q.field("n"), -1e300)) is True


def test_undefined_ordering() -> None:
    assert ev(q.eq(q.field("missing"), UNDEFINED)) is True
    assert ev(q.lt(q.field("missing"), None)) is True  # undefined < null
    assert ev(q.gt(q.field("name"), UNDEFINED)) is True
    assert ev(q.neq(q.field("name"), UNDEFINED)) is True
    assert ev(q.eq(q.field("missing"), None)) is False


def test_total_order_across_types() -> None:
    ordered = [UNDEFINED, None, Int64(-5), Int64(3), -math.inf, -0.0, 0.0, 2.5, math.inf,
               math.nan, False, True, "", "a", b"", b"\x00", [], [1.0], {}, {"a": 1.0}]  # fmt: skip
    for i, a in enumerate(ordered):
        for b in ordered[i + 1 :]:
            assert ev(q.lt(a, b), {}) is True, (a, b)
            assert ev(q.gt(b, a), {}) is True, (a, b)
            assert ev(q.eq(a, b), {}) is False, (a, b)
    assert ev(q.eq(math.nan, math.nan), {}) is True
    assert ev(q.eq(-0.0, 0.0), {}) is False


# --------------------------------------------------------------------------------------------
# Arithmetic


@pytest.mark.parametrize(
    ("op", "a", "b", "expected"),
    [
        ("add", 7, 2, 9), ("sub", 7, 2, 5), ("mul", 7, 2, 14), ("div", 7, 2, 3),
        ("div", -7, 2, -3), ("mod", 7, 2, 1), ("mod", -7, 2, -1), ("mod", 7, -2, 1),
    ],
)  # fmt: skip
def test_int64_arithmetic_truncates(op: str, a: int, b: int, expected: int) -> None:
    got = ev(getattr(q, op)(Int64(a), Int64(b)), {})
    assert got == expected and type(got) is Int64


@pytest.mark.parametrize(
    ("op", "a", "b", "expected"),
    [("add", 1.5, 2.0, 3.5), ("sub", 1.0, 2.5, -1.5), ("mul", 3.0, 0.5, 1.5),
     ("div", 1.0, 4.0, 0.25), ("mod", -7.5, 2.0, -1.5), ("div", 1.0, 0.0, math.inf),
     ("div", -1.0, 0.0, -math.inf), ("div", 1.0, -0.0, -math.inf)],
)  # fmt: skip
def test_float64_arithmetic_is_ieee(op: str, a: float, b: float, expected: float) -> None:
    assert ev(getattr(q, op)(a, b), {}) == expected


def test_float_nan_results() -> None:
    assert math.isnan(ev(q.div(0.0, 0.0), {}))
    assert math.isnan(ev(q.mod(1.0, 0.0), {}))
    assert math.isnan(ev(q.mod(math.inf, 2.0), {}))


def test_arithmetic_on_fields_and_plain_ints() -> None:
    assert ev(q.add(q.field("age"), 1)) == 37.0  # plain int literal is a float64
    assert ev(q.gt(q.mul(q.field("age"), 2), 70)) is True


def test_mixed_arithmetic_is_an_error() -> None:
    with pytest.raises(EvalError) as info:
        ev(q.add(1.0, Int64(1)), {})
    assert str(info.value) == "Cannot add 1 (type float64) and 1n (type int64)"
    text = r'Cannot subtract "a" \(type string\) and 1 \(type float64\)'
    with pytest.raises(EvalError, match=text):
        ev(q.sub("a", 1.0), {})
    with pytest.raises(EvalError, match=r"Cannot multiply undefined \(type undefined\)"):
        ev(q.mul(q.field("missing"), 2.0))
    with pytest.raises(EvalError, match="Cannot divide"):
        ev(q.div(None, None), {})
    with pytest.raises(EvalError, match="Cannot mod"):
        ev(q.mod(True, 1.0), {})


def test_int64_overflow_and_division_by_zero() -> None:
    with pytest.raises(EvalError, match="overflows int64"):
        ev(q.add(Int64(INT64_MAX), Int64(1)), {})
    with pytest.raises(EvalError, match="overflows int64"):
        ev(q.mul(Int64(INT64_MIN), Int64(-1)), {})
    with pytest.raises(EvalError, match="overflows int64"):
        ev(q.div(Int64(INT64_MIN), Int64(-1)), {})
    with pytest.raises(EvalError, match="by zero"):
        ev(q.div(Int64(1), Int64(0)), {})
    with pytest.raises(EvalError, match="by zero"):
        ev(q.mod(Int64(1), Int64(0)), {})


def test_neg() -> None:
    assert ev(q.neg(Int64(3)), {}) == Int64(-3)
    assert type(ev(q.neg(Int64(3)), {})) is Int64
    assert ev(q.neg(q.field("age"))) == -36.0
    with pytest.raises(EvalError, match="overflows"):
        ev(q.neg(Int64(INT64_MIN)), {})
    with pytest.raises(EvalError, match=r'Cannot negate "ada" \(type string\)'):
        ev(q.neg(q.field("name")))


# --------------------------------------------------------------------------------------------
# Logic and the predicate


def test_and_or_not() -> None:
    t, f = q.eq(1.0, 1.0), q.eq(1.0, 2.0)
    assert ev(q.and_(t, t), {}) is True
    assert ev(q.and_(t, f), {}) is False
    assert ev(q.or_(f, t), {}) is True
    assert ev(q.or_(f, f), {}) is False
    assert ev(q.not_(f), {}) is True
    assert ev(q.and_(), {}) is True and ev(q.or_(), {}) is False
    assert ev(q.and_(True, q.not_(False)), {}) is True


def test_logic_short_circuits() -> None:
    boom = q.add("x", 1.0)  # would raise if evaluated
    assert ev(q.and_(False, boom), {}) is False
    assert ev(q.or_(True, boom), {}) is True


def test_logic_requires_booleans() -> None:
    with pytest.raises(EvalError) as info:
        ev(q.and_(q.field("age")))
    assert str(info.value) == "Cannot use value 36 (type float64) as a Boolean"
    with pytest.raises(EvalError, match=r"Cannot use value undefined \(type undefined\)"):
        ev(q.not_(q.field("missing")))
    with pytest.raises(EvalError, match="as a Boolean"):
        ev(q.or_(False, "yes"), {})


def test_predicate_must_be_boolean() -> None:
    assert compile_filter(lambda q: q.eq(q.field("name"), "ada")).matches(DOC) is True
    assert compile_filter(lambda q: True).matches(DOC) is True
    with pytest.raises(EvalError, match=r"Cannot use value 36 \(type float64\) as a Boolean"):
        compile_filter(lambda q: q.field("age")).matches(DOC)
    with pytest.raises(EvalError, match="as a Boolean"):
        compile_filter(lambda q: 1).matches(DOC)


def test_python_and_or_are_refused() -> None:
    with pytest.raises(TypeError, match="and_"):
        _ = q.eq(q.field("a"), 1.0) and q.eq(q.field("b"), 2.0)


# --------------------------------------------------------------------------------------------
# Literal conversion by the field's validator


def test_literals_take_the_field_validator() -> None:
    schema_fields = {
        "n": v.int64(),
        "f": v.float64(),
        "u": v.optional(v.union(v.int64(), v.null())),
    }
    builder = FilterBuilder(schema_fields.get)
    expr = builder.eq(builder.field("n"), 7)
    assert expr.right.to_json() == {"$literal": {"$integer": "BwAAAAAAAAA="}}
    assert ev(expr) is True
    assert ev(builder.eq(7, builder.field("n"))) is True  # either side
    assert type(ev(builder.add(builder.field("n"), 1))) is Int64
    assert ev(builder.gt(builder.field("u"), 3), {"u": Int64(4)}) is True
    assert type(ev(builder.eq(builder.field("f"), 7), {"f": 7.0})) is bool
    assert ev(builder.eq(builder.field("f"), 7), {"f": 7.0}) is True
    # a literal that does not fit the field's validator is compared as a plain value
    assert ev(builder.eq(builder.field("n"), "seven")) is False
    assert ev(builder.eq(builder.field("n"), UNDEFINED), {}) is True
    assert ev(builder.eq(builder.field("other"), 7), {"other": 7.0}) is True


def test_literals_are_converted() -> None:
    expr = q.eq(q.field("tags"), ("a",))
    assert ev(expr) is True
    with pytest.raises(InvalidValueError, match="not a supported Convex value"):
        q.eq(q.field("a"), {1, 2})


# --------------------------------------------------------------------------------------------
# Wire JSON


def test_to_json_wire_form() -> None:
    expr = q.and_(
        q.eq(q.field("a.b"), "x"),
        q.or_(q.not_(q.lt(q.field("n"), Int64(1))), q.gte(q.neg(q.field("f")), 2)),
        q.neq(q.field("m"), UNDEFINED),
        q.lte(q.mod(q.div(q.mul(q.sub(q.add(1, 2), 3), 4), 5), 6), b"\x01"),
        q.gt(q.field("z"), math.inf),
    )
    assert expr.to_json() == {
        "$and": [
            {"$eq": [{"$field": "a.b"}, {"$literal": "x"}]},
            {
                "$or": [
                    {"$not": {"$lt": [{"$field": "n"}, {"$literal": {"$integer": ONE}}]}},
                    {"$gte": [{"$neg": {"$field": "f"}}, {"$literal": 2.0}]},
                ]
            },
            {"$neq": [{"$field": "m"}, {"$literal": {"$undefined": None}}]},
            {
                "$lte": [
                    {
                        "$mod": [
                            {
                                "$div": [
                                    {
                                        "$mul": [
                                            {
                                                "$sub": [
                                                    {
                                                        "$add": [
                                                            {"$literal": 1.0},
                                                            {"$literal": 2.0},
                                                        ]
                                                    },
                                                    {"$literal": 3.0},
                                                ]
                                            },
                                            {"$literal": 4.0},
                                        ]
                                    },
                                    {"$literal": 5.0},
                                ]
                            },
                            {"$literal": 6.0},
                        ]
                    },
                    {"$literal": {"$bytes": "AQ=="}},
                ]
            },
            {"$gt": [{"$field": "z"}, {"$literal": {"$float": "AAAAAAAA8H8="}}]},
        ]
    }
    assert expression_from_json(expr.to_json()) == expr


def test_bad_wire_json() -> None:
    for bad in ({}, {"$eq": [1]}, {"$nope": 1}, [], {"$field": 3}):
        with pytest.raises(EvalError):
            expression_from_json(bad)


def test_literal_equality_is_convex_equality() -> None:
    assert q.eq(q.field("a"), Int64(1)) != q.eq(q.field("a"), 1.0)
    assert q.eq(q.field("a"), [1.0]) == q.eq(q.field("a"), (1,))
    assert len({q.eq(q.field("a"), [1.0]), q.eq(q.field("a"), [1.0])}) == 1


def test_flatten_and() -> None:
    a, b, c = q.eq(1.0, 1.0), q.eq(2.0, 2.0), q.eq(3.0, 3.0)
    assert list(flatten_and(q.and_(a, q.and_(b, c)))) == [a, b, c]
    assert list(flatten_and(a)) == [a]


# --------------------------------------------------------------------------------------------
# Property: comparisons agree with the total order

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1).map(Int64),
    st.text(max_size=4),
    st.binary(max_size=4),
    st.just(UNDEFINED),
)


@settings(max_examples=300, deadline=None)
@given(_scalars, _scalars)
def test_comparisons_match_sort_key(a: Any, b: Any) -> None:
    ka, kb = sort_key(a), sort_key(b)
    doc = {"a": a, "b": b}
    fa, fb = q.field("a"), q.field("b")
    if a is UNDEFINED or b is UNDEFINED:
        doc = {k: x for k, x in doc.items() if x is not UNDEFINED}
    assert ev(q.lt(fa, fb), doc) is (ka < kb)
    assert ev(q.eq(fa, fb), doc) is (ka == kb)
    assert ev(q.gte(fa, fb), doc) is (ka >= kb)
    assert expression_from_json(q.eq(fa, convert_or_undefined(b)).to_json()).evaluate(doc) is (
        ka == kb
    )


def convert_or_undefined(x: Any) -> Any:
    return x if x is UNDEFINED else convert(x)

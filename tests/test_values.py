"""The Convex value model: total order, entry conversion, sizes and the three JSON encodings.

Reference: convex-semantics.md §1 (values, order, sizes, JSON), §2.1 (field names); DESIGN §2, §8.
"""

from __future__ import annotations

import base64
import itertools
import json
import math
import struct
from collections import namedtuple
from functools import cmp_to_key
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convex_lab.errors import InvalidValueError, LimitExceededError
from convex_lab.ids import Id
from convex_lab.values import (
    INT64_MAX,
    INT64_MIN,
    UNDEFINED,
    Int64,
    check_field_name,
    compare,
    convert,
    convert_document,
    dumps_export,
    format_value,
    from_internal_json,
    loads_export,
    nesting,
    sort_key,
    to_clean_json,
    to_internal_json,
    type_name,
    value_size,
    values_equal,
)

NAN = float("nan")
INF = float("inf")


def float_from_bits(bits: int) -> float:
    return struct.unpack("<d", struct.pack("<Q", bits))[0]


def float_bits(x: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", x))[0]


NEG_NAN = float_from_bits(0xFFF8_0000_0000_0000)
NAN_PAYLOAD = float_from_bits(0x7FF8_0000_0000_0001)


# --------------------------------------------------------------------------------------------
# A reference comparator written straight from §1.2, independent of values.sort_key


def _rank(x: Any) -> int:
    if x is UNDEFINED:
        return 0
    if x is None:
        return 1
    if type(x) is Int64:
        return 2
    if type(x) is float:
        return 3
    if type(x) is bool:
        return 4
    if type(x) is str:
        return 5
    if type(x) is bytes:
        return 6
    if type(x) is list:
        return 7
    if type(x) is dict:
        return 8
    raise TypeError(x)


def _total_order_int(x: float) -> int:
    """Rust f64::total_cmp: flip every bit but the sign of negatives, compare as signed."""
    (i,) = struct.unpack("<q", struct.pack("<d", x))
    if i < 0:
        i ^= 0x7FFF_FFFF_FFFF_FFFF
    return i


def _cmp(a: Any, b: Any) -> int:
    return (a > b) - (a < b)


def ref_compare(a: Any, b: Any) -> int:
    ra, rb = _rank(a), _rank(b)
    if ra != rb:
        return _cmp(ra, rb)
    if ra in (0, 1):
        return 0
    if ra == 2:
        return _cmp(int(a), int(b))
    if ra == 3:
        return _cmp(_total_order_int(a), _total_order_int(b))
    if ra == 4:
        return _cmp(a, b)
    if ra == 5:
        return _cmp(a.encode("utf-8"), b.encode("utf-8"))  # byte-wise on UTF-8
    if ra == 6:
        return _cmp(a, b)
    if ra == 7:
        for x, y in zip(a, b, strict=False):
            c = ref_compare(x, y)
            if c:
                return c
        return _cmp(len(a), len(b))
    pa = sorted(a.items(), key=lambda kv: kv[0].encode())
    pb = sorted(b.items(), key=lambda kv: kv[0].encode())
    for (ka, va), (kb, vb) in zip(pa, pb, strict=False):
        c = _cmp(ka.encode(), kb.encode()) or ref_compare(va, vb)
        if c:
            return c
    return _cmp(len(pa), len(pb))


# --------------------------------------------------------------------------------------------
# Hypothesis: arbitrary canonical Convex values

field_names = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=6
).filter(lambda s: not s.startswith("$"))

floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, NAN, NEG_NAN, NAN_PAYLOAD, INF, -INF, 5e-324, -5e-324]),
    st.integers(0, 2**64 - 1).map(float_from_bits),
)
int64s = st.one_of(
    st.integers(INT64_MIN, INT64_MAX),
    st.sampled_from([INT64_MIN, INT64_MAX, 0, -1, 1, 2**53, -(2**53) - 1]),
).map(Int64)
strings = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=8)
scalars = st.one_of(st.none(), st.booleans(), int64s, floats, strings, st.binary(max_size=8))
convex_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(field_names, inner, max_size=4)
    ),
    max_leaves=12,
)
with_undefined = st.one_of(st.just(UNDEFINED), convex_values)


# --------------------------------------------------------------------------------------------
# Total order (§1.2)


def test_type_ranks_in_convex_order() -> None:
    ladder = [UNDEFINED, None, Int64(INT64_MAX), -INF, False, True, "", b"", [], {}]
    for lo, hi in itertools.pairwise(ladder):
        assert compare(lo, hi) == -1, (lo, hi)
        assert compare(hi, lo) == 1
        assert sort_key(lo) < sort_key(hi)


def test_int64_and_float64_never_equal_and_every_int64_is_lower() -> None:
    assert not values_equal(Int64(1), 1.0)
    assert compare(Int64(INT64_MAX), -INF) == -1
    assert compare(Int64(INT64_MAX), NEG_NAN) == -1
    assert compare(Int64(2), Int64(10)) == -1
    assert compare(Int64(-(2**63)), Int64(-1)) == -1


def test_float_total_order() -> None:
    ordered = [NEG_NAN, -INF, -1e308, -1.0, -5e-324, -0.0, 0.0, 5e-324, 1.0, 1e308, INF, NAN,
               NAN_PAYLOAD]
    shuffled = ordered[::2] + ordered[1::2]
    resorted = sorted(shuffled, key=sort_key)
    assert all(float_bits(a) == float_bits(b) for a, b in zip(resorted, ordered, strict=True))
    for lo, hi in itertools.pairwise(ordered):
        assert compare(lo, hi) == -1, (lo, hi)


def test_negative_zero_is_not_zero_and_nan_equals_itself() -> None:
    assert not values_equal(-0.0, 0.0)
    assert compare(-0.0, 0.0) == -1
    assert values_equal(NAN, float("nan"))
    assert not values_equal(NAN, NAN_PAYLOAD)  # different payloads are distinct
    assert not values_equal(NAN, NEG_NAN)


def test_strings_by_code_point_not_utf16() -> None:
    # JS `<` on UTF-16 puts U+1F600 (surrogates D83D…) before U+E000; Convex orders by UTF-8.
    assert compare("\ue000", "\U0001f600") == -1
    assert compare("\uffff", "\U00010000") == -1
    assert compare("Z", "a") == -1
    assert compare("a", "ab") == -1
    assert compare("", "a") == -1


def test_bytes_arrays_objects_prefix_first() -> None:
    assert compare(b"ab", b"abc") == -1
    assert compare(b"\x00", b"\x01") == -1
    assert compare(b"\xff", b"\x00\x00") == 1
    assert compare([1.0], [1.0, None]) == -1
    assert compare([2.0], [1.0, None]) == 1
    assert compare([Int64(5)], [0.0]) == -1  # element order: int64 < float64
    assert compare({}, {"a": None}) == -1
    assert compare({"a": 1.0}, {"a": 1.0, "b": None}) == -1
    assert compare({"a": 2.0}, {"b": 1.0}) == -1  # key first
    assert compare({"a": 2.0}, {"a": 1.0, "b": 1.0}) == 1  # then value
    # Keys compare in sorted order, whatever the insertion order
    assert values_equal({"b": 1.0, "a": 2.0}, {"a": 2.0, "b": 1.0})


def test_undefined_fields_inside_objects_do_not_count() -> None:
    assert values_equal({"a": 1.0, "b": UNDEFINED}, {"a": 1.0})


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(with_undefined, with_undefined)
def test_order_matches_reference_comparator(a: Any, b: Any) -> None:
    assert compare(a, b) == ref_compare(a, b)
    assert values_equal(a, b) == (ref_compare(a, b) == 0)


@settings(max_examples=100)
@given(st.lists(convex_values, max_size=8))
def test_sort_key_sort_is_reference_sort(xs: list[Any]) -> None:
    by_key = sorted(xs, key=sort_key)
    by_ref = sorted(xs, key=cmp_to_key(ref_compare))
    assert all(ref_compare(x, y) == 0 for x, y in zip(by_key, by_ref, strict=True))


@given(st.lists(with_undefined, min_size=2, max_size=4), st.lists(with_undefined, min_size=2,
                                                                    max_size=4))
def test_concatenated_sort_keys_compare_field_by_field(xs: list[Any], ys: list[Any]) -> None:
    # Index keys are concatenations of per-field sort keys: they must order like tuples.
    n = min(len(xs), len(ys))
    xs, ys = xs[:n], ys[:n]
    flat_x = tuple(p for x in xs for p in sort_key(x))
    flat_y = tuple(p for y in ys for p in sort_key(y))
    expected = next((c for c in (ref_compare(x, y) for x, y in zip(xs, ys, strict=True)) if c), 0)
    assert _cmp(flat_x, flat_y) == expected


# --------------------------------------------------------------------------------------------
# Int64


def test_int64_arithmetic_stays_int64() -> None:
    n = Int64(5)
    for result in (n + 1, 1 + n, n - 1, 10 - n, n * 2, 2 * n, n // 2, n % 3, n**2, -n, abs(-n),
                   n & 4, n | 2, n ^ 1, n << 1, n >> 1, sum([Int64(1), Int64(2)])):
        assert type(result) is Int64, result
    assert n + 1 == 6
    assert type(n + 1.5) is float
    assert type(n / 2) is float
    assert repr(Int64(7)) == "Int64(7)"
    assert type_name(Int64(1)) == "int64"


# --------------------------------------------------------------------------------------------
# convert(): Python values entering the system (DESIGN §2)


def test_plain_int_becomes_float64_within_2_53() -> None:
    assert type(convert(3)) is float
    assert convert(2**53) == 2.0**53
    assert convert(-(2**53)) == -(2.0**53)
    for n in (2**53 + 1, -(2**53) - 1, 2**63):
        with pytest.raises(InvalidValueError, match="2\\^53"):
            convert(n)


def test_bool_is_tested_before_int() -> None:
    assert convert(True) is True
    assert convert(False) is False
    assert type_name(convert(True)) == "boolean"


def test_int64_range_checked() -> None:
    assert convert(Int64(INT64_MIN)) == INT64_MIN
    assert type(convert(Int64(INT64_MAX))) is Int64
    with pytest.raises(InvalidValueError):
        convert(Int64(INT64_MAX + 1))
    with pytest.raises(InvalidValueError):
        convert(Int64(INT64_MIN - 1))


def test_tuples_become_arrays_and_nested_ints_convert() -> None:
    out = convert((1, (2, "x"), {"k": (3,)}))
    assert out == [1.0, [2.0, "x"], {"k": [3.0]}]
    assert type(out) is list
    assert type(out[1]) is list
    assert type(out[2]["k"][0]) is float


def test_undefined_stripped_in_objects_error_in_arrays() -> None:
    assert convert({"a": 1, "b": UNDEFINED}) == {"a": 1.0}
    assert convert_document({"a": UNDEFINED, "b": "x"}) == {"b": "x"}
    with pytest.raises(InvalidValueError, match="undefined"):
        convert([1, UNDEFINED])
    with pytest.raises(InvalidValueError, match="undefined"):
        convert(UNDEFINED)


def test_bytes_like_and_unsupported_types() -> None:
    assert convert(bytearray(b"ab")) == b"ab"
    assert type(convert(memoryview(b"ab"))) is bytes
    for bad in ({1, 2}, object(), 1j):
        with pytest.raises(InvalidValueError):
            convert(bad)
    with pytest.raises(InvalidValueError, match="surrogate"):
        convert("a\ud800b")
    with pytest.raises(InvalidValueError):
        convert({1: "x"})


def test_container_limits() -> None:
    assert len(convert([0.0] * 8192)) == 8192
    with pytest.raises(LimitExceededError) as e:
        convert([0.0] * 8193)
    assert e.value.code == "ArrayTooLong"
    assert len(convert({f"f{i}": None for i in range(1024)})) == 1024
    with pytest.raises(LimitExceededError) as e:
        convert({f"f{i}": None for i in range(1025)})
    assert e.value.code == "TooManyFieldsError"

    def nested(depth: int) -> Any:
        value: Any = 1.0
        for _ in range(depth):
            value = [value]
        return value

    assert nesting(convert(nested(64))) == 64
    with pytest.raises(LimitExceededError) as e:
        convert(nested(65))
    assert e.value.code == "TooNestedError"


def test_document_nesting_counts_top_level_object() -> None:
    def chain(depth: int) -> dict[str, Any]:
        value: Any = {}
        for _ in range(depth - 1):
            value = {"x": value}
        return value  # an object of nesting `depth`

    assert nesting(chain(16)) == 16
    assert convert_document(chain(16))
    with pytest.raises(LimitExceededError) as e:
        convert_document(chain(17))
    assert e.value.code == "TooNestedError"


# --------------------------------------------------------------------------------------------
# Field names (§2.1)


@pytest.mark.parametrize("name", ["a", "", "with space", "x" * 1024, "_nested_ok", "a.b", "~!@#"])
def test_valid_nested_field_names(name: str) -> None:
    check_field_name(name)
    assert convert({name: 1}) == {name: 1.0}


@pytest.mark.parametrize("name", ["$a", "é", "tab\there", "nul\x00", "x" * 1025, "\x7f"])
def test_invalid_field_names(name: str) -> None:
    with pytest.raises(InvalidValueError):
        check_field_name(name)
    with pytest.raises(InvalidValueError):
        convert({"outer": {name: 1}})


def test_top_level_underscore_reserved_for_system_fields() -> None:
    with pytest.raises(InvalidValueError, match="reserved for system fields"):
        convert_document({"_secret": 1})
    assert convert_document({"ok": {"_nested": 1}}) == {"ok": {"_nested": 1.0}}
    with pytest.raises(InvalidValueError):
        convert_document({"$x": 1})
    with pytest.raises(InvalidValueError):
        convert_document([("a", 1)])  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Size and nesting (§1.3)


@pytest.mark.parametrize(
    ("value", "size"),
    [
        (None, 1),
        (True, 1),
        (Int64(1), 9),
        (1.5, 9),
        (NAN, 9),
        ("", 2),
        ("abc", 5),
        ("é", 4),  # 2 UTF-8 bytes
        ("\U0001f600", 6),
        (b"", 2),
        (b"ab", 4),
        ([], 2),
        ([1.0, None], 12),
        ({}, 2),
        ({"ab": 1.0}, 14),
        ({"a": {"b": [True]}}, 2 + 2 + (2 + 2 + 3)),
    ],
)
def test_value_size(value: Any, size: int) -> None:
    assert value_size(value) == size


def test_nesting() -> None:
    assert nesting(1.0) == 0
    assert nesting("x") == 0
    assert nesting([]) == 1
    assert nesting({}) == 1
    assert nesting([[1.0]]) == 2
    assert nesting({"a": {"b": []}, "c": 1.0}) == 3


# --------------------------------------------------------------------------------------------
# JSON encodings (§1.4)


def b64(raw: bytes) -> str:
    return base64.standard_b64encode(raw).decode()


def test_internal_json_shapes() -> None:
    assert to_internal_json(Int64(1)) == {"$integer": b64(struct.pack("<q", 1))}
    assert to_internal_json(Int64(-1)) == {"$integer": "//////////8="}
    assert to_internal_json(1.5) == 1.5
    assert to_internal_json(-0.0) == {"$float": b64(struct.pack("<d", -0.0))}
    assert to_internal_json(NAN) == {"$float": "AAAAAAAA+H8="}
    assert to_internal_json(INF) == {"$float": "AAAAAAAA8H8="}
    assert to_internal_json(-INF) == {"$float": "AAAAAAAA8P8="}
    assert to_internal_json(b"\x00\x01") == {"$bytes": "AAE="}
    assert to_internal_json({"a": [Int64(0), None, True, "s"]}) == {
        "a": [{"$integer": "AAAAAAAAAAA="}, None, True, "s"]
    }


def test_internal_json_decoding_rules() -> None:
    assert type(from_internal_json(3)) is float  # plain JSON number → float64, never int64
    assert from_internal_json({"$integer": "AQAAAAAAAAA="}) == Int64(1)
    assert type(from_internal_json({"$integer": "AQAAAAAAAAA="})) is Int64
    assert math.copysign(1.0, from_internal_json({"$float": "AAAAAAAAAIA="})) == -1.0
    with pytest.raises(InvalidValueError, match="should be encoded as a number"):
        from_internal_json({"$float": b64(struct.pack("<d", 1.5))})
    with pytest.raises(InvalidValueError, match="should be encoded as a number"):
        from_internal_json({"$float": b64(struct.pack("<d", 0.0))})
    for retired in ("$set", "$map"):
        with pytest.raises(InvalidValueError, match="retired"):
            from_internal_json({retired: []})


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(convex_values)
def test_internal_json_round_trips_through_json_text(value: Any) -> None:
    text = json.dumps(to_internal_json(value), allow_nan=False)
    back = from_internal_json(json.loads(text))
    assert values_equal(back, value)
    assert float_bits_tree(back) == float_bits_tree(value)


def float_bits_tree(value: Any) -> Any:
    """Exact identity of a value, down to NaN payloads and int64-vs-float types."""
    t = type(value)
    if t is float:
        return ("f", float_bits(value))
    if t is Int64:
        return ("i", int(value))
    if t is list:
        return [float_bits_tree(x) for x in value]
    if t is dict:
        return {k: float_bits_tree(x) for k, x in value.items()}
    return (t.__name__, value)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(convex_values)
def test_export_json_round_trips(value: Any) -> None:
    text = dumps_export(value)
    json.loads(text, parse_constant=_no_constants)  # strict JSON: no bare NaN/Infinity
    back = loads_export(text)
    assert float_bits_tree(back) == float_bits_tree(value)


def _no_constants(name: str) -> Any:
    raise AssertionError(f"bare {name} in JSON text")


def test_export_json_shapes() -> None:
    assert dumps_export(Int64(123)) == "123"
    assert dumps_export(123.0) == "123.0"
    assert dumps_export(-0.0) == "-0.0"
    assert dumps_export(b"\x00\x01") == '{"$bytes":"AAE="}'
    assert dumps_export(NAN) == '{"$float":"AAAAAAAA+H8="}'
    assert dumps_export(INF) == '{"$float":"AAAAAAAA8H8="}'
    assert dumps_export({"s": "NaN"}) == '{"s":"NaN"}'  # a string is not a float
    assert dumps_export([Int64(INT64_MIN), Int64(INT64_MAX)]) == (
        f"[{INT64_MIN},{INT64_MAX}]"
    )
    assert type(loads_export("7")) is Int64
    assert type(loads_export("7.0")) is float
    assert loads_export('{"a":[1,2.5]}') == {"a": [Int64(1), 2.5]}


def test_clean_json_shapes() -> None:
    assert to_clean_json(Int64(33)) == "33"
    assert to_clean_json(Int64(INT64_MIN)) == str(INT64_MIN)
    assert to_clean_json(NAN) == "NaN"
    assert to_clean_json(INF) == "Infinity"
    assert to_clean_json(-INF) == "-Infinity"
    assert to_clean_json(b"\x00\x01") == "AAE="
    assert to_clean_json(1.5) == 1.5
    assert to_clean_json({"a": [None, True, Int64(2)]}) == {"a": [None, True, "2"]}
    json.dumps(to_clean_json({"x": [NAN, -INF, b"z"]}), allow_nan=False)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(convex_values)
def test_clean_json_is_plain_json(value: Any) -> None:
    clean = to_clean_json(value)
    text = json.dumps(clean, allow_nan=False)
    assert json.loads(text) == clean


# --------------------------------------------------------------------------------------------
# Rendering in error messages (Convex prints int64 as 123n, strings as JSON)


def test_format_value() -> None:
    assert format_value(Int64(5)) == "5n"
    assert format_value(1.0) == "1"
    assert format_value(-0.0) == "-0"
    assert format_value(NAN) == "NaN"
    assert format_value(None) == "null"
    assert format_value(True) == "true"
    assert format_value("hi") == '"hi"'
    assert format_value({"a": [Int64(1), "x"]}) == '{a: [1n, "x"]}'
    assert format_value(UNDEFINED) == "undefined"
    assert format_value("x" * 500).endswith("...")


def test_format_value_renders_ids_as_strings() -> None:
    text = "z43zp6c3e75gkmz1kfwj6mbbx5sw281h"
    assert format_value(Id(text, "t")) == f'"{text}"'
    assert format_value({"ref": Id(text, "t")}) == f'{{ref: "{text}"}}'


# --------------------------------------------------------------------------------------------
# Hostile input (issue 7): every failure is a convex_lab error, and describing a bad value in a
# message never fails or recurses without end.


def _deep_list(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


def test_format_value_bounds_deep_recursive_and_huge_values() -> None:
    deep = format_value(_deep_list(2_000))  # RecursionError before the depth cap
    assert deep.startswith("[[[[") and "[...]" in deep and len(deep) <= 200
    looped: list[Any] = []
    looped.append(looped)
    assert "[...]" in format_value(looped)
    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    assert format_value(cyclic).startswith("{self: {self: ")
    huge = format_value([10**5000])  # str() of it raises ValueError (4300-digit limit)
    assert "an integer of about 5001 digits" in huge
    assert format_value(list(range(1_000_000)), 50).endswith("...")


def test_huge_integers_are_described_not_printed() -> None:
    with pytest.raises(InvalidValueError, match="about 5001 digits"):
        convert(10**5000)
    with pytest.raises(InvalidValueError, match="int64 range"):
        convert(Int64(10**5000))


def test_document_field_limit_counts_system_fields() -> None:
    # Convex's 1024 fields per object include _id and _creationTime: 1022 user fields at most.
    assert len(convert_document({f"f{i}": 1.0 for i in range(1022)})) == 1022
    with pytest.raises(LimitExceededError, match=r"\(1025 > maximum 1024\)") as e:
        convert_document({f"f{i}": 1.0 for i in range(1023)})
    assert e.value.code == "TooManyFieldsError"
    # undefined fields are absent, so they do not count
    padded = {f"f{i}": 1.0 for i in range(1022)} | {f"u{i}": UNDEFINED for i in range(50)}
    assert len(convert_document(padded)) == 1022
    # nested objects keep the plain limit of 1024 fields
    assert len(convert_document({"inner": {f"f{i}": 1.0 for i in range(1024)}})["inner"]) == 1024


def test_numpy_values_are_converted() -> None:
    np = pytest.importorskip("numpy")
    assert convert(np.array([1.5, 2.0])) == [1.5, 2.0]
    assert convert(np.array([[1, 2], [3, 4]])) == [[1.0, 2.0], [3.0, 4.0]]  # ints: float64
    assert convert(np.float32(0.5)) == 0.5 and type(convert(np.float32(0.5))) is float
    assert convert(np.int64(3)) == 3.0 and type(convert(np.int64(3))) is float
    assert convert(np.bool_(True)) is True
    assert convert(np.array(["a", "b"])) == ["a", "b"]
    assert convert(np.array(7.0)) == 7.0  # a 0-d array is its element
    with pytest.raises(InvalidValueError, match="no Convex equivalent"):
        convert(np.array(["2020-01-01"], dtype="datetime64[ns]"))
    with pytest.raises(InvalidValueError, match="no Convex equivalent"):
        convert(np.complex128(1j))
    with pytest.raises(InvalidValueError, match="float64"):
        convert(np.array([2**60]))  # the plain-int rule still applies to numpy ints


def test_odd_python_types_give_invalid_value_errors_with_a_fix() -> None:
    class Unprintable:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    released = memoryview(b"ab")
    released.release()
    cases: list[tuple[Any, str]] = [
        ({1, 2}, "no sets"),
        (Unprintable(), "Unprintable"),
        (released, "could not be read as bytes"),
        (range(3), r"list\(\.\.\.\)"),
        ({(1, 2): "x"}, "keys must be strings"),
        ({10**5000: "x"}, "keys must be strings"),
    ]
    for value, message in cases:
        with pytest.raises(InvalidValueError, match=message):
            convert(value)
    # list and tuple subclasses and str subclasses are what they look like
    point = namedtuple("point", "x y")
    assert convert(point(1, 2)) == [1.0, 2.0]
    assert convert({Id("z43zp6c3e75gkmz1kfwj6mbbx5sw281h", "t"): 1}) == {
        "z43zp6c3e75gkmz1kfwj6mbbx5sw281h": 1.0}

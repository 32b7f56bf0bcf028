"""Validators: conversions, strictness, Convex's exact error texts, JSON forms, annotations."""

import math
import pickle
import timeit
from typing import Any, Literal, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convex_lab.errors import (
    InvalidValidatorError,
    InvalidValueError,
    LimitExceededError,
    SchemaError,
    ValidationError,
)
from convex_lab.ids import Id, encode_id
from convex_lab.validators import (
    Validator,
    args_validator,
    field_validator_at,
    pagination_opts_validator,
    v,
    validator_from_annotation,
    validator_from_json,
    validators_from_signature,
)
from convex_lab.values import UNDEFINED, Int64, convert, values_equal

USERS = 10_001
CHANNELS = 10_002
CHANNEL_ID = encode_id(CHANNELS, bytes(range(16)))
USER_ID = encode_id(USERS, bytes(range(16)))
SYSTEM_ID = encode_id(5, bytes(16))
TABLES = {USERS: "users", CHANNELS: "channels", 5: "_storage"}.get


def error_text(validator: Validator, value: Any, **kw: Any) -> str:
    with pytest.raises(ValidationError) as info:
        validator.validate(value, **kw)
    return str(info.value)


# --------------------------------------------------------------------------------------------
# Scalars and conversions


def test_plain_int_is_float64_unless_validator_says_int64() -> None:
    assert type(v.float64().validate(3)) is float
    assert type(v.number().validate(3)) is float
    got = v.int64().validate(3)
    assert type(got) is Int64 and got == 3
    assert type(v.bigint().validate(Int64(7))) is Int64
    assert type(v.any().validate(3)) is float  # any: the usual plain-int rule


def test_int64_and_float64_never_mix() -> None:
    assert not v.float64().check(Int64(1))
    assert not v.int64().check(1.0)
    assert "Validator: v.float64()" in error_text(v.float64(), Int64(1))
    assert "Validator: v.int64()" in error_text(v.int64(), 2.0)


def test_bool_is_not_a_number() -> None:
    assert not v.int64().check(True)
    assert not v.float64().check(False)
    assert v.boolean().validate(True) is True
    assert not v.boolean().check(1)


def test_int_range_errors() -> None:
    with pytest.raises(InvalidValueError):
        v.float64().validate(2**53 + 1)
    assert v.float64().validate(2**53) == float(2**53)
    with pytest.raises(InvalidValueError):
        v.int64().validate(2**63)
    assert v.int64().validate(-(2**63)) == -(2**63)


def test_scalar_kinds() -> None:
    assert v.string().validate("hé") == "hé"
    assert v.null().validate(None) is None
    assert v.bytes().validate(bytearray(b"ab")) == b"ab"
    assert type(v.bytes().validate(b"x")) is bytes
    assert not v.string().check(b"x")
    assert not v.null().check(UNDEFINED)
    assert v.float64().validate(math.inf) == math.inf


def test_union_prefers_int64_for_plain_ints() -> None:
    got = v.union(v.float64(), v.int64()).validate(5)
    assert type(got) is Int64
    assert type(v.union(v.float64(), v.string()).validate(5)) is float
    assert type(v.nullable(v.int64()).validate(5)) is Int64
    assert v.union(v.float64(), v.int64()).validate(5.5) == 5.5


def test_tuples_are_arrays_and_nested_conversion() -> None:
    validator = v.array(v.object({"n": v.int64(), "x": v.float64()}))
    got = validator.validate(({"n": 1, "x": 2},))
    assert got == [{"n": 1, "x": 2.0}]
    assert type(got[0]["n"]) is Int64 and type(got[0]["x"]) is float


def test_any_converts_and_rejects_non_values() -> None:
    assert v.any().validate({"a": (1, 2)}) == {"a": [1.0, 2.0]}
    with pytest.raises(InvalidValueError):
        v.any().validate({1, 2})


# --------------------------------------------------------------------------------------------
# Objects


def test_object_strict_optional_and_undefined() -> None:
    validator = v.object({"a": v.string(), "b": v.optional(v.float64())})
    assert validator.validate({"a": "x"}) == {"a": "x"}
    assert validator.validate({"a": "x", "b": UNDEFINED}) == {"a": "x"}
    assert validator.validate({"a": "x", "b": 2}) == {"a": "x", "b": 2.0}
    assert not validator.check({"a": "x", "c": 1})
    assert not validator.check({"b": 1.0})
    assert not validator.check(["a"])


def test_object_result_keys_sorted_like_convex() -> None:
    validator = v.object({"z": v.string(), "a": v.string()})
    assert list(validator.validate({"z": "1", "a": "2"})) == ["a", "z"]


def test_missing_field_text() -> None:
    validator = v.object({"name": v.string(), "age": v.float64()})
    assert error_text(validator, {"name": "ada"}) == (
        "Object is missing the required field `age`. Consider wrapping the field validator in "
        "`v.optional(...)` if this is expected.\n\n"
        'Object: {name: "ada"}\n'
        "Validator: v.object({age: v.float64(), name: v.string()})"
    )


def test_missing_field_nested_has_path() -> None:
    validator = v.object({"a": v.object({"b": v.string()})})
    text = error_text(validator, {"a": {}})
    assert text.startswith("Object is missing the required field `b`.")
    assert "\nPath: .a\nObject: {}\nValidator: v.object({b: v.string()})" in text


def test_extra_field_text() -> None:
    validator = v.object({"name": v.string()})
    assert error_text(validator, {"name": "x", "zzz": 1, "extra": True}) == (
        "Object contains extra field `extra` that is not in the validator.\n\n"
        'Object: {extra: true, name: "x", zzz: 1}\n'
        "Validator: v.object({name: v.string()})"
    )


def test_no_match_text_with_path() -> None:
    validator = v.object({"a": v.object({"b": v.array(v.string())})})
    assert error_text(validator, {"a": {"b": ["x", Int64(3)]}}) == (
        "Value does not match validator.\nPath: .a.b[1]\nValue: 3n\nValidator: v.string()"
    )


def test_no_match_text_top_level_and_prefix_path() -> None:
    assert error_text(v.union(v.string(), v.null()), 3.5) == (
        "Value does not match validator.\n\nValue: 3.5\nValidator: v.union(v.string(), v.null())"
    )
    text = error_text(v.string(), 1.0, path=("args", 0))
    assert "Path: .args[0]\n" in text


def test_single_member_union_reports_member_error() -> None:
    text = error_text(v.union(v.object({"a": v.string()})), {})
    assert text.startswith("Object is missing the required field `a`.")


def test_validation_error_has_path_attribute() -> None:
    with pytest.raises(ValidationError) as info:
        v.object({"a": v.array(v.string())}).validate({"a": [1.0]})
    assert info.value.path == ".a[0]"  # type: ignore[attr-defined]


# --------------------------------------------------------------------------------------------
# Literals, IDs, records


def test_literal_matching_and_text() -> None:
    assert v.literal("a").validate("a") == "a"
    assert v.literal(1).validate(1) == 1.0  # a plain-int literal is float64
    assert v.literal(Int64(1)).validate(1) == Int64(1)
    assert type(v.literal(Int64(1)).validate(1)) is Int64
    assert not v.literal(Int64(1)).check(1.0)
    assert not v.literal(0.0).check(-0.0)  # total-order equality
    assert not v.literal(True).check(1)
    expected = '`"b"` does not match literal validator `v.literal("a")`.'
    assert error_text(v.literal("a"), "b") == expected
    nested = error_text(v.object({"k": v.literal("a")}), {"k": "b"})
    assert nested == '`"b"` does not match literal validator `v.literal("a")`.Path: .k'


def test_literal_rejects_non_finite() -> None:
    with pytest.raises(SchemaError):
        v.literal(math.nan)
    with pytest.raises(TypeError):
        v.literal([1])  # type: ignore[arg-type]


def test_id_validation() -> None:
    assert v.id("channels").validate(CHANNEL_ID, tables=TABLES) == CHANNEL_ID
    assert v.id("channels").validate(CHANNEL_ID) == CHANNEL_ID  # no mapping: any valid ID
    assert not v.id("channels").check("not-an-id")
    assert not v.id("channels").check(12.0)


def test_id_of_another_table_text() -> None:
    validator = v.object({"channel": v.id("channels")})
    assert error_text(validator, {"channel": USER_ID}, tables=TABLES) == (
        f'Found ID "{USER_ID}" from table `users`, which does not match the table name in '
        'validator `v.id("channels")`.Path: .channel'
    )
    assert error_text(v.id("channels"), SYSTEM_ID, tables=TABLES) == (
        f'Found ID "{SYSTEM_ID}" from a system table, which does not match the table name in '
        'validator `v.id("channels")`.'
    )


def test_id_of_unknown_table_is_generic_mismatch() -> None:
    text = error_text(v.id("channels"), CHANNEL_ID, tables=lambda n: None)
    assert text == (
        f'Value does not match validator.\n\nValue: "{CHANNEL_ID}"\nValidator: v.id("channels")'
    )


def test_id_instance_knows_its_table_without_mapping() -> None:
    assert "from table `users`" in error_text(v.id("channels"), Id(USER_ID, "users"))
    got = v.id("users").validate(Id(USER_ID, "users"))
    assert got == USER_ID and type(got) is str


def test_record() -> None:
    validator = v.record(v.string(), v.int64())
    got = validator.validate({"a": 1, "b": UNDEFINED})
    assert got == {"a": 1} and type(got["a"]) is Int64
    assert "Path: .values()" in error_text(validator, {"a": "x"})
    ids = v.record(v.id("users"), v.boolean())
    assert "Path: .keys()" in error_text(ids, {"nope": True})
    with pytest.raises(InvalidValueError):
        validator.validate({"$bad": 1})


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        (v.float64(), "Records can only have string keys"),
        (v.literal("a"), "Records cannot have string literal keys"),
        (v.any(), "Records can only have string keys"),
    ],
)
def test_record_key_rules(keys: Validator, message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        v.record(keys, v.string())
    v.record(v.union(v.string(), v.id("t")), v.string())  # subtypes of string are fine


def test_record_values_cannot_be_optional() -> None:
    with pytest.raises(SchemaError, match="optional values"):
        v.record(v.string(), v.optional(v.string()))


# --------------------------------------------------------------------------------------------
# Data: repr, JSON, equality, immutability


def test_repr_is_convex_like() -> None:
    assert repr(v.object({"name": v.string()})) == "v.object({name: v.string()})"
    assert repr(v.optional(v.int64())) == "v.optional(v.int64())"
    assert repr(v.number()) == "v.float64()"
    assert repr(v.id("t")) == 'v.id("t")'
    assert repr(v.record(v.string(), v.any())) == "v.record(v.string(), v.any())"
    assert repr(v.nullable(v.bytes())) == "v.union(v.bytes(), v.null())"
    assert repr(v.object({"a": v.optional(v.literal(True))})) == (
        "v.object({a: v.optional(v.literal(true))})"
    )


def test_kinds() -> None:
    kinds = [
        (v.string(), "string"), (v.number(), "float64"), (v.int64(), "int64"),
        (v.boolean(), "boolean"), (v.null(), "null"), (v.id("t"), "id"),
        (v.array(v.any()), "array"), (v.object({}), "object"),
        (v.record(v.string(), v.any()), "record"), (v.union(), "union"),
        (v.literal("x"), "literal"), (v.any(), "any"), (v.bytes(), "bytes"),
    ]  # fmt: skip
    for validator, kind in kinds:
        assert validator.kind == kind
        assert validator.is_optional is False
    assert v.optional(v.string()).is_optional is True


def test_to_json_forms() -> None:
    assert v.string().to_json() == {"type": "string"}
    assert v.float64().to_json() == {"type": "number"}
    assert v.int64().to_json() == {"type": "bigint"}
    assert v.id("t").to_json() == {"type": "id", "tableName": "t"}
    assert v.literal(Int64(1)).to_json() == {
        "type": "literal",
        "value": {"$integer": "AQAAAAAAAAA="},
    }
    assert v.object({"f": v.optional(v.string())}).to_json() == {
        "type": "object",
        "value": {"f": {"fieldType": {"type": "string"}, "optional": True}},
    }
    assert v.record(v.string(), v.null()).to_json() == {
        "type": "record",
        "keys": {"type": "string"},
        "values": {"fieldType": {"type": "null"}, "optional": False},
    }
    assert v.union(v.string(), v.null()).to_json() == {
        "type": "union",
        "value": [{"type": "string"}, {"type": "null"}],
    }
    assert v.array(v.bytes()).to_json() == {"type": "array", "value": {"type": "bytes"}}


def test_json_round_trip_and_equality() -> None:
    validator = v.object(
        {
            "a": v.array(v.union(v.literal("x"), v.literal(2.5), v.literal(Int64(3)))),
            "b": v.optional(v.record(v.id("users"), v.any())),
            "c": v.nullable(v.bytes()),
            "d": v.boolean(),
        }
    )
    again = validator_from_json(validator.to_json())
    assert again == validator and hash(again) == hash(validator)
    assert pickle.loads(pickle.dumps(v.optional(validator))) == v.optional(validator)
    assert v.optional(v.string()) != v.string()
    assert v.literal(1) != v.literal(Int64(1))


def test_validators_are_immutable() -> None:
    validator = v.string()
    with pytest.raises(AttributeError):
        validator.kind = "int64"  # type: ignore[misc]
    obj = v.object({"a": v.string()})
    with pytest.raises(TypeError):
        obj.fields["b"] = v.string()  # type: ignore[index]


def test_object_helpers() -> None:
    base = v.object({"a": v.string(), "b": v.float64()})
    assert base.extend({"c": v.null()}).fields.keys() == {"a", "b", "c"}
    assert base.pick("a") == v.object({"a": v.string()})
    assert base.omit("a") == v.object({"b": v.float64()})
    assert base.partial().validate({}) == {}
    assert v.object(a=v.string()) == v.object({"a": v.string()})


def test_definition_errors() -> None:
    with pytest.raises(TypeError, match="must be a validator"):
        v.object({"a": str})  # type: ignore[dict-item]
    with pytest.raises(SchemaError, match="identifier"):
        v.object({"my-field": v.string()})
    with pytest.raises(SchemaError):
        v.array(v.optional(v.string()))
    with pytest.raises(SchemaError):
        v.union(v.optional(v.string()))


def test_optional_at_top_level_accepts_undefined() -> None:
    assert v.optional(v.string()).validate(UNDEFINED) is UNDEFINED
    assert not v.string().check(UNDEFINED)


def test_field_validator_at() -> None:
    doc = v.object({"a": v.object({"b": v.optional(v.int64())}), "c": v.any()})
    assert field_validator_at(doc, "a.b") == v.int64()
    assert field_validator_at(doc, "c.d") is None
    assert field_validator_at(doc, "zz") is None
    union = v.union(v.object({"k": v.int64()}), v.object({"k": v.string()}))
    assert field_validator_at(union, "k") == v.union(v.int64(), v.string())


# --------------------------------------------------------------------------------------------
# Helpers: args, pagination, annotations


def test_args_validator() -> None:
    assert args_validator(None) is None
    obj = v.object({"a": v.string()})
    assert args_validator(obj) is obj
    assert args_validator({"a": v.string()}) == obj
    assert args_validator({"n": int}) == v.object({"n": v.int64()})
    with pytest.raises(TypeError):
        args_validator([v.string()])


def test_pagination_opts_validator() -> None:
    got = pagination_opts_validator.validate({"numItems": 10, "cursor": None})
    assert got == {"numItems": 10.0, "cursor": None}
    assert pagination_opts_validator.check(
        {"numItems": 5, "cursor": "c", "endCursor": None, "id": 1, "maximumRowsRead": 100}
    )
    assert not pagination_opts_validator.check({"numItems": 5})


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [
        (str, v.string()),
        (float, v.float64()),
        (int, v.int64()),
        (Int64, v.int64()),
        (bool, v.boolean()),
        (bytes, v.bytes()),
        (None, v.null()),
        (Any, v.any()),
        (list[str], v.array(v.string())),
        (tuple[int, ...], v.array(v.int64())),
        (dict[str, float], v.record(v.string(), v.float64())),
        (int | None, v.union(v.int64(), v.null())),
        (Optional[str], v.union(v.string(), v.null())),  # noqa: UP045
        (None | str, v.union(v.string(), v.null())),
        (str | int, v.union(v.string(), v.int64())),
        (Literal["a"], v.literal("a")),
        (Literal["a", "b"], v.union(v.literal("a"), v.literal("b"))),
        (v.id("t"), v.id("t")),
        (
            list[dict[str, bool] | None],
            v.array(v.union(v.record(v.string(), v.boolean()), v.null())),
        ),
    ],
)
def test_validator_from_annotation(annotation: Any, expected: Validator) -> None:
    assert validator_from_annotation(annotation) == expected


def test_validator_from_annotation_rejects_unknown() -> None:
    with pytest.raises(TypeError, match="No Convex validator"):
        validator_from_annotation(set[int])
    with pytest.raises(TypeError, match="string keys"):
        validator_from_annotation(dict[int, str])


def test_validators_from_signature_resolves_string_annotations() -> None:
    # String annotations, as `from __future__ import annotations` produces.
    def handler(ctx, channel: 'v.id("channels")', n: "int", tags: "list[str]" = ()):
        return None

    assert validators_from_signature(handler) == {
        "channel": v.id("channels"),
        "n": v.int64(),
        "tags": v.optional(v.array(v.string())),
    }


def test_validators_from_signature_without_annotations_is_none() -> None:
    def plain(ctx, a, b=1):
        return None

    def kwargs(ctx, a: str, **rest):
        return None

    def partly(ctx, a: str, b):
        return None

    assert validators_from_signature(plain) is None
    assert validators_from_signature(kwargs) is None
    assert validators_from_signature(partly) == {"a": v.string(), "b": v.any()}


# --------------------------------------------------------------------------------------------
# Properties and performance

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.integers(min_value=-(2**63), max_value=2**63 - 1).map(Int64),
    st.text(),
    st.binary(max_size=16),
)
_keys = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=8).filter(
    lambda k: not k.startswith("$")
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(_values)
def test_any_round_trips_converted_values(raw: Any) -> None:
    canonical = convert(raw)
    again = v.any().validate(canonical)
    assert values_equal(again, canonical)
    assert values_equal(v.any().validate(raw), canonical)  # raw input converts the same way


def test_object_validation_is_fast() -> None:
    validator = v.object(
        {
            "name": v.string(),
            "age": v.int64(),
            "score": v.float64(),
            "ok": v.boolean(),
            "x": v.null(),
        }
    )
    doc = {"name": "ada", "age": 36, "score": 1.5, "ok": True, "x": None}
    per_call = min(timeit.repeat(lambda: validator.validate(doc), number=2000, repeat=3)) / 2000
    assert per_call < 25e-6  # a few microseconds in practice; generous for slow CI machines


# --------------------------------------------------------------------------------------------
# Hostile input (issue 7)


def test_error_text_of_a_deep_or_recursive_value_is_bounded() -> None:
    deep: Any = []
    for _ in range(2_000):
        deep = [deep]
    text = error_text(v.string(), deep)  # rendering once raised RecursionError
    assert text.startswith("Value does not match validator.") and "[...]" in text
    looped: dict[str, Any] = {}
    looped["a"] = looped
    text = error_text(v.object({"a": v.string()}), looped)
    assert "Path: .a" in text and "{a: {a: " in text
    assert "about 5001 digits" in error_text(v.string(), 10**5000)


def test_numpy_values_validate_as_their_python_equivalents() -> None:
    np = pytest.importorskip("numpy")
    assert v.array(v.float64()).validate(np.array([1.0, 2.5])) == [1.0, 2.5]
    ints = v.array(v.int64()).validate(np.array([1, 2]))
    assert ints == [1, 2] and all(type(x) is Int64 for x in ints)
    assert type(v.int64().validate(np.int64(3))) is Int64
    assert type(v.float64().validate(np.float32(0.5))) is float
    assert v.boolean().validate(np.bool_(False)) is False
    assert v.bytes().validate(np.bytes_(b"ab")) == b"ab"
    assert v.literal(1.0).validate(np.float64(1.0)) == 1.0
    assert v.literal(Int64(2)).validate(np.int64(2)) == Int64(2)
    assert v.union(v.string(), v.array(v.float64())).validate(np.array([3.0])) == [3.0]
    assert "Value does not match validator" in error_text(v.string(), np.array([1.0]))
    dates = np.array(["2020-01-01"], dtype="datetime64[ns]")
    assert "Value does not match validator" in error_text(v.array(v.float64()), dates)


def test_object_validator_counts_fields() -> None:
    many = v.object({f"f{i}": v.float64() for i in range(1025)})
    with pytest.raises(LimitExceededError, match=r"too many fields \(1025 > maximum 1024\)") as e:
        many.validate({f"f{i}": 1.0 for i in range(1025)})
    assert e.value.code == "TooManyFieldsError"


def test_building_a_validator_from_a_non_validator_is_a_convex_lab_error() -> None:
    np = pytest.importorskip("numpy")
    for build in (lambda: v.array(5), lambda: v.id(3), lambda: v.object([1]),  # type: ignore[arg-type]
                  lambda: v.union(v.string(), "x"), lambda: v.literal({1}),  # type: ignore[arg-type]
                  lambda: args_validator([v.string()]), lambda: v.optional(None)):  # type: ignore[arg-type]
        with pytest.raises(InvalidValidatorError) as e:
            build()
        assert isinstance(e.value, TypeError)  # what Python code expects for a wrong type
        assert e.value.code == "InvalidValidator"
    assert v.literal(np.float64(2.0)) == v.literal(2.0)  # numpy scalars are what they look like
    with pytest.raises(SchemaError, match="Malformed validator JSON"):
        validator_from_json({"type": "array"})

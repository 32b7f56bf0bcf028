"""Convex's value model in Python: types, the total order, sizes, and entry conversion.

Mapping (DESIGN §2, §8): ``None`` null, ``bool`` boolean (tested before ``int``: ``bool`` is an
``int`` in Python), ``float`` float64, ``Int64`` int64, ``str`` string, ``bytes`` bytes, ``list``
array, ``dict`` object. A plain ``int`` entering the system becomes a float64 (an error past
±2^53, like the official Python client) unless a validator says ``v.int64()``; ``Int64(n)`` forces
int64 anywhere. ``UNDEFINED`` is Convex's ``undefined``: a missing field.

Invariants
----------
* Values stored in documents are *canonical*: no plain ``int`` (only ``Int64``), no tuples, no
  ``UNDEFINED``; dict keys are ``str``.
* ``sort_key(a) < sort_key(b)`` exactly when Convex orders ``a`` before ``b`` (reference §1.2):
  ``undefined < null < int64 < float64 < boolean < string < bytes < array < object``; int64 never
  equals a float64; floats in IEEE total order (-0.0 < 0.0, NaN above +inf); strings by code point
  (= UTF-8 byte order); arrays and objects lexicographically, a proper prefix first.
* Sort keys are flat tuples: each type contributes a fixed number of slots after its rank, so the
  concatenation of several keys (an index key over several fields) still compares field by field.
"""

from __future__ import annotations

import base64
import json
import math
import struct
from collections.abc import Callable, Mapping
from typing import Any, Final

from convex_lab.errors import InvalidValueError, LimitExceededError

MAX_SAFE_INTEGER: Final = 2**53
INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1

MAX_VALUE_SIZE: Final = 1 << 25  # 32 MiB generic cap
MAX_DOCUMENT_SIZE: Final = 1 << 20  # 1 MiB
MAX_DOCUMENT_NESTING: Final = 16
MAX_VALUE_NESTING: Final = 64
MAX_OBJECT_FIELDS: Final = 1024
MAX_ARRAY_LEN: Final = 8192
MAX_FIELD_NAME_LEN: Final = 1024


class Int64(int):
    """A Convex int64. Arithmetic with ints stays ``Int64``; with floats it is a float.

    ``Int64(5) + 1 == Int64(6)``, so a counter read, incremented and written back stays int64.
    Range is checked where the value enters the database (−2^63 … 2^63−1).
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Int64({int(self)})"

    def _wrap(self, result: Any) -> Any:
        return Int64(result) if type(result) is int else result

    def __add__(self, other: Any) -> Any:
        return self._wrap(int.__add__(self, other))

    def __radd__(self, other: Any) -> Any:
        return self._wrap(int.__radd__(self, other))

    def __sub__(self, other: Any) -> Any:
        return self._wrap(int.__sub__(self, other))

    def __rsub__(self, other: Any) -> Any:
        return self._wrap(int.__rsub__(self, other))

    def __mul__(self, other: Any) -> Any:
        return self._wrap(int.__mul__(self, other))

    def __rmul__(self, other: Any) -> Any:
        return self._wrap(int.__rmul__(self, other))

    def __floordiv__(self, other: Any) -> Any:
        return self._wrap(int.__floordiv__(self, other))

    def __rfloordiv__(self, other: Any) -> Any:
        return self._wrap(int.__rfloordiv__(self, other))

    def __mod__(self, other: Any) -> Any:
        return self._wrap(int.__mod__(self, other))

    def __rmod__(self, other: Any) -> Any:
        return self._wrap(int.__rmod__(self, other))

    def __pow__(self, other: Any, mod: Any = None) -> Any:
        return self._wrap(int.__pow__(self, other, mod))

    def __neg__(self) -> Int64:
        return Int64(-int(self))

    def __pos__(self) -> Int64:
        return self

    def __abs__(self) -> Int64:
        return Int64(abs(int(self)))

    def __and__(self, other: Any) -> Any:
        return self._wrap(int.__and__(self, other))

    def __or__(self, other: Any) -> Any:
        return self._wrap(int.__or__(self, other))

    def __xor__(self, other: Any) -> Any:
        return self._wrap(int.__xor__(self, other))

    def __lshift__(self, other: Any) -> Any:
        return self._wrap(int.__lshift__(self, other))

    def __rshift__(self, other: Any) -> Any:
        return self._wrap(int.__rshift__(self, other))


class _Undefined:
    """Convex's ``undefined``: a missing field. Falsy; a singleton."""

    _instance: _Undefined | None = None

    def __new__(cls) -> _Undefined:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNDEFINED"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "UNDEFINED"


UNDEFINED: Final = _Undefined()

# ---------------------------------------------------------------------------------------------
# Type names and ranks


def type_name(value: Any) -> str:
    """Convex's name for the type of a canonical value ("string", "float64", "int64", ...)."""
    t = type(value)
    if value is None:
        return "null"
    if t is bool:
        return "boolean"
    if t is Int64:
        return "int64"
    if t is float:
        return "float64"
    if t is str:
        return "string"
    if t is bytes:
        return "bytes"
    if t is list:
        return "array"
    if t is dict:
        return "object"
    if value is UNDEFINED:
        return "undefined"
    return t.__name__


# ---------------------------------------------------------------------------------------------
# Total order


def _float_key(x: float) -> tuple[Any, ...]:
    if math.isnan(x):  # order NaNs by sign and payload bits, beyond the infinities
        bits = struct.unpack("<q", struct.pack("<d", x))[0]
        if bits < 0:
            return (3, -math.inf, -1 - (bits & 0x7FFFFFFFFFFFFFFF))
        return (3, math.inf, 1 + bits)
    if x == 0.0:
        return (3, 0.0, -1 if math.copysign(1.0, x) < 0 else 0)
    return (3, x, 0)


def _key_parts(value: Any, out: list[Any]) -> None:
    t = type(value)
    if t is str:
        out += (5, value)
    elif t is float:
        out += _float_key(value)
    elif t is Int64 or t is int:
        out += (2, int(value))
    elif t is bool:
        out += (4, value)
    elif value is None:
        out.append(1)
    elif t is list or t is tuple:
        inner: list[Any] = []
        for item in value:
            _key_parts(item, inner)
        out += (7, tuple(inner))
    elif t is dict:
        inner = []
        for k in sorted(value):
            v = value[k]
            if v is UNDEFINED:
                continue
            inner.append(k)
            _key_parts(v, inner)
        out += (8, tuple(inner))
    elif t is bytes:
        out += (6, value)
    elif value is UNDEFINED:
        out.append(0)
    elif isinstance(value, str):  # str subclasses such as ids.Id
        out += (5, str(value))
    else:
        raise InvalidValueError(f"{value!r} of type {t.__name__} is not a Convex value.")


def sort_key(value: Any) -> tuple[Any, ...]:
    """A tuple whose Python order is Convex's total order over values (see module docstring)."""
    t = type(value)
    # Fast paths for the common scalar types (index keys are built from these).
    if t is str:
        return (5, value)
    if t is float:
        return _float_key(value)
    if t is Int64:
        return (2, int(value))
    if t is bool:
        return (4, value)
    if value is None:
        return (1,)
    out: list[Any] = []
    _key_parts(value, out)
    return tuple(out)


def compare(a: Any, b: Any) -> int:
    """-1, 0 or 1 as Convex orders ``a`` and ``b``."""
    ka, kb = sort_key(a), sort_key(b)
    return -1 if ka < kb else (1 if ka > kb else 0)


def values_equal(a: Any, b: Any) -> bool:
    """Convex equality: total-order equality (``Int64(1) != 1.0``, ``-0.0 != 0.0``, NaN == NaN)."""
    return sort_key(a) == sort_key(b)


# ---------------------------------------------------------------------------------------------
# Entry conversion


def _int_to_float(n: int) -> float:
    if -MAX_SAFE_INTEGER <= n <= MAX_SAFE_INTEGER:
        return float(n)
    raise InvalidValueError(
        f"Integer {n} is outside the range of a Convex float64 (±2^53). "
        "Use convex_lab.Int64(n) or a v.int64() validator to store it as an int64."
    )


def check_int64(n: int) -> Int64:
    if INT64_MIN <= n <= INT64_MAX:
        return n if type(n) is Int64 else Int64(n)
    raise InvalidValueError(f"Int64 {n} is outside the int64 range −2^63 … 2^63−1.")


_checked_field_names: set[str] = set()


def check_field_name(name: Any, *, top_level: bool = False) -> None:
    """Convex's field-name rules: str, printable ASCII, no leading ``$``, ≤ 1024 characters;
    at the top level of a document no leading ``_`` (system fields excepted)."""
    if name not in _checked_field_names:
        if type(name) is not str:
            raise InvalidValueError(
                f"Object keys must be strings; got {name!r} ({type(name).__name__})."
            )
        if name.startswith("$"):
            raise InvalidValueError(f"Field name {name} starts with a '$', which is reserved.")
        if not (name.isascii() and name.isprintable()):
            raise InvalidValueError(
                f"Field name {name!r} has invalid character(s): field names can only contain "
                "non-control ASCII characters."
            )
        if len(name) > MAX_FIELD_NAME_LEN:
            raise InvalidValueError(
                f"Field name {name[:40]}... is longer than {MAX_FIELD_NAME_LEN} characters."
            )
        if len(_checked_field_names) < 100_000:  # names repeat: remember the good ones
            _checked_field_names.add(name)
    if top_level and name[:1] == "_" and name not in ("_id", "_creationTime"):
        raise InvalidValueError(
            f"Field name {name} starts with a '_', which is reserved for system fields. "
            "Rename the field."
        )


def _check_string(s: str) -> str:
    if not s.isascii():
        try:
            s.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidValueError(
                f"String {s[:40]!r} is not valid Unicode (it has a lone surrogate)."
            ) from None
    return s


def convert(value: Any, depth: int = 0, max_nesting: int = MAX_VALUE_NESTING) -> Any:
    """A Python value entering the system → a canonical Convex value (see module docstring).

    Plain ints become float64; tuples become arrays; ``UNDEFINED`` fields of dicts are dropped;
    limits on array length, object fields and nesting are checked. Raises ``InvalidValueError``.
    """
    t = type(value)
    if t is str:
        return value if value.isascii() else _check_string(value)
    if t is float or value is None:
        return value
    if t is bool:
        return value
    if t is Int64:
        return check_int64(value)
    if t is int:
        return _int_to_float(value)
    if t is dict or isinstance(value, Mapping):
        if depth >= max_nesting:
            raise LimitExceededError(
                f"Value is too nested (nested {depth + 1} levels deep > maximum {max_nesting}).",
                code="TooNestedError",
            )
        if len(value) > MAX_OBJECT_FIELDS:
            raise LimitExceededError(
                f"Object has too many fields ({len(value)} > maximum {MAX_OBJECT_FIELDS}).",
                code="TooManyFieldsError",
            )
        out = {}
        for k, v in value.items():
            if v is UNDEFINED:
                continue
            check_field_name(k)
            out[k] = convert(v, depth + 1, max_nesting)
        return out
    if t is list or t is tuple:
        if depth >= max_nesting:
            raise LimitExceededError(
                f"Value is too nested (nested {depth + 1} levels deep > maximum {max_nesting}).",
                code="TooNestedError",
            )
        if len(value) > MAX_ARRAY_LEN:
            raise LimitExceededError(
                f"Array length is too long ({len(value)} > maximum length {MAX_ARRAY_LEN}).",
                code="ArrayTooLong",
            )
        items = []
        for item in value:
            if item is UNDEFINED:
                raise InvalidValueError("undefined is not a valid Convex value inside an array.")
            items.append(convert(item, depth + 1, max_nesting))
        return items
    if t is bytes or t is bytearray or t is memoryview:
        return bytes(value)
    if isinstance(value, str):  # str subclasses such as Id
        return str(value)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return _int_to_float(int(value))
    if isinstance(value, float):
        return float(value)
    if value is UNDEFINED:
        raise InvalidValueError(
            "undefined is not a valid Convex value here: it is only allowed as a missing field, "
            "in filters and index ranges, and as a patch value meaning 'remove this field'."
        )
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return convert(value.item(), depth, max_nesting)
    raise InvalidValueError(
        f"{value!r} of type {t.__name__} is not a supported Convex value. Supported: None, bool, "
        "int (as float64), float, Int64, str, bytes, list, dict."
    )


def convert_document(fields: Mapping[str, Any]) -> dict[str, Any]:
    """User fields of a document → canonical dict; checks top-level names and document nesting."""
    if not isinstance(fields, Mapping):
        raise InvalidValueError(
            f"A document must be a dict of fields; got {type(fields).__name__}."
        )
    out = {}
    for k, v in fields.items():
        if v is UNDEFINED:
            continue
        check_field_name(k, top_level=True)
        out[k] = convert(v, 1, MAX_DOCUMENT_NESTING)
    if len(out) > MAX_OBJECT_FIELDS:
        raise LimitExceededError(
            f"Object has too many fields ({len(out)} > maximum {MAX_OBJECT_FIELDS}).",
            code="TooManyFieldsError",
        )
    return out


# ---------------------------------------------------------------------------------------------
# Size and nesting (reference §1.3)


def value_size(value: Any) -> int:
    """Convex's size of a canonical value in bytes."""
    t = type(value)
    if t is str:
        return 2 + (len(value) if value.isascii() else len(value.encode("utf-8")))
    if t is float or t is Int64 or t is int:
        return 9
    if t is bool or value is None:
        return 1
    if t is dict:
        return 2 + sum(len(k) + 1 + value_size(v) for k, v in value.items())
    if t is list:
        return 2 + sum(value_size(v) for v in value)
    if t is bytes:
        return 2 + len(value)
    return 0


def nesting(value: Any) -> int:
    """Nesting depth: scalars 0, an array or object 1 + its deepest child."""
    t = type(value)
    if t is dict:
        return 1 + max((nesting(v) for v in value.values()), default=0)
    if t is list:
        return 1 + max((nesting(v) for v in value), default=0)
    return 0


# ---------------------------------------------------------------------------------------------
# JSON encodings (reference §1.4)


def _b64(b: bytes) -> str:
    return base64.standard_b64encode(b).decode("ascii")


def _special_float(x: float) -> bool:
    return math.isnan(x) or math.isinf(x) or (x == 0.0 and math.copysign(1.0, x) < 0)


def to_internal_json(value: Any) -> Any:
    """Convex's "convex_encoded_json": int64 as ``{"$integer": b64 LE}``, special floats as
    ``{"$float": b64 LE}``, bytes as ``{"$bytes": b64}``."""
    t = type(value)
    if t is Int64 or (t is int and t is not bool):
        return {"$integer": _b64(struct.pack("<q", int(value)))}
    if t is float:
        return {"$float": _b64(struct.pack("<d", value))} if _special_float(value) else value
    if t is bytes:
        return {"$bytes": _b64(value)}
    if t is list:
        return [to_internal_json(v) for v in value]
    if t is dict:
        return {k: to_internal_json(v) for k, v in value.items()}
    return value


def from_internal_json(data: Any) -> Any:
    """Inverse of :func:`to_internal_json`; a plain JSON number is always a float64."""
    t = type(data)
    if t is int:
        return float(data)
    if t is list:
        return [from_internal_json(v) for v in data]
    if t is dict:
        if len(data) == 1:
            (k, v), = data.items()
            if k == "$integer":
                return Int64(struct.unpack("<q", base64.standard_b64decode(v))[0])
            if k == "$float":
                x = struct.unpack("<d", base64.standard_b64decode(v))[0]
                if not _special_float(x):
                    raise InvalidValueError(f"{x} should be encoded as a number, not $float.")
                return x
            if k == "$bytes":
                return base64.standard_b64decode(v)
            if k in ("$set", "$map"):
                raise InvalidValueError(f"{k} is a retired Convex type and is no longer supported.")
        return {k: from_internal_json(v) for k, v in data.items()}
    return data


def to_clean_json(value: Any) -> Any:
    """Convex's lossy "json" export: int64 as decimal string, bytes as base64 string,
    non-finite floats as "NaN"/"Infinity"/"-Infinity"."""
    t = type(value)
    if t is Int64:
        return str(int(value))
    if t is float:
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if t is bytes:
        return _b64(value)
    if t is list:
        return [to_clean_json(v) for v in value]
    if t is dict:
        return {k: to_clean_json(v) for k, v in value.items()}
    return value


def _export_default(obj: Any) -> Any:
    if type(obj) is bytes:
        return {"$bytes": _b64(obj)}
    raise TypeError(f"{obj!r} is not a canonical Convex value")


_export_encoder = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), default=_export_default, allow_nan=True
)


def _has_special_floats(value: Any) -> bool:
    t = type(value)
    if t is float:
        return _special_float(value)
    if t is dict:
        return any(_has_special_floats(v) for v in value.values())
    if t is list:
        return any(_has_special_floats(v) for v in value)
    return False


def _export_tree(value: Any) -> Any:
    t = type(value)
    if t is float and _special_float(value):
        if value == 0.0:  # -0.0 is a plain number with a decimal point in export_json
            return value
        return {"$float": _b64(struct.pack("<d", value))}
    if t is list:
        return [_export_tree(v) for v in value]
    if t is dict:
        return {k: _export_tree(v) for k, v in value.items()}
    return value


def dumps_export(value: Any) -> str:
    """Convex's "export_json" text of a canonical value: int64 as a JSON integer, finite floats
    with a decimal point, non-finite floats as ``{"$float": ...}``, bytes as ``{"$bytes": ...}``.
    This is also how documents are stored in DuckDB (lossless: :func:`loads_export` inverts it).
    """
    text = _export_encoder.encode(value)
    if ("NaN" in text or "Infinity" in text) and _has_special_floats(value):
        text = _export_encoder.encode(_export_tree(value))
    return text


def _export_hook(obj: dict[str, Any]) -> Any:
    if len(obj) == 1:
        if "$bytes" in obj:
            return base64.standard_b64decode(obj["$bytes"])
        if "$float" in obj:
            return struct.unpack("<d", base64.standard_b64decode(obj["$float"]))[0]
        if "$integer" in obj:
            return Int64(struct.unpack("<q", base64.standard_b64decode(obj["$integer"]))[0])
    return obj


_plain_decoder = json.JSONDecoder(parse_int=Int64)
_hooked_decoder = json.JSONDecoder(parse_int=Int64, object_hook=_export_hook)


def loads_export(text: str) -> Any:
    """Inverse of :func:`dumps_export`."""
    if '"$' in text:
        return _hooked_decoder.decode(text)
    return _plain_decoder.decode(text)


# ---------------------------------------------------------------------------------------------
# Human rendering for error messages


def format_value(value: Any, _limit: int = 200) -> str:
    """A value as Convex prints it in messages: JSON-like, int64 as ``123n``."""
    text = _format(value)
    return text if len(text) <= _limit else text[: _limit - 3] + "..."


def _format(value: Any) -> str:
    t = type(value)
    if value is None:
        return "null"
    if t is bool:
        return "true" if value else "false"
    if t is Int64 or t is int:
        return f"{int(value)}n" if t is Int64 else str(value)
    if t is float:
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        if value == int(value) and abs(value) < 1e21:
            return "-0" if (value == 0 and math.copysign(1, value) < 0) else str(int(value))
        return repr(value)
    if isinstance(value, str):  # str subclasses (ids.Id) print as the string they are
        return json.dumps(str(value), ensure_ascii=False)
    if t is bytes:
        return f"ArrayBuffer(byteLength={len(value)})"
    if t is list or t is tuple:
        return "[" + ", ".join(_format(v) for v in value) + "]"
    if t is dict:
        return "{" + ", ".join(f"{k}: {_format(v)}" for k, v in value.items()) + "}"
    if value is UNDEFINED:
        return "undefined"
    return repr(value)


ValueConverter = Callable[[Any], Any]

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "MAX_DOCUMENT_NESTING",
    "MAX_DOCUMENT_SIZE",
    "UNDEFINED",
    "Int64",
    "check_field_name",
    "compare",
    "convert",
    "convert_document",
    "dumps_export",
    "format_value",
    "from_internal_json",
    "loads_export",
    "nesting",
    "sort_key",
    "to_clean_json",
    "to_internal_json",
    "type_name",
    "value_size",
    "values_equal",
]

"""Convex's value model in Python: types, the total order, sizes, and entry conversion.

Mapping (docs/api.md): ``None`` null, ``bool`` boolean (tested before ``int``: ``bool`` is an
``int`` in Python), ``float`` float64, ``Int64`` int64, ``str`` string, ``bytes`` bytes, ``list``
array, ``dict`` object. A plain ``int`` entering the system becomes a float64 (an error past
±2^53, like the official Python client) unless a validator says ``v.int64()``; ``Int64(n)`` forces
int64 anywhere. ``UNDEFINED`` is Convex's ``undefined``: a missing field. numpy values are
converted on entry (:func:`from_numpy`: arrays become lists, scalars their Python equivalents).

Everything that takes outside input raises ``InvalidValueError`` or ``LimitExceededError`` for a
bad value, never a bare Python exception, and describes any object in its message safely
(:func:`safe_repr`, :func:`format_value`: bounded, for recursive containers and huge ints too).

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
import reprlib
import struct
import sys
from collections.abc import Mapping
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
# A document is one object with its system fields (`_id`, `_creationTime`): Convex's 1024-field
# limit counts them, so a document may hold 1022 fields of its own. Accepting 1023 would store a
# document that cannot be read back (returning it would exceed the object limit).
MAX_DOCUMENT_USER_FIELDS: Final = MAX_OBJECT_FIELDS - 2
MAX_ARRAY_LEN: Final = 8192
MAX_FIELD_NAME_LEN: Final = 1024


# ---------------------------------------------------------------------------------------------
# Describing arbitrary (possibly hostile) Python objects in error messages


def int_text(n: int) -> str:
    """``str(n)``, except that an integer too long to print (Python refuses past 4300 digits, and
    such a number says nothing in a message) is described by its size instead."""
    if n.bit_length() <= 256:
        return str(int(n))
    digits = int(n.bit_length() * 0.30103) + 1
    return f"{'-' if n < 0 else ''}<an integer of about {digits} digits>"


class _SafeRepr(reprlib.Repr):
    """``reprlib`` with Python's own size limits, hardened: never raises, never recurses deeply."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 3
        self.maxstring = 60
        self.maxother = 60
        self.maxlong = 40

    def repr_int(self, x: int, level: int) -> str:
        return int_text(x) if x.bit_length() > 256 else super().repr_int(x, level)

    def repr1(self, x: Any, level: int) -> str:
        try:
            return super().repr1(x, level)
        except Exception:  # noqa: BLE001 (a __repr__ that fails must not hide the real error)
            return f"<{type(x).__name__} object>"


_safe_repr = _SafeRepr()


def safe_repr(value: Any) -> str:
    """A short ``repr`` of any object for error messages: truncated, depth-limited, and safe for
    recursive containers, huge integers and objects whose ``__repr__`` fails."""
    return _safe_repr.repr(value)


def too_many_fields(count: int) -> LimitExceededError:
    """Convex's TooManyFieldsError for an object of ``count`` fields (system fields included)."""
    return LimitExceededError(
        f"Object has too many fields ({count} > maximum {MAX_OBJECT_FIELDS}).",
        code="TooManyFieldsError",
    )


def check_document_field_count(fields: Mapping[Any, Any]) -> None:
    """Raise TooManyFieldsError if a document's user ``fields`` plus ``_id`` and ``_creationTime``
    exceed Convex's 1024 fields per object (``UNDEFINED`` values and system keys do not count).

    Costs one ``len()`` unless the document is near the limit, so every write path can call it.
    """
    if len(fields) <= MAX_DOCUMENT_USER_FIELDS:
        return
    count = sum(
        1 for k, x in fields.items() if x is not UNDEFINED and k not in ("_id", "_creationTime")
    )
    if count > MAX_DOCUMENT_USER_FIELDS:
        raise too_many_fields(count + 2)


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
        raise InvalidValueError(f"{safe_repr(value)} of type {t.__name__} is not a Convex value.")


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
        f"Integer {int_text(n)} is outside the range of a Convex float64 (±2^53). "
        "Use convex_lab.Int64(n) or a v.int64() validator to store it as an int64."
    )


def check_int64(n: int) -> Int64:
    if INT64_MIN <= n <= INT64_MAX:
        return n if type(n) is Int64 else Int64(n)
    raise InvalidValueError(f"Int64 {int_text(n)} is outside the int64 range −2^63 … 2^63−1.")


_checked_field_names: set[str] = set()


def check_field_name(name: Any, *, top_level: bool = False) -> None:
    """Convex's field-name rules: str, printable ASCII, no leading ``$``, ≤ 1024 characters;
    at the top level of a document no leading ``_`` (system fields excepted)."""
    if name not in _checked_field_names:
        if type(name) is not str:
            if not isinstance(name, str):
                raise InvalidValueError(
                    f"Object keys must be strings; got {safe_repr(name)} "
                    f"({type(name).__name__}). Convert the key with str()."
                )
            name = str(name)  # a str subclass: check (and remember) the plain string
        if name.startswith("$"):
            raise InvalidValueError(
                f"Field name {name[:60]} starts with a '$', which is reserved."
            )
        if not (name.isascii() and name.isprintable()):
            raise InvalidValueError(
                f"Field name {safe_repr(name)} has invalid character(s): field names can only "
                "contain non-control ASCII characters."
            )
        if len(name) > MAX_FIELD_NAME_LEN:
            raise InvalidValueError(
                f"Field name {name[:40]}... is longer than {MAX_FIELD_NAME_LEN} characters."
            )
        if len(_checked_field_names) < 100_000:  # names repeat: remember the good ones
            _checked_field_names.add(name)
    if top_level and name[:1] == "_" and name not in ("_id", "_creationTime"):
        raise InvalidValueError(
            f"Field name {name[:60]} starts with a '_', which is reserved for system fields. "
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


class _NotNumpy:
    """Marker: :func:`from_numpy` was given something that is not a convertible numpy value."""


NOT_NUMPY: Final = _NotNumpy()

# numpy dtype kinds with a Convex equivalent: bool, signed/unsigned int, float, bytes, str (and,
# for arrays, Python objects, converted element by element). Not: complex, datetime, timedelta,
# structured ("V") values, which have no single obvious Convex form.
_NUMPY_SCALAR_KINDS: Final = {"b": bool, "i": int, "u": int, "f": float, "S": bytes, "U": str}


def from_numpy(value: Any) -> Any:
    """A numpy array or scalar as plain Python data, or ``NOT_NUMPY``.

    Numpy values are not Convex values, but they are what notebook code computes, so they are
    converted where values enter the system: an array becomes a list (``.tolist()``, nested for
    more dimensions), a scalar its Python equivalent (``np.float32`` → ``float``, ``np.int64`` →
    ``int``, which then follows the plain-int rule: float64, or int64 where a validator says
    ``v.int64()``). Complex, datetime, timedelta and structured dtypes are not converted
    (``NOT_NUMPY``): the caller reports them. numpy is never imported here: a value can only be a
    numpy value if numpy is already loaded.
    """
    np = sys.modules.get("numpy")
    if np is None:
        return NOT_NUMPY
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "biufSUO":
            return value.tolist()
        return NOT_NUMPY
    if isinstance(value, np.generic):
        to_python = _NUMPY_SCALAR_KINDS.get(value.dtype.kind)
        if to_python is not None:
            return to_python(value)
    return NOT_NUMPY


def _not_a_value(value: Any) -> InvalidValueError:
    """Why ``value`` is not a Convex value, with the fix for the common cases."""
    t = type(value)
    hint = ""
    if isinstance(value, (set, frozenset)):
        hint = " Convex has no sets: use a list (sorted(...)) or a dict of booleans."
    elif isinstance(value, complex) or t.__module__ == "numpy":
        hint = (" numpy arrays and scalars of bool, int, float and str dtypes are converted; "
                "this one has no Convex equivalent: convert it yourself (e.g. .tolist(), or "
                "split complex numbers into two floats).")
    elif hasattr(value, "isoformat"):
        hint = (" Store dates and times as a float of milliseconds since the epoch "
                "(dt.timestamp() * 1000) or as an ISO string (dt.isoformat()).")
    elif t.__module__ in ("decimal", "fractions"):
        hint = " Convert it with float(x), or str(x) to keep every digit."
    elif hasattr(value, "__iter__") and not isinstance(value, (str, bytes)):
        hint = " Convert it with list(...) (or dict(...)) first."
    return InvalidValueError(
        f"{safe_repr(value)} of type {t.__name__} is not a supported Convex value.{hint} "
        "Supported: None, bool, int (as float64), float, Int64, str, bytes, list, dict."
    )


def convert(value: Any, depth: int = 0, max_nesting: int = MAX_VALUE_NESTING) -> Any:
    """A Python value entering the system → a canonical Convex value (see module docstring).

    Plain ints become float64; tuples (and list or tuple subclasses) become arrays; ``bytearray``
    and ``memoryview`` become bytes; numpy arrays and scalars are converted (see
    :func:`from_numpy`); ``UNDEFINED`` fields of dicts are dropped; limits on array length, object
    fields and nesting are checked (nesting first, so recursive containers stop there). Raises
    ``InvalidValueError`` or ``LimitExceededError``, never anything else.
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
            raise too_many_fields(len(value))
        out = {}
        for k, v in value.items():
            if v is UNDEFINED:
                continue
            check_field_name(k)
            out[str(k) if type(k) is not str else k] = convert(v, depth + 1, max_nesting)
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
    if t is bytes:
        return value
    if t is bytearray or t is memoryview or isinstance(value, bytes):
        try:
            return bytes(value)
        except (ValueError, TypeError, BufferError) as e:  # e.g. a released memoryview
            raise InvalidValueError(f"{t.__name__} could not be read as bytes: {e}") from None
    if isinstance(value, str):  # str subclasses such as Id
        return _check_string(str(value))
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):  # int subclasses (IntEnum, ...): Int64's rules stay with Int64
        return _int_to_float(int(value))
    if isinstance(value, float):
        return float(value)
    if isinstance(value, (list, tuple)):  # list and tuple subclasses (namedtuples, ...)
        return convert(list(value), depth, max_nesting)
    if value is UNDEFINED:
        raise InvalidValueError(
            "undefined is not a valid Convex value here: it is only allowed as a missing field, "
            "in filters and index ranges, and as a patch value meaning 'remove this field'."
        )
    plain = from_numpy(value)
    if plain is not NOT_NUMPY:
        return convert(plain, depth, max_nesting)
    raise _not_a_value(value)


def convert_document(fields: Mapping[str, Any]) -> dict[str, Any]:
    """User fields of a document → canonical dict; checks top-level names, the field count
    (at most ``MAX_DOCUMENT_USER_FIELDS``: the system fields count toward Convex's 1024) and
    document nesting."""
    if not isinstance(fields, Mapping):
        raise InvalidValueError(
            f"A document must be a dict of fields; got {type(fields).__name__}."
        )
    check_document_field_count(fields)
    out = {}
    for k, v in fields.items():
        if v is UNDEFINED:
            continue
        check_field_name(k, top_level=True)
        out[str(k) if type(k) is not str else k] = convert(v, 1, MAX_DOCUMENT_NESTING)
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


def _eight_bytes(tag: str, text: Any) -> bytes:
    """The 8 little-endian bytes of a ``$integer`` / ``$float`` (base64), or Convex's kind of
    error."""
    try:
        raw = base64.standard_b64decode(text) if isinstance(text, str) else b""
    except ValueError:
        raw = b""
    if len(raw) != 8:
        raise InvalidValueError(f"{tag} takes the base64 of 8 little-endian bytes, such as "
                                f'{{"{tag}": "AQAAAAAAAAA="}}; got {safe_repr(text)[:60]}.')
    return raw


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
                return Int64(struct.unpack("<q", _eight_bytes(k, v))[0])
            if k == "$float":
                x = struct.unpack("<d", _eight_bytes(k, v))[0]
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


FORMAT_MAX_DEPTH: Final = 16


def format_value(value: Any, _limit: int = 200) -> str:
    """A value as Convex prints it in messages: JSON-like, int64 as ``123n``.

    Any Python object is accepted (messages describe bad input too). The text is at most
    ``_limit`` characters (cut with ``...``), and containers deeper than ``FORMAT_MAX_DEPTH``
    render as ``[...]`` / ``{...}``: the work is bounded by the limit, not by the value, so a huge,
    deeply nested or self-referencing value is described without recursing through all of it.
    """
    out: list[str] = []
    _emit(value, out, 0, _limit + 1)
    text = "".join(out)
    return text if len(text) <= _limit else text[: _limit - 3] + "..."


def _emit(value: Any, out: list[str], depth: int, room: int) -> int:
    """Append the rendering of ``value`` to ``out``, stopping once ``room`` characters are
    used; returns the room left (≤ 0 means the caller should stop too)."""
    t = type(value)
    if t is list or t is tuple:
        if depth >= FORMAT_MAX_DEPTH:
            out.append("[...]")
            return room - 5
        out.append("[")
        room -= 1
        for i, item in enumerate(value):
            if room <= 0:
                return room
            if i:
                out.append(", ")
                room -= 2
            room = _emit(item, out, depth + 1, room)
        out.append("]")
        return room - 1
    if t is dict:
        if depth >= FORMAT_MAX_DEPTH:
            out.append("{...}")
            return room - 5
        out.append("{")
        room -= 1
        for i, (k, item) in enumerate(value.items()):
            if room <= 0:
                return room
            key = (str(k) if isinstance(k, str) else safe_repr(k))[:room] + ": "
            out.append(", " + key if i else key)
            room -= len(key) + (2 if i else 0)
            room = _emit(item, out, depth + 1, room)
        out.append("}")
        return room - 1
    text = _scalar_text(value, room)
    out.append(text)
    return room - len(text)


def _scalar_text(value: Any, room: int) -> str:
    t = type(value)
    if value is None:
        return "null"
    if t is bool:
        return "true" if value else "false"
    if t is Int64:
        return f"{int_text(value)}n"
    if t is int:
        return int_text(value)
    if t is float:
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        if value == int(value) and abs(value) < 1e21:
            return "-0" if (value == 0 and math.copysign(1, value) < 0) else str(int(value))
        return repr(value)
    if isinstance(value, str):  # str subclasses (ids.Id) print as the string they are
        return json.dumps(str(value)[: max(room, 0) + 1], ensure_ascii=False)
    if t is bytes:
        return f"ArrayBuffer(byteLength={len(value)})"
    if value is UNDEFINED:
        return "undefined"
    return safe_repr(value)



__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "MAX_DOCUMENT_NESTING",
    "MAX_DOCUMENT_SIZE",
    "MAX_DOCUMENT_USER_FIELDS",
    "NOT_NUMPY",
    "UNDEFINED",
    "Int64",
    "check_document_field_count",
    "check_field_name",
    "compare",
    "convert",
    "convert_document",
    "dumps_export",
    "format_value",
    "from_internal_json",
    "from_numpy",
    "int_text",
    "loads_export",
    "nesting",
    "safe_repr",
    "sort_key",
    "to_clean_json",
    "to_internal_json",
    "too_many_fields",
    "type_name",
    "value_size",
    "values_equal",
]

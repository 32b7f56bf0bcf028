"""Validator base class, error rendering and the scalar validators (see ``convex_lab.validators``).

Private module: import these names from ``convex_lab.validators``. Split out only to keep modules
short; the contract is documented there.

Invariant kept for speed: the success path builds no error context. A failure raises the private
``_Mismatch`` carrying what the message needs; containers append their path segment while it
unwinds and ``Validator.validate`` renders Convex's text once, at the top.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, NoReturn

from convex_lab.errors import (
    InvalidIdError,
    InvalidValidatorError,
    SchemaError,
    ValidationError,
)
from convex_lab.ids import Id, decode_id
from convex_lab.values import (
    FORMAT_MAX_DEPTH,
    MAX_SAFE_INTEGER,
    NOT_NUMPY,
    UNDEFINED,
    Int64,
    check_int64,
    convert,
    format_value,
    from_numpy,
    safe_repr,
    to_internal_json,
    values_equal,
)

TableLookup = Callable[[int], "str | None"]
"""``tables(table_number) -> table name or None``: how ``v.id(t)`` learns an ID's table."""

MAX_IDENTIFIER_LEN: Final = 64
_IDENTIFIER_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def identifier_problem(name: object) -> str | None:
    """Why ``name`` is not a Convex identifier (reference §2.1), or ``None`` if it is one."""
    if not isinstance(name, str):
        return f"{safe_repr(name)} is not a string."
    if not name:
        return "Identifier cannot be empty."
    if not _IDENTIFIER_RE.match(name):
        return (
            f"{name!r} is not a valid identifier: identifiers must start with a letter or "
            "underscore and only contain letters, digits and underscores."
        )
    if len(name) > MAX_IDENTIFIER_LEN:
        return f"Identifier is too long ({len(name)} > maximum {MAX_IDENTIFIER_LEN})."
    if not name.strip("_"):
        return f"Identifier {name} cannot have exclusively underscores."
    return None


class _Mismatch(Exception):  # noqa: N818 (internal control flow, never escapes validate())
    """A value failed a validator. ``segments`` is the path, innermost first."""

    def __init__(
        self, kind: str, value: Any, validator: Validator, field: str = "", table: str = ""
    ) -> None:
        super().__init__(kind)
        self.kind = kind
        self.value = value
        self.validator = validator
        self.field = field
        self.table = table
        self.segments: list[str] = []


def _display_value(value: Any) -> str:
    """A value as printed in messages; objects with sorted keys, as Convex stores them."""
    return format_value(_sorted_value(value))


# Messages show at most this many items of a container (``format_value`` cuts at 200 characters).
_DISPLAY_ITEMS = 100


def _sorted_value(value: Any, depth: int = 0) -> Any:
    """``value`` with object keys sorted, for display only. Bounded work: containers past
    ``FORMAT_MAX_DEPTH`` are left as they are (``format_value`` renders them as ``...``), so a
    self-referencing or very deep value cannot recurse without end."""
    if depth >= FORMAT_MAX_DEPTH:
        return value
    if isinstance(value, Mapping):
        try:
            keys = sorted(value)
        except TypeError:  # keys of mixed types (a bad value): keep the given order
            keys = list(value)
        shown = [k for k in keys[: _DISPLAY_ITEMS * 2] if value[k] is not UNDEFINED]
        return {k: _sorted_value(value[k], depth + 1) for k in shown[:_DISPLAY_ITEMS]}
    if isinstance(value, (list, tuple)):
        return [_sorted_value(x, depth + 1) for x in value[:_DISPLAY_ITEMS]]
    return value


def _path_prefix(path: Iterable[Any]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def _render(m: _Mismatch, prefix: str) -> str:
    where = prefix + "".join(reversed(m.segments))
    context = f"Path: {where}" if where else ""
    kind = m.kind
    if kind == "nomatch":
        return (
            f"Value does not match validator.\n{context}\nValue: {_display_value(m.value)}\n"
            f"Validator: {m.validator.display()}"
        )
    if kind == "missing":
        return (
            f"Object is missing the required field `{m.field}`. Consider wrapping the field "
            f"validator in `v.optional(...)` if this is expected.\n{context}\n"
            f"Object: {_display_value(m.value)}\nValidator: {m.validator.display()}"
        )
    if kind == "extra":
        return (
            f"Object contains extra field `{m.field}` that is not in the validator.\n{context}\n"
            f"Object: {_display_value(m.value)}\nValidator: {m.validator.display()}"
        )
    if kind == "model":  # a pydantic model's own messages (``_annotations.VModel``)
        return f"{m.field}\n{context}\nValue: {_display_value(m.value)}"
    if kind == "literal":
        return (
            f"`{_display_value(m.value)}` does not match literal validator "
            f"`{m.validator.display()}`.{context}"
        )
    table = m.validator.table_name if isinstance(m.validator, VId) else ""
    if kind == "system":
        return (
            f'Found ID "{m.value}" from a system table, which does not match the table name in '
            f'validator `v.id("{table}")`.{context}'
        )
    return (
        f'Found ID "{m.value}" from table `{m.table}`, which does not match the table name in '
        f'validator `v.id("{table}")`.{context}'
    )


class Validator:
    """Base of all validators; see the module docstring for the contract."""

    __slots__ = ("_key", "is_optional", "kind")
    kind: str
    is_optional: bool
    _key: tuple[Any, ...] | None

    def __init__(self, kind: str, optional: bool) -> None:
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "is_optional", bool(optional))
        object.__setattr__(self, "_key", None)

    # -- immutability, equality ------------------------------------------------------------

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def _identity(self) -> tuple[Any, ...]:
        key = self._key
        if key is None:
            key = (repr(self), self.is_optional)
            object.__setattr__(self, "_key", key)
        return key

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Validator):
            return NotImplemented
        return self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash(self._identity())

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.to_json(), self.is_optional))

    # -- rendering -------------------------------------------------------------------------

    def display(self) -> str:
        """Convex's rendering without the optional wrapper (as in error texts)."""
        return f"v.{self.kind}()"

    def __repr__(self) -> str:
        text = self.display()
        return f"v.optional({text})" if self.is_optional else text

    def to_json(self) -> dict[str, Any]:
        """The JSON form convex-js sends to the server for this validator."""
        return {"type": self.kind}

    # -- optional flag ---------------------------------------------------------------------

    def _with_optional(self, optional: bool) -> Validator:
        raise NotImplementedError

    def as_optional(self) -> Validator:
        return self if self.is_optional else self._with_optional(True)

    def as_required(self) -> Validator:
        return self._with_optional(False) if self.is_optional else self

    # -- validation ------------------------------------------------------------------------

    def validate(
        self, value: Any, *, path: tuple[Any, ...] = (), tables: TableLookup | None = None
    ) -> Any:
        """Check ``value`` and return it converted to a canonical Convex value.

        ``path`` prefixes the ``Path:`` of error texts (``str`` → ``.name``, ``int`` → ``[i]``);
        ``tables`` maps an ID's table number to its table name for ``v.id`` checks.
        Raises ``ValidationError`` with Convex's text.
        """
        if value is UNDEFINED and self.is_optional:
            return UNDEFINED
        try:
            return self._conv(value, tables)
        except _Mismatch as m:
            err = ValidationError(_render(m, _path_prefix(path)))
            err.path = _path_prefix(path) + "".join(reversed(m.segments))  # type: ignore[attr-defined]
            raise err from None

    def check(self, value: Any, *, tables: TableLookup | None = None) -> bool:
        """Whether ``value`` matches (no exception, no error text built)."""
        try:
            self._conv(value, tables)
        except _Mismatch:
            return False
        return True

    def _conv(self, value: Any, tables: TableLookup | None) -> Any:
        raise NotImplementedError

    def _fail(self, value: Any) -> NoReturn:
        raise _Mismatch("nomatch", value, self)

    def _conv_foreign(self, value: Any, tables: TableLookup | None) -> Any:
        """The last step before a mismatch: a numpy value (what notebook code computes) is
        validated again as its Python equivalent (``values.from_numpy``); anything else fails.
        Only reached on the failure path, so it costs nothing when values are plain Python."""
        plain = from_numpy(value)
        if plain is NOT_NUMPY:
            self._fail(value)
        return self._conv(plain, tables)

    def admits_int64(self) -> bool:
        """Whether a plain ``int`` validated here becomes an ``Int64`` (docs/api.md)."""
        return False


def _rebuild(data: dict[str, Any], optional: bool) -> Validator:
    # Imported here: validators.py (the containers) builds on this module.
    from convex_lab.validators import validator_from_json  # noqa: PLC0415

    validator = validator_from_json(data)
    return validator.as_optional() if optional else validator


# ---------------------------------------------------------------------------------------------
# Scalars


class VString(Validator):
    __slots__ = ()

    def __init__(self, *, optional: bool = False) -> None:
        super().__init__("string", optional)

    def _with_optional(self, optional: bool) -> Validator:
        return VString(optional=optional)

    def _conv(self, value: Any, tables: TableLookup | None) -> Any:
        if type(value) is str:
            return value if value.isascii() else convert(value)
        if isinstance(value, str):
            return convert(value)
        return self._conv_foreign(value, tables)


class VFloat64(Validator):
    __slots__ = ()

    def __init__(self, *, optional: bool = False) -> None:
        super().__init__("float64", optional)

    def _with_optional(self, optional: bool) -> Validator:
        return VFloat64(optional=optional)

    def to_json(self) -> dict[str, Any]:
        return {"type": "number"}  # the server's historical name

    def _conv(self, value: Any, tables: TableLookup | None) -> Any:
        t = type(value)
        if t is float:
            return value
        if t is int:  # a plain int entering the system is a float64 (error past ±2^53)
            return convert(value)
        if t is not bool and t is not Int64 and isinstance(value, (int, float)):
            return convert(value)
        return self._conv_foreign(value, tables)


class VInt64(Validator):
    __slots__ = ()

    def __init__(self, *, optional: bool = False) -> None:
        super().__init__("int64", optional)

    def _with_optional(self, optional: bool) -> Validator:
        return VInt64(optional=optional)

    def admits_int64(self) -> bool:
        return True

    def to_json(self) -> dict[str, Any]:
        return {"type": "bigint"}  # the server's historical name

    def _conv(self, value: Any, tables: TableLookup | None) -> Any:
        t = type(value)
        if t is Int64 or t is int:
            return check_int64(value)
        if t is not bool and isinstance(value, int):
            return check_int64(int(value))
        return self._conv_foreign(value, tables)


class VBoolean(Validator):
    __slots__ = ()

    def __init__(self, *, optional: bool = False) -> None:
        super().__init__("boolean", optional)

    def _with_optional(self, optional: bool) -> Validator:
        return VBoolean(optional=optional)

    def _conv(self, value: Any, tables: TableLookup | None) -> Any:
        if type(value) is bool:
            return value
        return self._conv_foreign(value, tables)


class VNull(Validator):
    __slots__ = ()

    def __init__(self, *, optional: bool = False) -> None:
        super().__init__("null", optional)

    def _with_optional(self, optional: bool) -> Validator:
        return VNull(optional=optional)

    def _conv(self, value: Any, tables: TableLookup | None) -> Any:
        if value is None:
            return None
        self._fail(value)


class VBytes(Validator):
    __slots__ = ()

    def __init__(self, *, optional: bool = False) -> None:
        super().__init__("bytes", optional)

    def _with_optional(self, optional: bool) -> Validator:
        return VBytes(optional=optional)

    def _conv(self, value: Any, tables: TableLookup | None) -> Any:
        t = type(value)
        if t is bytes:
            return value
        if t is bytearray or t is memoryview or isinstance(value, bytes):
            return convert(value)  # copies; a released memoryview is an InvalidValueError
        self._fail(value)


class VAny(Validator):
    __slots__ = ()

    def __init__(self, *, optional: bool = False) -> None:
        super().__init__("any", optional)

    def _with_optional(self, optional: bool) -> Validator:
        return VAny(optional=optional)

    def _conv(self, value: Any, tables: TableLookup | None) -> Any:
        return convert(value)  # plain ints are float64 here, as everywhere without int64


class VId(Validator):
    """``v.id(table_name)``: a string that decodes as a document ID of that table."""

    __slots__ = ("table_name",)
    table_name: str

    def __init__(self, table_name: str, *, optional: bool = False) -> None:
        if not isinstance(table_name, str):
            raise InvalidValidatorError(
                f"v.id(table_name) requires a table name string; got {safe_repr(table_name)}.")
        super().__init__("id", optional)
        object.__setattr__(self, "table_name", table_name)

    def _with_optional(self, optional: bool) -> Validator:
        return VId(self.table_name, optional=optional)

    def display(self) -> str:
        return f'v.id("{self.table_name}")'

    def to_json(self) -> dict[str, Any]:
        return {"type": "id", "tableName": self.table_name}

    def _conv(self, value: Any, tables: TableLookup | None) -> Any:
        if not isinstance(value, str):
            self._fail(value)
        try:
            number = decode_id(value)[0]
        except InvalidIdError:
            self._fail(value)
        if tables is not None:
            found = tables(number)
            if found is None:  # a table that does not exist: Convex's generic no-match
                self._fail(value)
        elif isinstance(value, Id):  # without a table mapping, an Id still knows its table
            found = value.table
        else:
            found = self.table_name
        if found != self.table_name:
            kind = "system" if found.startswith("_") else "table"
            raise _Mismatch(kind, str(value), self, table=found)
        return value if type(value) is str else str(value)


class VLiteral(Validator):
    """``v.literal(x)`` for a string, float (a plain int is float64), ``Int64`` or bool."""

    __slots__ = ("value",)
    value: str | float | bool | Int64

    def __init__(self, value: Any, *, optional: bool = False) -> None:
        t = type(value)
        if t is not int and t is not Int64 and t is not bool and t is not float and t is not str:
            plain = from_numpy(value)  # np.float64(1.0) and friends are what they look like
            if plain is not NOT_NUMPY:
                value, t = plain, type(plain)
        if t is int:
            value = convert(value)
        elif t is not Int64 and t is not bool and t is not float and t is not str:
            if isinstance(value, str):
                value = str(value)
            elif isinstance(value, float):
                value = float(value)
            elif isinstance(value, int) and not isinstance(value, Int64):
                value = convert(int(value))  # int subclasses (IntEnum) are plain ints
            else:
                raise InvalidValidatorError(
                    "v.literal(value) must be a str, float, int, Int64 or bool; "
                    f"got {safe_repr(value)} ({t.__name__})"
                )
        if type(value) is float and not math.isfinite(value):
            raise SchemaError(
                "Infinite or NaN values are not supported in literal validators.",
                code="UnsupportedFloatLiteral",
            )
        super().__init__("literal", optional)
        object.__setattr__(self, "value", value)

    def _with_optional(self, optional: bool) -> Validator:
        return VLiteral(self.value, optional=optional)

    def admits_int64(self) -> bool:
        return type(self.value) is Int64

    def display(self) -> str:
        return f"v.literal({_display_value(self.value)})"

    def to_json(self) -> dict[str, Any]:
        return {"type": "literal", "value": to_internal_json(self.value)}

    def _conv(self, value: Any, tables: TableLookup | None) -> Any:
        lit = self.value
        t = type(value)
        if t is int:
            if type(lit) is Int64:
                cand: Any = Int64(value)
            elif -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
                cand = float(value)
            else:
                cand = None
        elif t is not str and isinstance(value, str):
            cand = str(value)
        elif t is not float and isinstance(value, float):
            cand = float(value)  # float subclasses (np.float64)
        else:
            cand = from_numpy(value)  # other numpy scalars: np.int64, np.bool_, np.float32
            if cand is NOT_NUMPY:
                cand = value
            elif type(cand) is int:
                return self._conv(cand, tables)  # the plain-int rules above
        if type(cand) is type(lit) and (
            values_equal(cand, lit) if type(lit) is float else cand == lit
        ):
            return lit
        raise _Mismatch("literal", value, self)


# ---------------------------------------------------------------------------------------------
# Containers

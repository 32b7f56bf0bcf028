"""Convex validators (``v.string()``, ``v.object({...})``, ...) as immutable data.

Contract
--------
* A validator is data: ``.kind`` is Convex's kind name (``"string"``, ``"float64"``, ``"int64"``,
  ``"boolean"``, ``"null"``, ``"id"``, ``"array"``, ``"object"``, ``"record"``, ``"union"``,
  ``"literal"``, ``"any"``, ``"bytes"``), ``.is_optional`` marks an optional object field,
  ``.to_json()`` is the JSON form convex-js sends to the server (``validators.ts`` ``.json``;
  ``validator_from_json`` is its inverse) and ``repr()`` is the form Convex prints in errors.
  Validators are immutable, hashable and compare equal by structure.
* ``validate(value, path=(), tables=None)`` checks and converts in one pass and returns a canonical
  Convex value. Conversion follows docs/api.md: a plain ``int`` becomes ``Int64`` where the
  validator says int64 (``v.int64()``, an int64 literal, a union admitting int64 — tried first)
  and a float64 everywhere else (an error past ±2^53); an ``Int64`` never matches float64 and a
  float never matches int64; tuples are arrays; ``UNDEFINED`` object fields count as absent.
* A mismatch raises ``ValidationError`` whose text is Convex's (``crates/common/src/schemas/
  validator.rs``): the same message kinds, the same ``Path: .a[0].b`` context and the same check
  order (object fields in sorted order, then extra fields; union members in order).
* Values that are not Convex values at all (a ``set``, an int past the int64 range, a lone
  surrogate) raise ``InvalidValueError`` from ``values.convert`` rules instead. Size and nesting
  limits of whole documents are the caller's to check on the result.

Layout: ``convex_lab._validator_base`` holds the base class, error rendering and the scalar
validators; this module the containers, the ``v`` builder, JSON and helpers;
``convex_lab._annotations`` the mapping from Python annotations.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, Final

from convex_lab._validator_base import (
    MAX_IDENTIFIER_LEN,
    TableLookup,
    Validator,
    VAny,
    VBoolean,
    VBytes,
    VFloat64,
    VId,
    VInt64,
    VLiteral,
    VNull,
    VString,
    _Mismatch,
    identifier_problem,
)
from convex_lab.errors import InvalidValidatorError, LimitExceededError, SchemaError
from convex_lab.values import (
    MAX_ARRAY_LEN,
    MAX_OBJECT_FIELDS,
    UNDEFINED,
    check_field_name,
    from_internal_json,
    safe_repr,
    too_many_fields,
)


def _require_validator(x: object, where: str) -> Validator:
    if not isinstance(x, Validator):
        raise InvalidValidatorError(
            f"{where} must be a validator such as v.string(); got {safe_repr(x)}")
    return x


class VArray(Validator):
    __slots__ = ("element",)
    element: Validator

    def __init__(self, element: Validator, *, optional: bool = False) -> None:
        element = _require_validator(element, "The element of v.array()")
        if element.is_optional:
            raise SchemaError("v.array() elements cannot be optional; use v.array(x) instead.")
        super().__init__("array", optional)
        object.__setattr__(self, "element", element)

    def _with_optional(self, optional: bool) -> Validator:
        return VArray(self.element, optional=optional)

    def display(self) -> str:
        return f"v.array({self.element.display()})"

    def to_json(self) -> dict[str, Any]:
        return {"type": "array", "value": self.element.to_json()}

    def _conv(self, value: Any, tables: TableLookup | None) -> Any:
        t = type(value)
        if t is not list and t is not tuple:
            if isinstance(value, (list, tuple)):  # subclasses (namedtuples, ...) are arrays too
                return self._conv(list(value), tables)
            return self._conv_foreign(value, tables)  # a numpy array is validated as a list
        if len(value) > MAX_ARRAY_LEN:
            raise LimitExceededError(
                f"Array length is too long ({len(value)} > maximum length {MAX_ARRAY_LEN}).",
                code="ArrayTooLong",
            )
        conv = self.element._conv
        try:
            return [conv(item, tables) for item in value]
        except _Mismatch:
            pass
        # Failure path only: find the first failing index for the error's path.
        for i, item in enumerate(value):
            try:
                conv(item, tables)
            except _Mismatch as m:
                m.segments.append(f"[{i}]")
                raise
        raise AssertionError("unreachable: an element failed once and then passed")


class VObject(Validator):
    """``v.object({...})``: strict (extra fields fail); optional fields may be absent."""

    __slots__ = ("_names", "_sorted", "fields")
    fields: Mapping[str, Validator]
    _sorted: tuple[tuple[str, Validator, bool], ...]
    _names: frozenset[str]

    def __init__(self, fields: Mapping[str, Validator], *, optional: bool = False) -> None:
        if not isinstance(fields, Mapping):
            raise InvalidValidatorError(
                f"v.object() takes a dict of validators; got {safe_repr(fields)}")
        checked: dict[str, Validator] = {}
        for name, validator in fields.items():
            problem = identifier_problem(name)
            if problem is not None:
                raise SchemaError(
                    f"Invalid field name in v.object(): {problem}", code="InvalidFieldName"
                )
            checked[name] = _require_validator(validator, f"The value of field `{name}`")
        super().__init__("object", optional)
        object.__setattr__(self, "fields", MappingProxyType(checked))
        # Convex checks fields in sorted order (a BTreeMap); precomputed for the hot path.
        ordered = tuple(sorted((n, fv, fv.is_optional) for n, fv in checked.items()))
        object.__setattr__(self, "_sorted", ordered)
        object.__setattr__(self, "_names", frozenset(checked))

    def _with_optional(self, optional: bool) -> Validator:
        return VObject(self.fields, optional=optional)

    def display(self) -> str:
        inner = ", ".join(f"{name}: {fv!r}" for name, fv, _ in self._sorted)
        return f"v.object({{{inner}}})"

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "object",
            "value": {
                name: {"fieldType": fv.to_json(), "optional": fv.is_optional}
                for name, fv in self.fields.items()
            },
        }

    # convex-js VObject helpers
    def extend(self, fields: Mapping[str, Validator]) -> VObject:
        return VObject({**self.fields, **fields}, optional=self.is_optional)

    def pick(self, *names: str) -> VObject:
        return VObject({n: self.fields[n] for n in names}, optional=self.is_optional)

    def omit(self, *names: str) -> VObject:
        drop = set(names)
        kept = {n: fv for n, fv in self.fields.items() if n not in drop}
        return VObject(kept, optional=self.is_optional)

    def partial(self) -> VObject:
        kept = {n: fv.as_optional() for n, fv in self.fields.items()}
        return VObject(kept, optional=self.is_optional)

    def required(self) -> VObject:
        return VObject({n: fv.as_required() for n, fv in self.fields.items()})

    def _conv(self, value: Any, tables: TableLookup | None) -> Any:
        if type(value) is not dict and not isinstance(value, Mapping):
            self._fail(value)
        out: dict[str, Any] = {}
        present = 0
        get = value.get
        for name, fv, optional in self._sorted:
            item = get(name, UNDEFINED)
            if item is UNDEFINED:
                if optional:
                    continue
                raise _Mismatch("missing", value, self, field=name)
            present += 1
            try:
                out[name] = fv._conv(item, tables)
            except _Mismatch as m:
                m.segments.append("." + name)
                raise
        if present != len(value):
            self._check_extra(value)
        if present > MAX_OBJECT_FIELDS:  # only a validator declaring > 1024 fields gets here
            raise too_many_fields(present)
        return out

    def _check_extra(self, value: Mapping[Any, Any]) -> None:
        extra = [k for k, item in value.items() if item is not UNDEFINED and k not in self._names]
        if extra:
            # Keys of any type may arrive (str() of a huge int raises): name them safely.
            first = min(k if isinstance(k, str) else safe_repr(k) for k in extra)
            raise _Mismatch("extra", value, self, field=first)


def _record_key_problem(keys: Validator) -> str | None:
    """Convex's rule: record keys are a subtype of v.string() without string literals."""
    if isinstance(keys, (VString, VId)):
        return None
    if isinstance(keys, VUnion):
        for member in keys.members:
            problem = _record_key_problem(member)
            if problem is not None:
                return problem
        return None
    if isinstance(keys, VLiteral) and type(keys.value) is str:
        return "Records cannot have string literal keys"
    return (
        "Records can only have string keys. Your validator contains a record with key typed as "
        f"`{keys.display()}`, which is not a subtype of `v.string()`"
    )


class VRecord(Validator):
    """``v.record(keys, values)``: an object with arbitrary string keys."""

    __slots__ = ("key", "value")
    key: Validator
    value: Validator

    def __init__(self, keys: Validator, values: Validator, *, optional: bool = False) -> None:
        keys = _require_validator(keys, "The key validator of v.record()")
        values = _require_validator(values, "The value validator of v.record()")
        if keys.is_optional:
            raise SchemaError(
                "Record validator cannot have optional keys", code="InvalidRecordType"
            )
        if values.is_optional:
            raise SchemaError("Records cannot have optional values", code="InvalidRecordType")
        problem = _record_key_problem(keys)
        if problem is not None:
            raise SchemaError(problem, code="InvalidRecordType")
        super().__init__("record", optional)
        object.__setattr__(self, "key", keys)
        object.__setattr__(self, "value", values)

    def _with_optional(self, optional: bool) -> Validator:
        return VRecord(self.key, self.value, optional=optional)

    def display(self) -> str:
        return f"v.record({self.key.display()}, {self.value.display()})"

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "record",
            "keys": self.key.to_json(),
            "values": {"fieldType": self.value.to_json(), "optional": False},
        }

    def _conv(self, value: Any, tables: TableLookup | None) -> Any:
        if type(value) is not dict and not isinstance(value, Mapping):
            self._fail(value)
        if len(value) > MAX_OBJECT_FIELDS:
            raise too_many_fields(len(value))
        kconv = self.key._conv
        vconv = self.value._conv
        out: dict[str, Any] = {}
        for k, item in value.items():
            if item is UNDEFINED:
                continue
            check_field_name(k)
            try:
                key = kconv(k, tables)
            except _Mismatch as m:
                m.segments.append(".keys()")  # Convex's own context text
                raise
            try:
                out[key] = vconv(item, tables)
            except _Mismatch as m:
                m.segments.append(".values()")
                raise
        return out


class VUnion(Validator):
    """``v.union(*members)``: the first matching member converts the value.

    A plain ``int`` tries the members admitting int64 first (docs/api.md).
    """

    __slots__ = ("_int_order", "members")
    members: tuple[Validator, ...]
    _int_order: tuple[Validator, ...]

    def __init__(self, *members: Validator, optional: bool = False) -> None:
        for m in members:
            _require_validator(m, "Every member of v.union()")
            if m.is_optional:
                raise SchemaError(
                    "v.union() members cannot be optional; make the whole union optional: "
                    "v.optional(v.union(...))."
                )
        super().__init__("union", optional)
        object.__setattr__(self, "members", tuple(members))
        first = tuple(m for m in members if m.admits_int64())
        rest = tuple(m for m in members if not m.admits_int64())
        object.__setattr__(self, "_int_order", first + rest)

    def _with_optional(self, optional: bool) -> Validator:
        return VUnion(*self.members, optional=optional)

    def admits_int64(self) -> bool:
        return any(m.admits_int64() for m in self.members)

    def display(self) -> str:
        return "v.union(" + ", ".join(m.display() for m in self.members) + ")"

    def to_json(self) -> dict[str, Any]:
        return {"type": "union", "value": [m.to_json() for m in self.members]}

    def _conv(self, value: Any, tables: TableLookup | None) -> Any:
        members = self.members
        if len(members) == 1:  # Convex reports the single member's own error
            return members[0]._conv(value, tables)
        for member in self._int_order if type(value) is int else members:
            try:
                return member._conv(value, tables)
            except _Mismatch:
                continue
        self._fail(value)


# ---------------------------------------------------------------------------------------------
# The `v` builder


class _VBuilder:
    """The ``v`` namespace: ``v.string()``, ``v.object({...})``, ... (Convex's names)."""

    __slots__ = ()

    _string: Final = VString()
    _float64: Final = VFloat64()
    _int64: Final = VInt64()
    _boolean: Final = VBoolean()
    _null: Final = VNull()
    _bytes: Final = VBytes()
    _any: Final = VAny()

    def string(self) -> VString:
        return self._string

    def number(self) -> VFloat64:
        return self._float64

    def float64(self) -> VFloat64:
        return self._float64

    def int64(self) -> VInt64:
        return self._int64

    def bigint(self) -> VInt64:
        return self._int64

    def boolean(self) -> VBoolean:
        return self._boolean

    def null(self) -> VNull:
        return self._null

    def bytes(self) -> VBytes:
        return self._bytes

    def any(self) -> VAny:
        return self._any

    def id(self, table_name: str) -> VId:
        return VId(table_name)

    def array(self, element: Validator) -> VArray:
        return VArray(element)

    def object(
        self, fields: Mapping[str, Validator] | None = None, /, **more: Validator
    ) -> VObject:
        """``v.object({"a": v.string()})`` or ``v.object(a=v.string())``."""
        given: object = fields  # what arrives is checked, whatever the annotation says
        if given is not None and not isinstance(given, Mapping):
            raise InvalidValidatorError(
                f"v.object() takes a dict of validators; got {safe_repr(given)}")
        return VObject({**(fields or {}), **more})

    def record(self, keys: Validator, values: Validator) -> VRecord:
        return VRecord(keys, values)

    def union(self, *members: Validator) -> VUnion:
        return VUnion(*members)

    def literal(self, value: str | float | bool | int) -> VLiteral:
        return VLiteral(value)

    def optional(self, validator: Validator) -> Validator:
        return _require_validator(validator, "v.optional()'s argument").as_optional()

    def nullable(self, validator: Validator) -> VUnion:
        return VUnion(_require_validator(validator, "v.nullable()'s argument"), self._null)

    def from_pydantic(self, model: Any) -> VObject:
        """The Convex validator of a pydantic ``BaseModel`` subclass; validating with it runs
        pydantic (``convex_lab._annotations.VModel``). Needs pydantic."""
        return from_pydantic(model)

    def __repr__(self) -> str:
        return "v"


v: Final[_VBuilder] = _VBuilder()

pagination_opts_validator: Final = v.object(
    {
        "numItems": v.number(),
        "cursor": v.union(v.string(), v.null()),
        "endCursor": v.optional(v.union(v.string(), v.null())),
        "id": v.optional(v.number()),
        "maximumRowsRead": v.optional(v.number()),
        "maximumBytesRead": v.optional(v.number()),
    }
)
"""Convex's ``paginationOptsValidator``."""


# ---------------------------------------------------------------------------------------------
# JSON form and helpers


def validator_from_json(data: Mapping[str, Any]) -> Validator:
    """Inverse of ``Validator.to_json`` (also reads Convex's server-side JSON). Malformed JSON
    is a ``SchemaError`` (code ``InvalidValidator``)."""
    try:
        return _validator_from_json(data)
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        if isinstance(e, SchemaError):
            raise
        raise SchemaError(f"Malformed validator JSON {safe_repr(data)}: {type(e).__name__} "
                          f"{safe_repr(e.args[0]) if e.args else ''}",
                          code="InvalidValidator") from None


def _validator_from_json(data: Mapping[str, Any]) -> Validator:
    kind = data.get("type")
    simple: dict[Any, Validator] = {
        "string": v.string(),
        "number": v.float64(),
        "float64": v.float64(),
        "bigint": v.int64(),
        "int64": v.int64(),
        "boolean": v.boolean(),
        "null": v.null(),
        "bytes": v.bytes(),
        "any": v.any(),
        "map": v.any(),  # retired types read as any, as the server does
        "set": v.any(),
    }
    if kind in simple:
        return simple[kind]
    if kind == "id":
        return VId(data["tableName"])
    if kind == "literal":
        return VLiteral(from_internal_json(data["value"]))
    if kind == "array":
        return VArray(validator_from_json(data["value"]))
    if kind == "union":
        return VUnion(*(validator_from_json(m) for m in data["value"]))
    if kind == "record":
        values = data["values"]
        return VRecord(validator_from_json(data["keys"]), _field_from_json(values))
    if kind == "object":
        return VObject({name: _field_from_json(f) for name, f in data["value"].items()})
    raise SchemaError(f"Unknown validator JSON: {safe_repr(data)}", code="InvalidValidator")


def _field_from_json(data: Mapping[str, Any]) -> Validator:
    validator = validator_from_json(data["fieldType"])
    return validator.as_optional() if data.get("optional") else validator


def args_validator(spec: Any) -> VObject | None:
    """An args spec → an object validator: a dict of validators (or Python annotations),
    a ``v.object``, a pydantic model or ``v.from_pydantic(Model)`` (the handler then gets the
    model's parsed fields), or ``None`` (unvalidated)."""
    if spec is None:
        return None
    if isinstance(spec, VModel) or is_pydantic_model(spec):
        return from_pydantic(spec, as_args=True)
    if isinstance(spec, VObject):
        return spec
    if isinstance(spec, Mapping):
        return VObject(
            {
                name: x if isinstance(x, Validator) else validator_from_annotation(x)
                for name, x in spec.items()
            }
        )
    raise InvalidValidatorError(
        "args= must be a dict of validators such as {'name': v.string()}, a v.object(...), "
        f"a pydantic model, or None; got {safe_repr(spec)}"
    )


def field_validator_at(validator: Validator | None, path: str | Iterable[str]) -> Validator | None:
    """The validator of the value at a dotted ``path`` inside ``validator``, or ``None`` when
    unknown (``v.any()``, records, missing fields). Unions merge their members' answers."""
    parts = path.split(".") if isinstance(path, str) else list(path)
    current: Validator | None = validator
    for part in parts:
        current = _step(current, part)
        if current is None:
            return None
    return current.as_required() if current is not None else None


def _step(validator: Validator | None, part: str) -> Validator | None:
    if isinstance(validator, VObject):
        return validator.fields.get(part)
    if isinstance(validator, VUnion):
        found: list[Validator] = []
        for member in validator.members:
            sub = _step(member, part)
            if sub is not None and sub.as_required() not in found:
                found.append(sub.as_required())
        if not found:
            return None
        return found[0] if len(found) == 1 else VUnion(*found)
    return None


# Annotation mapping lives in its own module; re-exported here as part of this module's API.
from convex_lab._annotations import (  # noqa: E402
    VModel,
    from_pydantic,
    is_pydantic_model,
    validator_from_annotation,
    validators_from_signature,
)

__all__ = [
    "MAX_IDENTIFIER_LEN",
    "TableLookup",
    "VAny",
    "VArray",
    "VBoolean",
    "VBytes",
    "VFloat64",
    "VId",
    "VInt64",
    "VLiteral",
    "VNull",
    "VObject",
    "VRecord",
    "VString",
    "VUnion",
    "Validator",
    "args_validator",
    "field_validator_at",
    "from_pydantic",
    "identifier_problem",
    "is_pydantic_model",
    "pagination_opts_validator",
    "v",
    "validator_from_annotation",
    "validator_from_json",
    "validators_from_signature",
]

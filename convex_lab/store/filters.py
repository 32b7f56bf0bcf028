"""Filter expressions for ``.filter(lambda q: ...)`` (reference §4.3).

Contract
--------
* ``FilterBuilder`` methods (``eq neq lt lte gt gte and_ or_ not_ add sub mul div mod neg
  field``) build immutable ``Expr`` nodes; each has ``evaluate(doc)`` and ``to_json()`` in
  Convex's wire form (``{"$eq": [l, r]}``, ``{"$field": "a.b"}``, ``{"$literal": ...}``), and
  ``expression_from_json`` reads that form back (for the wire API).
* Operands that are not ``Expr`` are literals, converted with ``values.convert`` — except when
  the other operand is ``field(path)`` and the builder knows that field's validator: then the
  literal is converted by it (so a plain ``int`` compared with a ``v.int64()`` field is an
  ``Int64``, docs/api.md), falling back to ``convert`` when it does not match. ``UNDEFINED`` is a
  valid literal (a missing field).
* Semantics: ``field`` traverses objects only (missing or through a non-object → ``UNDEFINED``);
  comparisons use Convex's total order over all values incl. ``UNDEFINED`` (so ``Int64(1)`` never
  equals ``1.0``); arithmetic is int64⊕int64 (checked: overflow, ÷0 → ``EvalError``; ``/`` and
  ``%`` truncate toward zero) or float64⊕float64 (IEEE, ``%`` is ``fmod``, ÷0 gives inf/nan),
  anything else is an ``EvalError`` with Convex's text; ``and_``/``or_``/``not_`` and the final
  predicate (``matches``) require booleans and short-circuit.
* ``Expr`` refuses ``bool()``: ``q.eq(..) and q.eq(..)`` would silently keep one side, so it
  raises ``FilterTruthValueError`` (an ``EvalError`` that is also a ``TypeError``) pointing to
  ``q.and_``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, NoReturn

from convex_lab.errors import (
    EvalError,
    FilterTruthValueError,
    InvalidValueError,
    ValidationError,
)
from convex_lab.validators import Validator
from convex_lab.values import (
    INT64_MAX,
    INT64_MIN,
    UNDEFINED,
    Int64,
    convert,
    format_value,
    from_internal_json,
    safe_repr,
    sort_key,
    to_internal_json,
    type_name,
)

FieldValidatorLookup = Callable[[str], "Validator | None"]


def get_field_path(doc: Any, path: str | tuple[str, ...] | list[str]) -> Any:
    """The value at dotted ``path`` in ``doc``, or ``UNDEFINED`` when missing or when the path
    runs through a non-object (Convex's ``get_path``)."""
    if type(path) is str:
        if "." not in path:
            return doc.get(path, UNDEFINED) if type(doc) is dict else UNDEFINED
        path = path.split(".")
    current = doc
    for part in path:
        if type(current) is not dict:
            return UNDEFINED
        current = current.get(part, UNDEFINED)
    return current


def _describe(value: Any) -> str:
    return f"{format_value(value)} (type {type_name(value)})"


def _as_bool(value: Any) -> bool:
    if type(value) is bool:
        return value
    raise EvalError(f"Cannot use value {_describe(value)} as a Boolean")


class Expr:
    """A filter expression node. Subclasses are frozen dataclasses."""

    __slots__ = ()

    def evaluate(self, doc: Mapping[str, Any]) -> Any:
        raise NotImplementedError

    def matches(self, doc: Mapping[str, Any]) -> bool:
        """Evaluate as the query's predicate: the result must be a boolean."""
        return _as_bool(self.evaluate(doc))

    def to_json(self) -> Any:
        raise NotImplementedError

    def __bool__(self) -> NoReturn:
        raise FilterTruthValueError(
            "A filter expression has no truth value: Python's `and`/`or`/`not` would silently "
            "drop a condition. Use q.and_(a, b), q.or_(a, b) and q.not_(a)."
        )


@dataclass(frozen=True, slots=True)
class Field(Expr):
    path: str
    parts: tuple[str, ...]

    def evaluate(self, doc: Mapping[str, Any]) -> Any:
        return get_field_path(doc, self.parts)

    def to_json(self) -> Any:
        return {"$field": self.path}


@dataclass(frozen=True, slots=True, eq=False)
class Literal(Expr):
    value: Any

    # Convex equality, not Python's: Literal(Int64(1)) != Literal(1.0); lists hash too.
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Literal):
            return NotImplemented
        return sort_key(self.value) == sort_key(other.value)

    def __hash__(self) -> int:
        return hash(sort_key(self.value))

    def evaluate(self, doc: Mapping[str, Any]) -> Any:
        return self.value

    def to_json(self) -> Any:
        if self.value is UNDEFINED:
            return {"$literal": {"$undefined": None}}
        return {"$literal": to_internal_json(self.value)}


_COMPARE: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "eq": lambda a, b: a == b,
    "neq": lambda a, b: a != b,
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
}


@dataclass(frozen=True, slots=True)
class Compare(Expr):
    op: str
    left: Expr
    right: Expr

    def evaluate(self, doc: Mapping[str, Any]) -> Any:
        a = self.left.evaluate(doc)
        b = self.right.evaluate(doc)
        # Same-typed str/float/Int64 compare natively except where the total order differs
        # (-0.0 vs 0.0, NaN); everything else goes through the total-order sort key.
        ta = type(a)
        if ta is type(b) and (ta is str or ta is Int64):
            return _COMPARE[self.op](a, b)
        return _COMPARE[self.op](sort_key(a), sort_key(b))

    def to_json(self) -> Any:
        return {f"${self.op}": [self.left.to_json(), self.right.to_json()]}


_VERB: Final = {"add": "add", "sub": "subtract", "mul": "multiply", "div": "divide", "mod": "mod"}


def _int_op(op: str, a: int, b: int) -> Int64:
    if op == "add":
        r = a + b
    elif op == "sub":
        r = a - b
    elif op == "mul":
        r = a * b
    else:
        if b == 0:
            raise EvalError(f"Cannot {_VERB[op]} {format_value(Int64(a))} by zero (type int64)")
        q = abs(a) // abs(b)  # Rust/JS BigInt semantics: truncate toward zero
        if (a < 0) != (b < 0):
            q = -q
        r = q if op == "div" else a - q * b
    if not INT64_MIN <= r <= INT64_MAX:
        raise EvalError(
            f"Cannot {_VERB[op]} {format_value(Int64(a))} and {format_value(Int64(b))}: "
            "the result overflows int64"
        )
    return Int64(r)


def _float_op(op: str, a: float, b: float) -> float:
    if op == "add":
        return a + b
    if op == "sub":
        return a - b
    if op == "mul":
        return a * b
    if op == "div":
        if b == 0.0:  # IEEE: ±inf, or NaN for 0/0 and NaN/0
            if math.isnan(a) or a == 0.0:
                return math.nan
            return math.copysign(math.inf, a) * math.copysign(1.0, b)
        return a / b
    try:
        return math.fmod(a, b)  # truncated remainder, like JS `%`
    except ValueError:  # x % 0 and inf % y are NaN in IEEE
        return math.nan


@dataclass(frozen=True, slots=True)
class Arith(Expr):
    op: str
    left: Expr
    right: Expr

    def evaluate(self, doc: Mapping[str, Any]) -> Any:
        a = self.left.evaluate(doc)
        b = self.right.evaluate(doc)
        ta, tb = type(a), type(b)
        if ta is Int64 and tb is Int64:
            return _int_op(self.op, a, b)
        if ta is float and tb is float:
            return _float_op(self.op, a, b)
        raise EvalError(f"Cannot {_VERB[self.op]} {_describe(a)} and {_describe(b)}")

    def to_json(self) -> Any:
        return {f"${self.op}": [self.left.to_json(), self.right.to_json()]}


@dataclass(frozen=True, slots=True)
class Neg(Expr):
    operand: Expr

    def evaluate(self, doc: Mapping[str, Any]) -> Any:
        x = self.operand.evaluate(doc)
        if type(x) is Int64:
            if x == INT64_MIN:
                raise EvalError(f"Cannot negate {_describe(x)}: the result overflows int64")
            return Int64(-x)
        if type(x) is float:
            return -x
        raise EvalError(f"Cannot negate {_describe(x)}")

    def to_json(self) -> Any:
        return {"$neg": self.operand.to_json()}


@dataclass(frozen=True, slots=True)
class And(Expr):
    items: tuple[Expr, ...]

    def evaluate(self, doc: Mapping[str, Any]) -> Any:
        return all(_as_bool(item.evaluate(doc)) for item in self.items)  # short-circuits

    def to_json(self) -> Any:
        return {"$and": [i.to_json() for i in self.items]}


@dataclass(frozen=True, slots=True)
class Or(Expr):
    items: tuple[Expr, ...]

    def evaluate(self, doc: Mapping[str, Any]) -> Any:
        return any(_as_bool(item.evaluate(doc)) for item in self.items)  # short-circuits

    def to_json(self) -> Any:
        return {"$or": [i.to_json() for i in self.items]}


@dataclass(frozen=True, slots=True)
class Not(Expr):
    operand: Expr

    def evaluate(self, doc: Mapping[str, Any]) -> Any:
        return not _as_bool(self.operand.evaluate(doc))

    def to_json(self) -> Any:
        return {"$not": self.operand.to_json()}


def _field(path: object) -> Field:
    if not isinstance(path, str) or not path or "" in path.split("."):
        raise EvalError(
            f"Invalid field path {safe_repr(path)}: use a dotted path of field names such as "
            "'a.b'."
        )
    path = str(path)
    return Field(path, tuple(path.split(".")))


def _plain_literal(value: Any) -> Literal:
    return Literal(UNDEFINED if value is UNDEFINED else convert(value))


class FilterBuilder:
    """The ``q`` of ``.filter(lambda q: ...)``; ``field_validator(path)`` (optional) gives the
    schema's validator of a field so literals compared with it convert like it (docs/api.md)."""

    __slots__ = ("_field_validator",)

    def __init__(self, field_validator: FieldValidatorLookup | None = None) -> None:
        self._field_validator = field_validator

    def field(self, path: str) -> Field:
        return _field(path)

    def _operand(self, x: Any, other: Any) -> Expr:
        if isinstance(x, Expr):
            return x
        if x is not UNDEFINED and isinstance(other, Field) and self._field_validator:
            validator = self._field_validator(other.path)
            if validator is not None:
                try:
                    return Literal(validator.validate(x))
                except (ValidationError, InvalidValueError):
                    pass  # not the field's type: compare as a plain value (never equal)
        return _plain_literal(x)

    def _pair(self, left: Any, right: Any) -> tuple[Expr, Expr]:
        return self._operand(left, right), self._operand(right, left)

    # comparisons
    def eq(self, left: Any, right: Any) -> Compare:
        return Compare("eq", *self._pair(left, right))

    def neq(self, left: Any, right: Any) -> Compare:
        return Compare("neq", *self._pair(left, right))

    def lt(self, left: Any, right: Any) -> Compare:
        return Compare("lt", *self._pair(left, right))

    def lte(self, left: Any, right: Any) -> Compare:
        return Compare("lte", *self._pair(left, right))

    def gt(self, left: Any, right: Any) -> Compare:
        return Compare("gt", *self._pair(left, right))

    def gte(self, left: Any, right: Any) -> Compare:
        return Compare("gte", *self._pair(left, right))

    # arithmetic
    def add(self, left: Any, right: Any) -> Arith:
        return Arith("add", *self._pair(left, right))

    def sub(self, left: Any, right: Any) -> Arith:
        return Arith("sub", *self._pair(left, right))

    def mul(self, left: Any, right: Any) -> Arith:
        return Arith("mul", *self._pair(left, right))

    def div(self, left: Any, right: Any) -> Arith:
        return Arith("div", *self._pair(left, right))

    def mod(self, left: Any, right: Any) -> Arith:
        return Arith("mod", *self._pair(left, right))

    def neg(self, x: Any) -> Neg:
        return Neg(self._operand(x, None))

    # logic
    def and_(self, *exprs: Any) -> And:
        return And(tuple(self._operand(e, None) for e in exprs))

    def or_(self, *exprs: Any) -> Or:
        return Or(tuple(self._operand(e, None) for e in exprs))

    def not_(self, x: Any) -> Not:
        return Not(self._operand(x, None))


def compile_filter(
    predicate: Callable[[FilterBuilder], Any], field_validator: FieldValidatorLookup | None = None
) -> Expr:
    """Run a ``lambda q: ...`` once and return its expression (a bare value becomes a literal,
    so ``lambda q: True`` works and ``lambda q: 1`` fails when evaluated, as in Convex)."""
    if not callable(predicate):
        raise EvalError(
            f"A filter is a function of the filter builder, e.g. lambda q: q.eq(q.field('a'), 1); "
            f"got {safe_repr(predicate)}."
        )
    result = predicate(FilterBuilder(field_validator))
    return result if isinstance(result, Expr) else _plain_literal(result)


_BINARY: Final = {"eq", "neq", "lt", "lte", "gt", "gte"}
_ARITH: Final = {"add", "sub", "mul", "div", "mod"}


def expression_from_json(data: Any) -> Expr:
    """Parse Convex's wire form of a filter expression (inverse of ``Expr.to_json``)."""
    if not isinstance(data, Mapping) or len(data) != 1:
        _bad_json(data)
    ((key, arg),) = data.items()
    op = key[1:] if isinstance(key, str) and key.startswith("$") else ""
    if op == "field" and isinstance(arg, str):
        return _field(arg)
    if op == "literal":
        if arg == {"$undefined": None}:
            return Literal(UNDEFINED)
        return Literal(from_internal_json(arg))
    if op in _BINARY or op in _ARITH:
        if not isinstance(arg, list) or len(arg) != 2:
            _bad_json(data)
        left, right = (expression_from_json(x) for x in arg)
        return Compare(op, left, right) if op in _BINARY else Arith(op, left, right)
    if op in ("neg", "not"):
        inner = expression_from_json(arg)
        return Neg(inner) if op == "neg" else Not(inner)
    if op in ("and", "or") and isinstance(arg, list):
        items = tuple(expression_from_json(x) for x in arg)
        return And(items) if op == "and" else Or(items)
    _bad_json(data)


def _bad_json(data: Any) -> NoReturn:
    raise EvalError(f"Invalid filter expression: {safe_repr(data)}")


def flatten_and(expr: Expr) -> Iterable[Expr]:
    """The conjuncts of nested ``and_`` nodes (useful for planners)."""
    if isinstance(expr, And):
        for item in expr.items:
            yield from flatten_and(item)
    else:
        yield expr


__all__ = [
    "And",
    "Arith",
    "Compare",
    "Expr",
    "Field",
    "FieldValidatorLookup",
    "FilterBuilder",
    "Literal",
    "Neg",
    "Not",
    "Or",
    "compile_filter",
    "expression_from_json",
    "flatten_and",
    "get_field_path",
]

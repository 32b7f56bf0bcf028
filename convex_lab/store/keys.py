"""Index keys and index ranges in Convex's order.

An index over user fields ``[f1 … fk]`` is really over ``[f1 … fk, _creationTime, _id]``
(reference §4.1). Its key for a document is one flat tuple::

    sort_key(f1) + … + sort_key(fk) + (creation_time, id)

``values.sort_key`` gives each type a fixed number of slots after its rank, so flat keys compare
field by field; ``_creationTime`` is always a positive finite float and ``_id`` a string, so they
take one raw slot each. ``by_creation_time`` keys are ``(creation_time, id)`` and ``by_id`` keys
``(id,)``.

A range is a half-open interval ``[lo, hi)`` of tuples: a key ``k`` is inside when
``lo <= k < hi``. A prefix ``P`` sorts before every key that extends it, and ``P + upper(j)``
(a sentinel bigger than anything in slot ``j``) after every key that extends it, so every Convex
range (eq prefix, then an optional lower and upper bound on the next field) is such an interval.
The same intervals are the read set used for OCC and for subscriptions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from convex_lab.errors import InvalidIndexRangeError
from convex_lab.values import UNDEFINED, convert, safe_repr, sort_key, type_name

Key = tuple[Any, ...]

# Sentinels that sort after everything that can sit in a slot of each kind.
RANK_MAX: Final = 9  # above every type rank (0..8)
CT_MAX: Final = math.inf  # _creationTime is finite
ID_MAX: Final = "\U0010ffff"  # IDs are ASCII
ID_MIN: Final = ""  # IDs are never empty
KEY_AFTER: Final = (0,)  # appended to a full key: just after it, before the next key

SYSTEM_SUFFIX: Final = ("_creationTime", "_id")


def get_path(doc: dict[str, Any], path: str) -> Any:
    """The value at a dotted field path, or UNDEFINED (traversal only through objects)."""
    if "." not in path:
        return doc.get(path, UNDEFINED)
    value: Any = doc
    for part in path.split("."):
        if type(value) is not dict:
            return UNDEFINED
        value = value.get(part, UNDEFINED)
        if value is UNDEFINED:
            return UNDEFINED
    return value


@dataclass(eq=False)
class IndexSpec:
    """The shape of one index: its name, user fields and how to compute keys.

    ``fields`` are the user fields only; ``all_fields`` adds the system suffix (``by_id`` is
    ``("_id",)``, ``by_creation_time`` ``("_creationTime", "_id")``).
    """

    name: str
    fields: tuple[str, ...]
    kind: str = "user"  # "user" | "by_creation_time" | "by_id"
    key: Callable[[dict[str, Any]], Key] = field(init=False)
    all_fields: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        if self.kind == "by_id":
            self.all_fields = ("_id",)
            self.key = _id_key
        elif self.kind == "by_creation_time":
            self.all_fields = SYSTEM_SUFFIX
            self.key = _ct_key
        else:
            self.all_fields = (*self.fields, *SYSTEM_SUFFIX)
            self.key = _make_user_key(self.fields)

    def slot_key(self, position: int, value: Any) -> Key:
        """The key slots of ``value`` at field ``position`` (an index into ``all_fields``)."""
        name = self.all_fields[position]
        if name == "_creationTime":
            return (_ct_bound(value),)
        if name == "_id":
            return (_id_bound(value),)
        return sort_key(value)

    def upper(self, position: int) -> Key:
        """A 1-slot sentinel above anything at field ``position``; ``KEY_AFTER`` past the end."""
        if position >= len(self.all_fields):
            return KEY_AFTER
        name = self.all_fields[position]
        if name == "_creationTime":
            return (CT_MAX,)
        if name == "_id":
            return (ID_MAX,)
        return (RANK_MAX,)


def _id_key(doc: dict[str, Any]) -> Key:
    return (doc["_id"],)


def _ct_key(doc: dict[str, Any]) -> Key:
    return (doc["_creationTime"], doc["_id"])


def _make_user_key(fields: tuple[str, ...]) -> Callable[[dict[str, Any]], Key]:
    if len(fields) == 1 and "." not in fields[0]:
        (f,) = fields

        def key1(doc: dict[str, Any]) -> Key:
            return (*sort_key(doc.get(f, UNDEFINED)), doc["_creationTime"], doc["_id"])

        return key1

    def key(doc: dict[str, Any]) -> Key:
        parts: list[Any] = []
        for f in fields:
            parts += sort_key(get_path(doc, f))
        parts.append(doc["_creationTime"])
        parts.append(doc["_id"])
        return tuple(parts)

    return key


def _ct_bound(value: Any) -> float:
    # Creation times are positive finite floats: a bound of a lower-ranked type (or -NaN, -inf)
    # sits below them all, of a higher-ranked type (or +NaN) above them all.
    k = sort_key(value)
    if k[0] < 3:
        return -math.inf
    if k[0] > 3:
        return math.inf
    x = float(value)
    if math.isnan(x):
        return math.inf if k[1] > 0 else -math.inf
    return x


def _id_bound(value: Any) -> str:
    k = sort_key(value)
    if k[0] < 5:
        return ID_MIN
    if k[0] > 5:
        return ID_MAX
    return str(value)


@dataclass(frozen=True)
class Interval:
    """``[lo, hi)`` over one index's keys (see module docstring)."""

    lo: Key
    hi: Key

    def contains(self, key: Key) -> bool:
        return self.lo <= key < self.hi

    @property
    def empty(self) -> bool:
        return not self.lo < self.hi


class IndexRangeBuilder:
    """The ``q`` of ``with_index(name, lambda q: q.eq(...).gt(...))``.

    Records the expressions; :meth:`compile` checks Convex's rules (eq fields then at most one
    lower and one upper bound on the next field, all a prefix of the index's fields) and returns
    the interval. ``convert_value`` turns Python literals into Convex values for a field (so a
    plain int is an int64 where the schema says ``v.int64()``).
    """

    def __init__(self, spec: IndexSpec, table: str,
                 convert_value: Callable[[str, Any], Any] | None = None) -> None:
        self._spec = spec
        self._table = table
        self._convert = convert_value
        self._eqs: list[tuple[str, Any]] = []
        self._lower: tuple[str, Any, bool] | None = None  # (field, value, inclusive)
        self._upper: tuple[str, Any, bool] | None = None

    # The builder methods -------------------------------------------------------------------
    def eq(self, field_name: str, value: Any) -> IndexRangeBuilder:
        self._check_field_name(field_name)
        if self._lower or self._upper:
            raise InvalidIndexRangeError(
                f"Index range on {self._where()}: eq({field_name!r}) must come before any "
                "gt/gte/lt/lte bound.", code="InvalidIndexRange")
        if any(f == field_name for f, _ in self._eqs):
            raise InvalidIndexRangeError(
                f"Index range on {self._where()} already has eq({field_name!r}).",
                code="AlreadyDefinedBound")
        self._eqs.append((field_name, self._value(field_name, value)))
        return self

    def gt(self, field_name: str, value: Any) -> IndexRangeBuilder:
        return self._bound("lower", field_name, value, inclusive=False)

    def gte(self, field_name: str, value: Any) -> IndexRangeBuilder:
        return self._bound("lower", field_name, value, inclusive=True)

    def lt(self, field_name: str, value: Any) -> IndexRangeBuilder:
        return self._bound("upper", field_name, value, inclusive=False)

    def lte(self, field_name: str, value: Any) -> IndexRangeBuilder:
        return self._bound("upper", field_name, value, inclusive=True)

    # ---------------------------------------------------------------------------------------
    def _check_field_name(self, field_name: Any) -> None:
        if not isinstance(field_name, str):
            raise InvalidIndexRangeError(
                f"Index range on {self._where()}: the field name must be a string such as "
                f"{self._spec.all_fields[0]!r}; got {safe_repr(field_name)}.",
                code="InvalidIndexRange")

    def _where(self) -> str:
        return f"index {self._table}.{self._spec.name} {list(self._spec.all_fields)}"

    def _value(self, field_name: str, value: Any) -> Any:
        if value is UNDEFINED:
            return UNDEFINED
        if self._convert is not None:
            return self._convert(field_name, value)
        return convert(value)

    def _bound(self, which: str, field_name: str, value: Any, *,
               inclusive: bool) -> IndexRangeBuilder:
        self._check_field_name(field_name)
        current = self._lower if which == "lower" else self._upper
        if current is not None:
            raise InvalidIndexRangeError(
                f"Index range on {self._where()} already has a {which} bound on "
                f"{current[0]!r}: use at most one of "
                f"{'gt/gte' if which == 'lower' else 'lt/lte'}.", code="AlreadyDefinedBound")
        other = self._upper if which == "lower" else self._lower
        if other is not None and other[0] != field_name:
            raise InvalidIndexRangeError(
                f"Index range on {self._where()} has bounds on two fields ({other[0]!r} and "
                f"{field_name!r}); lower and upper bounds must be on the same field.",
                code="BoundsOnMultipleFields")
        if any(f == field_name for f, _ in self._eqs):
            raise InvalidIndexRangeError(
                f"Index range on {self._where()} has both eq and a bound on {field_name!r}.",
                code="AlreadyDefinedBound")
        entry = (field_name, self._value(field_name, value), inclusive)
        if which == "lower":
            self._lower = entry
        else:
            self._upper = entry
        return self

    def compile(self) -> Interval:
        spec = self._spec
        fields = spec.all_fields
        used = [f for f, _ in self._eqs]
        bound_field = (self._lower or self._upper or (None,))[0]
        # `is not None`: "" is a (bad) field name too, and must get this error
        for name in [*used, *([bound_field] if bound_field is not None else [])]:
            if name not in fields:
                raise InvalidIndexRangeError(
                    f"The index range on {self._where()} uses the field {name!r}, which is not "
                    f"in the index. Use one of {list(fields)} (in this order), or another index.",
                    code="FieldNotInIndex")
        # Eqs may come in any order (Convex sorts them by index position); with the bound field
        # last they must be exactly a prefix of the index's fields.
        positions = sorted(fields.index(f) for f in used)
        if positions != list(range(len(positions))):
            missing = fields[len(positions) - 1] if positions else fields[0]
            raise InvalidIndexRangeError(
                f"The index range on {self._where()} is not a prefix of the index fields: "
                f"add eq({missing!r}, ...) or range over the fields in index order.",
                code="InvalidIndexRange")
        n = len(positions)
        if bound_field is not None and fields.index(bound_field) != n:
            raise InvalidIndexRangeError(
                f"The index range on {self._where()} bounds {bound_field!r}, but the next field "
                f"of the index after the eq fields is {fields[n]!r}: bounds must be on the field "
                "that follows the eq fields.", code="InvalidIndexRange")
        eq_values = dict(self._eqs)
        prefix: Key = ()
        for i in range(n):
            prefix += spec.slot_key(i, eq_values[fields[i]])
        if self._lower is not None:
            lo = prefix + spec.slot_key(n, self._lower[1])
            if not self._lower[2]:
                lo += spec.upper(n + 1)
        else:
            lo = prefix
        if self._upper is not None:
            hi = prefix + spec.slot_key(n, self._upper[1])
            if self._upper[2]:
                hi += spec.upper(n + 1)
        else:
            hi = prefix + spec.upper(n)
        return Interval(lo, hi)

    def describe(self) -> list[Any]:
        """A JSON-able description of the range, used to fingerprint pagination cursors."""
        out: list[Any] = [["eq", f, type_name(v), repr(sort_key(v))] for f, v in self._eqs]
        for tag, b in (("lower", self._lower), ("upper", self._upper)):
            if b is not None:
                out.append([tag, b[0], b[2], repr(sort_key(b[1]))])
        return out


def full_range(spec: IndexSpec) -> Interval:
    return Interval((), spec.upper(0))


def user_index_specs(indexes: Mapping[str, Sequence[str]]) -> dict[str, IndexSpec]:
    specs = {
        "by_id": IndexSpec("by_id", (), kind="by_id"),
        "by_creation_time": IndexSpec("by_creation_time", (), kind="by_creation_time"),
    }
    for name, fields in indexes.items():
        specs[name] = IndexSpec(name, tuple(fields))
    return specs

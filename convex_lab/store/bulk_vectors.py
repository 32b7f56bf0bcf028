"""Bulk imports of documents holding long float arrays (embeddings) without a Python call per
float.

The general import path validates and measures every value: for a 768-float embedding that is
thousands of calls per document (about 0.4 ms, so 40 s per 100,000 documents). For a top-level
field declared ``v.array(v.float64())`` (or one a vector index reads, declared ``v.any()`` or
without a schema check), a list made only of ``float`` objects validates to a copy of itself and
measures ``2 + 9 × len`` bytes (reference §2.4), whatever the values.
:func:`split_float_arrays` takes such lists out of a document so the rest goes through the
ordinary checks, and the caller puts copies back. Anything else (ints, non-finite floats, short
lists) takes the general path unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

from convex_lab.validators import Validator, VAny, VArray, VFloat64, VObject

MIN_LENGTH: Final = 64  # shorter lists are cheap enough the ordinary way
_FLOATS: Final = {float}


def float_array_fields(validator: Validator | None, vector_fields: list[str]) -> tuple[str, ...]:
    """Top-level fields a list of floats passes through as is: every field declared
    ``v.array(v.float64())``, and the ``vector_fields`` declared ``v.any()`` or undeclared
    (``validator`` ``None`` or ``v.any()``: no schema check)."""
    out: list[str] = []
    if isinstance(validator, VObject):
        for name, field in validator.fields.items():
            if (isinstance(field, VArray) and isinstance(field.element, VFloat64)) or (
                    isinstance(field, VAny) and name in vector_fields):
                out.append(name)
    elif validator is None or isinstance(validator, VAny):
        out += [name for name in vector_fields if "." not in name]
    return tuple(out)


def split_float_arrays(fields: Mapping[str, Any], names: tuple[str, ...],
                       ) -> tuple[dict[str, Any], list[tuple[str, list[float]]]] | None:
    """``(fields with [] in place of each long all-float list, [(name, copy of the list)])``,
    or ``None`` when no field qualifies (finite floats only: others need lossless JSON)."""
    taken: list[tuple[str, list[float]]] = []
    for name in names:
        value = fields.get(name)
        if type(value) is not list or len(value) < MIN_LENGTH:
            continue
        if set(map(type, value)) != _FLOATS:  # one C-level pass
            continue
        try:
            if not math.isfinite(math.fsum(value)):
                continue
        except OverflowError:  # finite values whose sum overflows: rare, take the slow path
            continue
        taken.append((name, list(value)))
    if not taken:
        return None
    rest = dict(fields)
    for name, _ in taken:
        rest[name] = []
    return rest, taken


def array_size(values: list[float]) -> int:
    """What a list of floats adds to a document's size beyond an empty list's 2 bytes."""
    return 9 * len(values)

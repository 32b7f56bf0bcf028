"""Python annotations → Convex validators (docs/api.md), re-exported by ``convex_lab.validators``.

Mapping: a validator instance is itself; ``str`` → ``v.string()``, ``float`` → ``v.float64()``,
``int`` / ``Int64`` → ``v.int64()``, ``bool`` → ``v.boolean()``, ``bytes`` → ``v.bytes()``,
``None`` → ``v.null()``, ``Any`` / ``object`` → ``v.any()``, ``list[T]`` / ``tuple[T, ...]`` →
``v.array(T)``, ``dict[str, T]`` → ``v.record(v.string(), T)``, ``T | None`` / ``Optional[T]``
→ ``v.union(T, v.null())``, ``A | B`` → ``v.union(A, B)``, ``Literal[a, b]`` → ``v.literal(a)``
or a union of literals (a plain int literal is a float64 literal, as ``v.literal(1)``), and
``Annotated[T, validator]`` → that validator.

``validators_from_signature`` resolves string annotations (``from __future__ import
annotations``) with ``inspect.get_annotations(eval_str=True)`` rather than
``typing.get_type_hints``, because the latter rejects validator instances as "not a type".
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from typing import Any

from convex_lab.validators import Validator, VUnion, v
from convex_lab.values import Int64

_SIMPLE: dict[Any, Callable[[], Validator]] = {
    str: v.string,
    float: v.float64,
    int: v.int64,
    Int64: v.int64,
    bool: v.boolean,
    bytes: v.bytes,
    type(None): v.null,
    None: v.null,
    typing.Any: v.any,
    object: v.any,
    list: lambda: v.array(v.any()),
    tuple: lambda: v.array(v.any()),
    dict: lambda: v.record(v.string(), v.any()),
}


def validator_from_annotation(annotation: Any) -> Validator:
    """The validator a parameter annotation stands for; ``TypeError`` if it has none."""
    if isinstance(annotation, Validator):
        return annotation
    if isinstance(annotation, str):
        raise TypeError(
            f"The annotation {annotation!r} is a string: resolve it first "
            "(validators_from_signature does this for a function)."
        )
    try:
        simple = _SIMPLE.get(annotation)
    except TypeError:  # unhashable annotation objects
        simple = None
    if simple is not None:
        return simple()
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        for meta in args[1:]:
            if isinstance(meta, Validator):
                return meta
        return validator_from_annotation(args[0])
    if origin is typing.Union or origin is types.UnionType:
        members: list[Validator] = []
        for arg in args:
            for member in _union_members(validator_from_annotation(arg)):
                if member not in members:
                    members.append(member)
        # `T | None` lists null last, as v.nullable(T) does.
        if v.null() in members:
            members.remove(v.null())
            members.append(v.null())
        return members[0] if len(members) == 1 else v.union(*members)
    if origin is typing.Literal:
        literals = [v.literal(a) for a in args]
        return literals[0] if len(literals) == 1 else v.union(*literals)
    if origin is list:
        return v.array(validator_from_annotation(args[0]) if args else v.any())
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return v.array(validator_from_annotation(args[0]))
        raise TypeError(
            f"{annotation!r}: only homogeneous tuples (tuple[T, ...]) map to a Convex array; "
            "use list[T] or a validator."
        )
    if origin is dict:
        if args and args[0] is not str:
            raise TypeError(
                f"{annotation!r}: Convex records have string keys; use dict[str, T]."
            )
        return v.record(v.string(), validator_from_annotation(args[1]) if args else v.any())
    raise TypeError(
        f"No Convex validator for the annotation {annotation!r}. Use str, float, int, bool, "
        "bytes, None, list[T], dict[str, T], T | None, Literal[...], or a validator such as "
        "v.id('table')."
    )


def _union_members(validator: Validator) -> tuple[Validator, ...]:
    return validator.members if isinstance(validator, VUnion) else (validator,)


def validators_from_signature(func: Callable[..., Any]) -> dict[str, Validator] | None:
    """Argument validators from a handler's annotations, skipping the first (``ctx``) parameter.

    Parameters with defaults become ``v.optional``; unannotated ones ``v.any()``. Returns
    ``None`` (arguments unvalidated) when no argument is annotated or the handler takes
    ``**kwargs``.
    """
    params = list(inspect.signature(func).parameters.values())[1:]
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    try:
        hints = inspect.get_annotations(func, eval_str=True)
    except Exception as exc:
        name = getattr(func, "__qualname__", repr(func))
        raise TypeError(f"Cannot resolve the annotations of {name}: {exc}") from exc
    named = [p for p in params if p.kind is not p.VAR_POSITIONAL]
    if not any(p.name in hints for p in named):
        return None
    out: dict[str, Validator] = {}
    for p in named:
        validator = validator_from_annotation(hints[p.name]) if p.name in hints else v.any()
        if p.default is not p.empty:
            validator = validator.as_optional()
        out[p.name] = validator
    return out


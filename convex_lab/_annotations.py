"""Python annotations → Convex validators (docs/api.md), re-exported by ``convex_lab.validators``.

Mapping: a validator instance is itself; ``str`` → ``v.string()``, ``float`` → ``v.float64()``,
``int`` / ``Int64`` → ``v.int64()``, ``bool`` → ``v.boolean()``, ``bytes`` → ``v.bytes()``,
``None`` → ``v.null()``, ``Any`` / ``object`` → ``v.any()``, ``list[T]`` / ``tuple[T, ...]`` →
``v.array(T)``, ``dict[str, T]`` → ``v.record(v.string(), T)``, ``T | None`` / ``Optional[T]``
→ ``v.union(T, v.null())``, ``A | B`` → ``v.union(A, B)``, ``Literal[a, b]`` → ``v.literal(a)``
or a union of literals (a plain int literal is a float64 literal, as ``v.literal(1)``), and
``Annotated[T, validator]`` → that validator; a pydantic ``BaseModel`` subclass →
``v.from_pydantic(Model)`` (:class:`VModel`, below).

``validators_from_signature`` resolves string annotations (``from __future__ import
annotations``) with ``inspect.get_annotations(eval_str=True)`` rather than
``typing.get_type_hints``, because the latter rejects validator instances as "not a type".
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import sys
import types
import typing
from collections.abc import Callable, Mapping
from enum import Enum
from types import MappingProxyType
from typing import Any, Final

from convex_lab._validator_base import TableLookup, _Mismatch, identifier_problem
from convex_lab.errors import InvalidValidatorError
from convex_lab.validators import Validator, VObject, VUnion, v
from convex_lab.values import UNDEFINED, Int64, safe_repr

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
    if is_pydantic_model(annotation):
        return from_pydantic(annotation)
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



# ---------------------------------------------------------------------------------------------
# Pydantic models as validators (DESIGN §8, "Pydantic"; Convex's Zod helpers)
#
# pydantic is optional: nothing here imports it. A class can only be a pydantic model if pydantic
# was imported already, so `is_pydantic_model` asks `sys.modules` and never triggers an import.

# JSON-schema keywords shown as a field's constraints (`to_json()`'s extra "constraints" entry,
# which the function runner's form can show; Convex's own JSON readers ignore it).
_CONSTRAINT_KEYS: Final = ("minLength", "maxLength", "pattern", "format", "minimum", "maximum",
                           "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minItems",
                           "maxItems")


def is_pydantic_model(obj: object) -> bool:
    """Whether ``obj`` is a pydantic ``BaseModel`` subclass (without importing pydantic)."""
    pydantic = sys.modules.get("pydantic")
    base = getattr(pydantic, "BaseModel", None) if pydantic is not None else None
    return base is not None and isinstance(obj, type) and issubclass(obj, base)


def dump_models(value: Any) -> Any:
    """``value`` with every pydantic model instance inside it (at any depth of lists, tuples and
    dicts) replaced by its plain-data dump (as ``returns=Model`` stores it); ``value`` itself
    when pydantic is not loaded. Lets a handler return models without declaring ``returns``."""
    pydantic = sys.modules.get("pydantic")
    base = getattr(pydantic, "BaseModel", None) if pydantic is not None else None
    if base is None:
        return value

    def walk(x: Any) -> Any:
        if isinstance(x, base):
            return _dump(x)
        if isinstance(x, dict):
            return {k: walk(y) for k, y in x.items()}
        if isinstance(x, (list, tuple)):
            return [walk(y) for y in x]
        return x

    return walk(value)


def from_pydantic(model: Any, *, as_args: bool = False) -> VModel:
    """``v.from_pydantic(Model)``: the Convex object validator of a pydantic model (see
    :class:`VModel`). A clear error when ``model`` is not a model or pydantic is missing."""
    if isinstance(model, VModel):
        return model if model.as_args == as_args else VModel(model.model, as_args=as_args)
    if not is_pydantic_model(model):
        if not _pydantic_installed():
            raise InvalidValidatorError(
                "v.from_pydantic() needs pydantic, which is not installed: pip install pydantic "
                "(or convex_lab[lab]).")
        raise InvalidValidatorError(
            f"v.from_pydantic() takes a pydantic BaseModel subclass; got {safe_repr(model)}.")
    return VModel(model, as_args=as_args)


def _pydantic_installed() -> bool:
    if sys.modules.get("pydantic") is not None:
        return True
    try:
        return importlib.util.find_spec("pydantic") is not None
    except ValueError:  # sys.modules["pydantic"] is None: an import of it fails
        return False


class VModel(VObject):
    """A pydantic model as a Convex object validator.

    * Its Convex shape (``fields``, ``to_json()``, ``repr``) comes from the model's JSON schema
      (``int`` → ``v.int64()``, ``float`` → ``v.float64()``, nested models → ``v.object``,
      ``bytes`` → ``v.bytes()``, ``Optional`` → union with null, fields with defaults optional,
      ``Annotated[str, v.id("t")]`` → that validator); ``to_json()`` adds each field's
      constraints and description (``"constraints"``, ``"description"``), which the function
      runner shows.
    * Validating runs pydantic itself (constraints, custom messages, transformations). With
      ``as_args`` (``args=Model``) the result is the parsed fields — what the handler receives as
      keyword arguments, nested models as model instances. Otherwise (``returns=``, documents)
      the model is dumped and the dump converted to a Convex value by the Convex shape, so what
      is stored or returned is plain data (a returned model instance reaches the caller as a dict).
    * A pydantic failure is a ``ValidationError`` (``ArgumentValidationError`` for arguments,
      as the function runner raises it) with pydantic's path (``Path: .addr.city``) and messages.
    * Never compiled into a one-pass builder (``Store.builder``, ``FunctionDef``): every value
      goes through pydantic.
    """

    __slots__ = ("_constraints", "as_args", "model")
    model: Any
    as_args: bool
    _constraints: Mapping[str, Mapping[str, Any]]

    def __init__(self, model: Any, *, as_args: bool = False, optional: bool = False) -> None:
        schema = model.model_json_schema(mode="validation")
        defs = schema.get("$defs", {})
        required = set(schema.get("required", ()))
        fields: dict[str, Validator] = {}
        constraints: dict[str, dict[str, Any]] = {}
        for name, prop in schema.get("properties", {}).items():
            info = model.model_fields.get(name)
            given = [m for m in getattr(info, "metadata", ()) if isinstance(m, Validator)]
            validator = given[0] if given else _from_json_schema(prop, defs, ())
            fields[name] = validator if name in required else validator.as_optional()
            shown = {k: prop[k] for k in (*_CONSTRAINT_KEYS, "description", "default")
                     if k in prop}
            if shown:
                constraints[name] = _json_safe(shown)
        super().__init__(fields, optional=optional)
        object.__setattr__(self, "model", model)
        object.__setattr__(self, "as_args", as_args)
        object.__setattr__(self, "_constraints", MappingProxyType(constraints))

    def _with_optional(self, optional: bool) -> Validator:
        return VModel(self.model, as_args=self.as_args, optional=optional)

    def display(self) -> str:
        return f"v.from_pydantic({self.model.__name__})"

    def _identity(self) -> tuple[Any, ...]:
        return (self.model, self.as_args, self.is_optional)

    def to_json(self) -> dict[str, Any]:
        out = super().to_json()
        for name, shown in self._constraints.items():
            entry = out["value"][name]
            limits = {k: x for k, x in shown.items() if k in _CONSTRAINT_KEYS}
            if limits:
                entry["constraints"] = limits
            for key in ("description", "default"):
                if key in shown:
                    entry[key] = shown[key]
        out["pydanticModel"] = self.model.__name__
        return out

    def _conv(self, value: Any, tables: TableLookup | None) -> Any:
        model = self.model
        if isinstance(value, model):
            instance = value
        else:
            if not isinstance(value, Mapping):
                self._fail(value)
            given = {k: x for k, x in value.items() if x is not UNDEFINED}
            pydantic = sys.modules["pydantic"]
            try:
                instance = model.model_validate(given)
            except pydantic.ValidationError as e:
                raise _model_mismatch(e, value, self) from None
        if self.as_args:
            return {name: getattr(instance, name) for name in type(instance).model_fields}
        return VObject._conv(self, _dump(instance), tables)


def _model_mismatch(error: Any, value: Any, validator: VModel) -> _Mismatch:
    """pydantic's errors as one mismatch: every error's path and message, the first one's path
    as the error's ``Path``."""
    problems = error.errors(include_url=False)
    lines = [f"  {_loc_text(p['loc']) or '(the object)'}: {p['msg']}" for p in problems]
    count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
    m = _Mismatch("model", value, validator,
                  field=f"pydantic model `{validator.model.__name__}` found {count}:\n"
                        + "\n".join(lines))
    if problems:
        m.segments.extend(reversed(_loc_segments(problems[0]["loc"])))
    return m


def _loc_segments(loc: tuple[Any, ...]) -> list[str]:
    return [f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc]


def _loc_text(loc: tuple[Any, ...]) -> str:
    return "".join(_loc_segments(loc))


def _dump(instance: Any) -> Any:
    """A model instance as plain data: pydantic's Python dump, with what is not a Convex value
    there (datetimes, UUIDs, enums, decimals, ...) taken from its JSON dump instead."""
    return _merge(instance.model_dump(mode="python"), instance.model_dump(mode="json"))


_PLAIN: Final = (str, float, int, bool, bytes, type(None))


def _merge(python: Any, json: Any) -> Any:
    if isinstance(python, dict) and isinstance(json, dict):
        return {k: _merge(x, json.get(k)) for k, x in python.items()}
    if isinstance(python, (list, tuple)) and isinstance(json, list) and len(json) == len(python):
        return [_merge(x, j) for x, j in zip(python, json, strict=True)]
    if isinstance(python, _PLAIN) and not isinstance(python, Enum):
        return python
    return json


def _json_safe(data: dict[str, Any]) -> dict[str, Any]:
    """Constraint values as JSON (a default may be any value): repr() what JSON cannot hold."""
    out: dict[str, Any] = {}
    for key, x in data.items():
        try:
            out[key] = json.loads(json.dumps(x))
        except (TypeError, ValueError):
            out[key] = repr(x)
    return out


def _from_json_schema(s: Mapping[str, Any], defs: Mapping[str, Any],
                      seen: tuple[str, ...]) -> Validator:
    """The Convex validator for one JSON-schema node of a pydantic model (pydantic still does
    the real validation: this is the shape for forms, exports, stored documents)."""
    ref = s.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        if name in seen or name not in defs:  # a recursive model: its inner levels are v.any()
            return v.any()
        return _from_json_schema(defs[name], defs, (*seen, name))
    if "const" in s:
        return _literal(s["const"])
    if "enum" in s:
        return _union([_literal(x) for x in s["enum"]])
    for key in ("anyOf", "oneOf"):
        if key in s:
            return _union([_from_json_schema(m, defs, seen) for m in s[key]])
    kind = s.get("type")
    if isinstance(kind, list):
        return _union([_from_json_schema({**s, "type": k}, defs, seen) for k in kind])
    if kind == "string":
        return v.bytes() if s.get("format") == "binary" else v.string()
    if kind == "integer":
        return v.int64()
    if kind == "number":
        return v.float64()
    if kind == "boolean":
        return v.boolean()
    if kind == "null":
        return v.null()
    if kind == "array":
        if "prefixItems" in s:
            element = _union([_from_json_schema(m, defs, seen) for m in s["prefixItems"]])
        else:
            items = s.get("items")
            element = _from_json_schema(items, defs, seen) if isinstance(items, Mapping) else (
                v.any())
        return v.array(element.as_required())
    if kind == "object":
        props = s.get("properties")
        if isinstance(props, Mapping) and props and all(
                identifier_problem(n) is None for n in props):
            required = set(s.get("required", ()))
            return v.object({
                n: (_from_json_schema(p, defs, seen) if n in required
                    else _from_json_schema(p, defs, seen).as_optional())
                for n, p in props.items()})
        extra = s.get("additionalProperties")
        values = _from_json_schema(extra, defs, seen) if isinstance(extra, Mapping) else v.any()
        return v.record(v.string(), values.as_required())
    return v.any()


def _literal(value: Any) -> Validator:
    if isinstance(value, (str, bool, float, int)) and not isinstance(value, Enum):
        return v.literal(Int64(value) if type(value) is int else value)
    return v.any()


def _union(members: list[Validator]) -> Validator:
    out: list[Validator] = []
    for member in members:
        for m in _union_members(member.as_required()):
            if m not in out:
                out.append(m)
    if v.any() in out:
        return v.any()
    if v.null() in out:  # `T | None` lists null last, as v.nullable(T) does
        out.remove(v.null())
        out.append(v.null())
    return out[0] if len(out) == 1 else v.union(*out)

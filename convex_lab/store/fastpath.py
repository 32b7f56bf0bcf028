"""One-pass document builders: check, convert, measure and assemble a new document at once.

The general write path walks a document three times (schema validation, size and nesting
measurement, assembly with system fields). For the common shape — a flat object of scalar fields —
a builder generated from the table's validator does all of it in one pass of straight-line code.

Contract: ``builder(fields, _id, creation_time, tables)`` returns ``(document, size)`` exactly as
the general path would produce them, or ``None`` whenever anything is unusual (``fields`` not a
``dict``, a missing or extra field, a type that needs conversion or gives an error, a non-ASCII
string, a non-finite float, nested values, a document near the size or field-count limit).
``None`` sends the caller down the general path, which then gives Convex's exact error text. A
builder never raises for bad input and never accepts what the general path would reject.

``builder.many`` (bulk imports) is the one exception: a document that is not a mapping at all is
reported right there, as an ``InvalidValueError`` naming its position in the import.

Field counts: a compiled builder handles at most 64 declared fields and rejects extra ones, so
its documents are far below the 1,022 user fields a document may have (``values.
MAX_DOCUMENT_USER_FIELDS``); the schemaless builder checks the count with one ``len()``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from convex_lab.errors import InvalidValueError
from convex_lab.values import MAX_DOCUMENT_USER_FIELDS, UNDEFINED, Int64, _checked_field_names

if TYPE_CHECKING:
    from convex_lab.validators import Validator

Builder = Callable[[Mapping[str, Any], str, float, Any], "tuple[dict[str, Any], int] | None"]

_MISSING = object()
_SAFE_SIZE = 900_000  # below the 1 MiB limit with margin; larger documents take the general path
_SYSTEM_SIZE = 2 + (3 + 1 + 2) + (13 + 1 + 9)  # braces, "_id" (+ its length), "_creationTime"


def _not_a_document(position: int, fields: Any) -> InvalidValueError:
    """The error for an imported "document" that is not a mapping of fields at all."""
    return InvalidValueError(
        f"Document {position} of the import: a document must be a dict of fields; got "
        f"{type(fields).__name__}.")


def _scalar_check(kind: str, var: str) -> tuple[str, str, str | None] | None:
    """(condition that ``var`` is canonical for ``kind``, its size expression, and a statement
    that converts a plain ``int`` in place, when that is the only conversion to make)."""
    if kind == "string":
        return f"type({var}) is str and {var}.isascii()", f"2 + len({var})", None
    if kind == "float64":
        # x - x == 0.0 is false exactly for NaN and ±inf: a finiteness test without a call.
        return (f"type({var}) is float and {var} - {var} == 0.0", "9",
                f"if type({var}) is int and -9007199254740992 <= {var} <= 9007199254740992: "
                f"{var} = float({var})")
    if kind == "int64":
        return (f"type({var}) is Int64 and -9223372036854775808 <= {var} <= "
                "9223372036854775807", "9",
                f"if type({var}) is int and -9223372036854775808 <= {var} <= "
                f"9223372036854775807: {var} = Int64({var})")
    if kind == "boolean":
        return f"type({var}) is bool", "1", None
    if kind == "null":
        return f"{var} is None", "1", None
    return None


def _body(fields: list[tuple[str, Any]], fail: str, indent: str) -> list[str] | None:
    """Checking and assembling code for one document (``fields`` in, ``doc`` and ``size`` out);
    ``fail`` is the statement for "take the general path"."""
    lines = ["get = fields.get",
             "size = _SYSTEM_SIZE + len(_id)",
             "n = 0"]
    out = ["doc = {'_id': _id, '_creationTime': ct}"]
    for i, (name, fv) in enumerate(fields):
        var = f"v{i}"
        check = _scalar_check(fv.kind, var)
        if check is None:
            return None
        cond, size_expr, int_fix = check
        key_size = len(name) + 1
        lines.append(f"{var} = get({name!r}, _MISSING)")
        if int_fix is not None:
            lines.append(int_fix)
        if fv.is_optional:
            lines += [f"if {var} is _MISSING:",
                      "    pass",
                      f"elif {var} is UNDEFINED:",
                      "    n += 1",
                      f"elif {cond}:",
                      f"    size += {key_size} + {size_expr}",
                      "    n += 1",
                      "else:",
                      f"    {fail}"]
            out += [f"if {var} is not _MISSING and {var} is not UNDEFINED:",
                    f"    doc[{name!r}] = {var}"]
        else:
            lines += [f"if not ({cond}):",
                      f"    {fail}",
                      f"size += {key_size} + {size_expr}",
                      "n += 1"]
            out.append(f"doc[{name!r}] = {var}")
    lines += ["if n != len(fields) or size > _SAFE_SIZE:",
              f"    {fail}",
              *out]
    return [indent + line for line in lines]


def compile_builder(validator: Validator) -> Builder | None:
    """A builder for ``v.object({...})`` of scalar fields, or ``None`` for other validators.

    The builder also has ``.many(docs, ids, cts, out, start) -> (stop, max_size)``: it builds
    ``docs[start:]`` into ``out`` and stops at the first one needing the general path (or the
    end), so bulk imports pay no call per document.
    """
    from convex_lab.validators import VObject  # noqa: PLC0415

    if not isinstance(validator, VObject):
        return None
    fields = sorted(validator.fields.items())
    if not fields or len(fields) > 64:
        return None
    one = _body(fields, "return None", "    ")
    many = _body(fields, "return i, max_size", "        ")
    if one is None or many is None:
        return None
    source = "\n".join([
        "def build(fields, _id, ct, tables):",
        "    if type(fields) is not dict:",
        "        return None",
        *one, "    return doc, size",
        "",
        "def many(docs, ids, cts, out, start):",
        "    max_size = 0",
        "    append = out.append",
        "    for i in range(start, len(docs)):",
        "        fields = docs[i]",
        "        if type(fields) is not dict:",
        "            if not isinstance(fields, Mapping):",
        "                raise _not_a_document(len(out), fields)",  # len(out): docs before it
        "            return i, max_size",
        "        _id = ids[i]",
        "        ct = cts[i]",
        *many,
        "        append(doc)",
        "        if size > max_size:",
        "            max_size = size",
        "    return len(docs), max_size",
    ])
    namespace: dict[str, Any] = {"__name__": __name__,
                                 "_MISSING": _MISSING, "UNDEFINED": UNDEFINED, "Int64": Int64,
                                 "_SAFE_SIZE": _SAFE_SIZE, "_SYSTEM_SIZE": _SYSTEM_SIZE,
                                 "Mapping": Mapping, "_not_a_document": _not_a_document}
    # The source holds only validator kinds and repr()'d field names: nothing user-controlled.
    exec(compile(source, f"<document builder {validator!r:.60}>", "exec"), namespace)
    build = namespace["build"]
    build.many = namespace["many"]
    return build  # type: ignore[no-any-return]


ArgsChecker = Callable[[Any], "dict[str, Any] | None"]


def compile_args(validator: Validator) -> ArgsChecker | None:
    """A one-pass checker for a function's ``args`` when they are ``v.object({...})`` of scalar
    fields (``None`` for other validators): ``checker(args)`` returns the converted arguments
    exactly as ``validator.validate(args)`` would, or ``None`` whenever anything is unusual (a
    missing or extra field, a value that is wrong or needs more than a plain int's conversion,
    a non-ASCII string), which sends the caller to ``validate`` and its exact error text."""
    from convex_lab.validators import VObject  # noqa: PLC0415

    if not isinstance(validator, VObject):
        return None
    fields = sorted(validator.fields.items())
    if len(fields) > 64:
        return None
    lines = ["def check(args):",
             "    if type(args) is not dict:",
             "        return None",
             "    get = args.get",
             "    n = 0",
             "    out = {}"]
    for i, (name, fv) in enumerate(fields):
        var = f"v{i}"
        check = _scalar_check(fv.kind, var)
        if check is None:
            return None
        cond, _size, int_fix = check
        lines.append(f"    {var} = get({name!r}, _MISSING)")
        if int_fix is not None:
            lines.append(f"    {int_fix}")
        if fv.is_optional:
            lines += [f"    if {var} is _MISSING:",
                      "        pass",
                      f"    elif {var} is UNDEFINED:",
                      "        n += 1",
                      f"    elif {cond}:",
                      f"        out[{name!r}] = {var}",
                      "        n += 1",
                      "    else:",
                      "        return None"]
        else:
            lines += [f"    if not ({cond}):",
                      "        return None",
                      f"    out[{name!r}] = {var}",
                      "    n += 1"]
    lines += ["    if n != len(args):",
              "        return None",
              "    return out"]
    namespace: dict[str, Any] = {"__name__": __name__, "_MISSING": _MISSING,
                                 "UNDEFINED": UNDEFINED, "Int64": Int64}
    # The source holds only validator kinds and repr()'d field names: nothing user-controlled.
    exec(compile("\n".join(lines), f"<args checker {validator!r:.60}>", "exec"), namespace)
    return namespace["check"]  # type: ignore[no-any-return]


def build_schemaless(fields: Mapping[str, Any], _id: str, ct: float,
                     tables: Any) -> tuple[dict[str, Any], int] | None:
    """The builder for tables without a validator: flat documents of canonical scalars."""
    if type(fields) is not dict or len(fields) > MAX_DOCUMENT_USER_FIELDS:
        # The field-count check cannot rely on the names being known (`_checked_field_names`):
        # the names of a rejected document are remembered too, before it fails on its count.
        return None
    size = _SYSTEM_SIZE + len(_id)
    doc: dict[str, Any] = {"_id": _id, "_creationTime": ct}
    known = _checked_field_names
    for k, v in fields.items():
        if k not in known or k[:1] == "_":  # unseen names take the general path once
            return None
        t = type(v)
        if t is str:
            if not v.isascii():
                return None
            size += len(k) + 3 + len(v)
        elif t is float:
            if v - v != 0.0:
                return None
            size += len(k) + 10
        elif t is bool or v is None:
            size += len(k) + 2
        elif t is Int64:
            if not -9223372036854775808 <= v <= 9223372036854775807:
                return None
            size += len(k) + 10
        elif t is int:
            if not -9007199254740992 <= v <= 9007199254740992:
                return None
            doc[k] = float(v)
            size += len(k) + 10
            continue
        else:
            return None
        doc[k] = v
    if size > _SAFE_SIZE:
        return None
    return doc, size


def _schemaless_many(docs: list[Any], ids: list[str], cts: list[float],
                     out: list[dict[str, Any]], start: int) -> tuple[int, int]:
    max_size = 0
    for i in range(start, len(docs)):
        got = build_schemaless(docs[i], ids[i], cts[i], None)
        if got is None:
            if not isinstance(docs[i], Mapping):
                raise _not_a_document(len(out), docs[i])  # len(out): the documents before it
            return i, max_size
        out.append(got[0])
        max_size = max(max_size, got[1])
    return len(docs), max_size


build_schemaless.many = _schemaless_many  # type: ignore[attr-defined]

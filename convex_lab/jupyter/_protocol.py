"""The widget wire protocol: message shapes, the display JSON of values, structured errors.

Mirrored in TypeScript by ``extension/src/protocol.ts`` (keep the two in step and bump
``PROTOCOL_VERSION`` on any incompatible change; the front-end shows a warning when its own
version differs from the widget's ``protocol_version`` trait, i.e. a stale bundle). Version 2
added the data browser's ``sort`` request and ``sortable`` trait.

Messages
--------
State lives in synced traits (a reloaded page restores without the kernel). Actions are requests
sent by the front-end with ``model.send({"type": ..., "id": ..., ...})``; the kernel answers each
with exactly one :class:`Response` carrying the same ``id``::

    {"type": "response", "id": "7", "ok": true, "result": ...}
    {"type": "response", "id": "7", "ok": false, "error": {"name": ..., "message": ..., ...}}

Request types per view: ``function_runner``: ``run``, ``refresh``; ``data_browser``: ``browse``,
``sort``, ``page``, ``edit``, ``delete``, ``refresh``; ``paginated``: ``load_more``; ``logs``:
``clear``; ``jobs``: ``refresh``, ``cancel`` {job_id}; ``crons``: ``refresh``.
A request the view does not know is answered with a ``ProtocolError``.

Display JSON of Convex values (``encode`` / ``decode``)
-------------------------------------------------------
JSON with tagged objects where plain JSON would lose the type (Convex field names cannot start
with ``$``, so a one-key ``$`` object is never a document)::

    Int64(5)        {"$int64": "5"}
    b"\\x00"         {"$bytes": "AA=="}                  (standard base64)
    nan, inf, -0.0  {"$float": "NaN" | "Infinity" | "-Infinity" | "-0"}
    Id / str        "..."                               other scalars, lists and dicts as JSON

Anything that is not a Convex value (only possible in ``render=`` fallbacks) becomes
``{"$repr": repr(x)}``; ``decode`` refuses it.
"""

from __future__ import annotations

import base64
import math
from typing import Any, Final, Literal, TypedDict

from convex_lab.errors import ConvexError, ConvexLabError, ProtocolError
from convex_lab.values import UNDEFINED, Int64

PROTOCOL_VERSION: Final = 2

Status = Literal["loading", "ready", "error", "closed"]


class WireError(TypedDict, total=False):
    """A structured error: ``name`` (exception class or ``ConvexError``), ``message`` (the full
    human text), ``code`` (convex_lab's short code), ``data`` (``ConvexError.data``, encoded)."""

    name: str
    message: str
    code: str
    data: Any


class Request(TypedDict, total=False):
    type: str
    id: str


class Response(TypedDict, total=False):
    type: Literal["response"]
    id: str
    ok: bool
    result: Any
    error: WireError


class FunctionInfo(TypedDict):
    """One entry of the function runner's ``functions`` trait."""

    path: str
    kind: str
    visibility: str
    args: dict[str, Any] | None  # the args validator's to_json(), None when unvalidated


# ---------------------------------------------------------------------------------------------
# Values


def _float_tag(x: float) -> str | None:
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0.0 and math.copysign(1.0, x) < 0:
        return "-0"
    return None


_FLOAT_FROM_TAG: Final = {
    "NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf, "-0": -0.0,
}


def encode(value: Any) -> Any:
    """A Convex value as display JSON (module docstring); JSON-serialisable, never fails."""
    if value is None or value is True or value is False:
        return value
    if isinstance(value, str):
        return str(value)  # Id → plain str
    t = type(value)
    if t is float:
        tag = _float_tag(value)
        return value if tag is None else {"$float": tag}
    if t is Int64:
        return {"$int64": str(int(value))}
    if t is int:  # a plain int in a result is a float64 (docs/api.md)
        return float(value) if abs(value) <= 2**53 else {"$int64": str(value)}
    if t is bytes or t is bytearray or t is memoryview:
        return {"$bytes": base64.standard_b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items() if v is not UNDEFINED}
    if isinstance(value, float):
        return encode(float(value))
    if isinstance(value, int):
        return encode(int(value))
    return {"$repr": repr(value)}


def decode(data: Any) -> Any:
    """Display JSON from the front-end → Python values for validators (inverse of ``encode``).

    A JSON number arrives as ``int`` or ``float`` and is left so: validators decide (a plain int
    is a float64 unless the field is ``v.int64()``, docs/api.md). Raises ``ProtocolError`` on a
    malformed tag.
    """
    t = type(data)
    if data is None or t is bool or t is str or t is int or t is float:
        return data
    if t is list:
        return [decode(v) for v in data]
    if t is dict:
        if len(data) == 1:
            ((key, inner),) = data.items()
            if isinstance(key, str) and key.startswith("$"):
                return _decode_tag(key, inner)
        return {k: decode(v) for k, v in data.items()}
    raise ProtocolError(f"Not a display-JSON value: {data!r}")


def _decode_tag(key: str, inner: Any) -> Any:
    try:
        if key == "$int64":
            return Int64(int(str(inner)))
        if key == "$bytes":
            return base64.b64decode(str(inner).encode("ascii"), validate=True)
        if key == "$float":
            return _FLOAT_FROM_TAG[str(inner)]
    except (ValueError, KeyError) as e:
        raise ProtocolError(f"Malformed {key} value {inner!r}: {e}") from None
    raise ProtocolError(f"Unknown tag {key!r} (field names cannot start with '$').")


# ---------------------------------------------------------------------------------------------
# Errors


def encode_error(error: BaseException) -> WireError:
    """A structured error for the front-end: ``ConvexError`` keeps its data, convex_lab errors
    their code, anything else its class name and message."""
    if isinstance(error, ConvexError):
        return {"name": "ConvexError", "message": str(error), "data": encode(error.data)}
    out: WireError = {"name": type(error).__name__, "message": str(error) or type(error).__name__}
    if isinstance(error, ConvexLabError):
        out["code"] = error.code
    return out


def ok(request_id: str, result: Any = None) -> Response:
    return {"type": "response", "id": request_id, "ok": True, "result": result}


def failed(request_id: str, error: BaseException) -> Response:
    return {"type": "response", "id": request_id, "ok": False, "error": encode_error(error)}


def field(request: dict[str, Any], name: str, kind: type | tuple[type, ...],
          default: Any = ...) -> Any:
    """``request[name]``, checked to be a ``kind``; ``ProtocolError`` names what is wrong."""
    if name not in request or request[name] is None:
        if default is not ...:
            return default
        raise ProtocolError(f"Request {request.get('type')!r} needs a {name!r} field.")
    value = request[name]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise ProtocolError(f"Request field {name!r} has the wrong type: {value!r}.")
    return value

"""Which registered function a reference means, and what to say when there is none.

:func:`resolve` is the one place that turns a reference (a ``FunctionDef``, a path string, or
``cl.api.x.y``) into the served function, checking visibility and kind. Its error texts follow
Convex's (``Could not find public function for 'x'``) and add the fix: a "did you mean" and, for
the notebook's owner, the functions there are. A client learns nothing it may not see: not
whether an internal function exists at the path, and never the list of functions.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Final

from convex_lab.errors import FunctionError
from convex_lab.functions import (
    ComponentReference,
    FunctionDef,
    kind_phrase,
    reference_path,
)

if TYPE_CHECKING:
    from convex_lab.functions import App, FunctionLike, Mount

_CALL_VERB: Final = {"query": "query", "mutation": "mutation", "action": "action"}
_CTX_VERB: Final = {"query": "run_query", "mutation": "run_mutation", "action": "run_action"}


def resolve(app: App, ref: FunctionLike, kind: str | None = None, *, public_only: bool = False,
            caller: str = "backend", redact: bool = False) -> FunctionDef:
    """The function ``app`` serves for ``ref``; checks visibility and (if given) kind.

    ``caller`` names who asks, for the hint in a wrong-kind error (``"backend"``, ``"client"``,
    ``"ctx"``, ``"scheduler"``); a ``"client"`` gets the client's message (see module docstring),
    without suggestions when ``redact`` is set.
    """
    if type(ref) is FunctionDef:  # the common case, without the general dispatch
        if ref.mount is not None:  # a component's function, as a mount serves it
            return resolve_in_mount(ref.mount, ref, kind, caller=caller)
        path, ref_public = ref.path, False
    elif isinstance(ref, ComponentReference):
        return resolve_in_mount(ref._cl_mount(), ref, kind, caller=caller, public_only=True)
    else:
        path, ref_public = reference_path(ref)
    fn = app.functions.get(path)
    public_only = public_only or ref_public
    if fn is None or (public_only and fn.visibility != "public"):
        if caller == "client":
            raise FunctionError(_not_found_for_client(app, path, redact))
        raise FunctionError(_not_found(app, path, public_only, fn))
    if kind is not None and fn.kind != kind:
        verbs = _CTX_VERB if caller == "ctx" else _CALL_VERB
        hint = (f": use {caller}.{verbs[fn.kind]}(...)" if fn.kind in verbs
                else ": HTTP actions are called through an HTTP route, not as functions")
        raise FunctionError(f"{path} is {kind_phrase(fn.kind)}, not {kind_phrase(kind)}{hint}")
    return fn


def resolve_in_mount(mount: Mount, ref: FunctionLike | ComponentReference, kind: str | None,
                     *, caller: str = "backend", public_only: bool = False) -> FunctionDef:
    """The function a mounted component serves for ``ref``: from outside (an
    ``app.components.<name>...`` reference) only its public functions; from inside (its own
    functions calling each other with ``ctx.run_*``) any of them, by function or path.
    A component never reaches the app's functions."""
    if isinstance(ref, FunctionDef):
        path = ref.path
    else:
        path, ref_public = reference_path(ref)
        public_only = public_only or ref_public
    fn = mount.function(path)
    where = f"component {mount.name!r}"
    if fn is None or (public_only and fn.visibility != "public"):
        names = sorted(p for p, f in mount.definition.functions.items()
                       if not public_only or f.visibility == "public")
        hidden = " (it is internal: only the component's own functions call it)" if fn else ""
        raise FunctionError(f"Could not find {'public ' if public_only else ''}function for "
                            f"'{path}' in {where}{hidden}. Its functions: "
                            f"{', '.join(names) or 'none'}.")
    if kind is not None and fn.kind != kind:
        verbs = _CTX_VERB if caller == "ctx" else _CALL_VERB
        raise FunctionError(f"{path} in {where} is {kind_phrase(fn.kind)}, not "
                            f"{kind_phrase(kind)}: use {caller}.{verbs.get(fn.kind, fn.kind)}(...)")
    return fn


def nested_verb(kind: str) -> str:
    """``"run_query"`` etc.: how a function calls a function of ``kind``."""
    return _CTX_VERB[kind]


def _not_found_for_client(app: App, path: str, redact: bool) -> str:
    message = f"Could not find public function for '{path}'."
    if redact:
        return message
    public = [p for p, f in app.functions.items() if f.visibility == "public"]
    close = difflib.get_close_matches(path, public, n=3, cutoff=0.75)
    if close:
        return message + " Did you mean " + " or ".join(repr(c) for c in close) + "?"
    return message


def _not_found(app: App, path: str, public_only: bool, found: FunctionDef | None) -> str:
    what = "public function" if public_only else "function"
    message = f"Could not find {what} for '{path}'."
    if found is not None:
        return (f"{message} ({path} is an internal function: clients cannot call it. Call it "
                "from another function with ctx.run_*, or as an admin with backend.query/"
                "mutation/action.)")
    candidates = [p for p, f in app.functions.items()
                  if not public_only or f.visibility == "public"]
    # Same function name in another module first ("send" → "messages:send"), then whole
    # paths (a high cutoff: paths in one module share a long prefix), then bare names.
    name = path.rpartition(":")[2]
    close = [p for p in candidates if p.rpartition(":")[2] == name][:3]
    close = close or difflib.get_close_matches(path, candidates, n=3, cutoff=0.8)
    if not close:
        by_name = {p.rpartition(":")[2]: p for p in candidates}
        close = [by_name[n] for n in difflib.get_close_matches(
            name, list(by_name), n=3, cutoff=0.6)]
    if close:
        return message + " Did you mean " + " or ".join(repr(c) for c in close) + "?"
    if not candidates:
        return message + " No functions are registered: define one with @cl.query etc."
    return message + f" Registered: {', '.join(sorted(candidates)[:20])}."

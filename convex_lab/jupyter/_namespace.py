"""The names ``%load_ext convex_lab`` puts in the notebook's namespace.

A Convex project imports its building blocks in every file (``v`` and ``ConvexError`` from
``convex/values``; ``query``, ``mutation``, ``action`` and their ``internal*`` twins from
``_generated/server``; ``defineSchema``, ``defineTable``, ``cronJobs`` and
``paginationOptsValidator`` from ``convex/server``; ``api`` and ``internal`` from
``_generated/api``). A notebook gets the same set once, in snake_case, plus ``cl`` (the
package), ``Id``, ``Int64`` and ``UNDEFINED``, so a ``%%schema`` cell can write
``define_table(...)`` and ``v.string()`` and a cell can call ``cl.watch(...)`` with no import.

Contract
--------
* A name the user already bound to something else is left alone (and reported as kept).
* Unloading the extension leaves the names bound: they are plain Python objects, and a name the
  user imported or assigned again since cannot be told from the one the extension bound.
* :func:`summary` is the one line the extension prints when it loads.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

NAMES = ("cl", "v", "define_schema", "define_table", "query", "mutation", "action",
         "internal_query", "internal_mutation", "internal_action", "cron_jobs",
         "pagination_opts_validator", "api", "internal", "ConvexError", "Id", "Int64",
         "UNDEFINED")
"""What a cell may use without importing it, in the order the load message lists them."""


def values() -> dict[str, Any]:
    """``{name: object}`` for :data:`NAMES`."""
    import convex_lab as cl  # noqa: PLC0415 (the facade imports this package lazily too)

    return {name: cl if name == "cl" else getattr(cl, name) for name in NAMES}


def inject(user_ns: MutableMapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Bind every name of :data:`NAMES` the namespace lacks.

    Returns ``(added, kept)``: the names bound now with their objects, and the names the user had
    bound to something else (left untouched). A name already bound to the same object is neither.
    """
    added: dict[str, Any] = {}
    kept: list[str] = []
    for name, obj in values().items():
        if name not in user_ns:
            user_ns[name] = obj
            added[name] = obj
        elif user_ns[name] is not obj:
            kept.append(name)
    return added, kept


def summary(added: dict[str, Any], kept: list[str]) -> str:
    """The load message: one line naming what a cell can now use."""
    if added:
        line = f"convex_lab: added {', '.join(added)} to the namespace"
    else:
        present = [n for n in NAMES if n not in kept]
        line = f"convex_lab: {', '.join(present)} already in the namespace"
    if kept:
        line += f"; kept your own {', '.join(kept)}"
    return line + ". %convex? lists the magics."

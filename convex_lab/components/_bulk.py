"""Bottom-up bulk load of an aggregate tree (``Aggregate.build``): a million items in seconds.

Inserting items one by one walks and rewrites a path per item; a bulk load sorts the items
once, cuts them into full-enough leaves and builds each level of internal nodes over the one
below, writing every node exactly once. The node layout is ``_btree``'s (module docstring
there), so a bulk-built tree is indistinguishable to readers from one built by inserts, and
later inserts and deletes work on it unchanged.

Protocol (the caller, :func:`build`, runs each step as its own mutation, so the load is not
bound by one function's write limits):

1. ``btree:build_start`` — the namespace's tree must be empty (made if missing); returns the
   root's ID.
2. ``btree:build_nodes`` — node documents, bottom-up, a chunk per mutation; returns their IDs.
   Until step 3 they are unreachable from the root: readers never see a half-built tree.
3. ``btree:build_finish`` — writes the root over the top level, if the tree is still empty;
   otherwise (something was inserted meanwhile) it fails and :func:`build` deletes the nodes
   of step 2 (``btree:build_abort``) before re-raising.

Nodes are filled to ``FILL`` of ``maxNodeSize`` (so the next inserts do not split at once);
the root gets at most ``maxNodeSize`` children, each marked ``parent`` = the root.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any, Final

from convex_lab.components._nodes import encode
from convex_lab.errors import ConvexError
from convex_lab.values import sort_key

FILL: Final = 0.75
NODES_PER_MUTATION: Final = 2_000  # well under a function's 8,192-element array and 16 MiB
"""How many node documents one ``btree:build_nodes`` mutation writes."""

Item = tuple[Any, str, float]  # (key, id, sumValue)
Call = Callable[[Any, dict[str, Any]], Any]


def sorted_items(items: Sequence[Item]) -> list[Item]:
    """``items`` in tree order; two items with the same ``(key, id)`` are an error."""
    keyed = sorted(((sort_key(k), i), k, i, s) for k, i, s in items)
    for a, b in itertools.pairwise(keyed):
        if a[0] == b[0]:
            raise ConvexError({"kind": "AggregateItemExists", "key": b[1], "id": b[2]})
    return [(k, i, float(s)) for _, k, i, s in keyed]


def _cuts(n: int, max_size: int) -> list[tuple[int, int]]:
    """``[start, end)`` slices cutting ``n`` entries into nodes of about ``FILL * max_size``."""
    per = max(2, math.floor(max_size * FILL))
    groups = max(1, math.ceil(n / per))
    base, extra = divmod(n, groups)
    out, start = [], 0
    for g in range(groups):
        end = start + base + (1 if g < extra else 0)
        out.append((start, end))
        start = end
    return out


def build(call: Call, ref: Any, namespace: Any, items: Sequence[Item], max_size: int) -> int:
    """Bulk-load ``items`` into the empty tree of ``namespace``; returns the number of nodes
    written. ``call(fn_ref, args)`` runs a mutation; ``ref`` is the mounted component's
    ``btree`` module reference."""
    ordered = sorted_items(items)
    root_id = call(ref.build_start, {"namespace": namespace, "maxNodeSize": float(max_size)})
    if not ordered:
        return 0
    if len(ordered) <= max_size:  # one leaf: the root itself
        call(ref.build_finish, {"namespace": namespace, "root": _leaf(ordered),
                                "rootId": root_id})
        return 1
    written: list[str] = []
    try:
        # level: (node fields, first key, first id, count, sum) per node, in order
        level = [(_leaf(ordered[a:b]), ordered[a][0], ordered[a][1], float(b - a),
                  sum(s for *_, s in ordered[a:b])) for a, b in _cuts(len(ordered), max_size)]
        while True:
            top = len(level) <= max_size
            docs = [encode({**fields, "parent": root_id if top else None})
                    for fields, *_ in level]
            ids: list[str] = []
            for start in range(0, len(docs), NODES_PER_MUTATION):
                got = call(ref.build_nodes, {"nodes": docs[start:start + NODES_PER_MUTATION]})
                ids += got
                written += got
            if top:
                root = {"leaf": False, "children": ids,
                        "seps": [x[1] for x in level[1:]], "sepIds": [x[2] for x in level[1:]],
                        "counts": None, "sums": None}
                call(ref.build_finish, {"namespace": namespace, "root": root, "rootId": root_id})
                return len(written) + 1
            level = [({"leaf": False, "children": ids[a:b],
                       "seps": [x[1] for x in level[a + 1:b]],
                       "sepIds": [x[2] for x in level[a + 1:b]],
                       "counts": [x[3] for x in level[a:b]], "sums": [x[4] for x in level[a:b]]},
                      level[a][1], level[a][2], sum(x[3] for x in level[a:b]),
                      sum(x[4] for x in level[a:b]))
                     for a, b in _cuts(len(level), max_size)]
    except BaseException:
        for start in range(0, len(written), NODES_PER_MUTATION):
            call(ref.build_abort, {"ids": written[start:start + NODES_PER_MUTATION]})
        raise


def _leaf(items: Sequence[Item]) -> dict[str, Any]:
    return {"leaf": True, "keys": [k for k, _, _ in items], "ids": [i for _, i, _ in items],
            "sums": [s for *_, s in items]}

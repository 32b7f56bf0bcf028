"""The aggregate component's tree: a B+ tree of ``(key, id, sumValue)`` items stored as documents.

Layout (tables of the ``aggregate`` component; see ``aggregate.py``):

* ``trees``: one document per namespace, ``{namespace, root, maxNodeSize}``. Written once, when
  the namespace gets its first item: the root node keeps its ID for the tree's lifetime.
* ``nodes``: ``{leaf, size, count, sum, data}`` (``count``/``sum``: the subtree's totals,
  absent on the lazy root). A leaf holds items sorted by ``(key, id)`` in parallel
  arrays ``keys``, ``ids``, ``sums``; an internal node holds ``children`` and ``seps`` /
  ``sepIds`` (``seps[i]`` is the smallest item of ``children[i + 1]``) and, for each child, the
  ``counts`` and ``sums`` of its subtree. Those arrays are packed in ``data``, one string of
  Convex's export JSON (``values.dumps_export``, lossless for every key type): a write then
  validates, sizes and compares one value, not dozens — it is what makes a write cheap.

Invariants and costs:

* Every call reads O(log n) documents: the root, the root's children, one node per level below.
* **The root is lazy** (as the npm component's ``rootLazy``): it stores no per-child counts, so
  an insert writes its leaf and the nodes on its path *below* the root, never one shared
  document — concurrent inserts into different subtrees of the root do not conflict. Readers
  get a root child's total from the child itself.
* Items are ordered by Convex's value order of ``key`` (``values.sort_key``; arrays — tuple
  keys — lexicographically, a proper prefix first), then by ``id``.
* A node holds at most ``maxNodeSize`` items (leaf) or children (internal); a full one splits
  in two. Deleting the last item of a node removes the node; a root with one child absorbs it.
  Underfull nodes are not merged (depth stays that of the largest size the tree reached).
"""

from __future__ import annotations

import bisect
from typing import Any, Final

from convex_lab.errors import ConvexError
from convex_lab.values import dumps_export, loads_export, sort_key

# Bigger than every rank sort_key puts first in a slot (0..8): closes a prefix range.
_AFTER_PREFIX: Final = (9,)

Item = dict[str, Any]


class Bound:
    """One side of a range over keys: ``key`` compared as ``values.sort_key``; ``inclusive``."""

    __slots__ = ("inclusive", "sk")

    def __init__(self, sk: tuple[Any, ...], inclusive: bool) -> None:
        self.sk = sk
        self.inclusive = inclusive


def bounds_of(bounds: Any) -> tuple[Bound | None, Bound | None]:
    """``{"lower": {"key", "inclusive"}, "upper": {...}}`` or ``{"prefix": [...]}`` → bounds."""
    if bounds is None:
        return None, None
    if not isinstance(bounds, dict):
        raise ConvexError({"kind": "InvalidBounds", "message": "bounds must be an object with "
                           "lower/upper ({key, inclusive}) or prefix"})
    if "prefix" in bounds:
        prefix = bounds["prefix"]
        if not isinstance(prefix, (list, tuple)):
            raise ConvexError({"kind": "InvalidBounds",
                               "message": "prefix must be an array (keys are tuples)"})
        inner = sort_key(list(prefix))[1]  # (7, flattened elements)
        return Bound((7, inner), True), Bound((7, (*inner, *_AFTER_PREFIX)), False)
    out: list[Bound | None] = []
    for side in ("lower", "upper"):
        b = bounds.get(side)
        out.append(None if b is None else Bound(sort_key(b["key"]),
                                                 bool(b.get("inclusive", True))))
    return out[0], out[1]


class Tree:
    """One namespace's tree, read and written through a component's ``ctx.db``.

    Node documents read during one call are cached (a call reads each at most once), and
    changed nodes are written once, by :meth:`flush` (a batch of inserts writes each node once).
    """

    def __init__(self, db: Any, tree: dict[str, Any]) -> None:
        self.db = db
        self.root_id: str = tree["root"]
        self.max = int(tree["maxNodeSize"])
        self._docs: dict[str, dict[str, Any]] = {}  # as read, for subtree()
        self._cache: dict[str, dict[str, Any]] = {}  # decoded, and current once changed
        self._dirty: dict[str, dict[str, Any]] = {}

    # -- reading ---------------------------------------------------------------------------
    def _doc(self, node_id: str) -> dict[str, Any]:
        doc = self._docs.get(node_id)
        if doc is None:
            doc = self.db.get(node_id)
            if doc is None:
                raise ConvexError({"kind": "AggregateCorrupted", "node": node_id})
            self._docs[node_id] = doc
        return doc

    def node(self, node_id: str) -> dict[str, Any]:
        got = self._cache.get(node_id)
        if got is None:
            got = self._cache[node_id] = decode(self._doc(node_id))
        return got

    def subtree(self, node_id: str) -> tuple[float, float]:
        """``(count, sum)`` under a node that is not the root: its document's own ``count`` and
        ``sum`` fields, without unpacking its ``data`` (what makes a lazy root cheap to read)."""
        node = self._cache.get(node_id)
        if node is not None:
            return self.totals(node)
        doc = self._doc(node_id)
        return float(doc["count"]), float(doc["sum"])

    def totals(self, node: dict[str, Any]) -> tuple[float, float]:
        """``(count, sum)`` of the subtree under ``node``."""
        if node["leaf"]:
            return float(len(node["keys"])), float(sum(node["sums"]))
        counts = node["counts"]
        if counts is None:  # the lazy root: ask each child
            c = s = 0.0
            for child in node["children"]:
                cc, cs = self.subtree(child)
                c += cc
                s += cs
            return c, s
        return float(sum(counts)), float(sum(node["sums"]))

    def _child_totals(self, node: dict[str, Any], upto: int) -> tuple[float, float]:
        """Count and sum of ``node``'s first ``upto`` children."""
        counts = node["counts"]
        if counts is not None:
            return float(sum(counts[:upto])), float(sum(node["sums"][:upto]))
        c = s = 0.0
        for child in node["children"][:upto]:
            cc, cs = self.subtree(child)
            c += cc
            s += cs
        return c, s

    def rank(self, bound: Bound, after: bool) -> tuple[float, float]:
        """Count and sum of items whose key is < the bound (``after``: <=)."""
        sk = bound.sk
        node = self.node(self.root_id)
        count = total = 0.0
        while not node["leaf"]:
            seps = node["seps"]
            i = (bisect.bisect_right if after else bisect.bisect_left)(seps, sk, key=sort_key)
            c, s = self._child_totals(node, i)
            count += c
            total += s
            node = self.node(node["children"][i])
        keys = node["keys"]
        i = (bisect.bisect_right if after else bisect.bisect_left)(keys, sk, key=sort_key)
        return count + i, total + float(sum(node["sums"][:i]))

    def aggregate(self, lower: Bound | None, upper: Bound | None) -> tuple[float, float]:
        """Count and sum of the items between the bounds (each ``None``: unbounded)."""
        hi = (self.totals(self.node(self.root_id)) if upper is None
              else self.rank(upper, after=upper.inclusive))
        lo = (0.0, 0.0) if lower is None else self.rank(lower, after=not lower.inclusive)
        return max(0.0, hi[0] - lo[0]), hi[1] - lo[1]

    def at(self, offset: int) -> Item | None:
        """The item at ``offset`` in key order (negative: from the end), or ``None``."""
        node = self.node(self.root_id)
        if offset < 0:
            offset += int(self.totals(node)[0])
            if offset < 0:
                return None
        while not node["leaf"]:
            counts = node["counts"]
            children = node["children"]
            for i, child in enumerate(children):
                c = counts[i] if counts is not None else self.subtree(child)[0]
                if offset < c:
                    node = self.node(child)
                    break
                offset -= int(c)
            else:
                return None
        if offset >= len(node["keys"]):
            return None
        return {"key": node["keys"][offset], "id": node["ids"][offset],
                "sumValue": node["sums"][offset]}

    # -- writing ---------------------------------------------------------------------------
    def insert(self, key: Any, item_id: str, value: float) -> None:
        """Add an item; an item with the same ``(key, id)`` is an error (nothing changes)."""
        target = (sort_key(key), item_id)
        path = self._descend(target)
        leaf = path[-1][0]
        keys, ids = leaf["keys"], leaf["ids"]
        i = bisect.bisect_left(range(len(keys)), target, key=lambda j: (sort_key(keys[j]),
                                                                         ids[j]))
        if i < len(keys) and ids[i] == item_id and sort_key(keys[i]) == target[0]:
            raise ConvexError({"kind": "AggregateItemExists", "key": key, "id": item_id})
        keys.insert(i, key)
        ids.insert(i, item_id)
        leaf["sums"].insert(i, value)
        self._fix_up(path, 1.0, value)

    def delete(self, key: Any, item_id: str) -> float:
        """Remove an item; returns its sum value. A missing item is an error (nothing changes)."""
        target = (sort_key(key), item_id)
        path = self._descend(target)
        leaf = path[-1][0]
        keys, ids = leaf["keys"], leaf["ids"]
        i = bisect.bisect_left(range(len(keys)), target, key=lambda j: (sort_key(keys[j]),
                                                                         ids[j]))
        if i >= len(keys) or ids[i] != item_id or sort_key(keys[i]) != target[0]:
            raise ConvexError({"kind": "AggregateItemMissing", "key": key, "id": item_id})
        del keys[i], ids[i]
        value = float(leaf["sums"].pop(i))
        self._fix_up(path, -1.0, -value)
        return value

    def _descend(self, target: tuple[Any, str]) -> list[tuple[dict[str, Any], int]]:
        """``[(node, index of the child taken), ..., (leaf, -1)]`` for the item ``target``."""
        path: list[tuple[dict[str, Any], int]] = []
        node = self.node(self.root_id)
        while not node["leaf"]:
            seps, sep_ids = node["seps"], node["sepIds"]
            i = bisect.bisect_right(range(len(seps)), target,
                                    key=lambda j: (sort_key(seps[j]), sep_ids[j]))
            path.append((node, i))
            node = self.node(node["children"][i])
        path.append((node, -1))
        return path

    def _fix_up(self, path: list[tuple[dict[str, Any], int]], dc: float, ds: float) -> None:
        """After a leaf changed: update counts on the way up, split full nodes, drop empty ones,
        and write every changed node."""
        child, _ = path[-1]
        split: tuple[str, Any, str, dict[str, Any]] | None = None  # (new id, sep, sepId, node)
        emptied = False
        if child["leaf"] and len(child["keys"]) > self.max:
            split = self._split(child)
        elif child["leaf"] and not child["keys"] and len(path) > 1:
            emptied = True
        else:
            self._write(child)
        for node, i in reversed(path[:-1]):
            counts = node["counts"]
            if emptied:
                self._drop(node["children"][i])
                self._remove_child(node, i)
                emptied = not node["children"] and node["_id"] != self.root_id
            elif split is not None:
                new_id, sep, sep_id, right = split
                node["children"].insert(i + 1, new_id)
                node["seps"].insert(i, sep)
                node["sepIds"].insert(i, sep_id)
                if counts is not None:
                    lc, ls = self.totals(self.node(node["children"][i]))
                    rc, rs = self.totals(right)
                    counts[i:i + 1] = [lc, rc]
                    node["sums"][i:i + 1] = [ls, rs]
            elif counts is not None:
                counts[i] += dc
                node["sums"][i] += ds
            else:  # the lazy root: nothing of it changes unless a child split or went away
                split = None
                break
            split = self._split(node) if len(node["children"]) > self.max else None
            if not emptied and split is None:
                self._write(node)
        if split is not None:  # the root itself split: it becomes a lazy parent of two halves
            self._grow_root(split)
        self._collapse_root()

    def _split(self, node: dict[str, Any]) -> tuple[str, Any, str, dict[str, Any]]:
        """Split a full node in two halves: ``node`` keeps the left one (written here) and a new
        node holds the right; returns ``(new id, separator key, separator id, new node)``."""
        if node["leaf"]:
            m = len(node["keys"]) // 2
            right = {"leaf": True, "keys": node["keys"][m:], "ids": node["ids"][m:],
                     "sums": node["sums"][m:]}
            del node["keys"][m:], node["ids"][m:], node["sums"][m:]
            sep, sep_id = right["keys"][0], right["ids"][0]
        else:
            m = len(node["children"]) // 2
            counts = node["counts"]
            right = {"leaf": False, "children": node["children"][m:], "seps": node["seps"][m:],
                     "sepIds": node["sepIds"][m:],
                     "counts": counts[m:] if counts is not None else None,
                     "sums": node["sums"][m:] if counts is not None else None}
            sep, sep_id = node["seps"][m - 1], node["sepIds"][m - 1]
            del node["children"][m:], node["seps"][m - 1:], node["sepIds"][m - 1:]
            if counts is not None:
                del counts[m:], node["sums"][m:]
        if node["_id"] == self.root_id:
            return "", sep, sep_id, right  # _grow_root places both halves
        self._write(node)
        new_id = self.db.insert("nodes", encode(right))
        right["_id"] = new_id
        self._cache[new_id] = right
        return new_id, sep, sep_id, right

    def _grow_root(self, split: tuple[str, Any, str, dict[str, Any]]) -> None:
        """The root (kept in place, so the tree document never changes) split: its left half
        and the right half become two new children of a lazy root."""
        root = self.node(self.root_id)
        _, sep, sep_id, right = split
        left = {k: x for k, x in root.items() if not k.startswith("_")}
        halves = []
        for half in (left, right):
            if not half["leaf"] and half["counts"] is None:  # children of a lazy root: count
                totals = [self.subtree(c) for c in half["children"]]
                half["counts"] = [t[0] for t in totals]
                half["sums"] = [t[1] for t in totals]
            half_id = self.db.insert("nodes", encode(half))
            half["_id"] = half_id
            self._cache[half_id] = half
            halves.append(half_id)
        self._write({"leaf": False, "children": halves, "seps": [sep], "sepIds": [sep_id],
                     "counts": None, "sums": None, "_id": self.root_id})

    def _remove_child(self, node: dict[str, Any], i: int) -> None:
        del node["children"][i]
        if node["seps"]:
            j = max(0, i - 1)
            del node["seps"][j], node["sepIds"][j]
        if node["counts"] is not None:
            del node["counts"][i], node["sums"][i]

    def _collapse_root(self) -> None:
        """A root left with one child takes its place; a root left with none is an empty leaf."""
        root = self.node(self.root_id)
        while not root["leaf"] and len(root["children"]) <= 1:
            if not root["children"]:
                fields: dict[str, Any] = {"leaf": True, "keys": [], "ids": [], "sums": []}
            else:
                child_id = root["children"][0]
                child = self.node(child_id)
                fields = {k: x for k, x in child.items() if not k.startswith("_")}
                if not fields["leaf"]:
                    fields["counts"] = fields["sums"] = None  # the root stays lazy
                self._drop(child_id)
            root = {**fields, "_id": self.root_id}
            self._write(root)

    def _write(self, node: dict[str, Any]) -> None:
        """Mark ``node`` changed (and current in the cache); :meth:`flush` writes it."""
        self._cache[node["_id"]] = node
        self._dirty[node["_id"]] = node

    def _drop(self, node_id: str) -> None:
        self.db.delete(node_id)
        self._cache.pop(node_id, None)
        self._dirty.pop(node_id, None)

    def flush(self) -> None:
        """Write every node changed since the last flush, once each."""
        for node_id, node in self._dirty.items():
            self.db.replace(node_id, encode(node))
        self._dirty.clear()


_LEAF: Final = ("keys", "ids", "sums")
_INTERNAL: Final = ("children", "seps", "sepIds", "counts", "sums")


def encode(node: dict[str, Any]) -> dict[str, Any]:
    """A node as its document's fields (module docstring); ``count`` and ``sum`` are its
    subtree's (absent on a lazy root, whose totals are its children's)."""
    leaf = node["leaf"]
    names = _LEAF if leaf else _INTERNAL
    size = len(node["keys"] if leaf else node["children"])
    out: dict[str, Any] = {"leaf": leaf, "size": float(size),
                           "data": dumps_export([node[n] for n in names])}
    if leaf:
        out["count"], out["sum"] = float(size), float(sum(node["sums"]))
    elif node["counts"] is not None:
        out["count"], out["sum"] = float(sum(node["counts"])), float(sum(node["sums"]))
    return out


def decode(doc: dict[str, Any]) -> dict[str, Any]:
    """A node document as the lists the tree works on (plus its ``_id``)."""
    leaf = doc["leaf"]
    node: dict[str, Any] = dict(zip(_LEAF if leaf else _INTERNAL, loads_export(doc["data"]),
                                    strict=True))
    node["leaf"] = leaf
    node["_id"] = doc["_id"]
    return node


def empty_root() -> dict[str, Any]:
    return encode({"leaf": True, "keys": [], "ids": [], "sums": []})


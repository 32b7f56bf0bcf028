"""The aggregate component's tree: a B+ tree of ``(key, id, sumValue)`` items stored as documents.

Layout (tables of the ``aggregate`` component; see ``aggregate.py``):

* ``trees``: one document per namespace, ``{namespace, root, maxNodeSize}``. Written once, when
  the namespace gets its first item: the root node keeps its ID for the tree's lifetime.
* ``nodes``: a leaf holds items sorted by ``(key, id)`` in parallel lists ``keys``, ``ids``,
  ``sums``; an internal node holds ``children`` and ``seps`` / ``sepIds`` (``seps[i]`` is the
  smallest item of ``children[i + 1]``) and, for each child, the ``counts`` and ``sums`` of its
  subtree. How a node is stored (packed fields, a decode cache) is ``_nodes``'s business; its
  document's ``count``/``sum`` are the subtree's totals (absent on the lazy root).
* ``parent``: set to the root's ID on the root's children only (index ``by_parent``), so a
  reader gets every root child's totals with **one** index range read instead of one ``get``
  per child (what makes a lazy root cheap to read).

Invariants and costs:

* Every call reads O(log n) documents: the root, the root's children (one range read), one
  node per level below.
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

from convex_lab.components._nodes import decode, empty_root, encode, remember
from convex_lab.errors import ConvexError
from convex_lab.values import sort_key

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

    def __init__(self, db: Any, tree: dict[str, Any], *, writable: bool = False,
                 root: dict[str, Any] | None = None) -> None:
        self.db = db
        self.root_id: str = tree["root"]
        self.max = int(tree["maxNodeSize"])
        self.writable = writable  # nodes are then private copies, changed in place
        self._docs: dict[str, dict[str, Any]] = {}  # as read, for subtree()
        self._top: dict[str, dict[str, Any]] | None = None  # the root's children, by ID
        self._cache: dict[str, dict[str, Any]] = {}  # decoded, and current once changed
        self._dirty: dict[str, dict[str, Any]] = {}
        if root is not None:  # the root's document, already read by the caller
            self._docs[self.root_id] = root

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
            doc = self._docs.get(node_id)
            if doc is None and self._top is not None:
                doc = self._top.get(node_id)
            got = self._cache[node_id] = decode(doc if doc is not None else self._doc(node_id),
                                                copy=self.writable)
        return got

    def subtree(self, node_id: str) -> tuple[float, float]:
        """``(count, sum)`` under a child of the root: its document's own ``count`` and ``sum``
        fields, without unpacking its ``data``. The root's children come from one range read
        of ``by_parent`` (what makes a lazy root cheap to read); a child missing from it (a
        tree written before ``parent`` existed) is read by ID."""
        node = self._cache.get(node_id)
        if node is not None:
            return self.totals(node)
        if self._top is None:
            self._top = {d["_id"]: d for d in self.db.query("nodes").with_index(
                "by_parent", lambda q: q.eq("parent", self.root_id)).collect()}
        doc = self._top.get(node_id)
        if doc is None:
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

    def _totals_of(self, ids: list[str]) -> tuple[float, float]:
        """Count and sum under some of the root's children: from their nodes when decoded
        already, by ID when at most two are not, else from one range read of them all."""
        missing = [i for i in ids if i not in self._cache]
        if self._top is None and len(missing) <= 2:
            for node_id in missing:
                self._doc(node_id)
        c = s = 0.0
        for node_id in ids:
            doc = self._docs.get(node_id)
            cc, cs = ((float(doc["count"]), float(doc["sum"])) if doc is not None
                      and node_id not in self._cache else self.subtree(node_id))
            c += cc
            s += cs
        return c, s

    @staticmethod
    def _child_index(node: dict[str, Any], sk: tuple[Any, ...], after: bool) -> int:
        """Which child of ``node`` holds the keys just below (``after``: up to) ``sk``."""
        sks = node.get("sks")  # the separators' sort keys, when decoded read-only
        if sks is not None:
            return (bisect.bisect_right if after else bisect.bisect_left)(sks, sk)
        return (bisect.bisect_right if after else bisect.bisect_left)(node["seps"], sk,
                                                                      key=sort_key)

    def rank(self, bound: Bound, after: bool, start: str | None = None) -> tuple[float, float]:
        """Count and sum of items whose key is < the bound (``after``: <=), in the subtree
        under ``start`` (default: the whole tree)."""
        sk = bound.sk
        node = self.node(self.root_id if start is None else start)
        count = total = 0.0
        while not node["leaf"]:
            i = self._child_index(node, sk, after)
            c, s = self._child_totals(node, i)
            count += c
            total += s
            node = self.node(node["children"][i])
        keys = node["keys"]
        i = (bisect.bisect_right if after else bisect.bisect_left)(keys, sk, key=sort_key)
        return count + i, total + float(sum(node["sums"][:i]))

    def aggregate(self, lower: Bound | None, upper: Bound | None) -> tuple[float, float]:
        """Count and sum of the items between the bounds (each ``None``: unbounded); bounds
        that hold no key between them (lower above upper) count nothing."""
        if lower is not None and upper is not None and (
                lower.sk > upper.sk or (lower.sk == upper.sk
                                        and not (lower.inclusive and upper.inclusive))):
            return 0.0, 0.0
        root = self.node(self.root_id)
        if not root["leaf"] and root["counts"] is None:
            return self._aggregate_lazy(root, lower, upper)
        hi = (self.totals(root) if upper is None
              else self.rank(upper, after=upper.inclusive))
        lo = (0.0, 0.0) if lower is None else self.rank(lower, after=not lower.inclusive)
        return max(0.0, hi[0] - lo[0]), hi[1] - lo[1]

    def _aggregate_lazy(self, root: dict[str, Any], lower: Bound | None,
                        upper: Bound | None) -> tuple[float, float]:
        """``aggregate`` under a lazy root: the children whose subtrees lie between the two
        bounds' paths, whole, plus the part below ``upper`` in its child, minus the part below
        ``lower`` in its own — so only the children in between are asked for their totals."""
        children = root["children"]
        i_lo = 0 if lower is None else self._child_index(root, lower.sk, not lower.inclusive)
        i_hi = (len(children) if upper is None
                else self._child_index(root, upper.sk, upper.inclusive))
        lo = ((0.0, 0.0) if lower is None
              else self.rank(lower, not lower.inclusive, start=children[i_lo]))
        hi = ((0.0, 0.0) if upper is None
              else self.rank(upper, upper.inclusive, start=children[i_hi]))
        whole = self._totals_of(children[i_lo:i_hi])
        return max(0.0, whole[0] - lo[0] + hi[0]), whole[1] - lo[1] + hi[1]

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
                     "sums": node["sums"][m:], "parent": node.get("parent")}
            del node["keys"][m:], node["ids"][m:], node["sums"][m:]
            sep, sep_id = right["keys"][0], right["ids"][0]
        else:
            m = len(node["children"]) // 2
            counts = node["counts"]
            right = {"leaf": False, "children": node["children"][m:], "seps": node["seps"][m:],
                     "sepIds": node["sepIds"][m:],
                     "counts": counts[m:] if counts is not None else None,
                     "sums": node["sums"][m:] if counts is not None else None,
                     "parent": node.get("parent")}
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
            half["parent"] = self.root_id
            if not half["leaf"] and half["counts"] is None:  # children of a lazy root: count
                totals = [self.subtree(c) for c in half["children"]]
                half["counts"] = [t[0] for t in totals]
                half["sums"] = [t[1] for t in totals]
                for c in half["children"]:  # no longer the root's children
                    self._set_parent(c, None)
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
                fields["parent"] = None
                if not fields["leaf"]:
                    fields["counts"] = fields["sums"] = None  # the root stays lazy
                    for c in fields["children"]:  # now the root's children
                        self._set_parent(c, self.root_id)
                self._drop(child_id)
            root = {**fields, "_id": self.root_id}
            self._write(root)

    def _set_parent(self, node_id: str, parent: str | None) -> None:
        """Mark a node as a child of the root (``parent``) or not (``None``); rare: only when
        the root splits or absorbs its last child."""
        node = self.node(node_id)
        if node.get("parent") != parent:
            node["parent"] = parent
            self._write(node)

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
            doc = encode(node)
            self.db.replace(node_id, doc)
            remember(doc, node)
        self._dirty.clear()


__all__ = ["Bound", "Tree", "bounds_of", "decode", "empty_root", "encode"]

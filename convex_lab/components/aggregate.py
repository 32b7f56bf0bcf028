"""``convex_lab.components.aggregate``: counts, sums, ranks and offsets in O(log n) reads,
mirroring the npm ``@convex-dev/aggregate`` component (DESIGN §8, "Components").

Usage::

    from convex_lab.components.aggregate import Aggregate, component as aggregate
    app.use(aggregate, name="leaderboard")
    board = Aggregate(app.components.leaderboard, sort_key=lambda d: -d["score"],
                      sum_value=lambda d: d["score"])
    # in a mutation, next to each write of the table:   board.insert(ctx, doc)
    # in a query:   board.count(ctx), board.at(ctx, 0), board.index_of(ctx, -score)

Contract:

* Items are ``(key, id, sumValue)``: ``key = sort_key(doc)`` (any Convex value; tuples/lists
  are tuple keys ordered element by element), ``id = doc["_id"]``, ``sumValue =
  sum_value(doc)`` (0 without ``sum_value``). ``namespace(doc)`` (constructor) splits items into
  independent trees; every read takes ``namespace=`` (default ``None``).
* ``insert/delete(ctx, doc)``, ``replace(ctx, old_doc, new_doc)``: in a mutation (they write
  in the caller's transaction: rolled back with it). Deleting an item that is not there, or
  inserting one twice, is a ``ConvexError`` (``kind`` ``AggregateItemMissing`` /
  ``AggregateItemExists``); ``delete_if_exists``/``insert_if_missing`` tolerate it.
* ``count/sum(ctx, bounds=None, namespace=None)``: ``bounds`` is ``{"lower": {"key",
  "inclusive"}, "upper": {...}}`` (either side optional) or ``{"prefix": [...]}`` over tuple keys.
  ``at(ctx, offset)`` (negative: from the end), ``index_of(ctx, key)`` (how many items sort
  before ``key``), ``min/max(ctx)``: items ``{"key", "id", "sumValue"}`` or ``None``.
* Reads are queries on the component's tables, so a live query using them re-runs when the
  aggregate changes; each reads O(log n) documents (``_btree``: a B+ tree with a lazy root, so
  concurrent inserts do not all conflict on one document).
* ``writer(ctx, table)``: a ``ctx.db``-like object for ``table`` whose ``insert``/``patch``/
  ``replace``/``delete`` also keep this aggregate in step (npm's ``TableAggregate`` triggers).
* Backfills: ``insert_many(ctx, docs)`` in a mutation (one transaction, each node written once);
  ``build(runner, docs)`` bulk-loads empty namespaces bottom-up over several mutations
  (``runner``: an action's ``ctx`` or a ``Backend``) — a million items in seconds.
* Bounds with no key between them (lower above upper) count nothing: ``{count: 0, sum: 0}``.
* ``max_node_size`` (default 64, npm's is 16): a node's capacity. Here a document read or
  write costs far more than the values in it, so larger nodes win: fewer levels (fewer
  documents per call), and more children under the lazy root, so fewer concurrent inserts
  share a subtree (conflict). The price: a call may read up to ``max_node_size`` root children
  (one range read). Measured over a million items (``benchmarks/bench_components.py``): 16 →
  count ~95 µs, 32 → ~75 µs, 64 → ~80 µs, 128 → a root of ~100 children, too many to read
  per call; over 50,000 items, 1 of 8 overlapping inserts conflicted at 64 (at 32: 4 of 8).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from convex_lab.components import _bulk, define_component
from convex_lab.components._btree import Tree, bounds_of, decode, empty_root, encode
from convex_lab.errors import ConvexError, FunctionError
from convex_lab.schema import define_schema, define_table
from convex_lab.validators import v

DEFAULT_MAX_NODE_SIZE: Final = 64

component = define_component("aggregate", define_schema({
    "trees": define_table({"namespace": v.any(), "root": v.id("nodes"),
                           "maxNodeSize": v.float64()}).index("by_namespace", ["namespace"]),
    "nodes": define_table({"leaf": v.boolean(), "size": v.float64(), "data": v.string(),
                           "ids": v.string(), "nums": v.bytes(),
                           "count": v.optional(v.float64()), "sum": v.optional(v.float64()),
                           "parent": v.optional(v.id("nodes"))}).index("by_parent", ["parent"]),
}))
"""The component definition: mount it with ``app.use(component, name=...)``."""


# namespace (repr) -> (root ID, maxNodeSize) of the trees seen last: a call then reads the root
# by ID instead of looking the tree up in ``trees`` first. Sound because a root keeps its ID for
# its tree's lifetime and is deleted with it (``btree:clear``), and an ID from another backend
# or another mount reads as missing: a root that is not there sends the call to the lookup.
_ROOTS: dict[str, tuple[str, float]] = {}
_ROOTS_MAX: Final = 65_536


def _tree(ctx: Any, namespace: Any, *, writable: bool = False) -> Tree | None:
    key = repr(namespace)
    hit = _ROOTS.get(key)
    if hit is not None:
        root = ctx.db.get(hit[0])
        if root is not None and "nums" in root:
            return Tree(ctx.db, {"root": hit[0], "maxNodeSize": hit[1]}, writable=writable,
                        root=root)
    doc = ctx.db.query("trees").with_index(
        "by_namespace", lambda q: q.eq("namespace", namespace)).unique()
    if doc is None:
        return None
    if len(_ROOTS) >= _ROOTS_MAX:
        _ROOTS.clear()
    _ROOTS[key] = (doc["root"], float(doc["maxNodeSize"]))
    return Tree(ctx.db, doc, writable=writable)


def _tree_for_write(ctx: Any, namespace: Any, max_node_size: float) -> Tree:
    tree = _tree(ctx, namespace, writable=True)
    if tree is not None:
        return tree
    root = ctx.db.insert("nodes", empty_root())
    doc = {"namespace": namespace, "root": root, "maxNodeSize": max(4.0, max_node_size)}
    ctx.db.insert("trees", doc)
    return Tree(ctx.db, doc, writable=True)


_ITEM: Final = {"namespace": v.any(), "key": v.any(), "id": v.string()}
_NODE_DOC: Final = v.object({"leaf": v.boolean(), "size": v.float64(), "data": v.string(),
                             "ids": v.string(), "nums": v.bytes(),
                             "count": v.optional(v.float64()), "sum": v.optional(v.float64()),
                             "parent": v.optional(v.id("nodes"))})


@component.query(name="btree:aggregate", args={"namespace": v.any(), "bounds": v.any()})
def aggregate_between(ctx: Any, namespace: Any, bounds: Any) -> dict[str, float]:
    tree = _tree(ctx, namespace)
    if tree is None:
        return {"count": 0.0, "sum": 0.0}
    count, total = tree.aggregate(*bounds_of(bounds))
    return {"count": count, "sum": total}


@component.query(name="btree:at", args={"namespace": v.any(), "offset": v.float64()})
def at_offset(ctx: Any, namespace: Any, offset: float) -> Any:
    tree = _tree(ctx, namespace)
    return tree.at(int(offset)) if tree is not None else None


@component.query(name="btree:index_of", args={"namespace": v.any(), "key": v.any()})
def index_of_key(ctx: Any, namespace: Any, key: Any) -> float:
    tree = _tree(ctx, namespace)
    if tree is None:
        return 0.0
    return tree.aggregate(None, bounds_of({"upper": {"key": key, "inclusive": False}})[1])[0]


@component.mutation(name="btree:insert", args={**_ITEM, "sumValue": v.float64(),
                                               "maxNodeSize": v.float64(),
                                               "ifMissing": v.boolean()})
def insert_item(ctx: Any, *, namespace: Any, key: Any, id: str, sumValue: float,  # noqa: N803
                maxNodeSize: float, ifMissing: bool) -> bool:  # noqa: N803 (npm's names)
    tree = _tree_for_write(ctx, namespace, maxNodeSize)
    try:
        tree.insert(key, id, sumValue)
    except ConvexError as e:
        if ifMissing and isinstance(e.data, dict) and e.data.get("kind") == "AggregateItemExists":
            return False
        raise
    tree.flush()
    return True


@component.mutation(name="btree:delete", args={**_ITEM, "ifExists": v.boolean()})
def delete_item(ctx: Any, namespace: Any, key: Any, id: str,
                ifExists: bool) -> bool:  # noqa: N803 (npm's names)
    tree = _tree(ctx, namespace, writable=True)
    if tree is None:
        if ifExists:
            return False
        raise ConvexError({"kind": "AggregateItemMissing", "key": key, "id": id})
    try:
        tree.delete(key, id)
    except ConvexError as e:
        if ifExists and isinstance(e.data, dict) and e.data.get("kind") == "AggregateItemMissing":
            return False
        raise
    tree.flush()
    return True


@component.mutation(name="btree:clear", args={"namespace": v.any()})
def clear(ctx: Any, namespace: Any) -> None:
    """Delete a namespace's tree. One transaction: fine up to tens of thousands of items (a
    function's read and write limits), not for a million."""
    doc = ctx.db.query("trees").with_index(
        "by_namespace", lambda q: q.eq("namespace", namespace)).unique()
    if doc is None:
        return
    stack = [doc["root"]]
    while stack:
        node = ctx.db.get(stack.pop())
        if node is not None:
            if not node["leaf"]:
                stack.extend(decode(node)["children"])
            ctx.db.delete(node["_id"])
    ctx.db.delete(doc["_id"])


@component.mutation(name="btree:insert_batch", args={"items": v.array(v.any()),
                                                     "maxNodeSize": v.float64()})
def insert_batch(ctx: Any, items: list[Any], maxNodeSize: float) -> None:  # noqa: N803
    """Insert many items in one transaction (backfills): each ``{namespace, key, id,
    sumValue}``; each node is read and written once per batch. A function reads at most 4,096
    ranges (Convex's limit), so keep a batch to a few hundred items on a large tree."""
    trees: dict[Any, Tree] = {}
    for item in items:
        ns = item.get("namespace")
        marker = repr(ns)
        tree = trees.get(marker)
        if tree is None:
            tree = trees[marker] = _tree_for_write(ctx, ns, maxNodeSize)
        tree.insert(item["key"], item["id"], float(item.get("sumValue", 0.0)))
    for tree in trees.values():
        tree.flush()


def _empty_tree(ctx: Any, namespace: Any, max_node_size: float) -> Tree:
    tree = _tree_for_write(ctx, namespace, max_node_size)
    root = tree.node(tree.root_id)
    if not root["leaf"] or root["keys"]:
        raise ConvexError({"kind": "AggregateNotEmpty", "namespace": namespace,
                           "message": "Aggregate.build bulk-loads an empty namespace only: "
                           "clear it first (Aggregate.clear) or add items with insert_many."})
    return tree


@component.mutation(name="btree:build_start", args={"namespace": v.any(),
                                                    "maxNodeSize": v.float64()})
def build_start(ctx: Any, namespace: Any, maxNodeSize: float) -> str:  # noqa: N803
    """Step 1 of a bulk load (``_bulk``): the empty tree's root ID."""
    return _empty_tree(ctx, namespace, maxNodeSize).root_id


@component.mutation(name="btree:build_nodes", args={"nodes": v.array(_NODE_DOC)})
def build_nodes(ctx: Any, nodes: list[dict[str, Any]]) -> list[str]:
    """Step 2 of a bulk load: write node documents (not yet reachable); their IDs."""
    return [ctx.db.insert("nodes", node) for node in nodes]


@component.mutation(name="btree:build_finish", args={"namespace": v.any(), "root": v.any(),
                                                     "rootId": v.id("nodes")})
def build_finish(ctx: Any, namespace: Any, root: dict[str, Any],
                 rootId: str) -> None:  # noqa: N803
    """Step 3 of a bulk load: the root over the top level, if the tree is still the empty
    one of step 1."""
    tree = _tree(ctx, namespace)
    if tree is None or tree.root_id != rootId:
        raise ConvexError({"kind": "AggregateNotEmpty", "namespace": namespace,
                           "message": "The namespace was cleared during Aggregate.build: "
                           "run the build again."})
    _empty_tree(ctx, namespace, tree.max)
    ctx.db.replace(rootId, encode(root))


@component.mutation(name="btree:build_abort", args={"ids": v.array(v.id("nodes"))})
def build_abort(ctx: Any, ids: list[str]) -> None:
    """Undo step 2 of a failed bulk load."""
    for node_id in ids:
        if ctx.db.get(node_id) is not None:
            ctx.db.delete(node_id)


# ---------------------------------------------------------------------------------------------
# The client: what an app's functions call


class Aggregate:
    """An aggregate over documents, kept in a mounted ``aggregate`` component (module
    docstring)."""

    def __init__(self, component_ref: Any, *, sort_key: Callable[[Any], Any],
                 sum_value: Callable[[Any], float] | None = None,
                 namespace: Callable[[Any], Any] | None = None,
                 max_node_size: int = DEFAULT_MAX_NODE_SIZE) -> None:
        self.component = component_ref
        self.sort_key = sort_key
        self.sum_value = sum_value
        self.namespace = namespace
        self.max_node_size = float(max_node_size)

    def _item(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        if "_id" not in doc:
            raise ConvexError({"kind": "InvalidArgument", "message": "Aggregate items are "
                               "documents with an _id: pass the document read or inserted "
                               "(ctx.db.get(id)), not the fields alone."})
        return {"namespace": self.namespace(doc) if self.namespace is not None else None,
                "key": _plain(self.sort_key(doc)), "id": str(doc["_id"])}

    # writes ------------------------------------------------------------------------------
    def insert(self, ctx: Any, doc: Mapping[str, Any]) -> None:
        self._insert(ctx, doc, if_missing=False)

    def insert_if_missing(self, ctx: Any, doc: Mapping[str, Any]) -> bool:
        return self._insert(ctx, doc, if_missing=True)

    def _insert(self, ctx: Any, doc: Mapping[str, Any], *, if_missing: bool) -> bool:
        value = float(self.sum_value(doc)) if self.sum_value is not None else 0.0
        return bool(ctx.run_mutation(self.component.btree.insert, {
            **self._item(doc), "sumValue": value, "maxNodeSize": self.max_node_size,
            "ifMissing": if_missing}))

    def insert_many(self, ctx: Any, docs: Iterable[Mapping[str, Any]]) -> None:
        """Insert the items of many documents in one transaction (in a mutation): each node
        is read and written once for the batch. For hundreds of items into a live tree; to
        load a large, empty one use :meth:`build`."""
        items = []
        for doc in docs:
            value = float(self.sum_value(doc)) if self.sum_value is not None else 0.0
            items.append({**self._item(doc), "sumValue": value})
        if items:
            ctx.run_mutation(self.component.btree.insert_batch,
                             {"items": items, "maxNodeSize": self.max_node_size})

    def build(self, runner: Any, docs: Iterable[Mapping[str, Any]]) -> int:
        """Bulk-load the items of ``docs`` into empty namespaces, bottom-up, in several
        mutations (``_bulk``): a million items in seconds, where inserts take minutes.
        ``runner`` runs mutations: an action's ``ctx`` or a ``Backend``/client. A namespace that
        already holds items is an error (``AggregateNotEmpty``; nothing is written). Returns
        the number of node documents written. Meant for backfills: the tree becomes visible
        at once, when its root is written last."""
        run = getattr(runner, "run_mutation", None) or getattr(runner, "mutation", None)
        if run is None:
            raise ConvexError({"kind": "InvalidArgument", "message": "Aggregate.build needs "
                               "something that runs mutations: an action's ctx or a Backend."})
        by_ns: dict[str, tuple[Any, list[tuple[Any, str, float]]]] = {}
        for doc in docs:
            item = self._item(doc)
            value = float(self.sum_value(doc)) if self.sum_value is not None else 0.0
            ns = item["namespace"]
            by_ns.setdefault(repr(ns), (ns, []))[1].append((item["key"], item["id"], value))
        return sum(_bulk.build(run, self.component.btree, ns, items, int(self.max_node_size))
                   for ns, items in by_ns.values())

    def delete(self, ctx: Any, doc: Mapping[str, Any]) -> None:
        ctx.run_mutation(self.component.btree.delete, {**self._item(doc), "ifExists": False})

    def delete_if_exists(self, ctx: Any, doc: Mapping[str, Any]) -> bool:
        return bool(ctx.run_mutation(self.component.btree.delete,
                                     {**self._item(doc), "ifExists": True}))

    def replace(self, ctx: Any, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
        """The document changed from ``old`` to ``new``: move its item (key, namespace, sum)."""
        self.delete(ctx, old)
        self.insert(ctx, new)

    def clear(self, ctx: Any, namespace: Any = None) -> None:
        ctx.run_mutation(self.component.btree.clear, {"namespace": namespace})

    # reads -------------------------------------------------------------------------------
    def _aggregate(self, ctx: Any, bounds: Any, namespace: Any) -> dict[str, float]:
        if bounds is not None:
            bounds = _plain(bounds)
        got: dict[str, float] = ctx.run_query(self.component.btree.aggregate,
                                              {"namespace": namespace, "bounds": bounds})
        return got

    def count(self, ctx: Any, bounds: Any = None, namespace: Any = None) -> int:
        return int(self._aggregate(ctx, bounds, namespace)["count"])

    def sum(self, ctx: Any, bounds: Any = None, namespace: Any = None) -> float:
        return float(self._aggregate(ctx, bounds, namespace)["sum"])

    def at(self, ctx: Any, offset: int, namespace: Any = None) -> dict[str, Any] | None:
        given: object = offset  # callers pass anything: check what arrived
        if isinstance(given, bool) or not isinstance(given, (int, float)) or (
                isinstance(given, float) and not given.is_integer()):
            raise FunctionError(f"at() takes a whole-number offset (negative: from the end); "
                                f"got {offset!r}.")
        got: dict[str, Any] | None = ctx.run_query(
            self.component.btree.at, {"namespace": namespace, "offset": float(offset)})
        return got

    def index_of(self, ctx: Any, key: Any, namespace: Any = None) -> int:
        return int(ctx.run_query(self.component.btree.index_of,
                                 {"namespace": namespace, "key": _plain(key)}))

    def min(self, ctx: Any, namespace: Any = None) -> dict[str, Any] | None:
        return self.at(ctx, 0, namespace)

    def max(self, ctx: Any, namespace: Any = None) -> dict[str, Any] | None:
        return self.at(ctx, -1, namespace)

    def writer(self, ctx: Any, table: str) -> TrackedTable:
        """``ctx.db`` for ``table`` that keeps this aggregate in step with each write."""
        return TrackedTable(self, ctx, table)

    def __repr__(self) -> str:
        return f"<Aggregate in {self.component!r}>"


class TrackedTable:
    """Writes to one table that update an :class:`Aggregate` in the same transaction."""

    def __init__(self, aggregate: Aggregate, ctx: Any, table: str) -> None:
        self.aggregate = aggregate
        self.ctx = ctx
        self.table = table

    def insert(self, fields: Mapping[str, Any]) -> Any:
        doc_id = self.ctx.db.insert(self.table, fields)
        self.aggregate.insert(self.ctx, self.ctx.db.get(doc_id))
        return doc_id

    def patch(self, doc_id: Any, fields: Mapping[str, Any]) -> None:
        old = self._get(doc_id)
        self.ctx.db.patch(doc_id, fields)
        self.aggregate.replace(self.ctx, old, self.ctx.db.get(doc_id))

    def replace(self, doc_id: Any, fields: Mapping[str, Any]) -> None:
        old = self._get(doc_id)
        self.ctx.db.replace(doc_id, fields)
        self.aggregate.replace(self.ctx, old, self.ctx.db.get(doc_id))

    def delete(self, doc_id: Any) -> None:
        old = self._get(doc_id)
        self.ctx.db.delete(doc_id)
        self.aggregate.delete(self.ctx, old)

    def _get(self, doc_id: Any) -> dict[str, Any]:
        doc: dict[str, Any] | None = self.ctx.db.get(self.table, doc_id)
        if doc is None:
            raise ConvexError({"kind": "NonexistentDocument", "id": str(doc_id)})
        return doc


def _plain(value: Any) -> Any:
    """Tuples (tuple keys, prefixes) as lists: what a Convex array is."""
    if isinstance(value, tuple):
        return [_plain(x) for x in value]
    if isinstance(value, list):
        return [_plain(x) for x in value]
    if isinstance(value, dict):
        return {k: _plain(x) for k, x in value.items()}
    return value


__all__ = ["DEFAULT_MAX_NODE_SIZE", "Aggregate", "TrackedTable", "component"]

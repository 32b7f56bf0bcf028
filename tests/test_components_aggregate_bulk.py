"""The aggregate's bulk paths and read shortcuts (issue 13, "Performance"): ``Aggregate.build``
(a bottom-up bulk load) gives the same answers as inserting one by one and keeps working under
later writes; ``insert_many``; the root's children carry ``parent`` (one range read finds them)
through splits and collapses; the cached root is dropped when its tree is cleared."""

from __future__ import annotations

import random
from typing import Any

import pytest

import convex_lab as cl
from convex_lab.components._btree import decode
from convex_lab.components.aggregate import Aggregate
from convex_lab.errors import ConvexError
from convex_lab.values import Int64
from tests.test_components_aggregate import Model, _check, setup_app


def _docs(n: int, rng: random.Random, game: Any = None) -> list[dict[str, Any]]:
    return [{"_id": f"doc{i:05d}", "key": float(rng.randint(0, 60)),
             "value": float(rng.randint(1, 9)), **({"game": game} if game else {})}
            for i in range(n)]


def _parents_consistent(backend: cl.Backend) -> None:
    """Exactly the root's children carry ``parent`` = the root."""
    if "board/nodes" not in backend.store.tables:  # nothing was ever inserted
        return
    nodes = backend.store.tables["board/nodes"].docs
    for tree in backend.store.tables["board/trees"].docs.values():
        root = nodes[tree["root"]]
        children = set() if root["leaf"] else set(decode(root)["children"])
        marked = {i for i, d in nodes.items() if d.get("parent") == tree["root"]}
        assert marked == children


def _app_with_fill(node_size: int) -> tuple[cl.App, Aggregate, dict[str, Any], Any, Any]:
    app, board, fns = setup_app(max_node_size=node_size)

    @app.mutation(name="fill")
    def fill(ctx: Any, docs: list[Any]) -> None:
        for doc in docs:
            board.insert(ctx, doc)

    @app.query(name="everything")
    def everything(ctx: Any) -> Any:
        return [board.at(ctx, i) for i in range(-1, board.count(ctx) + 1)]

    return app, board, fns, fill, everything


@pytest.mark.parametrize(("n", "node_size"), [(0, 4), (3, 4), (4, 4), (5, 4), (700, 4),
                                              (3000, 8)])
def test_a_bulk_build_answers_like_one_by_one_inserts(n: int, node_size: int) -> None:
    rng = random.Random(n)
    docs = _docs(n, rng)
    answers = []
    for bulk in (True, False):
        app, board, fns, fill, everything = _app_with_fill(node_size)
        with cl.Backend(app=app) as backend:
            if bulk:
                board.build(backend, docs)
            else:
                for start in range(0, n, 500):
                    backend.mutation(fill, {"docs": docs[start:start + 500]})
            got = [backend.query(everything), backend.query(fns["stats"])]
            for lo, hi in [(0.0, 60.0), (10.0, 11.0), (30.0, 5.0), (59.0, 70.0)]:
                got.append(backend.query(fns["stats"], {"bounds": {
                    "lower": {"key": lo, "inclusive": False},
                    "upper": {"key": hi, "inclusive": True}}}))
                got.append(backend.query(fns["index_of"], {"key": lo}))
            _parents_consistent(backend)
            answers.append(got)
    assert answers[0] == answers[1]
    assert answers[0][1]["count"] == n
    assert answers[0][6] == {"count": 0, "sum": 0.0}  # bounds 30 < key <= 5: nothing


def test_a_bulk_built_tree_takes_later_writes_like_any_tree() -> None:
    rng = random.Random(7)
    app, board, fns = setup_app(max_node_size=4)
    with cl.Backend(app=app) as backend:
        docs = _docs(300, rng)
        board.build(backend, docs)
        model = Model()
        for d in docs:
            model.items[d["_id"]] = (d["key"], d["value"])
        _check(backend, fns, model, rng)

        @app.mutation(name="drop")
        def drop(ctx: Any, doc: Any) -> None:
            board.delete(ctx, doc)

        for d in rng.sample(docs, 250):  # deletes shrink it, inserts split it again
            backend.mutation(drop, {"doc": d})
            del model.items[d["_id"]]
        _check(backend, fns, model, rng)
        _parents_consistent(backend)
        for _ in range(200):
            key, value = float(rng.randint(0, 60)), float(rng.randint(1, 9))
            model.items[str(backend.mutation(fns["add"], {"key": key, "value": value}))] = (
                key, value)
        _check(backend, fns, model, rng)
        _parents_consistent(backend)


def test_bulk_builds_per_namespace_and_refuses_a_non_empty_one() -> None:
    rng = random.Random(3)
    app, board, fns = setup_app(max_node_size=4)
    with cl.Backend(app=app) as backend:
        nodes = board.build(backend, _docs(40, rng, "chess") + [
            {**d, "_id": "go" + d["_id"]} for d in _docs(9, rng, "go")])
        assert nodes > 10
        assert backend.query(fns["stats"], {"game": "chess"})["count"] == 40
        assert backend.query(fns["stats"], {"game": "go"})["count"] == 9
        before = len(backend.store.tables["board/nodes"].docs)
        with pytest.raises(ConvexError) as info:
            board.build(backend, [{"_id": "late", "key": 1.0, "value": 1.0, "game": "go"}])
        assert info.value.data["kind"] == "AggregateNotEmpty"
        assert "clear it first" in info.value.data["message"]
        assert len(backend.store.tables["board/nodes"].docs) == before  # nothing written
        assert backend.query(fns["stats"], {"game": "go"})["count"] == 9
        with pytest.raises(ConvexError) as info:  # the same item twice: refused up front
            board.build(backend, [{"_id": "x", "key": 1.0, "value": 1.0, "game": "poker"}] * 2)
        assert info.value.data["kind"] == "AggregateItemExists"
        with pytest.raises(ConvexError, match="runs mutations"):
            board.build(object(), [])


def test_insert_many_matches_inserts_and_rolls_back_with_its_mutation() -> None:
    rng = random.Random(5)
    app, board, fns = setup_app(max_node_size=4)
    docs = _docs(120, rng)

    @app.mutation(name="many")
    def many(ctx: Any, docs: list[Any], fail: bool = False) -> None:
        board.insert_many(ctx, docs)
        if fail:
            raise ValueError("rolled back")

    with cl.Backend(app=app) as backend:
        with pytest.raises(ValueError, match="rolled back"):
            backend.mutation(many, {"docs": docs, "fail": True})
        assert backend.query(fns["stats"]) == {"count": 0, "sum": 0.0}
        backend.mutation(many, {"docs": docs})
        model = Model()
        for d in docs:
            model.items[d["_id"]] = (d["key"], d["value"])
        _check(backend, fns, model, rng)
        _parents_consistent(backend)


def test_a_cleared_tree_is_looked_up_again() -> None:
    app, board, fns = setup_app(max_node_size=4)

    @app.mutation(name="wipe")
    def wipe(ctx: Any) -> None:
        board.clear(ctx)

    for _ in range(2):  # a second backend of the same app: its own (empty) tree
        with cl.Backend(app=app) as backend:
            assert backend.query(fns["stats"]) == {"count": 0, "sum": 0.0}
            for key in (1.0, 2.0, 3.0, 4.0, 5.0, 6.0):
                backend.mutation(fns["add"], {"key": key, "value": key})
            assert backend.query(fns["stats"]) == {"count": 6, "sum": 21.0}
            backend.mutation(wipe)
            assert backend.query(fns["stats"]) == {"count": 0, "sum": 0.0}
            backend.mutation(fns["add"], {"key": 9.0, "value": 9.0})
            assert backend.query(fns["stats"]) == {"count": 1, "sum": 9.0}
            assert backend.query(fns["at"], {"offset": 0.0})["key"] == 9.0


def test_reading_a_lazy_root_reads_its_children_in_one_range() -> None:
    app, board, _ = setup_app(max_node_size=16)
    ranges: list[int] = []

    @app.query(name="probe")
    def probe(ctx: Any) -> int:
        tx = ctx.db._tx
        before = len(tx.reads)
        total = board.count(ctx)
        ranges.append(len(tx.reads) - before)
        return total

    with cl.Backend(app=app) as backend:
        board.build(backend, [{"_id": f"d{i:05d}", "key": float(i), "value": 1.0}
                              for i in range(5000)])
        assert backend.query(probe) == 5000
    # the root by ID, its ~10 children in one range, nothing else (not one read per child)
    assert ranges[0] <= 3



@pytest.mark.parametrize("node", [
    {"leaf": True, "keys": [1.5, -0.0, float("inf")], "ids": ["a", "b\x1fc", ""],
     "sums": [1.0, 2.5, -3.0]},
    {"leaf": True, "keys": [["a", 1.0], Int64(7), "x", None, b"\x00"],
     "ids": ["i1", "i2", "i3", "i4", "i5"], "sums": [0.0] * 5},
    {"leaf": True, "keys": [], "ids": [], "sums": []},
    {"leaf": False, "children": ["c1", "c2", "c3"], "seps": [2.0, 5.0], "sepIds": ["s1", "s2"],
     "counts": [3.0, 4.0, 1.0], "sums": [1.0, 2.0, 3.5]},
    {"leaf": False, "children": ["c1", "c2"], "seps": [[1.0, "z"]], "sepIds": ["s\x1f"],
     "counts": None, "sums": None},  # a lazy root
])
def test_a_node_survives_its_document_encoding(node: dict[str, Any]) -> None:
    from convex_lab.components._nodes import decode as decode_node
    from convex_lab.components._nodes import encode

    doc = {**encode(node), "_id": "n1"}
    for copy in (False, True, False):  # first decode, a writer's copy, a cached decode
        got = decode_node(doc, copy=copy)
        assert {k: got[k] for k in node} == node
        assert [type(k) for k in got["keys" if node["leaf"] else "seps"]] == [
            type(k) for k in node["keys" if node["leaf"] else "seps"]]
    if not node["leaf"] and node["counts"] is None:
        assert "count" not in doc  # a lazy root has no totals of its own


def test_an_action_can_run_a_bulk_build() -> None:
    app, board, fns = setup_app(max_node_size=4)

    @app.action(name="backfill")
    def backfill(ctx: Any, n: float) -> int:
        return board.build(ctx, [{"_id": f"a{i:03d}", "key": float(i), "value": 2.0}
                                 for i in range(int(n))])

    with cl.Backend(app=app) as backend:
        assert backend.action(backfill, {"n": 50.0}) > 10  # nodes written
        assert backend.query(fns["stats"]) == {"count": 50, "sum": 100.0}
        assert backend.query(fns["at"], {"offset": 49.0})["key"] == 49.0

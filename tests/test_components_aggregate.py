"""The aggregate component (DESIGN §8; issue 13 item 2): counts, sums, offsets and ranks over a
B+ tree stored as documents, compared with a brute-force model under random inserts and deletes;
bounds, tuple-key prefixes, namespaces, transactions, reactivity and O(log n) reads."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from typing import Any

import pytest

import convex_lab as cl
from convex_lab.components.aggregate import Aggregate
from convex_lab.components.aggregate import component as aggregate
from convex_lab.errors import ConvexError, ConvexLabError
from convex_lab.values import sort_key


def setup_app(max_node_size: int = 4) -> tuple[cl.App, Aggregate, dict[str, Any]]:
    app = cl.App()
    app.use(aggregate, name="board")
    board = Aggregate(app.components.board, sort_key=lambda d: d["key"],
                      sum_value=lambda d: d["value"],
                      namespace=lambda d: d.get("game"), max_node_size=max_node_size)

    @app.mutation(name="add")
    def add(ctx: Any, key: Any, value: float, game: Any = None, fail: bool = False) -> Any:
        fields = {"key": key, "value": value, **({"game": game} if game is not None else {})}
        doc_id = board.writer(ctx, "items").insert(fields)
        if fail:
            raise ValueError("rolled back after the aggregate insert")
        return doc_id

    @app.mutation(name="remove")
    def remove(ctx: Any, id: str) -> None:
        board.writer(ctx, "items").delete(id)

    @app.mutation(name="move")
    def move(ctx: Any, id: str, key: Any) -> None:
        board.writer(ctx, "items").patch(id, {"key": key})

    @app.query(name="stats")
    def stats(ctx: Any, bounds: Any = None, game: Any = None) -> Any:
        return {"count": board.count(ctx, bounds, namespace=game),
                "sum": board.sum(ctx, bounds, namespace=game)}

    @app.query(name="at")
    def at(ctx: Any, offset: float, game: Any = None) -> Any:
        return board.at(ctx, int(offset), namespace=game)

    @app.query(name="index_of")
    def index_of(ctx: Any, key: Any, game: Any = None) -> int:
        return board.index_of(ctx, key, namespace=game)

    @app.query(name="ends")
    def ends(ctx: Any, game: Any = None) -> Any:
        return [board.min(ctx, namespace=game), board.max(ctx, namespace=game)]

    return app, board, {"add": add, "remove": remove, "move": move, "stats": stats, "at": at,
                        "index_of": index_of, "ends": ends}


@pytest.fixture
def env() -> Iterator[tuple[cl.Backend, dict[str, Any]]]:
    app, _, fns = setup_app()
    with cl.Backend(app=app) as backend:
        yield backend, fns


class Model:
    """The brute-force model: the live items, sorted on demand."""

    def __init__(self) -> None:
        self.items: dict[str, tuple[Any, float]] = {}

    def sorted(self) -> list[tuple[Any, str, float]]:
        return sorted(((k, i, s) for i, (k, s) in self.items.items()),
                      key=lambda t: (sort_key(t[0]), t[1]))

    def between(self, lo: Any, lo_inc: bool, hi: Any, hi_inc: bool) -> list[float]:
        out = []
        for k, _, s in self.sorted():
            sk = sort_key(k)
            if lo is not None and (sk < sort_key(lo) or (sk == sort_key(lo) and not lo_inc)):
                continue
            if hi is not None and (sk > sort_key(hi) or (sk == sort_key(hi) and not hi_inc)):
                continue
            out.append(s)
        return out


def _check(backend: cl.Backend, fns: dict[str, Any], model: Model, rng: random.Random) -> None:
    items = model.sorted()
    assert backend.query(fns["stats"]) == {"count": len(items),
                                           "sum": pytest.approx(sum(s for *_, s in items))}
    lo, hi = sorted(float(rng.randint(0, 60)) for _ in range(2))
    lo_inc, hi_inc = rng.random() < 0.5, rng.random() < 0.5
    bounds = {"lower": {"key": lo, "inclusive": lo_inc}, "upper": {"key": hi, "inclusive": hi_inc}}
    expected = model.between(lo, lo_inc, hi, hi_inc)
    assert backend.query(fns["stats"], {"bounds": bounds}) == {
        "count": len(expected), "sum": pytest.approx(sum(expected))}
    only_upper = {"upper": {"key": hi, "inclusive": hi_inc}}
    assert backend.query(fns["stats"], {"bounds": only_upper})["count"] == len(
        model.between(None, True, hi, hi_inc))
    for offset in {0, len(items) // 2, len(items) - 1, -1, len(items), -len(items) - 1}:
        got = backend.query(fns["at"], {"offset": float(offset)})
        if -len(items) <= offset < len(items):
            k, i, s = items[offset]
            assert got == {"key": k, "id": i, "sumValue": s}
        else:
            assert got is None
    key = float(rng.randint(0, 60))
    assert backend.query(fns["index_of"], {"key": key}) == sum(
        1 for k, *_ in items if sort_key(k) < sort_key(key))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_inserts_and_deletes_match_a_brute_force_model(
        env: tuple[cl.Backend, dict[str, Any]], seed: int) -> None:
    backend, fns = env
    rng = random.Random(seed)
    model = Model()
    for step in range(400):
        roll = rng.random()
        if model.items and roll < 0.3:
            doc_id = rng.choice(sorted(model.items))
            backend.mutation(fns["remove"], {"id": doc_id})
            del model.items[doc_id]
        elif model.items and roll < 0.4:
            doc_id = rng.choice(sorted(model.items))
            key = float(rng.randint(0, 60))
            backend.mutation(fns["move"], {"id": doc_id, "key": key})
            model.items[doc_id] = (key, model.items[doc_id][1])
        else:
            key, value = float(rng.randint(0, 60)), float(rng.randint(1, 9))
            model.items[str(backend.mutation(fns["add"], {"key": key, "value": value}))] = (
                key, value)
        if step % 25 == 0:
            _check(backend, fns, model, rng)
    _check(backend, fns, model, rng)
    for doc_id in sorted(model.items):  # down to nothing: the tree shrinks back to a leaf
        backend.mutation(fns["remove"], {"id": doc_id})
    model.items.clear()
    _check(backend, fns, model, rng)
    assert len(backend.store.tables["board/nodes"].docs) == 1  # only the (empty) root


def test_tuple_keys_and_prefix_bounds(env: tuple[cl.Backend, dict[str, Any]]) -> None:
    backend, fns = env
    rows = [("a", 1.0), ("a", 5.0), ("b", 2.0), ("ab", 3.0), ("b", 9.0), ("c", 1.0)]
    for name, score in rows:
        backend.mutation(fns["add"], {"key": [name, score], "value": score})
    assert backend.query(fns["stats"], {"bounds": {"prefix": ["a"]}}) == {"count": 2,
                                                                         "sum": 6.0}
    assert backend.query(fns["stats"], {"bounds": {"prefix": ["b"]}})["sum"] == 11.0
    assert backend.query(fns["stats"], {"bounds": {"prefix": ["b", 9.0]}})["count"] == 1
    assert backend.query(fns["stats"], {"bounds": {"prefix": []}})["count"] == len(rows)
    first, last = backend.query(fns["ends"])
    assert first["key"] == ["a", 1.0] and last["key"] == ["c", 1.0]
    assert backend.query(fns["index_of"], {"key": ["b"]}) == 3  # a, a, ab sort before


def test_namespaces_are_independent(env: tuple[cl.Backend, dict[str, Any]]) -> None:
    backend, fns = env
    for game, key in [("chess", 3.0), ("chess", 1.0), ("go", 7.0)]:
        backend.mutation(fns["add"], {"key": key, "value": key, "game": game})
    assert backend.query(fns["stats"], {"game": "chess"}) == {"count": 2, "sum": 4.0}
    assert backend.query(fns["stats"], {"game": "go"}) == {"count": 1, "sum": 7.0}
    assert backend.query(fns["stats"], {"game": "poker"}) == {"count": 0, "sum": 0.0}
    assert backend.query(fns["stats"]) == {"count": 0, "sum": 0.0}  # the None namespace
    assert backend.query(fns["ends"], {"game": "chess"})[1]["key"] == 3.0


def test_an_aggregate_write_rolls_back_with_its_mutation(
        env: tuple[cl.Backend, dict[str, Any]]) -> None:
    backend, fns = env
    backend.mutation(fns["add"], {"key": 1.0, "value": 1.0})
    with pytest.raises(ValueError, match="rolled back"):
        backend.mutation(fns["add"], {"key": 2.0, "value": 5.0, "fail": True})
    assert backend.query(fns["stats"]) == {"count": 1, "sum": 1.0}


def test_missing_and_duplicate_items_are_errors() -> None:
    app, board, _ = setup_app()

    @app.mutation(name="twice")
    def twice(ctx: Any) -> bool:
        doc = ctx.db.get(ctx.db.insert("items", {"key": 1.0, "value": 1.0}))
        board.insert(ctx, doc)
        assert board.insert_if_missing(ctx, doc) is False
        board.insert(ctx, doc)
        return True

    @app.mutation(name="ghost")
    def ghost(ctx: Any) -> bool:
        doc = ctx.db.get(ctx.db.insert("items", {"key": 1.0, "value": 1.0}))
        assert board.delete_if_exists(ctx, doc) is False
        board.delete(ctx, doc)
        return True

    with cl.Backend(app=app) as backend:
        with pytest.raises(ConvexError) as info:
            backend.mutation(twice)
        assert info.value.data["kind"] == "AggregateItemExists"
        with pytest.raises(ConvexError) as info:
            backend.mutation(ghost)
        assert info.value.data["kind"] == "AggregateItemMissing"


@pytest.mark.parametrize("offset", [math.nan, 1.5, "1", None, True])
def test_at_refuses_an_offset_that_is_not_a_whole_number(offset: Any) -> None:
    app, board, _ = setup_app()

    @app.query(name="at")
    def at(ctx: Any, offset: Any) -> Any:
        return board.at(ctx, offset)

    with cl.Backend(app=app) as backend, pytest.raises(ConvexLabError,
                                                       match="whole-number offset"):
        backend.query(at, {"offset": offset})


def test_a_live_query_follows_the_aggregate(env: tuple[cl.Backend, dict[str, Any]]) -> None:
    backend, fns = env
    live = backend.client().subscribe(fns["stats"], {})
    assert live.value == {"count": 0, "sum": 0.0}
    for i in range(10):  # past a root split: the live query still follows
        backend.mutation(fns["add"], {"key": float(i), "value": 2.0})
    assert live.value == {"count": 10, "sum": 20.0}


def test_reads_touch_a_logarithmic_number_of_documents() -> None:
    app, board, _ = setup_app(max_node_size=8)

    @app.mutation(name="fill")
    def fill(ctx: Any, n: float) -> None:
        for i in range(int(n)):
            board.insert(ctx, {"_id": f"item{i:05d}", "key": float(i), "value": 1.0})

    reads: list[int] = []

    @app.query(name="probe")
    def probe(ctx: Any) -> Any:
        tx = ctx.db._tx
        before = tx.docs_read
        at = board.at(ctx, 1234)
        count = board.count(ctx, {"lower": {"key": 100.0, "inclusive": True},
                                  "upper": {"key": 2900.0, "inclusive": False}})
        reads.append(tx.docs_read - before)
        return [at, count]

    with cl.Backend(app=app) as backend:
        backend.mutation(fill, {"n": 3000.0})
        at, count = backend.query(probe)
        assert at["key"] == 1234.0 and count == 2800
        nodes = len(backend.store.tables["board/nodes"].docs)
    assert nodes > 300  # a deep tree ...
    assert reads[0] < 40  # ... of which two calls read a handful of nodes (and the tree docs)


def test_concurrent_inserts_from_threads_stay_exact() -> None:
    import threading

    app, _, fns = setup_app(max_node_size=4)
    with cl.Backend(app=app) as backend:
        keys: list[list[float]] = [[float(t * 1000 + i) for i in range(40)] for t in range(4)]

        def work(mine: list[float]) -> None:
            for key in mine:
                backend.mutation(fns["add"], {"key": key, "value": 1.0})

        threads = [threading.Thread(target=work, args=(k,)) for k in keys]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert backend.query(fns["stats"]) == {"count": 160, "sum": 160.0}
        every = sorted(k for mine in keys for k in mine)
        assert [backend.query(fns["at"], {"offset": float(i)})["key"] for i in (0, 57, 159)] == [
            every[0], every[57], every[159]]
        assert backend.query(fns["index_of"], {"key": 2000.0}) == 80

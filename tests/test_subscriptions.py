"""Live queries (DESIGN §4, §8; docs/live-queries.md): precise invalidation, one snapshot,
read-your-writes, shared executions, errors and recovery, redefinition, pagination, delivery."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

import convex_lab as cl
from convex_lab import ConvexError, define_schema, define_table, v


@pytest.fixture
def chat() -> Any:
    app = cl.App()
    app.schema = define_schema({
        "messages": define_table({"channel": v.string(), "body": v.string()})
        .index("by_channel", ["channel"]),
        "counters": define_table({"name": v.string(), "n": v.float64()}),
    })
    runs: list[str] = []

    @app.query(args={"channel": v.string()})
    def by_channel(ctx: Any, channel: str) -> list[str]:
        runs.append(channel)
        return [m["body"] for m in ctx.db.query("messages")
                .with_index("by_channel", lambda q: q.eq("channel", channel)).collect()]

    @app.query(args={"channel": v.string()})
    def first_of(ctx: Any, channel: str) -> Any:
        doc = ctx.db.query("messages").with_index(
            "by_channel", lambda q: q.eq("channel", channel)).first()
        return None if doc is None else doc["body"]

    @app.mutation(args={"channel": v.string(), "body": v.string()})
    def send(ctx: Any, channel: str, body: str) -> Any:
        return ctx.db.insert("messages", {"channel": channel, "body": body})

    @app.mutation(args={"id": v.id("messages")})
    def remove(ctx: Any, id: str) -> None:
        ctx.db.delete(id)

    @app.query(args={"paginationOpts": cl.pagination_opts_validator})
    def page(ctx: Any, paginationOpts: dict[str, Any]) -> Any:  # noqa: N803 (Convex's name)
        return ctx.db.query("messages").paginate(paginationOpts)

    @app.query
    def strict(ctx: Any) -> Any:
        docs = ctx.db.query("messages").collect()
        if any(d["body"] == "bad" for d in docs):
            raise ConvexError({"reason": "bad message"})
        return len(docs)

    backend = cl.Backend(app=app)
    yield app, backend, runs, locals()
    backend.close()


def test_live_query_follows_its_data_and_nothing_else(chat: Any) -> None:
    _, backend, runs, fns = chat
    client = backend.client()
    a = client.subscribe(fns["by_channel"], {"channel": "a"})
    b = client.subscribe(fns["by_channel"], {"channel": "b"})
    client.mutation(fns["send"], {"channel": "a", "body": "first"})  # creates the table
    runs.clear()
    client.mutation(fns["send"], {"channel": "a", "body": "hi"})
    assert a.value == ["first", "hi"] and b.value == []
    assert runs == ["a"]  # channel b read a disjoint range: not re-run
    client.mutation(fns["send"], {"channel": "c", "body": "elsewhere"})
    assert runs == ["a"]  # nobody read channel c


def test_identical_subscriptions_share_one_execution(chat: Any) -> None:
    _, backend, runs, fns = chat
    client = backend.client()
    lives = [client.subscribe(fns["by_channel"], {"channel": "x"}) for _ in range(5)]
    assert runs == ["x"]
    client.mutation(fns["send"], {"channel": "x", "body": "one"})
    assert runs == ["x", "x"]
    assert all(live.value == ["one"] for live in lives)


def test_first_only_reads_what_it_consumed(chat: Any) -> None:
    _, backend, _, fns = chat
    client = backend.client()
    client.mutation(fns["send"], {"channel": "a", "body": "early"})
    first = client.subscribe(fns["first_of"], {"channel": "a"})
    seen: list[Any] = []
    first.on_update(lambda live: seen.append(live.value))
    client.mutation(fns["send"], {"channel": "a", "body": "later"})  # after the first row
    assert first.value == "early" and seen == []


def test_on_change_semantics(chat: Any) -> None:
    _, backend, _, fns = chat
    client = backend.client()
    live = client.subscribe(fns["strict"])
    got: list[Any] = []
    unsubscribe = live.on_change(got.append)
    assert got == []  # not on registration
    client.mutation(fns["send"], {"channel": "a", "body": "x"})
    assert got == [1.0]
    doc_id = client.mutation(fns["send"], {"channel": "a", "body": "bad"})
    assert live.status == "error" and live.value == 1.0  # keeps the last good value
    assert isinstance(live.error, ConvexError) and live.error.data == {"reason": "bad message"}
    client.mutation(fns["remove"], {"id": doc_id})
    assert live.status == "ready" and live.error is None  # recovers when the data changes
    assert got == [1.0]  # equal value again: no on_change
    unsubscribe()
    client.mutation(fns["send"], {"channel": "b", "body": "y"})
    assert got == [1.0] and live.value == 2.0
    live.close()
    client.mutation(fns["send"], {"channel": "b", "body": "z"})
    assert live.value == 2.0 and live.status == "closed"


def test_all_live_queries_of_a_client_share_one_snapshot(chat: Any) -> None:
    _, backend, _, fns = chat
    client = backend.client()
    a = client.subscribe(fns["by_channel"], {"channel": "a"})
    total = client.subscribe(fns["strict"])
    pairs: list[tuple[int, Any]] = []
    # At every update both values must describe the same database state.
    a.on_update(lambda live: pairs.append((len(live.value), total.value)))
    for i in range(5):
        client.mutation(fns["send"], {"channel": "a", "body": f"m{i}"})
    assert all(n == t for n, t in pairs) and pairs[-1] == (5, 5.0)


def test_redefining_a_function_reruns_its_live_queries(chat: Any) -> None:
    app, backend, _, fns = chat
    live = backend.client().subscribe(fns["strict"])
    assert live.value == 0.0

    @app.query(name=fns["strict"].path)
    def strict(ctx: Any) -> Any:
        return "new code"

    assert live.value == "new code"


def test_paginated_pages_keep_their_boundaries(chat: Any) -> None:
    _, backend, _, fns = chat
    client = backend.client()
    ids = [client.mutation(fns["send"], {"channel": "a", "body": f"m{i}"}) for i in range(5)]
    pq = client.subscribe_paginated(fns["page"], initial_num_items=2)
    assert [d["body"] for d in pq.results] == ["m0", "m1"] and pq.status == "CanLoadMore"
    assert pq.load_more(2)
    assert pq.pages == [[*pq.pages[0]], [*pq.pages[1]]] and len(pq.pages) == 2
    client.mutation(fns["remove"], {"id": ids[1]})  # page 1 shrinks, page 2 does not shift
    assert [[d["body"] for d in p] for p in pq.pages] == [["m0"], ["m2", "m3"]]
    assert pq.load_more(10)
    assert [d["body"] for d in pq.results] == ["m0", "m2", "m3", "m4"]
    assert pq.status == "Exhausted"
    client.mutation(fns["send"], {"channel": "a", "body": "m5"})  # the last page grows
    assert [d["body"] for d in pq.pages[-1]] == ["m4", "m5"]
    pq.close()
    assert pq.status == "closed"


def test_updates_are_coalesced_under_a_running_loop(chat: Any) -> None:
    """Inside a kernel (a running asyncio loop in the main thread) commits made while a cell
    runs are delivered together when it yields, on the main thread."""
    app, _, runs, fns = chat

    async def cell() -> tuple[list[Any], list[Any], bool]:
        backend = cl.Backend(app=app)  # made while the loop runs: the kernel case
        live = backend.subscribe(fns["by_channel"], {"channel": "k"})
        seen: list[Any] = []
        threads: list[bool] = []

        def note(lq: Any) -> None:
            seen.append(list(lq.value))
            threads.append(threading.current_thread() is threading.main_thread())

        live.on_update(note)
        runs.clear()
        for i in range(10):  # an admin mutation per iteration, as notebook code would do
            backend.mutation(fns["send"], {"channel": "k", "body": str(i)})
        before = list(seen)
        await asyncio.sleep(0.01)
        backend.close()
        return before, seen, all(threads)

    before, seen, main_thread = asyncio.run(cell())
    assert before == []  # nothing delivered while the "cell" ran
    assert len(seen) == 1 and len(seen[0]) == 10  # one coalesced update, with everything
    assert runs.count("k") == 1 and main_thread  # one re-run for ten commits, on the main thread


def test_watch_uses_the_default_backend_and_keyword_args() -> None:
    app = cl.default_app()

    @app.query(name="test_watch_echo")
    def echo(ctx: Any, word: str) -> str:
        return word * 2

    live = cl.watch(echo, word="ab")
    assert live.value == "abab" and live.path == "test_watch_echo"
    live.close()
    with pytest.raises(TypeError):
        cl.watch(echo, {"word": "a"}, word="b")
    app.remove("test_watch_echo")


def test_flush_all_delivers_pending_updates_without_waiting_for_the_loop(chat: Any) -> None:
    """What the IPython extension does after each cell: saved widget state is then current."""
    from convex_lab.subscriptions import flush_all

    app, _, _, fns = chat

    async def cell() -> tuple[list[Any], list[Any]]:
        backend = cl.Backend(app=app)
        live = backend.subscribe(fns["by_channel"], {"channel": "f"})
        backend.mutation(fns["send"], {"channel": "f", "body": "now"})
        before = list(live.value)
        flush_all()  # post_run_cell
        after = list(live.value)
        backend.close()
        return before, after

    before, after = asyncio.run(cell())
    assert before == [] and after == ["now"]



# The query journal (issue 9 items 9-10, reference §4.5) -----------------------------------------


@pytest.fixture
def numbers() -> Any:
    app = cl.App(schema=define_schema({
        "numbers": define_table({"n": v.float64()}).index("by_n", ["n"]),
    }))

    @app.query(args={"paginationOpts": cl.pagination_opts_validator})
    def by_n(ctx: Any, paginationOpts: dict[str, Any]) -> Any:  # noqa: N803 (Convex's name)
        return ctx.db.query("numbers").with_index("by_n").paginate(paginationOpts)

    # What a newcomer writes from the docs' prose: exactly the two documented fields.
    strict_opts = v.object({"numItems": v.number(), "cursor": v.union(v.string(), v.null())})

    @app.query(args={"paginationOpts": strict_opts})
    def strict_by_n(ctx: Any, paginationOpts: dict[str, Any]) -> Any:  # noqa: N803
        return ctx.db.query("numbers").with_index("by_n").paginate(paginationOpts)

    @app.mutation(args={"n": v.float64()})
    def add(ctx: Any, n: float) -> Any:
        return ctx.db.insert("numbers", {"n": n})

    @app.mutation(args={"n": v.float64()})
    def drop(ctx: Any, n: float) -> None:
        doc = ctx.db.query("numbers").with_index("by_n", lambda q: q.eq("n", n)).unique()
        ctx.db.delete(doc["_id"])

    backend = cl.Backend(app=app)
    backend.import_documents("numbers", [{"n": float(n)} for n in range(1, 6)])
    yield app, backend, locals()
    backend.close()


def _ns(page: Any) -> list[float]:
    return [d["n"] for d in page["page"]]


def test_a_plain_subscription_keeps_its_page_end(numbers: Any) -> None:
    _, backend, fns = numbers
    client = backend.client()
    opts = {"paginationOpts": {"numItems": 3, "cursor": None}}
    live = client.subscribe(fns["by_n"], opts)
    first = live.value
    assert _ns(first) == [1.0, 2.0, 3.0] and not first["isDone"]
    client.mutation(fns["add"], {"n": 2.5})  # lands inside the page: it grows, never shifts
    assert _ns(live.value) == [1.0, 2.0, 2.5, 3.0]
    assert live.value["continueCursor"] == first["continueCursor"]
    client.mutation(fns["drop"], {"n": 1.0})  # and shrinks
    assert _ns(live.value) == [2.0, 2.5, 3.0]
    client.mutation(fns["add"], {"n": 3.5})  # past the page's end: not in it
    assert _ns(live.value) == [2.0, 2.5, 3.0]
    # The next page, from the same cursor, starts right after the recorded end.
    rest = client.query(fns["by_n"], {"paginationOpts": {
        "numItems": 10, "cursor": live.value["continueCursor"]}})
    assert _ns(rest) == [3.5, 4.0, 5.0]
    # The journal is not in the arguments; a new subscription gets a fresh page of 3.
    assert live.args == opts
    fresh = client.subscribe(fns["by_n"], opts)
    assert _ns(fresh.value) == [2.0, 2.5, 3.0] and _ns(live.value) == [2.0, 2.5, 3.0]
    client.mutation(fns["add"], {"n": 0.5})
    assert _ns(live.value) == [0.5, 2.0, 2.5, 3.0]
    assert _ns(fresh.value) == [0.5, 2.0, 2.5, 3.0]


def test_paginated_updates_pass_a_strict_pagination_validator(numbers: Any) -> None:
    _, backend, fns = numbers
    client = backend.client()
    pq = client.subscribe_paginated(fns["strict_by_n"], initial_num_items=2)
    assert [d["n"] for d in pq.results] == [1.0, 2.0]
    client.mutation(fns["add"], {"n": 1.5})
    assert pq.error is None and pq.status == "CanLoadMore"
    assert pq.pages == [[*pq.pages[0]]] and [d["n"] for d in pq.results] == [1.0, 1.5, 2.0]
    assert pq.load_more(2)
    client.mutation(fns["add"], {"n": 3.5})
    assert pq.error is None
    assert [[d["n"] for d in p] for p in pq.pages] == [[1.0, 1.5, 2.0], [3.0, 3.5, 4.0]]


def test_a_page_that_grows_past_twice_its_size_is_split(numbers: Any) -> None:
    _, backend, fns = numbers
    client = backend.client()
    pq = client.subscribe_paginated(fns["by_n"], initial_num_items=2)
    assert pq.load_more(2)
    seen: list[list[list[float]]] = []
    pq.on_update(lambda q: seen.append([[d["n"] for d in p] for p in q.pages]))
    for n in (1.1, 1.2):
        client.mutation(fns["add"], {"n": n})
    assert [[d["n"] for d in p] for p in pq.pages] == [[1.0, 1.1, 1.2, 2.0], [3.0, 4.0]]
    client.mutation(fns["add"], {"n": 1.3})  # five items > 2 × 2: split at the middle row
    assert [[d["n"] for d in p] for p in pq.pages] == [[1.0, 1.1, 1.2], [1.3, 2.0], [3.0, 4.0]]
    assert [d["n"] for d in pq.results] == [1.0, 1.1, 1.2, 1.3, 2.0, 3.0, 4.0]
    assert seen[-1] == [[1.0, 1.1, 1.2], [1.3, 2.0], [3.0, 4.0]]
    # Only a split puts endCursor into the arguments, as Convex's client does.
    opts = [ex.args["paginationOpts"] for ex in pq._pages]
    assert ["endCursor" in o for o in opts] == [True, True, False]
    client.mutation(fns["add"], {"n": 1.25})  # the split pages stay live
    assert [[d["n"] for d in p] for p in pq.pages] == [
        [1.0, 1.1, 1.2], [1.25, 1.3, 2.0], [3.0, 4.0]]


def test_a_query_that_no_longer_fits_its_cursors_restarts_the_pages(numbers: Any) -> None:
    app, backend, fns = numbers
    client = backend.client()
    pq = client.subscribe_paginated(fns["by_n"], initial_num_items=2)
    assert pq.load_more(2)
    assert [d["n"] for d in pq.results] == [1.0, 2.0, 3.0, 4.0]

    @app.query(args={"paginationOpts": cl.pagination_opts_validator}, name=fns["by_n"].path)
    def by_n_desc(ctx: Any, paginationOpts: dict[str, Any]) -> Any:  # noqa: N803
        return ctx.db.query("numbers").with_index("by_n").order("desc").paginate(paginationOpts)

    backend.refresh_live_queries()
    assert pq.error is None and [d["n"] for d in pq.results] == [5.0, 4.0]
    assert len(pq.pages) == 1 and pq.status == "CanLoadMore"

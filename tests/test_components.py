"""Components: define_component, app.use, app.components references, table isolation both
ways, transactional writes and reactive reads (DESIGN §8, "Components"; issue 13 item 1)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import convex_lab as cl
from convex_lab import v
from convex_lab.errors import (
    ConvexLabError,
    FunctionError,
    InvalidTableError,
    SqlError,
    UnknownTableWarning,
)
from convex_lab.jupyter._commands import status


def make_counter() -> Any:
    """A small component: named counters in its own `counts` table."""
    counter = cl.define_component("counter", cl.define_schema({
        "counts": cl.define_table({"name": v.string(), "n": v.float64()}).index(
            "by_name", ["name"]),
    }))

    @counter.mutation(name="lib:add")
    def add(ctx: Any, name: str, by: float = 1.0) -> Any:
        row = ctx.db.query("counts").with_index("by_name", lambda q: q.eq("name", name)).unique()
        if row is None:
            return ctx.db.insert("counts", {"name": name, "n": by})
        ctx.db.patch(row["_id"], {"n": row["n"] + by})
        return row["_id"]

    @counter.query(name="lib:get")
    def get(ctx: Any, name: str) -> float:
        row = ctx.db.query("counts").with_index("by_name", lambda q: q.eq("name", name)).unique()
        return row["n"] if row is not None else 0.0

    @counter.query(name="lib:by_id", args={"id": v.id("counts")})
    def by_id(ctx: Any, id: str) -> Any:
        return ctx.db.get(id)

    @counter.query(name="lib:peek")
    def peek(ctx: Any, table: str) -> Any:
        return ctx.db.query(table).collect()

    @counter.query(name="lib:get_any")
    def get_any(ctx: Any, id: str) -> Any:
        return ctx.db.get(id)

    @counter.internal_query(name="lib:secret")
    def secret(ctx: Any) -> str:
        return "hidden"

    @counter.query(name="lib:calls_secret")
    def calls_secret(ctx: Any) -> str:
        return str(ctx.run_query(secret))

    return counter


def fn(app: cl.App, name: str) -> Any:
    """The app's function called ``name`` (paths here are ``tests/test_components:name``)."""
    return next(f for path, f in app.functions.items() if path.rpartition(":")[2] == name)


@pytest.fixture
def app() -> cl.App:
    app = cl.App(schema=cl.define_schema({"messages": cl.define_table({"body": v.string()})}))
    counter = make_counter()
    app.use(counter, name="clicks")
    app.use(counter, name="views")  # the same definition twice: two sets of tables

    @app.mutation
    def send(ctx: Any, body: str, fail: bool = False) -> Any:
        message = ctx.db.insert("messages", {"body": body})
        ctx.run_mutation(app.components.clicks.lib.add, {"name": "sent"})
        if fail:
            raise ValueError("the send failed after the component wrote")
        return message

    @app.query
    def sent(ctx: Any) -> float:
        return float(ctx.run_query(app.components.clicks.lib.get, {"name": "sent"}))

    @app.query
    def raw(ctx: Any, table: str) -> Any:
        return ctx.db.query(table).collect()

    @app.query
    def by_id(ctx: Any, id: str) -> Any:
        return ctx.db.get(id)

    @app.mutation
    def write(ctx: Any, table: str) -> Any:
        return ctx.db.insert(table, {"name": "x", "n": 1.0})

    return app


@pytest.fixture
def backend(app: cl.App) -> Iterator[cl.Backend]:
    with cl.Backend(app=app) as b:
        yield b


def test_references_build_paths_inside_the_component(app: cl.App) -> None:
    ref = app.components.clicks.lib.add
    assert str(ref) == "clicks/lib:add"
    assert repr(ref) == "app.components.clicks.lib.add"
    assert "lib" in dir(app.components.clicks)
    assert dir(app.components) == ["clicks", "views"]
    with pytest.raises(AttributeError, match=r"No component is mounted as 'nope'.*app.use"):
        _ = app.components.nope


def test_component_writes_and_reads_its_own_tables(app: cl.App, backend: cl.Backend) -> None:
    backend.mutation(fn(app, "send"), {"body": "a"})
    backend.mutation(fn(app, "send"), {"body": "b"})
    assert backend.query(fn(app, "sent")) == 2.0
    assert backend.query(app.components.clicks.lib.get, {"name": "sent"}) == 2.0
    assert backend.query(app.components.views.lib.get, {"name": "sent"}) == 0.0  # other mount
    assert "clicks/counts" in backend.store.tables
    assert "views/counts" not in backend.store.tables  # nothing written there yet


def test_a_component_write_rolls_back_with_the_calling_mutation(app: cl.App,
                                                                 backend: cl.Backend) -> None:
    backend.mutation(fn(app, "send"), {"body": "kept"})
    with pytest.raises(ValueError, match="failed after the component wrote"):
        backend.mutation(fn(app, "send"), {"body": "lost", "fail": True})
    assert backend.query(fn(app, "sent")) == 1.0
    assert [m["body"] for m in backend.query(fn(app, "raw"), {"table": "messages"})] == [
        "kept"]


def test_the_app_cannot_reach_a_components_tables(app: cl.App, backend: cl.Backend) -> None:
    doc_id = backend.mutation(app.components.clicks.lib.add, {"name": "x"})
    with pytest.raises(InvalidTableError, match="private to it"):
        backend.query(fn(app, "raw"), {"table": "clicks/counts"})
    with pytest.raises(InvalidTableError, match="private to it"):
        backend.mutation(fn(app, "write"), {"table": "clicks/counts"})
    assert backend.query(fn(app, "by_id"), {"id": doc_id}) is None  # not there for the app
    with pytest.warns(UnknownTableWarning, match=r"The schema's tables: messages\.$"):
        assert backend.query(fn(app, "raw"), {"table": "counts"}) == []  # no such app table
    with pytest.raises(SqlError):
        backend.sql('SELECT * FROM "clicks/counts"')


def test_a_component_cannot_reach_the_apps_tables(app: cl.App, backend: cl.Backend) -> None:
    message = backend.mutation(fn(app, "send"), {"body": "private"})
    with pytest.warns(UnknownTableWarning, match=r"no table 'messages'.*tables: counts\.$"):
        assert backend.query(app.components.clicks.lib.peek, {"table": "messages"}) == []
    assert backend.query(app.components.clicks.lib.get_any, {"id": message}) is None
    # nor another mount's tables, though they come from the same definition
    other = backend.mutation(app.components.views.lib.add, {"name": "v"})
    assert backend.query(app.components.clicks.lib.get_any, {"id": other}) is None
    assert backend.query(app.components.views.lib.get_any, {"id": other})["name"] == "v"


def test_component_ids_validate_against_its_own_table_names(app: cl.App,
                                                            backend: cl.Backend) -> None:
    doc_id = backend.mutation(app.components.clicks.lib.add, {"name": "x"})
    assert backend.query(app.components.clicks.lib.by_id, {"id": doc_id})["name"] == "x"
    message = backend.mutation(fn(app, "send"), {"body": "m"})
    with pytest.raises(ConvexLabError, match="does not match the table name"):
        backend.query(app.components.clicks.lib.by_id, {"id": message})


def test_internal_component_functions_are_reachable_only_inside(app: cl.App,
                                                               backend: cl.Backend) -> None:
    with pytest.raises(FunctionError, match="it is internal"):
        backend.query(app.components.clicks.lib.secret)
    assert backend.query(app.components.clicks.lib.calls_secret) == "hidden"
    with pytest.raises(FunctionError, match=r"Could not find public function for 'lib:nope' in "
                                            r"component 'clicks'\. Its functions: "):
        backend.query(app.components.clicks.lib.nope)


def test_a_live_query_reading_through_a_component_follows_its_writes(
        app: cl.App, backend: cl.Backend) -> None:
    client = backend.client()
    live = client.subscribe(fn(app, "sent"), {})
    assert live.value == 0.0
    backend.mutation(app.components.clicks.lib.add, {"name": "sent", "by": 5.0})
    assert live.value == 5.0
    backend.mutation(app.components.views.lib.add, {"name": "sent", "by": 7.0})
    assert live.value == 5.0  # the other mount's table is not what it read


def test_status_lists_mounted_components(app: cl.App, backend: cl.Backend) -> None:
    backend.mutation(fn(app, "send"), {"body": "a"})
    text = status(backend)
    assert "Components:" in text
    assert "  clicks (counter): 7 functions; clicks/counts (1 document)" in text
    assert "  views (counter): 7 functions; views/counts (0 documents)" in text
    assert "\n  clicks/counts" not in text.split("Components:")[0]  # not among the app's tables


def test_use_refuses_what_is_not_a_component() -> None:
    app = cl.App()
    with pytest.raises(FunctionError, match="define_component"):
        app.use(cl.App())  # type: ignore[arg-type]
    with pytest.raises(FunctionError, match="Invalid component name"):
        app.use(make_counter(), name="bad/name")


def test_component_tables_survive_reopening_a_file(tmp_path: Path) -> None:
    path = tmp_path / "app.duckdb"
    counter = make_counter()
    app = cl.App()
    app.use(counter, name="clicks")
    with cl.Backend(str(path), app=app) as backend:
        backend.mutation(app.components.clicks.lib.add, {"name": "n", "by": 3.0})
    app2 = cl.App()
    app2.use(make_counter(), name="clicks")
    with cl.Backend(str(path), app=app2) as backend:
        assert backend.query(app2.components.clicks.lib.get, {"name": "n"}) == 3.0


def test_the_merged_schema_names_component_tables_and_round_trips() -> None:
    from convex_lab.schema import Schema, with_components

    app_schema = cl.define_schema({"messages": cl.define_table({"body": v.string()})})
    component = cl.define_schema({
        "nodes": cl.define_table({"parent": v.optional(v.id("nodes")), "other": v.id("users")}),
    })
    merged = with_components(app_schema, {"tree": component})
    assert sorted(merged.tables) == ["messages", "tree/nodes"]
    fields = merged.tables["tree/nodes"].document_validator.fields
    assert fields["parent"] == v.optional(v.id("tree/nodes"))  # its own tables, renamed
    assert fields["other"] == v.id("users")  # not a table of the component: left alone
    assert Schema.from_json(merged.to_json()) == merged  # what a reopened file reads back

"""SQL over the store (DESIGN §5, §8): typed views, JSON columns, one snapshot, read-only."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from typing import Any

import pytest

pd = pytest.importorskip("pandas", reason="pandas is not installed (pip install pandas)")

import convex_lab as cl  # noqa: E402 (after the skip: these tests need pandas)
from convex_lab import Int64, v  # noqa: E402
from convex_lab.sql import SqlError, snapshot_sql, view_sql  # noqa: E402

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)


def _types(backend: cl.Backend, table: str) -> dict[str, str]:
    rows = backend.sql(f"DESCRIBE {table}")
    return dict(zip(rows["column_name"], rows["column_type"], strict=True))


@pytest.fixture
def backend() -> Iterator[cl.Backend]:
    schema = cl.define_schema({
        "channels": cl.define_table({"name": v.string()}),
        "messages": cl.define_table({
            "channel": v.id("channels"),
            "author": v.string(),
            "score": v.float64(),
            "count": v.int64(),
            "pinned": v.boolean(),
            "edited": v.optional(v.boolean()),
            "reply_to": v.nullable(v.id("messages")),
            "mood": v.union(v.literal("happy"), v.literal("sad")),
            "tags": v.array(v.string()),
            "meta": v.optional(v.object({"n": v.int64()})),
        }).index("by_channel", ["channel"]),
        "shapes": cl.define_table(v.union(
            v.object({"kind": v.literal("circle"), "r": v.float64()}),
            v.object({"kind": v.literal("square"), "side": v.float64(), "r": v.string()}),
        )),
        "empty": cl.define_table({"x": v.int64()}),
    })
    with cl.Backend(app=cl.App(schema=schema)) as b:
        yield b


def _message(channel: str, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"channel": channel, "author": "ada", "score": 1.5,
                           "count": Int64(1), "pinned": False, "reply_to": None,
                           "mood": "happy", "tags": ["a"]}
    doc.update(extra)
    return doc


def test_views_are_typed_from_the_schema(backend: cl.Backend) -> None:
    (general,) = backend.import_documents("channels", [{"name": "general"}])
    backend.import_documents("messages", [_message(general)])
    assert _types(backend, "messages") == {
        "_id": "VARCHAR", "_creationTime": "DOUBLE", "channel": "VARCHAR", "author": "VARCHAR",
        "score": "DOUBLE", "count": "BIGINT", "pinned": "BOOLEAN", "edited": "BOOLEAN",
        "reply_to": "VARCHAR", "mood": "VARCHAR", "tags": "JSON", "meta": "JSON",
    }
    # Fields all members of a union agree on are typed; the rest are JSON.
    assert _types(backend, "shapes") == {
        "_id": "VARCHAR", "_creationTime": "DOUBLE", "kind": "VARCHAR", "r": "JSON",
        "side": "DOUBLE"}
    row = backend.sql("SELECT * FROM messages").iloc[0]
    assert row["channel"] == general and row["author"] == "ada" and row["score"] == 1.5
    assert row["count"] == 1 and not row["pinned"] and row["mood"] == "happy"
    assert pd.isna(row["edited"]) and pd.isna(row["reply_to"]) and pd.isna(row["meta"])
    assert row["tags"] == '["a"]'


def test_joins_and_a_table_defined_but_never_written(backend: cl.Backend) -> None:
    general, random = backend.import_documents("channels", [{"name": "general"},
                                                            {"name": "random"}])
    backend.import_documents("messages", [_message(general), _message(general),
                                          _message(random)])
    df = backend.sql("SELECT c.name, count(*) AS n FROM messages m JOIN channels c "
                     "ON m.channel = c._id GROUP BY c.name ORDER BY c.name")
    assert df.to_dict("records") == [{"name": "general", "n": 2}, {"name": "random", "n": 1}]
    empty = backend.sql("SELECT * FROM empty")
    assert list(empty.columns) == ["_id", "_creationTime", "x"] and len(empty) == 0
    assert _types(backend, "empty")["x"] == "BIGINT"


def test_special_floats_and_missing_versus_null(backend: cl.Backend) -> None:
    (c,) = backend.import_documents("channels", [{"name": "c"}])
    backend.import_documents("messages", [
        _message(c, score=math.inf, author="a"), _message(c, score=-math.inf, author="b"),
        _message(c, score=math.nan, author="c"), _message(c, score=-0.0, author="d",
                                                          meta={"n": Int64(5)})])
    df = backend.sql("SELECT author, score, meta FROM messages ORDER BY author")
    scores = list(df["score"])
    assert scores[0] == math.inf and scores[1] == -math.inf and math.isnan(scores[2])
    assert scores[3] == 0.0 and math.copysign(1, scores[3]) == -1
    assert df["meta"].iloc[3] == '{"n":5}' and pd.isna(df["meta"].iloc[0])


def test_schemaless_tables_get_one_json_column_per_field_seen() -> None:
    with cl.Backend(app=cl.App()) as b:
        b.import_documents("notes", [{"title": "a", "n": 1}, {"title": "b", "blob": b"\x01",
                                                             "odd/name~": None}])
        assert _types(b, "notes") == {"_id": "VARCHAR", "_creationTime": "DOUBLE",
                                      "title": "JSON", "n": "JSON", "blob": "JSON",
                                      "odd/name~": "JSON"}
        df = b.sql('SELECT title, n, blob, "odd/name~" AS odd FROM notes ORDER BY title')
        assert list(df["title"]) == ['"a"', '"b"']
        assert df["n"].iloc[0] == "1.0" and pd.isna(df["n"].iloc[1])  # a plain int is float64
        assert df["blob"].iloc[1] == '{"$bytes":"AQ=="}'
        assert pd.isna(df["odd"].iloc[0]) and df["odd"].iloc[1] == "null"  # missing vs null
        # JSON columns work with DuckDB's JSON operators.
        assert b.sql("SELECT title ->> '$' AS t FROM notes ORDER BY t")["t"].tolist() == ["a", "b"]


def test_int64_columns_round_trip_exactly(backend: cl.Backend) -> None:
    (c,) = backend.import_documents("channels", [{"name": "c"}])
    values = [INT64_MIN, -1, 0, 2**53 + 1, INT64_MAX]
    backend.import_documents("messages", [_message(c, count=Int64(n), meta={"n": Int64(n)})
                                          for n in values])
    df = backend.sql("SELECT count, meta ->> '$.n' AS nested FROM messages ORDER BY count")
    assert str(df["count"].dtype) == "int64"
    assert [int(x) for x in df["count"]] == values
    assert [int(x) for x in df["nested"]] == values
    assert backend.sql("SELECT * FROM messages WHERE count = ?", [INT64_MAX])["count"].tolist() \
        == [INT64_MAX]


def _counter_app() -> cl.App:
    app = cl.App()

    @app.mutation(name="add")
    def add(ctx, body: str) -> Any:  # type: ignore[no-untyped-def]
        return ctx.db.insert("items", {"body": body})

    @app.mutation(name="edit")
    def edit(ctx, id: str, body: str) -> None:  # type: ignore[no-untyped-def]
        ctx.db.patch(id, {"body": body})

    @app.mutation(name="remove")
    def remove(ctx, id: str) -> None:  # type: ignore[no-untyped-def]
        ctx.db.delete(id)

    @app.mutation(name="transfer")
    def transfer(ctx, a: str, b: str, amount: float) -> None:  # type: ignore[no-untyped-def]
        ctx.db.patch(a, {"balance": ctx.db.get(a)["balance"] - amount})
        ctx.db.patch(b, {"balance": ctx.db.get(b)["balance"] + amount})

    return app


@pytest.mark.parametrize("on_file", [False, True])
def test_updated_and_deleted_documents_show_their_latest_version(
        on_file: bool, tmp_path: Any) -> None:
    with cl.Backend(tmp_path / "db.duckdb" if on_file else None, app=_counter_app()) as b:
        first = b.mutation("add", {"body": "one"})
        second = b.mutation("add", {"body": "two"})
        b.mutation("edit", {"id": first, "body": "one, edited"})
        b.mutation("edit", {"id": first, "body": "one, edited twice"})
        b.mutation("remove", {"id": second})
        df = b.sql("SELECT _id, body ->> '$' AS body FROM items")
        assert df.to_dict("records") == [{"_id": first, "body": "one, edited twice"}]
        # Every version is still in the store of record; only the view is filtered.
        assert b.store.sql().execute('SELECT count(*) FROM _convex."items"').fetchone() == (5,)


def test_views_at_an_older_snapshot_see_only_what_was_committed_by_then() -> None:
    with cl.Backend(app=_counter_app()) as b:
        first = b.mutation("add", {"body": "one"})
        ts = b.store.visible_ts
        b.mutation("edit", {"id": first, "body": "later"})
        b.mutation("add", {"body": "two"})
        b.store.flush()
        cursor = b.store.sql()
        cursor.execute(view_sql("items", {"body": "JSON"}, ts, persisted=True))
        assert cursor.execute("SELECT _id, body FROM items").fetchall() == [(first, '"one"')]
        cursor.close()


def test_a_query_never_sees_half_a_mutation() -> None:
    with cl.Backend(app=_counter_app()) as b:
        a, c = b.import_documents("accounts", [{"balance": 100.0}, {"balance": 100.0}])
        stop = threading.Event()

        def churn() -> None:
            while not stop.is_set():
                b.mutation("transfer", {"a": a, "b": c, "amount": 1.0})
                b.mutation("transfer", {"a": c, "b": a, "amount": 3.0})

        worker = threading.Thread(target=churn)
        worker.start()
        try:
            totals = {float(b.sql("SELECT sum((balance ->> '$')::DOUBLE) AS t FROM accounts")
                            ["t"].iloc[0]) for _ in range(40)}
        finally:
            stop.set()
            worker.join()
        assert totals == {200.0}


@pytest.mark.parametrize("statement", [
    "INSERT INTO _convex.\"channels\" VALUES ('x', 1, 1, false, '{}')",
    "UPDATE _convex.\"channels\" SET _deleted = true",
    "DELETE FROM _convex.\"channels\"",
    "DROP TABLE _convex.\"channels\"",
    "CREATE TABLE t AS SELECT 1",
    "ATTACH ':memory:' AS other",
    "COPY channels TO 'out.csv'",
    "SET threads = 1",
    "PRAGMA version",
    "CHECKPOINT",
    "SELECT 1; DELETE FROM _convex.\"channels\"",
])
def test_only_reads_are_accepted(backend: cl.Backend, statement: str) -> None:
    backend.import_documents("channels", [{"name": "general"}])
    with pytest.raises(SqlError, match="read-only"):
        backend.sql(statement)
    assert backend.sql("SELECT name FROM channels")["name"].tolist() == ["general"]


def test_explain_analyze_cannot_write_through_the_read_only_transaction(
        backend: cl.Backend) -> None:
    backend.import_documents("channels", [{"name": "general"}])
    with pytest.raises(SqlError, match="read-only"):
        backend.sql("EXPLAIN ANALYZE INSERT INTO _convex.\"channels\" "
                    "VALUES ('x', 1, 1, false, '{}')")
    assert backend.store.sql().execute(
        'SELECT count(*) FROM _convex."channels"').fetchone() == (1,)


@pytest.mark.parametrize("statement", [
    "WITH x AS (SELECT * FROM channels) SELECT count(*) FROM x",
    "FROM channels", "DESCRIBE channels", "SHOW TABLES", "SUMMARIZE channels",
    "VALUES (1), (2)", "PIVOT channels ON name USING count(*)", "EXPLAIN SELECT 1",
])
def test_reading_statements_are_accepted(backend: cl.Backend, statement: str) -> None:
    backend.import_documents("channels", [{"name": "general"}])
    assert isinstance(backend.sql(statement), pd.DataFrame)


def test_errors_name_the_problem_and_the_fix(backend: cl.Backend) -> None:
    with pytest.raises(SqlError, match=r"Unknown table 'mesages' in SQL\. Did you mean "
                                       r"'messages'\? Tables: channels, empty, messages, shapes"):
        backend.sql("SELECT * FROM mesages")
    with pytest.raises(SqlError, match="syntax error"):
        backend.sql("SELEC 1")
    with pytest.raises(SqlError, match="Give a SQL query"):
        backend.sql("  ")
    with pytest.raises(SqlError, match="column"):
        backend.sql("SELECT nope FROM channels")
    backend.close()
    with pytest.raises(SqlError, match="closed"):
        snapshot_sql(backend, "SELECT 1")


def test_snapshot_sql_takes_a_store_and_leaves_no_views_behind(backend: cl.Backend) -> None:
    backend.import_documents("channels", [{"name": "general"}])
    assert snapshot_sql(backend.store, "SELECT name FROM channels")["name"].tolist() == [
        "general"]
    names = {r[0] for r in backend.store.sql().execute(
        "SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
    assert "channels" not in names

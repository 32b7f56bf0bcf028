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
from convex_lab.errors import BackendClosedError  # noqa: E402
from convex_lab.interop.sql import SqlError, snapshot_sql, view_sql  # noqa: E402

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
        "_id": "VARCHAR", "_creationTime": "TIMESTAMP", "channel": "VARCHAR", "author": "VARCHAR",
        "score": "DOUBLE", "count": "BIGINT", "pinned": "BOOLEAN", "edited": "BOOLEAN",
        "reply_to": "VARCHAR", "mood": "VARCHAR", "tags": "JSON", "meta": "JSON",
    }
    # Fields all members of a union agree on are typed; the rest are JSON.
    assert _types(backend, "shapes") == {
        "_id": "VARCHAR", "_creationTime": "TIMESTAMP", "kind": "VARCHAR", "r": "JSON",
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


def test_schemaless_tables_are_typed_from_their_data() -> None:
    """Issue 9 item 8: what a newcomer types first works on a table without a schema."""
    with cl.Backend(app=cl.App()) as b:
        b.import_documents("notes", [
            {"title": "hello", "n": 1.5, "count": Int64(1), "done": False, "tags": ["x"],
             "mixed": 1.0, "blob": b"\x01", "maybe": None},
            {"title": "again", "n": 2, "count": Int64(2), "done": True, "tags": [],
             "mixed": "one", "maybe": "set", "odd/name~": None}])
        assert _types(b, "notes") == {
            "_id": "VARCHAR", "_creationTime": "TIMESTAMP", "title": "VARCHAR", "n": "DOUBLE",
            "count": "BIGINT", "done": "BOOLEAN", "tags": "JSON", "mixed": "JSON",
            "blob": "JSON", "maybe": "VARCHAR", "odd/name~": "JSON"}
        hello = b.sql("SELECT title, n + 1 AS next, count * 2 AS twice, NOT done AS todo "
                      "FROM notes WHERE title = 'hello'")
        assert hello.to_dict("records") == [
            {"title": "hello", "next": 2.5, "twice": 2, "todo": True}]
        df = b.sql('SELECT title, tags, mixed, blob, maybe, "odd/name~" AS odd FROM notes '
                   "ORDER BY title")
        assert list(df["tags"]) == ["[]", '["x"]'] and list(df["mixed"]) == ['"one"', "1.0"]
        assert pd.isna(df["blob"].iloc[0]) and df["blob"].iloc[1] == '{"$bytes":"AQ=="}'
        assert df["maybe"].iloc[0] == "set" and pd.isna(df["maybe"].iloc[1])  # null: SQL NULL
        assert df["odd"].iloc[0] == "null" and pd.isna(df["odd"].iloc[1])  # JSON: null vs missing
        # JSON columns still work with DuckDB's JSON operators.
        assert b.sql("SELECT tags ->> '$[0]' AS t FROM notes WHERE done = false")["t"].tolist() \
            == ["x"]


def test_column_types_follow_the_data_as_it_changes() -> None:
    app = _counter_app()

    @app.mutation(name="set_any")
    def set_any(ctx: Any, id: str, body: Any) -> None:
        ctx.db.patch(id, {"body": body})

    with cl.Backend(app=app) as b:
        first = b.mutation("add", {"body": "one"})
        b.import_documents("others", [{"x": 1.0}])
        assert _types(b, "items")["body"] == "VARCHAR"
        assert _types(b, "items")["body"] == "VARCHAR"  # unchanged: remembered
        b.mutation("set_any", {"id": first, "body": 1.0})
        assert _types(b, "items")["body"] == "DOUBLE"
        second = b.mutation("add", {"body": "two"})
        assert _types(b, "items")["body"] == "JSON"
        for i in range(100):  # other tables' commits (and a trimmed commit log) change nothing
            b.import_documents("others", [{"x": float(i)}])
        assert _types(b, "items")["body"] == "JSON" and _types(b, "others")["x"] == "DOUBLE"
        b.mutation("remove", {"id": second})
        assert _types(b, "items")["body"] == "DOUBLE"


def test_creation_time_is_a_utc_timestamp_to_the_millisecond() -> None:
    app = cl.App()

    @app.query(name="times")
    def times(ctx: Any) -> Any:
        return [d["_creationTime"] for d in ctx.db.query("notes").collect()]

    with cl.Backend(app=app, clock="virtual") as b:
        b.import_documents("notes", [{"i": float(i)} for i in range(3)])
        raw = b.query("times")
        df = b.sql("SELECT i, _creationTime, epoch_ms(_creationTime) AS ms FROM notes")
        assert list(df["i"]) == [0.0, 1.0, 2.0]  # creation order, to the fraction of a ms
        assert [int(ms) for ms in df["ms"]] == [math.floor(t) for t in raw]
        expected = pd.to_datetime([math.floor(t) for t in raw], unit="ms")
        assert list(df["_creationTime"]) == list(expected)


def test_fields_a_schema_leaves_open_are_typed_from_the_data() -> None:
    schema = cl.define_schema({"events": cl.define_table({
        "payload": v.any(),
        "score": v.union(v.string(), v.float64()),
        "extra": v.optional(v.any()),
        "ids": v.array(v.string()),
    })})
    with cl.Backend(app=cl.App(schema=schema)) as b:
        b.import_documents("events", [{"payload": "a", "score": 1.0, "ids": []},
                                      {"payload": "b", "score": 2.5, "ids": ["x"]}])
        assert _types(b, "events") == {
            "_id": "VARCHAR", "_creationTime": "TIMESTAMP", "payload": "VARCHAR",
            "score": "DOUBLE", "extra": "JSON", "ids": "JSON"}
        assert b.sql("SELECT sum(score) AS s FROM events")["s"].tolist() == [3.5]
        b.import_documents("events", [{"payload": {"k": 1.0}, "score": "high", "ids": []}])
        assert _types(b, "events")["payload"] == "JSON" and _types(b, "events")["score"] == "JSON"


def test_column_types_hold_every_value_of_the_snapshot_not_only_the_latest() -> None:
    """The views show a snapshot; memory may already hold later commits. Types come from both,
    so a value that only the snapshot still has never breaks a cast."""
    from convex_lab.interop.sql_columns import plan_columns, table_columns

    app = _counter_app()

    @app.mutation(name="set_any")
    def set_any(ctx: Any, id: str, body: Any) -> None:
        ctx.db.patch(id, {"body": body})

    with cl.Backend(app=app) as b:
        first = b.mutation("add", {"body": "one"})
        store = b.store
        token, ts = store.pin()  # keeps the commits after ts in the log, as a slow flush would
        try:
            b.mutation("set_any", {"id": first, "body": 2.0})  # memory: a number now
            with store.lock:
                plan = plan_columns(store, None, ts)
            columns = table_columns(store, None, plan)
            assert columns["items"] == {"body": "JSON"}  # "one" at ts, 2.0 in memory
            cursor = store.sql()
            cursor.execute(view_sql("items", columns["items"], ts, persisted=True))
            assert cursor.execute("SELECT body FROM items").fetchall() == [('"one"',)]
            cursor.close()
            assert _types(b, "items")["body"] == "DOUBLE"  # the latest snapshot: numbers only
        finally:
            store.end(token)


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
        df = b.sql("SELECT _id, body FROM items")
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
            totals = {float(b.sql("SELECT sum(balance) AS t FROM accounts")
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
    with pytest.raises(BackendClosedError, match="closed"):
        snapshot_sql(backend, "SELECT 1")


def test_snapshot_sql_takes_a_store_and_leaves_no_views_behind(backend: cl.Backend) -> None:
    backend.import_documents("channels", [{"name": "general"}])
    assert snapshot_sql(backend.store, "SELECT name FROM channels")["name"].tolist() == [
        "general"]
    names = {r[0] for r in backend.store.sql().execute(
        "SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
    assert "channels" not in names


# Nothing but reads (issue 7, item 8) ---------------------------------------------------------
# Each statement below is a way found to write a file, change a setting or run an extension
# through %%sql; the read-only checks refuse it before DuckDB runs anything.

WRITES_A_FILE = [
    # EXPLAIN passes a check on the statement type, and ANALYZE runs the statement it explains.
    "EXPLAIN ANALYZE COPY (SELECT 1) TO '{out}'",
    "EXPLAIN COPY (SELECT 1) TO '{out}'",
    "EXPLAIN (FORMAT json, ANALYZE) COPY (SELECT 1) TO '{out}'",
    "eXpLaIn/**/AnAlYzE/* a comment */copy (select 1) to '{out}'",
    # Anything holding a PIVOT has DuckDB's statement type MULTI, a COPY included.
    "COPY (PIVOT channels ON name USING count(*)) TO '{out}'",
    "EXPLAIN ANALYZE COPY (PIVOT channels ON name USING count(*)) TO '{out}'",
    "COPY channels TO '{out}'",
    "SELECT 1; COPY (SELECT 1) TO '{out}'",
    "EXPORT DATABASE '{out}'",
    "ATTACH '{out}' AS other",
]


@pytest.mark.parametrize("statement", WRITES_A_FILE)
def test_no_file_is_written_whatever_wraps_the_statement(
        backend: cl.Backend, tmp_path: Any, statement: str) -> None:
    out = tmp_path / "out"
    with pytest.raises(SqlError, match="read-only") as info:
        backend.sql(statement.format(out=out))
    assert "not allowed" in str(info.value)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("statement", "named"), [
    ("INSTALL httpfs", "INSTALL"),
    ("FORCE INSTALL httpfs", "FORCE INSTALL"),
    ("LOAD httpfs", "LOAD"),
    ("LOAD '/tmp/evil.duckdb_extension'", "LOAD"),
    ("UPDATE EXTENSIONS", "UPDATE EXTENSIONS"),  # a statement type DuckDB's Python API can't name
    ("SELECT 1; UPDATE EXTENSIONS (httpfs)", "UPDATE EXTENSIONS"),
])
def test_extensions_are_never_installed_or_loaded(
        backend: cl.Backend, statement: str, named: str) -> None:
    with pytest.raises(SqlError, match=f"read-only: {named} statements are not allowed") as info:
        backend.sql(statement)
    assert "extension" in str(info.value)


@pytest.mark.parametrize(("statement", "named"), [
    ("SET autoload_known_extensions = true", "SET"),
    ("SET VARIABLE x = 1", "SET"),
    ("RESET threads", "RESET"),
    ("PRAGMA enable_profiling", "PRAGMA"),
    ("CALL checkpoint()", "CALL"),
    ("USE memory", "USE"),
    ("DETACH memory", "DETACH"),
    ("VACUUM", "VACUUM"),
    ("BEGIN", "BEGIN"),
    ("SELECT 1; COMMIT", "COMMIT"),  # would end the read-only transaction early
    ("PREPARE p AS SELECT 1", "PREPARE"),
    ("WITH x AS (SELECT 1) INSERT INTO _convex.\"channels\" SELECT 'x', 1, 1, false, '{}'",
     "INSERT"),
    ("CREATE TEMP TABLE t AS PIVOT channels ON name USING count(*)", "CREATE"),
])
def test_statements_that_change_settings_or_state_are_refused(
        backend: cl.Backend, statement: str, named: str) -> None:
    with pytest.raises(SqlError, match=f"read-only: {named} statements are not allowed"):
        backend.sql(statement)


@pytest.mark.parametrize(("statement", "function"), [
    ("SELECT * FROM checkpoint()", "checkpoint"),
    ("FROM force_checkpoint()", "force_checkpoint"),
    ('SELECT * FROM "CHECKPOINT"()', "checkpoint"),
    ("SELECT * FROM system.main.checkpoint()", "checkpoint"),
    ("SUMMARIZE SELECT * FROM checkpoint()", "checkpoint"),
    ("SELECT * FROM enable_logging('QueryLog', storage = 'file', storage_path = '{out}')",
     "enable_logging"),
    ("SELECT * FROM enable_profiling()", "enable_profiling"),
    ("SELECT * FROM truncate_duckdb_logs()", "truncate_duckdb_logs"),
    ("SELECT * FROM query('SELECT 42')", "query"),  # SQL in a string, which no check sees
    ("SELECT * FROM json_execute_serialized_sql(json_serialize_sql('SELECT 1'))",
     "json_execute_serialized_sql"),
    ("PIVOT (SELECT * FROM enable_logging()) ON x USING count(*)", "enable_logging"),
])
def test_table_functions_that_do_more_than_read_are_refused(
        backend: cl.Backend, tmp_path: Any, statement: str, function: str) -> None:
    out = tmp_path / "logs"
    with pytest.raises(SqlError, match=rf"read-only: {function}\(\) is not allowed"):
        backend.sql(statement.format(out=out))
    assert not out.exists()
    settings = backend.sql("SELECT name, value FROM duckdb_settings() WHERE name IN "
                           "('enable_logging', 'autoload_known_extensions')")
    assert dict(zip(settings["name"], settings["value"], strict=True)) == {
        "enable_logging": "0", "autoload_known_extensions": "false"}


@pytest.mark.parametrize(("statement", "extension"), [
    ("SELECT * FROM 'https://example.com/data.parquet'", "httpfs"),
    ("SELECT * FROM read_parquet('s3://bucket/data.parquet')", "httpfs"),
    ("SELECT * FROM read_csv('https://example.com/data.csv')", "httpfs"),
    ("SELECT * FROM read_xlsx('book.xlsx')", "excel"),
    ("SELECT * FROM sqlite_scan('app.db', 't')", "sqlite_scanner"),
])
def test_reading_what_needs_an_extension_says_why_it_is_not_loaded(
        backend: cl.Backend, statement: str, extension: str) -> None:
    with pytest.raises(SqlError, match=f"needs the DuckDB extension '{extension}'") as info:
        backend.sql(statement)
    message = str(info.value)
    assert "does not install or load" in message
    assert "Failed to download" not in message  # no attempt was made
    assert "SET autoinstall" not in message  # DuckDB's advice is not ours to give
    loaded = backend.sql("SELECT extension_name FROM duckdb_extensions() WHERE loaded OR installed")
    assert extension not in set(loaded["extension_name"])


def test_local_files_can_still_be_read(backend: cl.Backend, tmp_path: Any) -> None:
    csv = tmp_path / "people.csv"
    csv.write_text("name,age\nada,36\ngrace,45\n")
    (tmp_path / "people.json").write_text('[{"name": "ada"}]')
    pd.DataFrame({"n": [1, 2, 3]}).to_parquet(tmp_path / "numbers.parquet")
    assert backend.sql(f"SELECT name FROM read_csv('{csv}') ORDER BY age")["name"].tolist() == [
        "ada", "grace"]
    assert backend.sql(f"SELECT count(*) AS n FROM '{csv}'")["n"].tolist() == [2]
    assert backend.sql(f"SELECT sum(n) AS s FROM '{tmp_path / 'numbers.parquet'}'")[
        "s"].tolist() == [6]
    assert backend.sql(f"SELECT name FROM read_json('{tmp_path / 'people.json'}')")[
        "name"].tolist() == ["ada"]


@pytest.mark.parametrize("statement", [
    "SELECT count(*) AS n FROM duckdb_settings()",
    "EXPLAIN ANALYZE SELECT count(*) FROM channels",
    "EXPLAIN (FORMAT json) SELECT 1",
    "WITH query(a) AS (SELECT 1) SELECT * FROM query",  # a CTE named like a refused function
    "SELECT * FROM channels AS checkpoint(a, b, c)",  # an alias with column names, not a call
    "WITH p AS (PIVOT channels ON name USING count(*)) SELECT * FROM p",
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) FROM r",
    "WITH a AS MATERIALIZED (SELECT 1 AS x), b(y) AS NOT MATERIALIZED (SELECT 2) FROM a, b",
    "(SELECT 1) UNION ALL (SELECT 2)",
    "SELECT 'COPY (SELECT 1) TO ''x.csv''' AS text",  # words in strings are not statements
    "SELECT 1 -- ; COPY (SELECT 1) TO 'x.csv'",
    "DESC channels",
    "SELECT * FROM query_table('channels')",
])
def test_reads_that_look_like_writes_are_accepted(backend: cl.Backend, statement: str) -> None:
    backend.import_documents("channels", [{"name": "general"}])
    assert isinstance(backend.sql(statement), pd.DataFrame)


def test_refused_sql_leaves_a_file_backend_writable(tmp_path: Any) -> None:
    # The store of record shares the DuckDB instance (and its locked configuration) with %%sql.
    path = tmp_path / "db.duckdb"
    with cl.Backend(path, app=_counter_app()) as b:
        b.mutation("add", {"body": "before"})
        for statement in ("SELECT * FROM checkpoint()", "SET threads = 1",
                          "EXPLAIN ANALYZE COPY (SELECT 1) TO 'x.csv'", "INSTALL httpfs",
                          "SELECT * FROM 'https://example.com/x.parquet'"):
            with pytest.raises(SqlError):
                b.sql(statement)
        b.mutation("add", {"body": "after"})
        b.import_documents("items", [{"body": str(i)} for i in range(100)])
    with cl.Backend(path, app=_counter_app()) as b:
        assert int(b.sql("SELECT count(*) AS n FROM items")["n"].iloc[0]) == 102

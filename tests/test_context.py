"""ctx objects: capability split, nested calls, identity, errors (reference §5.3, §7, §14, §15)."""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

import convex_lab as cl
from convex_lab import ConvexError, Int64, v
from convex_lab.context import ActionCtx, MutationCtx, QueryCtx
from convex_lab.errors import ArgumentValidationError, FunctionError
from convex_lab.store.database import UnknownTableWarning


@pytest.fixture
def app() -> cl.App:
    return cl.App()


@pytest.fixture
def backend(app: cl.App) -> Iterator[cl.Backend]:
    with cl.Backend(app=app) as b:
        yield b


def _bodies(backend: cl.Backend, app: cl.App) -> list[str]:
    @app.internal_query(name="_test:bodies")
    def bodies(ctx):  # type: ignore[no-untyped-def]
        return sorted(d["body"] for d in ctx.db.query("notes").collect())

    result: list[str] = backend.query(bodies)
    return result


# Capability split ----------------------------------------------------------------------------


def test_query_ctx_is_read_only(app: cl.App, backend: cl.Backend) -> None:
    seen: dict[str, Any] = {}

    @app.query
    def peek(ctx):  # type: ignore[no-untyped-def]
        seen["ctx"] = type(ctx)
        seen["insert"] = hasattr(ctx.db, "insert")
        seen["run_query"] = hasattr(ctx, "run_query")
        with pytest.raises(AttributeError, match="read-only"):
            ctx.run_mutation  # noqa: B018

    backend.query(peek)
    assert seen == {"ctx": QueryCtx, "insert": False, "run_query": True}


@pytest.mark.parametrize(("verb", "args"), [
    ("insert", ("notes", {"body": "x"})), ("patch", ("notes", "id", {"body": "y"})),
    ("replace", ("notes", "id", {"body": "y"})), ("delete", ("notes", "id"))])
def test_query_cannot_write(app: cl.App, backend: cl.Backend, verb: str,
                            args: tuple[Any, ...]) -> None:
    @app.query
    def sneaky(ctx):  # type: ignore[no-untyped-def]
        return getattr(ctx.db, verb)(*args)

    with pytest.raises(AttributeError) as info:
        backend.query(sneaky)
    message = str(info.value)
    assert f"ctx.db.{verb}() is not available in a query: queries are read-only" in message
    assert "Write in a mutation instead" in message and "%%mutation" in message

    @app.query
    def typo(ctx):  # type: ignore[no-untyped-def]
        return ctx.db.insrt

    with pytest.raises(AttributeError, match=r"has no attribute 'insrt'$"):  # others: as usual
        backend.query(typo)


@pytest.mark.parametrize("kind", ["query", "mutation"])
def test_system_tables_are_read_only_everywhere(app: cl.App, backend: cl.Backend,
                                                kind: str) -> None:
    def write_system(ctx):  # type: ignore[no-untyped-def]
        return ctx.db.system.insert("_scheduled_functions", {})

    fn = getattr(app, kind)(write_system)
    with pytest.raises(AttributeError, match=r"ctx\.db\.system\.insert\(\) is not available: "
                                             r"system tables are read-only.*ctx\.scheduler"):
        getattr(backend, kind)(fn)


def test_mutation_ctx(app: cl.App, backend: cl.Backend) -> None:
    seen: dict[str, Any] = {}

    @app.mutation
    def look(ctx):  # type: ignore[no-untyped-def]
        seen.update(ctx=type(ctx), insert=hasattr(ctx.db, "insert"),
                    scheduler=hasattr(ctx, "scheduler"), run_action=hasattr(ctx, "run_action"))

    backend.mutation(look)
    assert seen == {"ctx": MutationCtx, "insert": True, "scheduler": True, "run_action": False}


def test_action_has_no_db(app: cl.App, backend: cl.Backend) -> None:
    seen: dict[str, Any] = {}

    @app.action
    def act(ctx):  # type: ignore[no-untyped-def]
        seen["ctx"] = type(ctx)
        seen["has_db"] = hasattr(ctx, "db")
        try:
            ctx.db  # noqa: B018
        except AttributeError as e:
            seen["message"] = str(e)

    backend.action(act)
    assert seen["ctx"] is ActionCtx and seen["has_db"] is False
    assert "Actions have no ctx.db" in seen["message"]
    assert "ctx.run_query" in seen["message"] and "ctx.run_mutation" in seen["message"]


# Nested calls --------------------------------------------------------------------------------


def test_nested_query_sees_the_mutations_writes(app: cl.App, backend: cl.Backend) -> None:
    @app.internal_query
    def count(ctx):  # type: ignore[no-untyped-def]
        return len(ctx.db.query("notes").collect())

    @app.mutation
    def add_and_count(ctx):  # type: ignore[no-untyped-def]
        before = ctx.run_query(count)
        ctx.db.insert("notes", {"body": "a"})
        return [before, ctx.run_query(count)]

    assert backend.mutation(add_and_count) == [0.0, 1.0]


def test_nested_mutation_rolls_back_when_it_raises(app: cl.App, backend: cl.Backend) -> None:
    @app.internal_mutation
    def failing(ctx, body: str):  # type: ignore[no-untyped-def]
        ctx.db.insert("notes", {"body": body})
        raise ConvexError({"why": "nope"})

    @app.internal_mutation
    def fine(ctx, body: str):  # type: ignore[no-untyped-def]
        ctx.db.insert("notes", {"body": body})

    @app.mutation
    def outer(ctx):  # type: ignore[no-untyped-def]
        ctx.db.insert("notes", {"body": "outer-before"})
        ctx.run_mutation(fine, {"body": "fine"})
        try:
            ctx.run_mutation(failing, {"body": "failing"})
        except ConvexError as e:
            caught = e.data
        ctx.db.insert("notes", {"body": "outer-after"})
        return caught

    assert backend.mutation(outer) == {"why": "nope"}
    assert _bodies(backend, app) == ["fine", "outer-after", "outer-before"]


def test_nested_mutation_error_not_caught_rolls_back_everything(
    app: cl.App, backend: cl.Backend
) -> None:
    @app.internal_mutation
    def failing(ctx):  # type: ignore[no-untyped-def]
        raise ConvexError("inner failed")

    @app.mutation
    def outer(ctx):  # type: ignore[no-untyped-def]
        ctx.db.insert("notes", {"body": "outer"})
        ctx.run_mutation(failing)

    with pytest.raises(ConvexError, match="inner failed"):
        backend.mutation(outer)
    assert _bodies(backend, app) == []


def test_nested_calls_use_the_targets_validators(app: cl.App, backend: cl.Backend) -> None:
    @app.internal_query
    def kind_of(ctx, n: int):  # type: ignore[no-untyped-def]
        return type(n).__name__

    @app.query
    def outer(ctx):  # type: ignore[no-untyped-def]
        return ctx.run_query(kind_of, {"n": 3})

    @app.query
    def wrong(ctx):  # type: ignore[no-untyped-def]
        return ctx.run_query(kind_of, {"n": "three"})

    assert backend.query(outer) == "Int64"
    with pytest.raises(ArgumentValidationError):
        backend.query(wrong)


def test_nested_wrong_kind(app: cl.App, backend: cl.Backend) -> None:
    @app.mutation
    def m(ctx):  # type: ignore[no-untyped-def]
        return None

    @app.query
    def q(ctx):  # type: ignore[no-untyped-def]
        return ctx.run_query(m)

    with pytest.raises(FunctionError, match=r"m is a mutation, not a query: use ctx.run_mutation"):
        backend.query(q)


def test_depth_limit(app: cl.App, backend: cl.Backend) -> None:
    @app.query
    def dive(ctx, n: float):  # type: ignore[no-untyped-def]
        return n if n == 0 else ctx.run_query(dive, {"n": n - 1})

    assert backend.query(dive, {"n": 8}) == 0.0  # 8 nested levels are fine
    with pytest.raises(FunctionError, match="more than 8 levels"):
        backend.query(dive, {"n": 9})


def test_action_calls_are_separate_transactions(app: cl.App, backend: cl.Backend) -> None:
    @app.internal_mutation
    def add(ctx, body: str):  # type: ignore[no-untyped-def]
        return ctx.db.insert("notes", {"body": body})

    @app.internal_mutation
    def boom(ctx):  # type: ignore[no-untyped-def]
        ctx.db.insert("notes", {"body": "boom"})
        raise ConvexError("boom")

    @app.internal_action
    def helper(ctx, x: float):  # type: ignore[no-untyped-def]
        return x * 2

    @app.action
    def act(ctx):  # type: ignore[no-untyped-def]
        ctx.run_mutation(add, {"body": "one"})
        with contextlib.suppress(ConvexError):
            ctx.run_mutation(boom)
        n = len(ctx.run_query("_test:bodies"))
        return [n, ctx.run_action(helper, {"x": 2})]

    _bodies(backend, app)  # registers the helper query
    assert backend.action(act) == [1.0, 4.0]
    assert _bodies(backend, app) == ["one"]  # committed even though the action goes on


def test_action_failure_keeps_committed_mutations(app: cl.App, backend: cl.Backend) -> None:
    @app.internal_mutation
    def add(ctx, body: str):  # type: ignore[no-untyped-def]
        ctx.db.insert("notes", {"body": body})

    @app.action
    def act(ctx):  # type: ignore[no-untyped-def]
        ctx.run_mutation(add, {"body": "kept"})
        raise RuntimeError("action failed afterwards")

    with pytest.raises(RuntimeError):
        backend.action(act)
    assert _bodies(backend, app) == ["kept"]


# Identity --------------------------------------------------------------------------------------


def test_identity_reaches_handlers_and_nested_calls(app: cl.App, backend: cl.Backend) -> None:
    @app.internal_query
    def who(ctx):  # type: ignore[no-untyped-def]
        identity = ctx.auth.get_user_identity()
        return identity and identity["tokenIdentifier"]

    @app.query
    def me(ctx):  # type: ignore[no-untyped-def]
        return [ctx.auth.get_user_identity(), ctx.run_query(who)]

    @app.mutation
    def me_m(ctx):  # type: ignore[no-untyped-def]
        return ctx.run_query(who)

    @app.action
    def me_a(ctx):  # type: ignore[no-untyped-def]
        return [ctx.run_query(who), ctx.run_mutation(me_m)]

    client = backend.client(identity={"subject": "u1", "issuer": "https://auth.example",
                                      "email": "a@b.c"})
    identity, nested = client.query(me)
    assert identity == {"tokenIdentifier": "https://auth.example|u1", "subject": "u1",
                        "issuer": "https://auth.example", "email": "a@b.c"}
    assert nested == "https://auth.example|u1"
    assert client.mutation(me_m) == "https://auth.example|u1"
    assert client.action(me_a) == ["https://auth.example|u1"] * 2
    assert backend.query(me) == [None, None]  # admin calls carry no identity
    assert backend.client().query(me) == [None, None]


def test_identity_needs_subject_and_issuer(backend: cl.Backend) -> None:
    with pytest.raises(FunctionError, match="subject"):
        backend.client(identity={"name": "Ada"})


def test_identity_is_a_copy(app: cl.App, backend: cl.Backend) -> None:
    @app.query
    def tamper(ctx):  # type: ignore[no-untyped-def]
        ctx.auth.get_user_identity()["subject"] = "evil"
        return ctx.auth.get_user_identity()["subject"]

    assert backend.client({"subject": "u", "issuer": "i"}).query(tamper) == "u"


# Errors ------------------------------------------------------------------------------------------


def test_convex_error_data_round_trip_and_rollback(app: cl.App, backend: cl.Backend) -> None:
    @app.mutation
    def refuse(ctx):  # type: ignore[no-untyped-def]
        ctx.db.insert("notes", {"body": "never"})
        raise ConvexError({"code": "NOPE", "count": Int64(3), "plain": 2})

    with pytest.raises(ConvexError) as info:
        backend.mutation(refuse)
    assert info.value.data == {"code": "NOPE", "count": Int64(3), "plain": 2.0}
    assert type(info.value.data["count"]) is Int64
    assert type(info.value.data["plain"]) is float
    assert _bodies(backend, app) == []


def test_user_except_exception_cannot_swallow_internal_retries(
    app: cl.App, backend: cl.Backend
) -> None:
    # Only the outcome is observable here: a catch-all in user code still lets the mutation
    # commit normally (Conflict is a BaseException, not an Exception).
    @app.mutation
    def guarded(ctx):  # type: ignore[no-untyped-def]
        try:
            return ctx.db.insert("notes", {"body": "ok"})
        except Exception:  # noqa: BLE001
            return None

    assert backend.mutation(guarded) is not None
    assert _bodies(backend, app) == ["ok"]


def test_validators_for_v_id_args(app: cl.App, backend: cl.Backend) -> None:
    @app.mutation
    def make(ctx):  # type: ignore[no-untyped-def]
        return ctx.db.insert("channels", {"name": "c"})

    @app.query(args={"channel": v.id("channels")})
    def name_of(ctx, channel):  # type: ignore[no-untyped-def]
        return ctx.db.get(channel)["name"]

    channel = backend.mutation(make)
    note = backend.mutation(
        app.mutation(lambda ctx: ctx.db.insert("notes", {"body": "n"}), name="mk_note"))
    assert backend.query(name_of, {"channel": channel}) == "c"
    with pytest.raises(ArgumentValidationError):
        backend.query(name_of, {"channel": note})


# An unknown table (issue 9 item 5) -------------------------------------------------------------


def _chat_schema() -> Any:
    return cl.define_schema({"messages": cl.define_table({"body": v.string()}),
                             "channels": cl.define_table({"name": v.string()})})


def test_querying_a_misspelt_table_warns_with_a_did_you_mean(app: cl.App,
                                                            backend: cl.Backend) -> None:
    app.schema = _chat_schema()

    @app.query
    def typo(ctx):  # type: ignore[no-untyped-def]
        first = ctx.db.query("mesages").collect()
        again = ctx.db.query("mesages").take(5)  # the same name again: no second warning
        other = ctx.db.query("chanels").first()
        return [first, again, other]

    backend.mutation(app.mutation(lambda ctx: ctx.db.insert("messages", {"body": "hi"}),
                                  name="seed"))
    with pytest.warns(UnknownTableWarning) as warned:
        assert backend.query(typo) == [[], [], None]  # empty, as in Convex
    assert [str(w.message) for w in warned] == [
        "ctx.db.query('mesages'): there is no table 'mesages' (it is not in the schema and has "
        "no documents), so the query returns nothing. Did you mean 'messages'? The schema's "
        "tables: channels, messages.",
        "ctx.db.query('chanels'): there is no table 'chanels' (it is not in the schema and has "
        "no documents), so the query returns nothing. Did you mean 'channels'? The schema's "
        "tables: channels, messages."]
    assert warned[0].filename == __file__  # shown at the user's line, not inside convex_lab
    lines = backend.logs()[-1]["lines"]
    assert [line[:40] for line in lines] == ["[WARN] ctx.db.query('mesages'): there is",
                                             "[WARN] ctx.db.query('chanels'): there is"]
    with pytest.warns(UnknownTableWarning):  # once per run: the next run says it again
        backend.query(typo)


def test_no_warning_without_a_schema_or_for_a_table_with_documents(
        app: cl.App, backend: cl.Backend) -> None:
    @app.query
    def look(ctx, table: str):  # type: ignore[no-untyped-def]
        return len(ctx.db.query(table).collect())

    @app.mutation
    def note(ctx):  # type: ignore[no-untyped-def]
        ctx.db.insert("notes", {"body": "x"})

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert backend.query(look, {"table": "mesages"}) == 0  # no schema: Convex is silent
        app.schema = _chat_schema()
        backend.mutation(note)  # a table outside the schema, with documents
        assert backend.query(look, {"table": "notes"}) == 1
        assert backend.query(look, {"table": "channels"}) == 0  # in the schema, still empty
    assert all(not e["lines"] for e in backend.logs())


def test_warnings_as_errors_make_the_query_fail_at_the_users_line(
        app: cl.App, backend: cl.Backend) -> None:
    app.schema = _chat_schema()

    @app.mutation
    def careless(ctx):  # type: ignore[no-untyped-def]
        ctx.db.insert("messages", {"body": "written first"})
        return ctx.db.query("mesages").collect()

    with warnings.catch_warnings():
        warnings.simplefilter("error", UnknownTableWarning)
        with pytest.raises(UnknownTableWarning, match="Did you mean 'messages'"):
            backend.mutation(careless)
    assert backend.query(_bodies_of(app)) == []  # the mutation rolled back


def _bodies_of(app: cl.App) -> Any:
    @app.internal_query(name="_test:message_bodies")
    def bodies(ctx):  # type: ignore[no-untyped-def]
        return [d["body"] for d in ctx.db.query("messages").collect()]

    return bodies


# cl.now() (issue 9 item 12, DESIGN §8) -----------------------------------------------------------


def test_now_is_frozen_in_queries_and_mutations_and_moves_in_actions(
        app: cl.App, backend: cl.Backend) -> None:
    @app.internal_query
    def query_times(ctx):  # type: ignore[no-untyped-def]
        first = cl.now()
        time.sleep(0.02)
        return [first, cl.now()]

    @app.mutation
    def mutation_times(ctx):  # type: ignore[no-untyped-def]
        first = cl.now()
        time.sleep(0.02)
        nested = ctx.run_query(query_times)  # a nested query shares its caller's time
        ctx.db.insert("notes", {"at": cl.now()})
        return [first, *nested, cl.now()]

    @app.action
    def action_times(ctx):  # type: ignore[no-untyped-def]
        first = cl.now()
        time.sleep(0.02)
        inner = ctx.run_query(query_times)  # its own transaction, its own start
        return [first, *inner, cl.now()]

    before = time.time() * 1000
    q = backend.query(query_times)
    m = backend.mutation(mutation_times)
    a = backend.action(action_times)
    after = time.time() * 1000
    assert q[0] == q[1] and before <= q[0] <= after
    assert len(set(m)) == 1 and q[0] <= m[0] <= after
    assert a[1] == a[2] and a[1] >= a[0] + 19 and a[3] >= a[2] + 19  # the clock moves
    stored = backend.query(_notes_at(app))
    assert stored == [m[0]]


def _notes_at(app: cl.App) -> Any:
    @app.internal_query(name="_test:notes_at")
    def notes_at(ctx):  # type: ignore[no-untyped-def]
        return [d["at"] for d in ctx.db.query("notes").collect()]

    return notes_at


def test_now_follows_the_backends_virtual_clock(app: cl.App) -> None:
    @app.internal_mutation
    def stamp(ctx, label: str):  # type: ignore[no-untyped-def]
        ctx.db.insert("notes", {"label": label, "at": cl.now()})

    @app.mutation
    def later(ctx):  # type: ignore[no-untyped-def]
        ctx.scheduler.run_after(timedelta(minutes=10), stamp, {"label": "scheduled"})

    with cl.Backend(app=app, clock="virtual") as backend:
        start = backend.clock.now()
        backend.mutation(stamp, {"label": "now"})
        backend.mutation(later)
        backend.clock.advance(timedelta(hours=1))
        assert backend.query(_notes_at(app)) == [start, start + 600_000]  # the job's due time
        # Outside functions: the default backend's clock.
        old = cl.set_default_backend(backend)
        try:
            assert cl.now() == backend.clock.now() == start + 3_600_000
        finally:
            cl.set_default_backend(old)
    assert abs(cl.now() - time.time() * 1000) < 60_000  # the (real) default backend again

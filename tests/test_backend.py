"""Backend: calls, errors, clients, logs, deploys, persistence and clocks (DESIGN §4, §8)."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import convex_lab as cl
from convex_lab import ConvexError, v
from convex_lab.clock import Clock, VirtualClock
from convex_lab.errors import BackendClosedError, FunctionError


@pytest.fixture
def app() -> cl.App:
    app = cl.App()

    @app.mutation(args={"body": v.string()}, name="messages:send")
    def send(ctx, body):  # type: ignore[no-untyped-def]
        return ctx.db.insert("messages", {"body": body})

    @app.query(name="messages:list")
    def list_messages(ctx):  # type: ignore[no-untyped-def]
        return [d["body"] for d in ctx.db.query("messages").collect()]

    @app.internal_mutation(name="messages:wipe")
    def wipe(ctx):  # type: ignore[no-untyped-def]
        for d in ctx.db.query("messages").collect():
            ctx.db.delete(d["_id"])

    return app


@pytest.fixture
def backend(app: cl.App) -> Iterator[cl.Backend]:
    with cl.Backend(app=app) as b:
        yield b


# Calls and their errors ----------------------------------------------------------------------


def test_admin_calls(backend: cl.Backend) -> None:
    backend.mutation("messages:send", {"body": "hi"})
    backend.mutation(cl.api.messages.send, {"body": "yo"})
    assert backend.query(cl.api.messages.list) == ["hi", "yo"]
    backend.mutation(cl.internal.messages.wipe)  # admin calls may call internal functions
    assert backend.query("messages:list") == []


def test_wrong_kind(backend: cl.Backend) -> None:
    with pytest.raises(FunctionError) as info:
        backend.query("messages:send", {"body": "x"})
    assert str(info.value) == (
        "messages:send is a mutation, not a query: use backend.mutation(...)")
    with pytest.raises(FunctionError, match=r"not a mutation: use backend.query\(...\)"):
        backend.mutation("messages:list")
    with pytest.raises(FunctionError, match=r"not an action: use client.query\(...\)"):
        backend.client().action("messages:list")


def test_unknown_function_did_you_mean(backend: cl.Backend) -> None:
    with pytest.raises(FunctionError) as info:
        backend.mutation("messages:sned", {"body": "x"})
    assert str(info.value) == (
        "Could not find function for 'messages:sned'. Did you mean 'messages:send'?")
    with pytest.raises(FunctionError, match="Did you mean 'messages:send'"):
        backend.mutation("send")


def test_client_reaches_public_functions_only(backend: cl.Backend) -> None:
    client = backend.client()
    client.mutation(cl.api.messages.send, {"body": "hi"})
    assert client.query("messages:list") == ["hi"]
    with pytest.raises(FunctionError, match="Could not find public function for 'messages:wipe'"):
        client.mutation("messages:wipe")
    with pytest.raises(FunctionError, match="Could not find public function"):
        client.mutation(cl.internal.messages.wipe)


def test_client_mutations_run_one_at_a_time(app: cl.App, backend: cl.Backend) -> None:
    active: list[int] = []
    overlaps: list[int] = []

    @app.mutation
    def slow(ctx):  # type: ignore[no-untyped-def]
        active.append(1)
        if len(active) > 1:
            overlaps.append(len(active))
        time.sleep(0.01)
        active.pop()

    client = backend.client()
    threads = [threading.Thread(target=client.mutation, args=(slow,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlaps == []


def test_closed_backend_refuses_calls(app: cl.App) -> None:
    backend = cl.Backend(app=app)
    backend.close()
    backend.close()  # idempotent
    # One error for every way in: calls, clients, imports, SQL, a transaction of the store.
    for attempt in (lambda: backend.query("messages:list"),
                    lambda: backend.client().mutation("messages:send", {}),
                    lambda: backend.import_documents("messages", [{"body": "x"}]),
                    lambda: backend.sql("SELECT 1"),
                    backend.store.begin):
        with pytest.raises(BackendClosedError, match="This backend is closed"):
            attempt()


# Logs --------------------------------------------------------------------------------------------


def test_logs_capture_prints_and_errors(app: cl.App, backend: cl.Backend,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    @app.internal_query
    def helper(ctx):  # type: ignore[no-untyped-def]
        print("inside helper")
        return 1

    @app.mutation
    def chatty(ctx, n: float):  # type: ignore[no-untyped-def]
        print("hello", n)
        print("second line")
        ctx.run_query(helper)
        if n < 0:
            raise ConvexError("negative")
        return n

    print("outside")
    backend.mutation(chatty, {"n": 1})
    with pytest.raises(ConvexError):
        backend.mutation(chatty, {"n": -1})
    assert capsys.readouterr().out == "outside\n"  # function output goes to the logs only

    logs = backend.logs()
    assert [(e["function"], e["kind"]) for e in logs] == [
        (helper.path, "query"), (chatty.path, "mutation"),
        (helper.path, "query"), (chatty.path, "mutation"),
    ]
    assert logs[0]["lines"] == ["inside helper"]
    assert logs[1]["lines"] == ["hello 1.0", "second line"]
    assert logs[1]["error"] is None
    assert logs[3]["error"] == "ConvexError: negative"
    for entry in logs:
        assert set(entry) == {"function", "kind", "lines", "error", "started", "duration_ms"}
        assert entry["duration_ms"] >= 0
        assert abs(entry["started"] - time.time() * 1000) < 60_000


def test_logs_record_validation_errors(backend: cl.Backend) -> None:
    with pytest.raises(cl.errors.ArgumentValidationError):
        backend.mutation("messages:send", {"body": 5})
    error = backend.logs()[-1]["error"]
    assert error is not None and error.startswith("ArgumentValidationError: ")


def test_logs_capture_is_per_thread(app: cl.App, backend: cl.Backend) -> None:
    barrier = threading.Barrier(2)

    @app.action
    def talk(ctx, who: str):  # type: ignore[no-untyped-def]
        for i in range(3):
            print(who, i)
            print(who, "err", i, file=sys.stderr)
            logging.getLogger("test_backend.talk").warning("%s warn %d", who, i)
            if i == 0:
                barrier.wait(timeout=5)

    threads = [threading.Thread(target=backend.action, args=(talk, {"who": w}))
               for w in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = sorted(tuple(e["lines"]) for e in backend.logs())
    assert lines == [tuple(line for i in range(3) for line in (
        f"{w} {i}", f"[ERROR] {w} err {i}", f"[WARN] {w} warn {i}")) for w in ("a", "b")]


def test_logs_capture_stderr_and_logging_with_convexs_levels(
        app: cl.App, backend: cl.Backend, capfd: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("test_backend.noisy")
    verbose = logging.getLogger("test_backend.noisy.verbose")

    @app.mutation
    def noisy(ctx):  # type: ignore[no-untyped-def]
        print("to stdout")
        print("to stderr", file=sys.stderr)
        log.warning("careful with %s", "that")
        log.error("bad\nsecond line")
        log.critical("worse")
        log.info("below the logger's level: dropped, as logging drops it")
        verbose.debug("a detail")
        verbose.info("some news")
        try:
            1 / 0  # noqa: B018
        except ZeroDivisionError:
            log.exception("it failed")

    verbose.setLevel(logging.DEBUG)
    try:
        with caplog.at_level(logging.WARNING, logger="test_backend.noisy"):
            backend.mutation(noisy)
            log.warning("outside a function")  # the handlers get it, as before
    finally:
        verbose.setLevel(logging.NOTSET)
    lines = backend.logs()[-1]["lines"]
    assert lines[:9] == [
        "to stdout", "[ERROR] to stderr", "[WARN] careful with that", "[ERROR] bad",
        "[ERROR] second line", "[ERROR] worse", "[DEBUG] a detail", "[INFO] some news",
        "[ERROR] it failed"]
    assert lines[9] == "[ERROR] Traceback (most recent call last):"
    assert lines[-1] == "[ERROR] ZeroDivisionError: division by zero"
    # Inside the function nothing reached the streams or the logging handlers.
    assert capfd.readouterr() == ("", "")
    assert [r.getMessage() for r in caplog.records] == ["outside a function"]


def test_partial_lines_of_different_levels_never_merge(app: cl.App, backend: cl.Backend) -> None:
    @app.action
    def interleaved(ctx):  # type: ignore[no-untyped-def]
        sys.stdout.write("half ")
        sys.stderr.write("an error\n")
        sys.stdout.write("and the rest\n")
        sys.stderr.write("unfinished")

    backend.action(interleaved)
    assert backend.logs()[-1]["lines"] == ["[ERROR] an error", "half and the rest",
                                           "[ERROR] unfinished"]


def test_stderr_outside_functions_and_after_a_commit_reaches_the_streams(
        app: cl.App, backend: cl.Backend, capfd: pytest.CaptureFixture[str]) -> None:
    backend.mutation("messages:send", {"body": "installs the routers"})
    print("cell output", file=sys.stderr)
    # A commit listener runs after the mutation's handler: its output is not the mutation's.
    remove = backend.add_commit_listener(lambda: print("listener", file=sys.stderr))
    backend.mutation("messages:send", {"body": "x"})
    remove()
    assert capfd.readouterr().err == "cell output\nlistener\n"
    assert backend.logs()[-1]["lines"] == []


# Deploys and persistence -----------------------------------------------------------------------


def test_redeploy_replaces_code(app: cl.App, backend: cl.Backend) -> None:
    backend.mutation("messages:send", {"body": "x"})
    new_app = cl.App(schema=cl.define_schema({"messages": cl.define_table({"body": v.string()})}))

    @new_app.query(name="messages:list")
    def list_upper(ctx):  # type: ignore[no-untyped-def]
        return [d["body"].upper() for d in ctx.db.query("messages").collect()]

    backend.deploy(new_app)
    assert backend.app is new_app
    assert backend.query("messages:list") == ["X"]
    with pytest.raises(FunctionError, match="Could not find function for 'messages:send'"):
        backend.mutation("messages:send", {"body": "y"})
    assert backend.store.schema is new_app.schema


def test_deploy_rejects_a_schema_that_existing_data_breaks(backend: cl.Backend) -> None:
    backend.mutation("messages:send", {"body": "x"})
    bad = cl.App(schema=cl.define_schema({"messages": cl.define_table({"text": v.string()})}))
    with pytest.raises(cl.errors.SchemaError):
        backend.deploy(bad)
    assert backend.query("messages:list") == ["x"]  # the old code is still served


def test_schema_set_on_the_app_is_pushed_before_the_next_call(
    app: cl.App, backend: cl.Backend
) -> None:
    app.schema = cl.define_schema({"messages": cl.define_table({"body": v.string()})})
    backend.query("messages:list")
    assert backend.store.schema is app.schema


def test_file_backed_backend_survives_reopen(app: cl.App, tmp_path: Path) -> None:
    path = tmp_path / "x.duckdb"
    with cl.Backend(path, app=app) as backend:
        backend.mutation("messages:send", {"body": "durable"})
    with cl.Backend(path, app=app) as backend:
        assert backend.query("messages:list") == ["durable"]
        backend.mutation("messages:send", {"body": "again"})
    with cl.Backend(str(path), app=app) as backend:
        assert backend.query("messages:list") == ["durable", "again"]


def test_file_backed_backend_keeps_its_schema(app: cl.App, tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    app.schema = cl.define_schema({"messages": cl.define_table({"body": v.string()})})
    with cl.Backend(path, app=app) as backend:
        backend.mutation("messages:send", {"body": "x"})
    code_only = cl.App()  # a fresh kernel that hasn't run its %%schema cell yet
    with cl.Backend(path, app=code_only) as backend:
        assert backend.store.schema == app.schema
    with cl.Backend(path, app=app) as backend:
        assert backend.query("messages:list") == ["x"]


# Clocks -----------------------------------------------------------------------------------------


def test_virtual_clock_sets_creation_time(app: cl.App) -> None:
    @app.query
    def times(ctx):  # type: ignore[no-untyped-def]
        return [d["_creationTime"] for d in ctx.db.query("messages").collect()]

    with cl.Backend(app=app, clock="virtual") as backend:
        start = backend.clock.now()
        assert abs(start - time.time() * 1000) < 60_000
        time.sleep(0.01)
        assert backend.clock.now() == start  # virtual time stands still
        backend.mutation("messages:send", {"body": "a"})
        backend.clock.advance(timedelta(hours=1))
        backend.mutation("messages:send", {"body": "b"})
        assert backend.clock.advance(500) == start + 3_600_000 + 500
        first, second = backend.query(times)
        assert start <= first < start + 1
        assert start + 3_600_000 <= second < start + 3_600_000 + 1


def test_virtual_clock_hooks(app: cl.App) -> None:
    clock = VirtualClock(start_ms=1_000.0)
    seen: list[Any] = []

    def hook(c: Clock, target: float) -> None:
        assert isinstance(c, VirtualClock)
        for due in (1_500.0, 1_800.0):  # what a scheduler does: step to each due time
            c.move_to(due)
            seen.append(c.now())
        seen.append(target)

    remove = clock.on_advance(hook)
    assert clock.advance(1_000) == 2_000.0
    assert seen == [1_500.0, 1_800.0, 2_000.0]
    remove()
    clock.advance(1)
    assert len(seen) == 3
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_real_clock_cannot_advance(backend: cl.Backend) -> None:
    assert abs(backend.clock.now() - time.time() * 1000) < 1_000
    with pytest.raises(RuntimeError, match="virtual"):
        backend.clock.advance(1)


# Default backend --------------------------------------------------------------------------------


def test_default_backend_is_lazy_and_replaceable() -> None:
    old = cl.set_default_backend(None)
    try:
        first = cl.default_backend()
        assert first is cl.default_backend()
        assert first.app is cl.default_app() and first.path is None
        replacement = cl.Backend(app=cl.default_app())
        assert cl.set_default_backend(replacement) is first
        assert cl.default_backend() is replacement
        first.close()
        replacement.close()
        assert cl.default_backend() is not replacement  # a closed default is replaced
    finally:
        current = cl.set_default_backend(old)
        if current is not None:
            current.close()


# Overhead --------------------------------------------------------------------------------------


def test_per_call_overhead_smoke(backend: cl.Backend) -> None:
    # The target is >= 20,000 trivial mutations/s (benchmarks/); this only catches a collapse.
    n = 2_000
    t0 = time.perf_counter()
    for i in range(n):
        backend.mutation("messages:send", {"body": f"m{i}"})
    rate = n / (time.perf_counter() - t0)
    assert rate > 2_000, f"{rate:.0f} mutations/s"

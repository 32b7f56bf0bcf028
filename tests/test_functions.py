"""Registration, paths, references, validation and handler kinds (DESIGN §3, §8)."""

from __future__ import annotations

import asyncio
import sys
import types
from collections.abc import Iterator
from typing import Literal

import pytest

import convex_lab as cl
import convex_lab.backend as backend_module
import convex_lab.functions as functions_module
from convex_lab import Int64, v
from convex_lab.errors import ArgumentValidationError, FunctionError, ReturnsValidationError
from convex_lab.functions import FunctionDef, default_path, normalize_path, reference_path


@pytest.fixture
def app() -> App:
    return cl.App()


App = cl.App


@pytest.fixture
def backend(app: cl.App) -> Iterator[cl.Backend]:
    with cl.Backend(app=app) as b:
        yield b


@pytest.fixture
def fresh_default(monkeypatch: pytest.MonkeyPatch) -> Iterator[cl.App]:
    """A fresh default app and default backend, restored afterwards."""
    monkeypatch.setattr(functions_module, "_default_app", None)
    old = backend_module.set_default_backend(None)
    yield cl.default_app()
    current = backend_module.set_default_backend(old)
    if current is not None:
        current.close()


# Registration --------------------------------------------------------------------------------


def test_decorators_bare_and_with_options(app: cl.App) -> None:
    @app.query
    def list_all(ctx):  # type: ignore[no-untyped-def]
        """All of them."""
        return []

    @app.mutation(args={"body": v.string()}, returns=v.null(), name="messages:send")
    def send(ctx, body):  # type: ignore[no-untyped-def]
        return None

    @app.internal_action
    def crunch(ctx):  # type: ignore[no-untyped-def]
        return 1

    assert isinstance(list_all, FunctionDef)
    assert list_all.__name__ == "list_all" and list_all.__doc__ == "All of them."
    assert (list_all.kind, list_all.visibility) == ("query", "public")
    assert list_all.args_validator is None and list_all.returns_validator is None
    assert (send.path, send.kind) == ("messages:send", "mutation")
    assert send.args_validator == v.object({"body": v.string()})
    assert send.returns_validator == v.null()
    assert (crunch.kind, crunch.visibility) == ("action", "internal")
    assert set(app.functions) == {list_all.path, "messages:send", crunch.path}
    assert app.functions["messages:send"] is send
    assert send.handler(None, body="x") is None  # the plain handler stays reachable


def test_all_seven_decorators(app: cl.App) -> None:
    kinds = {}
    for name in ("query", "mutation", "action", "internal_query", "internal_mutation",
                 "internal_action", "http_action"):
        fn = getattr(app, name)(lambda ctx: None, name=f"m:{name}")
        kinds[name] = (fn.kind, fn.visibility)
    assert kinds == {
        "query": ("query", "public"),
        "mutation": ("mutation", "public"),
        "action": ("action", "public"),
        "internal_query": ("query", "internal"),
        "internal_mutation": ("mutation", "internal"),
        "internal_action": ("action", "internal"),
        "http_action": ("httpAction", "public"),
    }


def test_module_level_decorators_register_on_default_app(fresh_default: cl.App) -> None:
    @cl.internal_mutation(name="jobs:tick")
    def tick(ctx):  # type: ignore[no-untyped-def]
        return None

    assert cl.default_app().functions["jobs:tick"] is tick
    assert tick.app is cl.default_app()


def test_default_paths() -> None:
    def fn(ctx):  # type: ignore[no-untyped-def]
        return None

    fn.__module__ = "__main__"
    assert default_path(fn) == "fn"
    module = types.ModuleType("tests_fake_pkg.fns.msgs")
    module.__file__ = "/nowhere/tests_fake_pkg/fns/msgs.py"
    sys.modules[module.__name__] = module
    try:
        fn.__module__ = module.__name__
        assert default_path(fn) == "tests_fake_pkg/fns/msgs:fn"
    finally:
        del sys.modules[module.__name__]
    # A module that isn't importable (no file, e.g. exec'd code) gets the bare name too.
    fn.__module__ = "not_a_loaded_module"
    assert default_path(fn) == "fn"


def test_path_of_a_function_in_this_test_module(app: cl.App) -> None:
    @app.query
    def here(ctx):  # type: ignore[no-untyped-def]
        return None

    assert here.path == __name__.replace(".", "/") + ":here"


def test_path_normalisation() -> None:
    assert normalize_path("messages.js:send") == "messages:send"
    assert normalize_path("messages:default") == "messages"
    assert normalize_path("dir/file.ts:fn") == "dir/file:fn"
    assert normalize_path("send") == "send"


def test_redefining_replaces(app: cl.App, backend: cl.Backend) -> None:
    @app.query(name="answer")
    def answer(ctx):  # type: ignore[no-untyped-def]
        return 1

    assert backend.query("answer") == 1.0

    @app.mutation(name="answer")  # re-running the cell with another body (and kind)
    def answer2(ctx):  # type: ignore[no-untyped-def]
        return 2

    assert app.functions["answer"] is answer2
    assert backend.mutation("answer") == 2.0
    with pytest.raises(FunctionError, match="answer is a mutation, not a query"):
        backend.query(answer)


# References ----------------------------------------------------------------------------------


def test_api_references_build_paths() -> None:
    assert str(cl.api.send) == "send"
    assert str(cl.api.messages.send) == "messages:send"
    assert str(cl.api.a.b.c) == "a/b:c"
    assert reference_path(cl.api.messages.send) == ("messages:send", True)
    assert reference_path(cl.internal.jobs.tick) == ("jobs:tick", False)
    assert cl.api.x.y == cl.api.x.y and cl.api.x.y != cl.internal.x.y
    assert repr(cl.api.messages.send) == "cl.api.messages.send"
    with pytest.raises(FunctionError, match="root"):
        str(cl.api)


def test_references_resolve_at_call_time(app: cl.App, backend: cl.Backend) -> None:
    ref = cl.api.messages.count  # made before the function exists

    @app.query(name="messages:count")
    def count(ctx):  # type: ignore[no-untyped-def]
        return 3

    assert backend.query(ref) == 3.0
    assert backend.query("messages.js:count") == 3.0
    assert backend.query(count) == 3.0


def test_api_reference_reaches_only_public_functions(app: cl.App, backend: cl.Backend) -> None:
    @app.internal_query(name="secret")
    def secret(ctx):  # type: ignore[no-untyped-def]
        return "s"

    assert backend.query(cl.internal.secret) == "s"
    assert backend.query("secret") == "s"
    with pytest.raises(FunctionError, match="Could not find public function for 'secret'"):
        backend.query(cl.api.secret)


def test_not_a_reference(backend: cl.Backend) -> None:
    with pytest.raises(FunctionError, match="not a function reference"):
        backend.query(42)  # type: ignore[arg-type]
    # described safely: repr() of this int raises ValueError (the 4300-digit limit)
    with pytest.raises(FunctionError, match=r"about 5001 digits.* not a function reference"):
        backend.query(10**5000)  # type: ignore[arg-type]


# Validation ----------------------------------------------------------------------------------


def test_argument_validation_error_text(app: cl.App, backend: cl.Backend) -> None:
    @app.mutation(args={"body": v.string()})
    def send(ctx, body):  # type: ignore[no-untyped-def]
        return body

    with pytest.raises(ArgumentValidationError) as info:
        backend.mutation(send, {"body": 1})
    assert str(info.value) == (
        "ArgumentValidationError: Value does not match validator.\n"
        "Path: .body\nValue: 1\nValidator: v.string()"
    )
    with pytest.raises(ArgumentValidationError, match="missing the required field `body`"):
        backend.mutation(send, {})
    with pytest.raises(ArgumentValidationError, match="extra field `x`"):
        backend.mutation(send, {"body": "a", "x": 1})
    with pytest.raises(ArgumentValidationError, match="Expected to receive an object"):
        backend.mutation(send, [1, 2])  # type: ignore[arg-type]


def test_returns_validation_error_text(app: cl.App, backend: cl.Backend) -> None:
    @app.query(returns=v.string())
    def bad(ctx):  # type: ignore[no-untyped-def]
        return 5

    with pytest.raises(ReturnsValidationError) as info:
        backend.query(bad)
    assert str(info.value).startswith("ReturnsValidationError: Value does not match validator.")
    assert "Validator: v.string()" in str(info.value)


def test_annotations_are_validators(app: cl.App, backend: cl.Backend) -> None:
    seen: dict[str, object] = {}

    @app.query
    def typed(ctx, n: int, x: float, tags: list[str], mode: Literal["a", "b"] = "a"):  # type: ignore[no-untyped-def]
        seen.update(n=n, x=x, tags=tags, mode=mode)
        return n

    assert typed.args_validator is not None
    result = backend.query(typed, {"n": 5, "x": 2, "tags": ["t"]})
    assert type(seen["n"]) is Int64 and seen["n"] == 5
    assert type(seen["x"]) is float
    assert type(result) is Int64  # int64 stays int64 on the way out
    with pytest.raises(ArgumentValidationError, match=r"Validator: v\.int64"):
        backend.query(typed, {"n": "five", "x": 1, "tags": []})
    with pytest.raises(ArgumentValidationError):
        backend.query(typed, {"n": 1, "x": 1, "tags": [], "mode": "c"})


def test_args_given_win_over_annotations(app: cl.App, backend: cl.Backend) -> None:
    @app.query(args={"n": v.float64()})
    def f(ctx, n: int):  # type: ignore[no-untyped-def]
        return type(n).__name__

    assert backend.query(f, {"n": 1}) == "float"


def test_unvalidated_args_are_converted(app: cl.App, backend: cl.Backend) -> None:
    @app.query
    def echo(ctx, **kwargs):  # type: ignore[no-untyped-def]
        return {k: type(x).__name__ for k, x in kwargs.items()}

    got = backend.query(echo, {"a": 1, "b": Int64(2), "c": "s", "d": (1, 2)})
    assert got == {"a": "float", "b": "Int64", "c": "str", "d": "list"}


def test_results_are_convex_values(app: cl.App, backend: cl.Backend) -> None:
    @app.query
    def many(ctx):  # type: ignore[no-untyped-def]
        return {"plain": 1, "big": Int64(2**40), "t": (1, "a"), "none": None}

    @app.query
    def nothing(ctx):  # type: ignore[no-untyped-def]
        pass

    assert backend.query(many) == {"plain": 1.0, "big": Int64(2**40), "t": [1.0, "a"],
                                   "none": None}
    assert type(backend.query(many)["big"]) is Int64
    assert backend.query(nothing) is None


# Sync and async handlers ---------------------------------------------------------------------


def test_async_handlers(app: cl.App, backend: cl.Backend) -> None:
    @app.mutation
    async def add(ctx, body: str):  # type: ignore[no-untyped-def]
        await asyncio.sleep(0)
        return ctx.db.insert("notes", {"body": body})

    @app.query
    async def count(ctx):  # type: ignore[no-untyped-def]
        return len(ctx.db.query("notes").collect())

    @app.action
    async def both(ctx):  # type: ignore[no-untyped-def]
        ctx.run_mutation(add, {"body": "from action"})
        return ctx.run_query(count)

    backend.mutation(add, {"body": "x"})
    assert backend.query(count) == 1.0
    assert backend.action(both) == 2.0


def test_async_handler_while_an_event_loop_runs(app: cl.App, backend: cl.Backend) -> None:
    """As in a Jupyter kernel: a loop is running in this thread while the call is made."""

    @app.query
    async def hello(ctx, name: str):  # type: ignore[no-untyped-def]
        await asyncio.sleep(0.001)
        print("greeting", name)
        return f"hi {name}"

    async def cell() -> object:
        return backend.query(hello, {"name": "ada"})

    assert asyncio.run(cell()) == "hi ada"
    assert backend.logs()[-1]["lines"] == ["greeting ada"]


# Calling function objects ---------------------------------------------------------------------


def test_calling_a_function_is_an_admin_call_on_the_default_backend(
    fresh_default: cl.App,
) -> None:
    @cl.mutation(args={"body": v.string()})
    def post(ctx, body):  # type: ignore[no-untyped-def]
        return ctx.db.insert("posts", {"body": body})

    @cl.internal_query
    def posts(ctx):  # type: ignore[no-untyped-def]
        return [d["body"] for d in ctx.db.query("posts").collect()]

    post(body="a")
    post({"body": "b"})
    assert posts() == ["a", "b"]
    assert cl.default_backend().query(posts) == ["a", "b"]
    with pytest.raises(FunctionError, match="keyword arguments"):
        post({"body": "c"}, body="d")


def test_calling_a_function_inside_a_handler_fails(app: cl.App, backend: cl.Backend) -> None:
    @app.query
    def inner(ctx):  # type: ignore[no-untyped-def]
        return 1

    @app.query
    def outer(ctx):  # type: ignore[no-untyped-def]
        return inner()

    with pytest.raises(FunctionError, match=r"use ctx.run_query\(inner"):
        backend.query(outer)


def test_calling_a_function_of_another_app(app: cl.App) -> None:
    @app.query
    def ping(ctx):  # type: ignore[no-untyped-def]
        return "pong"

    with pytest.raises(FunctionError, match="no open Backend serves"):
        ping()
    with cl.Backend(app=app):
        assert ping() == "pong"
    with pytest.raises(FunctionError, match="no open Backend serves"):
        ping()  # that backend is closed


def test_http_action_is_not_called_directly(app: cl.App, backend: cl.Backend) -> None:
    @app.http_action
    def hook(ctx, request):  # type: ignore[no-untyped-def]
        return request

    assert hook.kind == "httpAction" and hook.args_validator is None
    assert backend.executor.run_http(hook, "req") == "req"
    with pytest.raises(FunctionError, match="HTTP action"):
        backend.action(hook)
    with pytest.raises(FunctionError, match="HTTP route"):
        hook()


def test_a_call_the_handler_cannot_take_is_an_argument_error() -> None:
    """Without ``args=``, the handler's parameters say what it takes: an unknown or missing
    argument is an ArgumentValidationError naming it, not a TypeError from Python's call."""
    app = cl.App()

    @app.query(name="f")
    def f(ctx, a, b=1.0):  # type: ignore[no-untyped-def]
        return a

    @app.query(name="anything")
    def anything(ctx, **kwargs):  # type: ignore[no-untyped-def]
        return sorted(kwargs)

    with cl.Backend(app=app) as backend:
        with pytest.raises(ArgumentValidationError, match=r"extra field `c`.*it takes: a, b"):
            backend.query("f", {"a": 1, "c": 2})
        with pytest.raises(ArgumentValidationError, match="missing the required field `a`"):
            backend.query("f", {"b": 2})
        with pytest.raises(ArgumentValidationError, match="extra field `zz`"):
            backend.client().query("f", {"zz": 1})
        assert backend.query("f", {"a": "x"}) == "x"
        assert backend.query("anything", {"y": 1, "x": 2}) == ["x", "y"]

"""HTTP actions (reference §13): routing, requests and responses, errors, logs, the site URL."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

import convex_lab as cl
from convex_lab import v
from convex_lab.errors import ConvexError, FunctionError


def echo(ctx: Any, request: cl.Request) -> cl.Response:
    return cl.Response.from_json({"method": request.method, "path": request.path,
                                  "query": request.query, "body": request.text(),
                                  "type": request.headers.get("Content-Type")})


def named(text: str) -> Any:
    def handler(ctx: Any, request: cl.Request) -> cl.Response:
        return cl.Response(text)
    handler.__name__ = text.replace("-", "_")
    return handler


@pytest.fixture
def app() -> cl.App:
    app = cl.App()
    app.schema = cl.define_schema({"events": cl.define_table({"kind": v.string()})})

    @app.internal_mutation
    def record(ctx: Any, kind: str) -> Any:
        return ctx.db.insert("events", {"kind": kind})

    @app.query
    def count(ctx: Any) -> float:
        return float(len(ctx.db.query("events").collect()))

    @app.http_action
    def webhook(ctx: Any, request: cl.Request) -> cl.Response:
        print("webhook got", request.json()["kind"])
        ctx.run_mutation(record, {"kind": request.json()["kind"]})
        return cl.Response(json.dumps({"n": ctx.run_query(count)}), status=201,
                           headers={"content-type": "application/json"})

    @app.http_action
    def boom(ctx: Any, request: cl.Request) -> cl.Response:
        raise ValueError("boom")

    @app.http_action
    def refuse(ctx: Any, request: cl.Request) -> cl.Response:
        raise ConvexError({"reason": "nope", "n": cl.Int64(3)})

    @app.http_action
    def not_a_response(ctx: Any, request: cl.Request) -> Any:
        return {"a": 1}

    http = cl.HttpRouter()
    http.route(path="/hooks/event", method="POST", handler=webhook)
    http.route(path="/echo", method="GET", handler=echo)
    http.route(path="/echo", method="POST", handler=echo)
    http.route(path_prefix="/files/", method="GET", handler=named("files"))
    http.route(path_prefix="/files/images/", method="GET", handler=named("images"))
    http.route(path="/files/images/exact", method="GET", handler=named("exact"))
    http.route(path="/boom", method="GET", handler=boom)
    http.route(path="/refuse", method="GET", handler=refuse)
    http.route(path="/bad-return", method="GET", handler=not_a_response)
    app.http = http
    return app


@pytest.fixture
def backend(app: cl.App) -> Iterator[cl.Backend]:
    with cl.Backend(app=app) as b:
        yield b


# Routing -------------------------------------------------------------------------------------

def test_exact_path_beats_prefix_and_longest_prefix_wins(backend: cl.Backend) -> None:
    assert backend.fetch("/files/images/exact").text() == "exact"
    assert backend.fetch("/files/images/cat.png").text() == "images"
    assert backend.fetch("/files/doc.txt").text() == "files"
    assert backend.fetch("/files/images").text() == "files"  # "/files/images/" needs the slash


def test_no_route_is_convex_404(backend: cl.Backend) -> None:
    missing = backend.fetch("/nowhere")
    assert missing.status == 404
    assert missing.text() == "No HttpAction routed for /nowhere"
    wrong_method = backend.fetch("/hooks/event")  # GET on a POST-only path
    assert wrong_method.status == 404


def test_head_is_served_by_get_without_a_body(backend: cl.Backend) -> None:
    got = backend.fetch("/files/doc.txt")
    head = backend.fetch("/files/doc.txt", method="HEAD")
    assert got.text() == "files"
    assert head.status == 200 and head.body == b""
    assert head.headers["content-length"] == "5"
    assert head.headers["content-type"] == "text/plain;charset=UTF-8"
    assert backend.fetch("/echo", method="HEAD").headers["content-type"] == "application/json"


@pytest.mark.parametrize(("route", "message"), [
    ({"path": "nope", "method": "GET"}, "path 'nope' does not start with a /"),
    ({"path_prefix": "/a", "method": "GET"}, "pathPrefix /a must end with a /"),
    ({"path_prefix": "a/", "method": "GET"}, "does not start with a /"),
    ({"path": "/.files/x", "method": "GET"}, "is reserved"),
    ({"path": "/x", "method": "HEAD"}, "'HEAD' is not an allowed HTTP method"),
    ({"path": "/x", "method": "TRACE"}, "'TRACE' is not an allowed HTTP method"),
    ({"path": "/x", "path_prefix": "/x/", "method": "GET"}, "cannot contain both"),
    ({"method": "GET"}, "must contain either field"),
    ({"path": "/x"}, "route requires method"),
])
def test_invalid_routes_are_refused(route: dict[str, Any], message: str) -> None:
    http = cl.HttpRouter()
    with pytest.raises(FunctionError, match=message):
        http.route(handler=echo, **route)
    assert http.routes() == []


def test_duplicate_routes_are_refused() -> None:
    http = cl.HttpRouter()
    http.route(path="/a", method="GET", handler=echo)
    http.route(path="/a", method="POST", handler=echo)  # another method is fine
    with pytest.raises(FunctionError, match="Path '/a' for method GET already in use"):
        http.route(path="/a", method="get", handler=echo)
    http.route(path_prefix="/p/", method="GET", handler=echo)
    with pytest.raises(FunctionError, match="GET pathPrefix /p/ is already defined"):
        http.route(path_prefix="/p/", method="GET", handler=echo)
    assert [(p, m) for p, m, _ in http.routes()] == [("/a", "GET"), ("/a", "POST"),
                                                      ("/p/*", "GET")]


def test_a_query_cannot_be_a_route_handler() -> None:
    app = cl.App()

    @app.query
    def q(ctx: Any) -> None:
        return None

    with pytest.raises(FunctionError, match=r"must be an HTTP action; .*q is a query"):
        cl.HttpRouter().route(path="/q", method="GET", handler=q)


def test_no_router_answers_404() -> None:
    with cl.Backend(app=cl.App()) as b:
        assert b.fetch("/x").status == 404


# Requests and responses -----------------------------------------------------------------------

def test_request_shape_and_case_insensitive_headers(backend: cl.Backend) -> None:
    got = backend.fetch("/echo?a=1&a=2&b=x%20y", method="POST", body="héllo",
                        headers={"Content-Type": "text/plain"}).json()
    assert got == {"method": "POST", "path": "/echo", "query": {"a": "1", "b": "x y"},
                   "body": "héllo", "type": "text/plain"}


def test_response_values_are_checked() -> None:
    with pytest.raises(ValueError, match="status must be an int from 200 to 599"):
        cl.Response("x", status=99)
    with pytest.raises(ValueError, match="line break"):
        cl.Response("x", headers={"x-a": "1\r\nSet-Cookie: evil"})
    with pytest.raises(TypeError, match="bytes, str or None"):
        cl.Response({"a": 1})  # type: ignore[arg-type]
    r = cl.Response("hi", headers=[("Set-Cookie", "a=1"), ("set-cookie", "b=2")])
    assert r.headers.get_all("SET-COOKIE") == ["a=1", "b=2"]
    assert r.headers["content-type"] == "text/plain;charset=UTF-8"
    assert cl.Response(None).body == b""


def test_handler_with_nested_calls_commits_and_is_logged(app: cl.App, backend: cl.Backend) -> None:
    backend.clear_logs()
    r = backend.fetch("/hooks/event", method="POST", body=json.dumps({"kind": "push"}))
    assert r.status == 201 and r.json() == {"n": 1.0}
    kinds = [(e["function"].rpartition(":")[2], e["kind"]) for e in backend.logs()]
    assert kinds == [("record", "mutation"), ("count", "query"), ("webhook", "httpAction")]
    assert backend.logs()[-1]["lines"] == ["webhook got push"]
    assert backend.query(app.functions["test_http_actions:count"]) == 1.0


# Errors ---------------------------------------------------------------------------------------

def test_a_failing_handler_is_convex_500_body(backend: cl.Backend) -> None:
    r = backend.fetch("/boom")
    assert r.status == 500
    body = r.json()
    assert body["code"].startswith("[Request ID: ")
    assert body["code"].endswith("] Server Error: Uncaught ValueError: boom")
    assert "Uncaught ValueError: boom" in body["trace"]
    assert "test_http_actions.py" in body["trace"]  # the user's frame
    assert "convex_lab/executor.py" not in body["trace"]
    assert backend.logs()[-1]["error"] == "ValueError: boom"


def test_convex_error_data_reaches_the_caller(backend: cl.Backend) -> None:
    body = backend.fetch("/refuse").json()
    assert body["data"] == {"reason": "nope", "n": {"$integer": "AwAAAAAAAAA="}}


def test_returning_something_else_than_a_response_is_an_error(backend: cl.Backend) -> None:
    r = backend.fetch("/bad-return")
    assert r.status == 500
    assert "returned dict, not a cl.Response" in r.json()["code"]


def test_redacted_errors_hide_the_message_but_keep_data(app: cl.App) -> None:
    with cl.Backend(app=app, redact_errors=True) as b:
        body = b.fetch("/boom").json()
        assert set(body) == {"code"}
        assert body["code"].endswith("] Server Error")
        assert "boom" not in json.dumps(body)
        assert b.fetch("/refuse").json()["data"]["reason"] == "nope"


def test_fetch_rejects_a_relative_path(backend: cl.Backend) -> None:
    with pytest.raises(FunctionError, match="path starting with '/'"):
        backend.fetch("echo")


# The site URL ----------------------------------------------------------------------------------

def _http(method: str, url: str, body: bytes | None = None,
          headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, \
                response.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def test_the_same_routes_answer_on_the_site_url(backend: cl.Backend) -> None:
    server = backend.serve()
    assert server.site_url.startswith("http://127.0.0.1:") and server.url != server.site_url
    status, _, body = _http("POST", server.site_url + "/hooks/event",
                            json.dumps({"kind": "site"}).encode())
    assert status == 201 and json.loads(body) == {"n": 1.0}
    status, _, body = _http("GET", server.site_url + "/nowhere")
    assert (status, body) == (404, b"No HttpAction routed for /nowhere")
    status, _, body = _http("GET", server.site_url + "/boom")
    assert status == 500 and b"Uncaught ValueError: boom" in body
    status, headers, body = _http("HEAD", server.site_url + "/echo")
    assert status == 200 and body == b"" and int(headers["content-length"]) > 0
    status, _, body = _http("GET", server.site_url + "/echo?q=1")
    assert json.loads(body)["query"] == {"q": "1"}
    # The deployment URL is not the site: HTTP actions are not served there.
    status, _, _ = _http("POST", server.url + "/hooks/event", b"{}")
    assert status in (404, 405)
    assert backend.serve() is server  # one server per backend


def test_serve_binds_loopback_only_and_close_stops_it(app: cl.App) -> None:
    b = cl.Backend(app=app)
    server = b.serve()
    assert server.url.startswith("http://127.0.0.1:")
    assert _http("GET", server.url + "/")[2].startswith(b"This Convex deployment is running")
    b.close()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(server.url + "/", timeout=2)


def test_a_cors_preflight_route_works_through_the_site_url() -> None:
    app = cl.App()

    @app.http_action
    def preflight(ctx: Any, request: cl.Request) -> cl.Response:
        return cl.Response(None, status=204, headers={
            "Access-Control-Allow-Origin": request.headers.get("origin", "*"),
            "Access-Control-Allow-Methods": "POST",
            "Access-Control-Allow-Headers": "Content-Type",
            "Vary": "origin"})

    @app.http_action
    def post(ctx: Any, request: cl.Request) -> cl.Response:
        return cl.Response("ok", headers={"Access-Control-Allow-Origin": "*"})

    app.http = cl.HttpRouter()
    app.http.route(path="/api/thing", method="OPTIONS", handler=preflight)
    app.http.route(path="/api/thing", method="POST", handler=post)
    with cl.Backend(app=app) as b:
        site = b.serve().site_url
        status, headers, _ = _http("OPTIONS", site + "/api/thing",
                                   headers={"Origin": "http://localhost:8888",
                                            "Access-Control-Request-Method": "POST"})
        assert status == 204
        assert headers["access-control-allow-origin"] == "http://localhost:8888"
        assert headers["access-control-allow-methods"] == "POST"
        status, headers, body = _http("POST", site + "/api/thing", b"{}")
        assert (status, body, headers["access-control-allow-origin"]) == (200, b"ok", "*")


def test_an_async_handler_and_a_plain_function_handler() -> None:
    app = cl.App()

    async def hello(ctx: Any, request: cl.Request) -> cl.Response:
        return cl.Response("async " + request.query.get("name", "?"))

    app.http = cl.HttpRouter()
    app.http.route(path="/hello", method="GET", handler=hello)
    with cl.Backend(app=app) as b:
        assert b.fetch("/hello?name=ada").text() == "async ada"
        assert b.logs()[-1]["kind"] == "httpAction"
        assert b.logs()[-1]["function"].endswith("hello")

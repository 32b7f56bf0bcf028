"""The live search box widget (convex_lab/jupyter/_search_box.py), headless: requests, live
results that follow matching commits only, and cleanup."""

import pytest

pytest.importorskip("anywidget", reason="the anywidget package is not installed")

from _widget_fixtures import ask, bundle, make, sent, widgets  # noqa: F401 (fixtures)

import convex_lab as cl
from convex_lab import define_schema, define_table, v
from convex_lab.errors import FunctionError
from convex_lab.jupyter.widgets import search_box


@pytest.fixture
def backend():
    app = cl.App()
    app.schema = define_schema({"messages": define_table({"body": v.string()}).search_index(
        "search_body", search_field="body")})

    @app.mutation(name="send")
    def send(ctx, body: str):
        return ctx.db.insert("messages", {"body": body})

    @app.query(name="find")
    def find(ctx, text: str):
        return [d["body"] for d in ctx.db.query("messages").with_search_index(
            "search_body", lambda q: q.search("body", text)).take(5)]

    b = cl.Backend(app=app)
    for body in ["hello world", "help wanted", "goodbye"]:
        b.mutation("send", {"body": body})
    yield b
    b.close()


def runs(backend):
    return sum(1 for e in backend.logs() if e["function"] == "find")


def test_typing_searches_and_results_follow_matching_messages(backend, make, sent):
    box = make(search_box, backend, "find", text="hel")
    assert box.text == "hel"
    assert box.status == "ready"
    assert sorted(box.value) == ["hello world", "help wanted"]

    response = ask(box, sent, {"type": "search", "id": "r1", "text": "wor"})
    assert response["ok"] and response["result"] == "wor"
    assert box.value == ["hello world"]

    before = runs(backend)
    backend.mutation("send", {"body": "nothing relevant"})
    assert runs(backend) == before  # not a match: the query did not even re-run
    backend.mutation("send", {"body": "working late"})
    assert box.value == ["working late", "hello world"]
    backend.mutation("send", {"body": "help again"})  # matched the old text "hel" only
    assert box.value == ["working late", "hello world"]

    box.search("")
    assert box.value == []


def test_bad_requests_get_errors_and_close_unsubscribes(backend, make, sent):
    box = make(search_box, backend, "find")
    response = ask(box, sent, {"type": "search", "id": "r2", "text": 5})
    assert not response["ok"] and "text" in response["error"]["message"]
    with pytest.raises(FunctionError):
        search_box(backend, "nope")
    box.close()
    before = box.value
    backend.mutation("send", {"body": "a new message"})
    assert box.value == before
    assert "Search find(text='')" in box._fallback().plain()

"""Headless protocol tests of the widgets (DESIGN §6, convex_lab/jupyter/_protocol.py).

Each widget is driven as the front-end drives it: a custom message goes to the handler that
anywidget/ipywidgets call (``_handle_custom_msg``), and the test asserts the exact response sent
back and the synced trait state. No browser, no kernel (ipywidgets uses a dummy comm).

Live queries are driven through a small fake with the ``LiveQuery`` attributes
(docs/live-queries.md) for exact state sequences, and once through a real subscription.
"""

from __future__ import annotations

import base64
import math
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest

pytest.importorskip("anywidget")

from _widget_fixtures import ask, bundle, make, sent, widgets  # noqa: F401 (pytest fixtures)

import convex_lab as cl
from convex_lab import ConvexError, Int64, define_schema, define_table, v
from convex_lab.jupyter._protocol import PROTOCOL_VERSION, decode, encode
from convex_lab.jupyter.widgets import (
    STATIC,
    BundleMissingError,
    data_browser,
    display_live,
    function_runner,
    live_widget,
    load_bundle,
    logs_dashboard,
    paginated_widget,
)
from convex_lab.store.database import DatabaseWriter

BUNDLE = STATIC / "widget.js"


# ---------------------------------------------------------------------------------------------
# Fixtures




@pytest.fixture
def backend() -> Iterator[cl.Backend]:
    app = cl.App()
    app.schema = define_schema({
        "tasks": define_table({"text": v.string(), "n": v.int64(), "done": v.optional(v.boolean())})
        .index("by_n", ["n"]),
        "empty": define_table({"x": v.float64()}),
    })

    @app.query(args={"x": v.float64()}, name="double")
    def double(ctx: Any, x: float) -> float:
        print("doubling", x)
        return x * 2

    @app.query(name="tasks")
    def tasks(ctx: Any) -> Any:
        return ctx.db.query("tasks").collect()

    @app.query(args={"paginationOpts": cl.pagination_opts_validator}, name="task_pages")
    def task_pages(ctx: Any, paginationOpts: Any) -> Any:  # noqa: N803 (Convex's name)
        return ctx.db.query("tasks").paginate(paginationOpts)

    @app.mutation(args={"text": v.string(), "n": v.int64()}, name="add")
    def add(ctx: Any, text: str, n: int) -> Any:
        return ctx.db.insert("tasks", {"text": text, "n": n})

    @app.mutation(args={"reason": v.string()}, name="refuse")
    def refuse(ctx: Any, reason: str) -> None:
        raise ConvexError({"reason": reason, "count": Int64(3)})

    @app.internal_mutation(args={"n": v.int64()}, name="secret")
    def secret(ctx: Any, n: int) -> Any:
        return n + 1

    @app.http_action(name="hook")
    def hook(ctx: Any, request: Any) -> Any:
        return cl.Response("ok") if hasattr(cl, "Response") else None

    b = cl.Backend(app=app, clock="virtual")
    for i in range(5):
        b.mutation(add, {"text": f"task {i}", "n": i})
    b.clear_logs()
    yield b
    b.close()



# ---------------------------------------------------------------------------------------------
# Fakes with the LiveQuery / PaginatedLiveQuery attributes (docs/live-queries.md)


class FakeLive:
    def __init__(self, path: str = "tasks:list", args: Any = None) -> None:
        self.path, self.args = path, args if args is not None else {}
        self.value: Any = None
        self.error: BaseException | None = None
        self.status = "loading"
        self.version = 0
        self.callbacks: list[Callable[[Any], None]] = []

    def on_update(self, cb: Callable[[Any], None]) -> Callable[[], None]:
        self.callbacks.append(cb)
        return lambda: self.callbacks.remove(cb)

    def push(self, *, value: Any = ..., error: BaseException | None = None,
             status: str | None = None) -> None:
        if value is not ...:
            self.value = value
        self.error = error
        self.status = status or ("error" if error is not None else "ready")
        self.version += 1
        for cb in list(self.callbacks):
            cb(self)


class FakePages:
    def __init__(self, pages: list[list[Any]]) -> None:
        self._pages, self.loaded = pages, 1
        self.error: BaseException | None = None
        self.version = 1
        self.path = "tasks:page"
        self.requested: list[int] = []
        self.callbacks: list[Callable[[Any], None]] = []

    @property
    def results(self) -> list[Any]:
        return [x for page in self._pages[: self.loaded] for x in page]

    @property
    def status(self) -> str:
        return "CanLoadMore" if self.loaded < len(self._pages) else "Exhausted"

    def on_update(self, cb: Callable[[Any], None]) -> Callable[[], None]:
        self.callbacks.append(cb)
        return lambda: self.callbacks.remove(cb)

    def load_more(self, num_items: int) -> bool:
        self.requested.append(num_items)
        self.loaded += 1
        self.version += 1
        for cb in list(self.callbacks):
            cb(self)
        return True


# ---------------------------------------------------------------------------------------------
# Bundle and values


def test_bundle_is_built_and_exports_render() -> None:
    if not BUNDLE.is_file():
        if shutil.which("npm") is None:
            pytest.skip("npm is not installed: the widget bundle cannot be built here")
        pytest.fail(f"{BUNDLE} is missing: run npm --prefix extension ci && "
                    "npm --prefix extension run build (./scripts/test does it)")
    text = BUNDLE.read_text(encoding="utf-8")
    assert "export{" in text.replace(" ", "") and "as default" in text
    assert "render" in text and "msg:custom" in text
    assert "https://" not in text  # no CDN or network at runtime
    assert (STATIC / "widget.css").is_file()
    esm, css = load_bundle()
    assert esm == text and ".cl-root" in css


def test_missing_bundle_raises_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BundleMissingError,
                       match="widget bundle missing: run npm --prefix extension run build"):
        load_bundle(tmp_path)


def test_display_json_round_trip() -> None:
    value = {"i": Int64(2**62), "f": 1.5, "b": b"\x00\xff", "nan": math.nan, "neg0": -0.0,
             "inf": -math.inf, "s": cl.Id("abc", "t"), "l": [None, True, {"x": Int64(-1)}]}
    wire = encode(value)
    assert wire == {"i": {"$int64": str(2**62)}, "f": 1.5, "b": {"$bytes": "AP8="},
                    "nan": {"$float": "NaN"}, "neg0": {"$float": "-0"},
                    "inf": {"$float": "-Infinity"}, "s": "abc",
                    "l": [None, True, {"x": {"$int64": "-1"}}]}
    back = decode(wire)
    assert back["i"] == 2**62 and type(back["i"]) is Int64
    assert back["b"] == b"\x00\xff" and math.isnan(back["nan"])
    assert math.copysign(1, back["neg0"]) == -1 and back["inf"] == -math.inf
    assert encode(object())["$repr"].startswith("<object")
    assert base64.b64decode(encode(b"hi")["$bytes"]) == b"hi"


# ---------------------------------------------------------------------------------------------
# Requests in general


def test_unknown_request_type_and_messages_without_id(
        backend: cl.Backend, make: Any, sent: list[dict[str, Any]]) -> None:
    w = make(logs_dashboard, backend)
    assert w.protocol_version == PROTOCOL_VERSION and w._view == "logs"
    assert ask(w, sent, {"type": "drop_tables", "id": "1"}) == {
        "type": "response", "id": "1", "ok": False,
        "error": {"name": "ProtocolError", "code": "ProtocolError",
                  "message": "Unknown request type 'drop_tables' for the logs widget "
                             "(it takes: clear)."}}
    before = len(sent)
    w._handle_custom_msg({"type": "clear"}, [])  # no id: cannot be answered
    w._handle_custom_msg("not a dict", [])
    assert len(sent) == before


# ---------------------------------------------------------------------------------------------
# Live query


def test_live_query_states_loading_ready_updated_error_closed(make: Any) -> None:
    live = FakeLive("tasks:list", {"limit": 2.0})
    w = make(live_widget, live)
    assert (w._view, w.path, w.args) == ("live_query", "tasks:list", {"limit": 2.0})
    assert (w.status, w.value, w.has_value, w.error, w.updated_at) == (
        "loading", None, False, None, None)

    live.push(value=[{"_id": "a", "n": Int64(1)}])
    assert (w.status, w.value, w.has_value, w.version) == (
        "ready", [{"_id": "a", "n": {"$int64": "1"}}], True, 1)
    first_update = w.updated_at
    assert first_update is not None

    live.push(value=[{"_id": "a", "n": Int64(2)}])  # "updated": new value, new time
    assert w.value == [{"_id": "a", "n": {"$int64": "2"}}] and w.version == 2
    assert w.updated_at >= first_update

    live.push(error=ConvexError({"why": "nope"}))  # error keeps the last good value
    assert w.status == "error" and w.version == 3
    assert w.error == {"name": "ConvexError", "message": "{why: \"nope\"}", "data": {"why": "nope"}}
    assert w.value == [{"_id": "a", "n": {"$int64": "2"}}] and w.has_value

    live.push(status="ready")  # recovered with the same value: no new "updated" time
    stamp = w.updated_at
    assert (w.status, w.error) == ("ready", None) and w.updated_at == stamp

    live.push(status="closed")
    assert w.status == "closed" and w.value == [{"_id": "a", "n": {"$int64": "2"}}]


def test_live_query_drops_stale_updates_and_unsubscribes_on_close(make: Any) -> None:
    live = FakeLive()
    w = make(live_widget, live)
    live.push(value=1.0)
    live.version = 0  # an update older than what is shown arrives late
    live.value = 99.0
    w.sync_from(live)
    assert w.value == 1.0 and w.version == 1
    assert len(live.callbacks) == 1
    w.close()
    assert live.callbacks == []
    w.close()  # idempotent


def test_live_query_error_before_any_value(make: Any) -> None:
    live = FakeLive()
    w = make(live_widget, live)
    live.push(error=cl.errors.FunctionError("boom"))
    assert (w.status, w.has_value, w.value) == ("error", False, None)
    assert w.error == {"name": "FunctionError", "code": "FunctionError", "message": "boom"}


def test_render_dataframe_is_an_html_table_rerendered_on_change(make: Any) -> None:
    pd = pytest.importorskip("pandas")
    live = FakeLive()
    w = make(live_widget, live, render=pd.DataFrame)
    assert w.rendered and w.html == ""
    live.push(value=[{"name": "<b>ada</b>", "n": 1.0}])
    assert w.html.startswith("<table") and "&lt;b&gt;ada&lt;/b&gt;" in w.html
    live.push(value=[{"name": "grace", "n": 2.0}])
    assert "grace" in w.html and "ada" not in w.html and w.status == "ready"


def test_render_matplotlib_figure_is_a_png_data_url(make: Any) -> None:
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    def chart(values: list[float]) -> Any:
        fig = Figure(figsize=(2, 1))
        fig.add_subplot().plot(values)
        return fig

    live = FakeLive()
    w = make(live_widget, live, render=chart)
    live.push(value=[1.0, 3.0, 2.0])
    prefix = '<img class="cl-render-img" alt="chart" src="data:image/png;base64,'
    assert w.html.startswith(prefix)
    png = base64.b64decode(w.html[len(prefix):].split('"')[0])
    assert png.startswith(b"\x89PNG")
    old = w.html
    live.push(value=[5.0, 1.0])
    assert w.html != old and w.html.startswith(prefix)


def test_render_failure_is_shown_and_keeps_the_last_html(make: Any) -> None:
    live = FakeLive()

    def render(value: Any) -> str:
        if value == "bad":
            raise ValueError("cannot draw that")
        return f"<p>{value}</p>"

    w = make(live_widget, live, render=render)
    live.push(value="good")
    assert w.html == "<p>good</p>"
    live.push(value="bad")
    assert w.status == "error" and w.html == "<p>good</p>"
    assert w.error == {"name": "ValueError", "message": "render= failed: cannot draw that"}
    live.push(value="fine")
    assert (w.status, w.error, w.html) == ("ready", None, "<p>fine</p>")


def test_render_html_objects_and_fallbacks() -> None:
    from convex_lab.jupyter._render import render_html

    class Rich:
        def _repr_html_(self) -> str:
            return "<i>rich</i>"

    assert render_html(Rich()) == "<i>rich</i>"
    assert render_html(None) == ""
    assert render_html({"a": "<x>"}) == (
        '<pre class="cl-render-repr">{&#x27;a&#x27;: &#x27;&lt;x&gt;&#x27;}</pre>')


def test_live_widget_follows_a_real_subscription(backend: cl.Backend, make: Any) -> None:
    client = backend.client()
    live = client.subscribe("tasks")
    w = make(live_widget, live)
    assert w.status == "ready" and len(w.value) == 5
    client.mutation("add", {"text": "six", "n": 6})
    live.refresh()
    assert len(w.value) == 6 and w.value[-1]["n"] == {"$int64": "6"}
    live.close()
    assert w.status == "closed" and len(w.value) == 6


def test_display_live_shows_a_widget() -> None:
    pytest.importorskip("IPython")
    live = FakeLive()
    with patch("IPython.display.display") as display:
        w = display_live(live)
    try:
        display.assert_called_once_with(w)
        assert w._view == "live_query"
    finally:
        w.close()


# ---------------------------------------------------------------------------------------------
# Paginated


def test_paginated_load_more(make: Any, sent: list[dict[str, Any]]) -> None:
    pq = FakePages([[{"n": 1.0}, {"n": 2.0}], [{"n": 3.0}]])
    w = make(paginated_widget, pq, page_size=2)
    assert (w._view, w.rows, w.pagination_status, w.status) == (
        "paginated", [{"n": 1.0}, {"n": 2.0}], "CanLoadMore", "ready")
    assert ask(w, sent, {"type": "load_more", "id": "1"}) == {
        "type": "response", "id": "1", "ok": True, "result": True}
    assert pq.requested == [2]
    assert w.rows == [{"n": 1.0}, {"n": 2.0}, {"n": 3.0}]
    assert w.pagination_status == "Exhausted"
    assert ask(w, sent, {"type": "load_more", "id": "2", "num_items": 5})["result"] is False
    bad = ask(w, sent, {"type": "load_more", "id": "3", "num_items": "many"})
    assert bad["ok"] is False and bad["error"]["name"] == "ProtocolError"
    w.close()
    assert pq.callbacks == []


def test_paginated_widget_over_a_real_paginated_query(
        backend: cl.Backend, make: Any, sent: list[dict[str, Any]]) -> None:
    client = backend.client()
    pq = client.subscribe_paginated("task_pages", {}, initial_num_items=3)
    w = make(paginated_widget, pq, page_size=3)
    assert [r["text"] for r in w.rows] == ["task 0", "task 1", "task 2"]
    assert ask(w, sent, {"type": "load_more", "id": "1"})["result"] is True
    assert [r["text"] for r in w.rows][3:] == ["task 3", "task 4"]
    pq.close()


# ---------------------------------------------------------------------------------------------
# Function runner


def test_function_runner_lists_functions_with_their_args_forms(
        backend: cl.Backend, make: Any) -> None:
    w = make(function_runner, backend, "double")
    assert (w._view, w.selected, w.status, w.allow_internal) == (
        "function_runner", "double", "ready", True)
    by_path = {f["path"]: f for f in w.functions}
    assert sorted(by_path) == ["add", "double", "refuse", "secret", "task_pages", "tasks"]
    assert by_path["add"] == {"path": "add", "kind": "mutation", "visibility": "public", "args": {
        "type": "object", "value": {"text": {"fieldType": {"type": "string"}, "optional": False},
                                    "n": {"fieldType": {"type": "bigint"}, "optional": False}}}}
    assert by_path["tasks"]["args"] is None
    assert by_path["secret"]["visibility"] == "internal"


def test_run_ok_with_result_printed_lines_and_duration(
        backend: cl.Backend, make: Any, sent: list[dict[str, Any]]) -> None:
    w = make(function_runner, backend)
    assert ask(w, sent, {"type": "run", "id": "r1", "path": "double", "args": {"x": 2}}) == {
        "type": "response", "id": "r1", "ok": True, "result": 4.0}
    assert (w.status, w.result, w.lines, w.last_path, w.error) == (
        "ready", 4.0, ["doubling 2.0"], "double", None)
    assert w.duration_ms is not None and w.duration_ms >= 0

    reply = ask(w, sent, {"type": "run", "id": "r2", "path": "add",
                          "args": {"text": "x", "n": {"$int64": "9007199254740993"}}})
    assert reply["ok"] is True
    doc = backend.query("tasks")[-1]
    assert doc["n"] == 9007199254740993 and type(doc["n"]) is Int64


def test_run_validation_error(backend: cl.Backend, make: Any, sent: list[dict[str, Any]]) -> None:
    w = make(function_runner, backend)
    reply = ask(w, sent, {"type": "run", "id": "1", "path": "double", "args": {"x": "two"}})
    assert reply == {"type": "response", "id": "1", "ok": False, "error": {
        "name": "ArgumentValidationError", "code": "ArgumentValidationError",
        "message": "ArgumentValidationError: Value does not match validator.\nPath: .x\n"
                   "Value: \"two\"\nValidator: v.float64()"}}
    assert w.status == "error" and w.error == reply["error"] and w.result is None


def test_run_convex_error_keeps_its_data(
        backend: cl.Backend, make: Any, sent: list[dict[str, Any]]) -> None:
    w = make(function_runner, backend)
    reply = ask(w, sent, {"type": "run", "id": "1", "path": "refuse", "args": {"reason": "no"}})
    assert reply["ok"] is False
    assert reply["error"] == {"name": "ConvexError", "message": '{reason: "no", count: 3n}',
                              "data": {"reason": "no", "count": {"$int64": "3"}}}


def test_run_unknown_function(backend: cl.Backend, make: Any, sent: list[dict[str, Any]]) -> None:
    w = make(function_runner, backend)
    reply = ask(w, sent, {"type": "run", "id": "1", "path": "doubel", "args": {}})
    assert reply["error"]["name"] == "FunctionError"
    assert reply["error"]["message"] == (
        "Could not find function for 'doubel'. Did you mean 'double'?")
    http = ask(w, sent, {"type": "run", "id": "2", "path": "hook", "args": {}})
    assert http["error"]["message"] == (
        "hook is an HTTP action: it runs through an HTTP route, not from this form.")


def test_internal_functions_only_when_allowed(
        backend: cl.Backend, make: Any, sent: list[dict[str, Any]]) -> None:
    owner = make(function_runner, backend)  # the notebook's owner: admin, internal allowed
    assert ask(owner, sent, {"type": "run", "id": "1", "path": "secret",
                             "args": {"n": {"$int64": "1"}}})["result"] == {"$int64": "2"}

    public = make(function_runner, backend, allow_internal=False)
    assert "secret" not in {f["path"] for f in public.functions}
    public.allow_internal = True  # a front-end writing the trait grants nothing
    reply = ask(public, sent, {"type": "run", "id": "2", "path": "secret",
                               "args": {"n": {"$int64": "1"}}})
    assert reply["ok"] is False and reply["error"]["name"] == "FunctionError"
    assert reply["error"]["message"].startswith(
        "Could not find public function for 'secret'. (secret is an internal function")
    with pytest.raises(cl.errors.FunctionError):
        function_runner(backend, "secret", allow_internal=False)


def test_run_malformed_requests(backend: cl.Backend, make: Any, sent: list[dict[str, Any]]) -> None:
    w = make(function_runner, backend)
    no_path = ask(w, sent, {"type": "run", "id": "1", "args": {}})
    assert no_path["error"] == {"name": "ProtocolError", "code": "ProtocolError",
                                "message": "Request 'run' needs a 'path' field."}
    code = ask(w, sent, {"type": "run", "id": "2", "path": "double", "args": "lambda: 1"})
    assert code["error"]["message"] == "Request field 'args' has the wrong type: 'lambda: 1'."
    tag = ask(w, sent, {"type": "run", "id": "3", "path": "double", "args": {"x": {"$eval": "1"}}})
    assert tag["error"]["message"] == "Unknown tag '$eval' (field names cannot start with '$')."


def test_refresh_lists_redefined_functions(
        backend: cl.Backend, make: Any, sent: list[dict[str, Any]]) -> None:
    w = make(function_runner, backend)

    @backend.app.query(name="late")
    def late(ctx: Any) -> str:
        return "hi"

    assert "late" not in {f["path"] for f in w.functions}
    assert ask(w, sent, {"type": "refresh", "id": "1"})["ok"] is True
    assert "late" in {f["path"] for f in w.functions}


# ---------------------------------------------------------------------------------------------
# Logs


def test_logs_dashboard_updates_live_and_clears(
        backend: cl.Backend, make: Any, sent: list[dict[str, Any]]) -> None:
    backend.query("double", {"x": 1})
    w = make(logs_dashboard, backend)
    assert w._view == "logs" and [e["function"] for e in w.entries] == ["double"]
    assert w.entries[0]["lines"] == ["doubling 1.0"] and w.entries[0]["kind"] == "query"

    with pytest.raises(ConvexError):
        backend.mutation("refuse", {"reason": "r"})
    last = w.entries[-1]
    assert (last["function"], last["kind"], last["error"]) == (
        "refuse", "mutation", 'ConvexError: {reason: "r", count: 3n}')
    assert set(last) == {"function", "kind", "lines", "error", "started", "duration_ms"}

    assert ask(w, sent, {"type": "clear", "id": "1"})["ok"] is True
    assert w.entries == [] and backend.logs() == []
    w.close()
    backend.query("double", {"x": 3})
    assert w.entries == []  # unsubscribed


def test_logs_dashboard_keeps_the_last_entries(backend: cl.Backend, make: Any) -> None:
    w = make(logs_dashboard, backend, limit=3)
    for i in range(5):
        backend.query("double", {"x": i})
    assert [e["lines"] for e in w.entries] == [["doubling 2.0"], ["doubling 3.0"], ["doubling 4.0"]]


# ---------------------------------------------------------------------------------------------
# Data browser


def texts(w: Any) -> list[str]:
    return [r["text"] for r in w.rows]


def test_data_browser_initial_state(backend: cl.Backend, make: Any) -> None:
    w = make(data_browser, backend)
    assert w._view == "data_browser" and w.status == "ready"
    assert w.tables == [{"name": "empty", "count": 0}, {"name": "tasks", "count": 5}]
    assert w.table == "empty" and w.rows == [] and not w.has_next
    w2 = make(data_browser, backend, "tasks", page_size=2)
    assert (w2.table, w2.index, w2.order, w2.page_index, w2.filter) == (
        "tasks", "by_creation_time", "desc", 0, None)
    assert w2.indexes == [{"name": "by_creation_time", "fields": []},
                          {"name": "by_n", "fields": ["n"]}]
    assert w2.fields == {"text": {"fieldType": {"type": "string"}, "optional": False},
                         "n": {"fieldType": {"type": "bigint"}, "optional": False},
                         "done": {"fieldType": {"type": "boolean"}, "optional": True}}
    assert texts(w2) == ["task 4", "task 3"] and w2.has_next
    row = w2.rows[0]
    assert set(row) == {"_id", "_creationTime", "text", "n"} and row["n"] == {"$int64": "4"}


def test_data_browser_pages_next_and_prev(
        backend: cl.Backend, make: Any, sent: list[dict[str, Any]]) -> None:
    w = make(data_browser, backend, "tasks", page_size=2)
    assert ask(w, sent, {"type": "page", "id": "1", "direction": "next"})["result"] == {
        "page_index": 1}
    assert texts(w) == ["task 2", "task 1"] and w.has_next
    ask(w, sent, {"type": "page", "id": "2", "direction": "next"})
    assert texts(w) == ["task 0"] and not w.has_next and w.page_index == 2
    past = ask(w, sent, {"type": "page", "id": "3", "direction": "next"})
    assert past["error"]["message"] == "There is no next page."
    ask(w, sent, {"type": "page", "id": "4", "direction": "prev"})
    assert texts(w) == ["task 2", "task 1"] and w.page_index == 1
    ask(w, sent, {"type": "page", "id": "5", "direction": "first"})
    assert texts(w) == ["task 4", "task 3"]
    assert ask(w, sent, {"type": "page", "id": "6", "direction": "prev"})["ok"] is False


def test_data_browser_sort_by_index_order(
        backend: cl.Backend, make: Any, sent: list[dict[str, Any]]) -> None:
    w = make(data_browser, backend, "tasks", page_size=3)
    reply = ask(w, sent, {"type": "browse", "id": "1", "table": "tasks", "order": "asc"})
    assert reply == {"type": "response", "id": "1", "ok": True, "result": {"count": 3}}
    assert texts(w) == ["task 0", "task 1", "task 2"] and w.order == "asc"
    backend.mutation("add", {"text": "low", "n": -1})
    ask(w, sent, {"type": "browse", "id": "2", "table": "tasks", "index": "by_n", "order": "asc"})
    assert texts(w) == ["low", "task 0", "task 1"] and w.index == "by_n"
    ask(w, sent, {"type": "browse", "id": "3", "table": "tasks", "index": "by_n", "order": "desc"})
    assert texts(w) == ["task 4", "task 3", "task 2"]
    bad = ask(w, sent, {"type": "browse", "id": "4", "table": "tasks", "index": "by_text"})
    assert bad["error"]["message"] == (
        "Table 'tasks' has no index 'by_text'; its indexes: by_creation_time, by_n.")
    bad_order = ask(w, sent, {"type": "browse", "id": "5", "table": "tasks", "order": "up"})
    assert bad_order["error"]["name"] == "ProtocolError"


def test_data_browser_column_headers_sort_through_an_index(
        backend: cl.Backend, make: Any, sent: list[dict[str, Any]]) -> None:
    """A header click (``sort`` {field}) orders by that field through an index that starts with
    it: ascending first, descending when clicked again; the filter stays. Fields no index starts
    with are refused with the index to add (Convex orders documents only through an index)."""
    backend.mutation("add", {"text": "low", "n": -1})
    w = make(data_browser, backend, "tasks", page_size=3)
    assert w.sortable == {"_creationTime": "by_creation_time", "n": "by_n"}
    first = ask(w, sent, {"type": "sort", "id": "1", "field": "n"})
    assert first["result"] == {"index": "by_n", "order": "asc"}
    assert (w.index, w.order, texts(w)) == ("by_n", "asc", ["low", "task 0", "task 1"])
    again = ask(w, sent, {"type": "sort", "id": "2", "field": "n"})
    assert again["result"] == {"index": "by_n", "order": "desc"}
    assert texts(w) == ["task 4", "task 3", "task 2"]
    ask(w, sent, {"type": "sort", "id": "3", "field": "_creationTime"})
    assert (w.index, w.order, texts(w)) == ("by_creation_time", "asc",
                                            ["task 0", "task 1", "task 2"])
    ask(w, sent, {"type": "sort", "id": "4", "field": "_creationTime"})
    assert texts(w) == ["low", "task 4", "task 3"]
    explicit = ask(w, sent, {"type": "sort", "id": "5", "field": "n", "order": "desc"})
    assert explicit["result"] == {"index": "by_n", "order": "desc"}

    flt = {"field": "text", "value": "task 2"}
    ask(w, sent, {"type": "browse", "id": "6", "table": "tasks", "filter": flt})
    ask(w, sent, {"type": "sort", "id": "7", "field": "n"})
    assert (w.index, w.filter, texts(w)) == ("by_n", flt, ["task 2"])

    text = ask(w, sent, {"type": "sort", "id": "8", "field": "text"})
    assert text["ok"] is False and text["error"]["message"] == (
        "Cannot sort 'tasks' by 'text': Convex orders documents only through an index, and no "
        "index of 'tasks' starts with 'text'. Add .index(\"by_text\", [\"text\"]) to the table "
        "in the schema to sort by it.")
    by_id = ask(w, sent, {"type": "sort", "id": "9", "field": "_id"})
    assert by_id["error"]["message"] == (
        "Cannot sort by _id: document IDs are random, so their order means nothing. Sort by "
        "_creationTime instead.")
    assert (w.index, texts(w)) == ("by_n", ["task 2"])  # a refused sort changes nothing
    bad = ask(w, sent, {"type": "sort", "id": "10", "field": "n", "order": "up"})
    assert bad["error"]["message"] == 'order is "asc" or "desc", not \'up\'.'
    # the index comes from the table, not from the (front-end writable) traits
    w.sortable = {"text": "by_n"}
    assert ask(w, sent, {"type": "sort", "id": "11", "field": "text"})["ok"] is False


def test_data_browser_sorts_by_the_shortest_index_and_keeps_a_chosen_one(
        make: Any, sent: list[dict[str, Any]]) -> None:
    app = cl.App()
    app.schema = define_schema({"m": define_table({"a": v.string(), "b": v.float64()})
                                .index("by_a_b", ["a", "b"]).index("by_a", ["a"])
                                .index("by_b_a", ["b", "a"])})
    b = cl.Backend(app=app)
    try:
        for a, n in (("x", 2.0), ("x", 1.0), ("y", 0.0)):
            b.store.run(lambda tx, a=a, n=n: DatabaseWriter(tx).insert("m", {"a": a, "b": n}))
        w = make(data_browser, b, "m")
        assert w.sortable == {"_creationTime": "by_creation_time", "a": "by_a", "b": "by_b_a"}
        ask(w, sent, {"type": "browse", "id": "1", "table": "m", "index": "by_a_b"})
        # already ordered by a (through by_a_b): a click on "a" reverses, keeping by_a_b
        reply = ask(w, sent, {"type": "sort", "id": "2", "field": "a"})
        assert reply["result"] == {"index": "by_a_b", "order": "asc"}
        assert [(r["a"], r["b"]) for r in w.rows] == [("x", 1.0), ("x", 2.0), ("y", 0.0)]
    finally:
        b.close()


def test_data_browser_filter_by_field_equality(
        backend: cl.Backend, make: Any, sent: list[dict[str, Any]]) -> None:
    w = make(data_browser, backend, "tasks")
    flt = {"field": "n", "value": {"$int64": "3"}}
    assert ask(w, sent, {"type": "browse", "id": "1", "table": "tasks", "filter": flt})["ok"]
    assert texts(w) == ["task 3"] and w.filter == flt
    ask(w, sent, {"type": "browse", "id": "2", "table": "tasks",
                  "filter": {"field": "text", "value": "task 1"}})
    assert texts(w) == ["task 1"]
    ask(w, sent, {"type": "browse", "id": "3", "table": "tasks",
                  "filter": {"field": "text", "value": "nothing"}})
    assert w.rows == [] and not w.has_next
    ask(w, sent, {"type": "browse", "id": "4", "table": "tasks", "filter": None})
    assert len(w.rows) == 5 and w.filter is None
    no_value = ask(w, sent, {"type": "browse", "id": "5", "table": "tasks",
                             "filter": {"field": "n"}})
    assert no_value["error"]["message"] == "A filter needs a 'value'."


def test_data_browser_edit_a_field(
        backend: cl.Backend, make: Any, sent: list[dict[str, Any]]) -> None:
    w = make(data_browser, backend, "tasks")
    doc_id = w.rows[0]["_id"]
    ok = ask(w, sent, {"type": "edit", "id": "1", "doc_id": doc_id, "field": "text",
                       "value": "renamed"})
    assert ok == {"type": "response", "id": "1", "ok": True, "result": None}
    assert w.rows[0]["text"] == "renamed"
    ask(w, sent, {"type": "edit", "id": "2", "doc_id": doc_id, "field": "done", "value": True})
    assert w.rows[0]["done"] is True
    ask(w, sent, {"type": "edit", "id": "3", "doc_id": doc_id, "field": "done", "unset": True})
    assert "done" not in w.rows[0]
    ask(w, sent, {"type": "edit", "id": "4", "doc_id": doc_id, "field": "n",
                  "value": {"$int64": "40"}})
    stored = backend.store.run(lambda tx: tx.store.tables["tasks"].docs[doc_id])
    assert stored["n"] == 40 and type(stored["n"]) is Int64


def test_data_browser_edit_rejected_by_the_schema(
        backend: cl.Backend, make: Any, sent: list[dict[str, Any]]) -> None:
    w = make(data_browser, backend, "tasks")
    doc_id, before = w.rows[0]["_id"], list(w.rows)
    reply = ask(w, sent, {"type": "edit", "id": "1", "doc_id": doc_id, "field": "n",
                          "value": "seven"})
    assert reply["ok"] is False
    assert reply["error"] == {
        "name": "SchemaValidationError", "code": "SchemaValidationError",
        "message": 'Failed to insert or update a document in table "tasks" because it does not '
                   'match the schema: Value does not match validator.\nPath: .n\n'
                   'Value: "seven"\nValidator: v.int64()'}
    assert w.rows == before
    extra = ask(w, sent, {"type": "edit", "id": "2", "doc_id": doc_id, "field": "color",
                          "value": "red"})
    assert extra["error"]["name"] == "SchemaValidationError"
    system = ask(w, sent, {"type": "edit", "id": "3", "doc_id": doc_id,
                           "field": "_creationTime", "value": 1.0})
    assert system["error"]["message"] == "_creationTime is a system field: it cannot be edited."
    missing = ask(w, sent, {"type": "edit", "id": "4", "doc_id": doc_id, "field": "text"})
    assert missing["error"]["message"] == "An edit needs a 'value' (or unset: true)."


def test_data_browser_delete(backend: cl.Backend, make: Any, sent: list[dict[str, Any]]) -> None:
    w = make(data_browser, backend, "tasks", page_size=2)
    ask(w, sent, {"type": "page", "id": "0", "direction": "next"})
    ask(w, sent, {"type": "page", "id": "1", "direction": "next"})
    assert texts(w) == ["task 0"]
    doc_id = w.rows[0]["_id"]
    assert ask(w, sent, {"type": "delete", "id": "2", "doc_id": doc_id})["ok"] is True
    assert w.page_index == 1 and texts(w) == ["task 2", "task 1"]  # the page emptied: back one
    assert not w.has_next
    assert {"name": "tasks", "count": 4} in w.tables
    again = ask(w, sent, {"type": "delete", "id": "3", "doc_id": doc_id})
    assert again["ok"] is False and again["error"]["name"] == "NonexistentDocumentError"
    bogus = ask(w, sent, {"type": "delete", "id": "4", "doc_id": "not-an-id"})
    assert bogus["error"]["name"] == "InvalidIdError"


def test_data_browser_unknown_table(
        backend: cl.Backend, make: Any, sent: list[dict[str, Any]]) -> None:
    w = make(data_browser, backend, "tasks")
    reply = ask(w, sent, {"type": "browse", "id": "1", "table": "users"})
    assert reply["error"] == {"name": "InvalidTableError", "code": "InvalidTable",
                              "message": "Table 'users' does not exist. Tables: empty, tasks."}
    assert w.table == "tasks" and len(w.rows) == 5


def test_data_browser_refreshes_after_commits(
        backend: cl.Backend, make: Any, sent: list[dict[str, Any]]) -> None:
    w = make(data_browser, backend, "tasks")
    backend.mutation("add", {"text": "fresh", "n": 10})
    assert texts(w)[0] == "fresh" and {"name": "tasks", "count": 6} in w.tables
    w.close()
    backend.mutation("add", {"text": "after close", "n": 11})
    assert texts(w)[0] == "fresh"

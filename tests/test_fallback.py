"""What a saved notebook shows for each widget: the text/plain and text/html fallbacks.

Each widget is made over a real backend and described from its traits, as GitHub, nbviewer or
nbconvert would show its output; then displayed in a real in-process IPython shell, where the
output must carry the fallbacks beside the widget view and be re-sent after a cell that changed
it (nbclient and JupyterLab save what was re-sent). tests/test_notebooks.py checks the executed
tutorials' saved outputs, tests/browser/test_saved_notebook.py what JupyterLab shows.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

pytest.importorskip("anywidget", reason="anywidget is not installed (pip install -e '.[lab]')")

from _widget_fixtures import bundle  # noqa: F401 (autouse: a stub bundle without a build)

import convex_lab as cl
from convex_lab import ConvexError, Int64, define_schema, define_table, v
from convex_lab.jupyter import _display
from convex_lab.jupyter._fallback import MAX_ROWS, cell_text, fallback_for
from convex_lab.jupyter.widgets import (
    crons_widget,
    dashboard,
    data_browser,
    function_runner,
    jobs_widget,
    live_widget,
    logs_dashboard,
    paginated_widget,
)

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
OBJECT_REPR = re.compile(r"object at 0x[0-9a-f]+")


@pytest.fixture
def backend() -> Iterator[cl.Backend]:
    app = cl.App(schema=define_schema({
        "messages": define_table({"author": v.string(), "body": v.string()}),
    }))

    @app.mutation(name="send")
    def send(ctx: Any, author: str, body: str) -> Any:
        if not body:
            raise ConvexError("A message needs some text.")
        return ctx.db.insert("messages", {"author": author, "body": body})

    @app.query(name="bodies")
    def bodies(ctx: Any) -> Any:
        return ctx.db.query("messages").collect()

    @app.query(name="latest")
    def latest(ctx: Any) -> Any:
        return ctx.db.query("messages").order("desc").take(3)

    @app.query(name="page")
    def page(ctx: Any, paginationOpts: Any) -> Any:  # noqa: N803 (Convex's argument name)
        return ctx.db.query("messages").paginate(paginationOpts)

    @app.query(name="stats")
    def stats(ctx: Any) -> Any:
        return {"count": Int64(len(ctx.db.query("messages").collect())), "blob": b"\x00\x01"}

    b = cl.Backend(app=app, clock="virtual")
    for i in range(12):
        b.mutation("send", {"author": "ada", "body": f"message {i}"})
    yield b
    b.close()


@pytest.fixture
def make() -> Iterator[Callable[..., Any]]:
    """``make(factory, *args)``: a widget, closed when the test ends."""
    made: list[Any] = []

    def build(factory: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        made.append(factory(*args, **kwargs))
        return made[-1]

    yield build
    for widget in made:
        widget.close()


def texts(widget: Any) -> tuple[str, str]:
    fallback = fallback_for(widget)
    plain, html = fallback.plain(), fallback.to_html(str(widget._view))
    assert not OBJECT_REPR.search(plain) and not OBJECT_REPR.search(html)
    return plain, html


# What each widget's fallback says --------------------------------------------------------------


def test_live_query_is_a_table_of_its_first_rows_with_name_and_time(
        backend: cl.Backend, make: Callable[..., Any]) -> None:
    w = make(live_widget, backend.subscribe("bodies", {}))
    plain, html = texts(w)
    heading = plain.splitlines()[0]
    assert heading.startswith("Live query bodies() · 12 rows · updated ")
    assert heading.endswith(" UTC")
    assert plain.splitlines()[1].split() == ["author", "body", "_id", "_creationTime"]
    assert "message 0" in plain and f"message {MAX_ROWS - 1}" in plain
    assert f"message {MAX_ROWS}" not in plain and "… 2 more rows" in plain
    assert html.startswith('<div class="cl-fallback" data-convex-lab-view="live_query">')
    assert "<th>author</th><th>body</th>" in html and html.count("<tr>") == MAX_ROWS + 1
    assert "run the notebook to see it live" in html


def test_values_escaped_and_typed(backend: cl.Backend, make: Callable[..., Any]) -> None:
    backend.mutation("send", {"author": "<b>eve</b>", "body": "<script>alert(1)</script>"})
    plain, html = texts(make(live_widget, backend.subscribe("latest", {})))
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)</script>" in plain  # text/plain is text
    _, stats_html = texts(make(live_widget, backend.subscribe("stats", {})))
    assert "<td>count</td><td>13</td>" in stats_html and "<td>blob</td><td>&lt;2 bytes&gt;</td>" \
        in stats_html
    assert cell_text({"$float": "NaN"}) == "NaN" and cell_text(1.5) == "1.5"
    assert cell_text(3.0) == "3" and cell_text(["a", {"b": None}]) == '["a", {"b": null}]'
    assert cell_text("x" * 200).endswith("…") and len(cell_text("x" * 200)) == 60


def test_render_output_is_the_html_fallback(backend: cl.Backend,
                                            make: Callable[..., Any]) -> None:
    live = backend.subscribe("bodies", {}, render=lambda rows: f"<em>{len(rows)} messages</em>")
    plain, html = texts(make(live_widget, live))
    assert "<em>12 messages</em>" in html
    assert "a rendered output: see the HTML version" in plain


def test_live_query_error_is_said(backend: cl.Backend, make: Callable[..., Any]) -> None:
    plain, _ = texts(make(live_widget, backend.subscribe("bodies", {"extra": 1})))
    assert "error: ArgumentValidationError" in plain and "(no value yet)" in plain


def test_every_other_widget(backend: cl.Backend, make: Callable[..., Any]) -> None:
    pq = backend.client().subscribe_paginated("page", {}, initial_num_items=5)
    plain, _ = texts(make(paginated_widget, pq))
    assert plain.startswith("Paginated query page · 5 rows · CanLoadMore · updated ")

    plain, _ = texts(make(data_browser, backend, "messages", page_size=3))
    assert plain.startswith("Data browser messages · 12 documents · index by_creation_time "
                            "(desc), page 1 · updated ")
    assert "message 11" in plain and "message 8" not in plain  # newest first, one page

    runner = make(function_runner, backend, "send")
    runner.handle_request({"id": "1", "type": "run", "path": "send",
                           "args": {"author": "bob", "body": "from the form"}})
    plain, _ = texts(runner)
    assert plain.startswith("Function runner send · 5 functions")
    assert "\nLast run send · updated " in plain

    backend.mutation("send", {"author": "bob", "body": "printed"})
    plain, _ = texts(make(logs_dashboard, backend))
    assert plain.startswith("Function logs · ") and " mutation  send " in plain

    plain, _ = texts(make(jobs_widget, backend))
    assert plain.startswith("Scheduled functions · updated ") and "(none yet)" in plain
    plain, _ = texts(make(crons_widget, backend))
    assert plain.startswith("Crons · updated ") and "(none yet)" in plain

    board = dashboard(backend)
    try:
        plain = board._fallback().plain()
        assert plain.startswith("Dashboard · logs, scheduled functions and crons")
        assert "\nFunction logs · " in plain and "\nScheduled functions · " in plain
        assert "\nCrons · " in plain
        data, _ = board._display_bundle()
        assert data[WIDGET_VIEW]["model_id"] == board.model_id
        assert data["text/html"].startswith('<div class="cl-fallback" data-convex-lab-view='
                                            '"dashboard">')
    finally:
        board.close()


def test_an_undescribable_state_still_names_the_widget(backend: cl.Backend,
                                                      make: Callable[..., Any]) -> None:
    w = make(live_widget, backend.subscribe("bodies", {}))

    class Broken:
        _view = "live_query"

        @property
        def path(self) -> str:
            raise RuntimeError("no path")

    assert fallback_for(Broken()).heading() == (
        "convex_lab live_query widget · no text version (RuntimeError: no path)")
    assert fallback_for(object()).heading() == "convex_lab object widget"
    assert w._display_bundle()[0]["text/plain"].startswith("Live query bodies()")


# Displayed, and kept current ----------------------------------------------------------------


@pytest.fixture
def shell() -> Iterator[Any]:
    pytest.importorskip("IPython", reason="IPython is not installed (pip install ipython)")
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    yield ip
    _display._shown.clear()


def cell(ip: Any, source: str) -> list[dict[str, Any]]:
    """Run a cell; what it displayed or re-sent (capture_output understands updates)."""
    from IPython.utils.capture import capture_output

    with capture_output() as captured:
        assert ip.run_cell(source).success
    return [dict(o.__dict__) for o in captured.outputs]


def test_display_carries_the_view_and_the_fallbacks_and_follows_changes(
        backend: cl.Backend, make: Callable[..., Any], shell: Any) -> None:
    w = make(live_widget, backend.subscribe("bodies", {}))
    shell.user_ns.update(w=w, backend=backend)
    (shown,) = cell(shell, "w")
    assert not shown["update"]
    assert shown["data"][WIDGET_VIEW]["model_id"] == w.model_id
    assert shown["data"]["text/plain"].startswith("Live query bodies() · 12 rows")
    assert 'class="cl-fallback"' in shown["data"]["text/html"]
    ident = shown["transient"]["display_id"]

    (update,) = cell(shell, 'backend.mutation("send", {"author": "bob", "body": "hello"})')
    assert update["update"] and update["transient"]["display_id"] == ident
    assert update["data"]["text/plain"].startswith("Live query bodies() · 13 rows")
    assert update["data"][WIDGET_VIEW]["model_id"] == w.model_id

    assert cell(shell, "1 + 1") == []  # nothing changed: nothing re-sent
    w.close()
    assert cell(shell, 'backend.mutation("send", {"author": "bob", "body": "again"})') == []
    assert ident not in _display._shown


def test_no_updates_where_they_would_print_again(backend: cl.Backend,
                                                make: Callable[..., Any], shell: Any) -> None:
    """A terminal IPython prints every display: the text is shown once, never re-sent."""
    w = make(live_widget, backend.subscribe("bodies", {}))
    shell.user_ns.update(w=w, backend=backend)
    cell(shell, "w")
    assert _display.refresh_displays() == 0  # the shell's own publisher: a terminal's
    backend.mutation("send", {"author": "bob", "body": "hello"})
    assert _display.refresh_displays() == 0

"""The data browser and ``%convex`` with mounted components (DESIGN §8, "Components"): a
component's tables appear as ``<name>/<table>`` and are browsed and edited as the component
sees them, under its schema."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("anywidget", reason="anywidget is not installed (pip install -e '.[lab]')")

from _widget_fixtures import ask, bundle, make, sent, widgets  # noqa: F401 (pytest fixtures)
from test_components import make_counter

import convex_lab as cl
from convex_lab import v
from convex_lab.jupyter.widgets import data_browser


@pytest.fixture
def backend() -> Iterator[cl.Backend]:
    app = cl.App(schema=cl.define_schema({"messages": cl.define_table({"body": v.string()})}))
    app.use(make_counter(), name="clicks")
    with cl.Backend(app=app) as b:
        b.mutation(app.components.clicks.lib.add, {"name": "a", "by": 2.0})
        b.mutation(app.components.clicks.lib.add, {"name": "b", "by": 5.0})
        yield b


def test_the_data_browser_lists_browses_and_edits_component_tables(
        backend: cl.Backend, make: Any, sent: list[dict[str, Any]]) -> None:
    w = make(data_browser, backend, "clicks/counts")
    assert {"name": "clicks/counts", "count": 2} in w.tables
    assert {"name": "messages", "count": 0} in w.tables
    assert sorted(row["name"] for row in w.rows) == ["a", "b"]
    assert "by_name" in [i["name"] for i in w.indexes]
    doc_id = next(row["_id"] for row in w.rows if row["name"] == "a")
    ok = ask(w, sent, {"type": "edit", "id": "1", "doc_id": doc_id, "field": "n", "value": 9.0})
    assert ok["ok"] is True
    assert backend.query(backend.app.components.clicks.lib.get, {"name": "a"}) == 9.0
    refused = ask(w, sent, {"type": "edit", "id": "2", "doc_id": doc_id, "field": "n",
                            "value": "nine"})  # the component's schema still applies
    assert refused["ok"] is False
    ask(w, sent, {"type": "delete", "id": "3", "doc_id": doc_id})
    assert backend.query(backend.app.components.clicks.lib.get, {"name": "a"}) == 0.0

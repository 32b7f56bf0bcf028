"""notebooks/03-search.ipynb, executed in a real kernel: its tagged results (prefix search, the
live search box following a matching message and ignoring others, semantic retrieval) and the
search box's saved widget state. tests/test_notebooks.py runs it too, for errors only."""

import ast
from pathlib import Path

import pytest
from test_notebooks import _execute, _require, _tagged_results

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "03-search.ipynb"
EXPECTED = {
    "prefix-search": ["Help wanted: who knows DuckDB?", "I can help with the database layer",
                      "Hello everyone, the notebook backend is up"],
    "reruns-after-unrelated": 0,
    "box-after-send": ["Helsinki has great data engineers", "Help wanted: who knows DuckDB?",
                       "I can help with the database layer",
                       "Hello everyone, the notebook backend is up"],
    "box-lunch": ["Lunch sounds good", "Lunch at noon?"],
    "retrieve-schedule": [
        "Cron jobs run a function on a schedule, such as every day at nine.",
        "The scheduler runs a function later: run_after takes a delay, run_at a time."],
    "retrieve-new": "Typeahead search matches the last word as a prefix.",
}

pytestmark = pytest.mark.notebook


@pytest.fixture(scope="module")
def executed():
    _require("anywidget")
    return _execute(NOTEBOOK)


def tagged(nb):
    return {tag: ast.literal_eval(text) for tag, text in _tagged_results(nb).items()}


def test_tagged_results(executed):
    results = tagged(executed)
    for tag, expected in EXPECTED.items():
        assert results[tag] == expected, tag
    assert set(results["two-words"]) == {
        "I can help with the database layer", "Help wanted: who knows DuckDB?",
        "Hello everyone, the notebook backend is up"}
    assert results["two-words"][0] == "I can help with the database layer"  # both words
    same, other = results["similarity"]
    assert same > 0.5 > other


def test_search_box_widget_state_and_fallback(executed):
    [cell] = [c for c in executed.cells if c.get("id") == "search-box"]
    views = [o.data["application/vnd.jupyter.widget-view+json"] for o in cell.outputs
             if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(views) == 1
    states = executed.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    state = states[views[0]["model_id"]]["state"]
    assert state["_view"] == "search_box"
    assert state["path"].endswith("search_messages")
    # The saved state is the last one: after box.search("lunch").
    assert state["text"] == "lunch"
    assert [m["body"] for m in state["value"]] == ["Lunch sounds good", "Lunch at noon?"]
    plain = cell.outputs[0].data.get("text/plain", "")
    assert plain.startswith("Search search_messages(text='lunch')"), plain
    assert "Lunch at noon?" in plain

"""notebooks/03-search.ipynb, executed in a real kernel: its tagged results (prefix search, the
live search box following a matching message and ignoring others, semantic retrieval) and the
search box's saved widget state. tests/test_notebooks.py runs it too, for errors only."""

import ast
import importlib.util
from pathlib import Path

import pytest

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
    for module in ("nbclient", "nbformat", "ipykernel", "anywidget"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (pip install -e '.[test]')")
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, kernel_name="python3", timeout=600, allow_errors=False,
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    return nb


def tagged(nb):
    out = {}
    for cell in nb.cells:
        for tag in cell.metadata.get("tags", []):
            for output in cell.get("outputs", []):
                if output.output_type == "execute_result":
                    out[tag] = ast.literal_eval(output.data["text/plain"])
    return out


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

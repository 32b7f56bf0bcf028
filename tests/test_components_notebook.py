"""notebooks/06-components.ipynb, executed in a real kernel: its tagged results (the live
leaderboard from the aggregate, the rate-limited send past its limit and after virtual time,
the pydantic-validated signup, the status of mounted components). tests/test_notebooks.py runs
it too, for errors and saved widget fallbacks."""

import ast
import importlib.util
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "06-components.ipynb"
EXPECTED = {
    "mounted": ["leaderboard", "rate_limiter"],
    "board": {"players": 5.0, "total": 505.0,
              "top": [["alan", 150.0], ["ada", 120.0], ["grace", 95.0]]},
    "after-update": ([["barbara", 200.0], ["alan", 150.0], ["ada", 120.0]], 3.0),
    "between": 3.0,
    "sends": ["sent", "sent", "sent", "RateLimited: retry in 20 s",
              "RateLimited: retry in 20 s"],
    "after-advance": ["ada", "ada", "ada", "grace", "ada"],
    "check": {"ok": False, "retryAfter": 20000.0},
    "signup-ok": [["Katherine", "kj@nasa.gov", 33.0]],
    "signup-errors": [".name: String should have at least 2 characters",
                      ".email: Value error, an email address needs an @",
                      ".age: Input should be greater than or equal to 13"],
    "status-components": [
        "leaderboard (aggregate): 11 functions; leaderboard/nodes (1 document), "
        "leaderboard/trees (1 document)",
        "rate_limiter: 3 functions; rate_limiter/rateLimits (2 documents)"],
}

pytestmark = pytest.mark.notebook


@pytest.fixture(scope="module")
def executed():
    for module in ("nbclient", "nbformat", "ipykernel", "anywidget", "pydantic"):
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
                    text = output.data["text/plain"]
                    out[tag] = text if tag == "signup-validator" else ast.literal_eval(text)
    return out


def test_tagged_results(executed):
    results = tagged(executed)
    for tag, expected in EXPECTED.items():
        assert results[tag] == expected, tag
    assert results["signup-validator"] == "v.from_pydantic(Signup)"


def test_the_leaderboard_widget_saved_its_last_state(executed):
    """The live widget's saved fallback shows the standings after the last update."""
    texts = [output.data.get("text/plain", "")
             for cell in executed.cells if "cl.watch(leaderboard)" in cell.source
             for output in cell.get("outputs", []) if output.output_type == "display_data"]
    assert texts and "barbara" in texts[-1]

"""notebooks/06-components.ipynb, executed in a real kernel: its tagged results (the live
leaderboard from the aggregate, the rate-limited send past its limit and after virtual time,
the pydantic-validated signup, the status of mounted components). tests/test_notebooks.py runs
it too, for errors and saved widget fallbacks."""

import ast
from pathlib import Path

import pytest
from test_notebooks import _execute, _require, _tagged_results

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
    _require("anywidget")
    _require("pydantic")
    return _execute(NOTEBOOK)


def tagged(nb):
    return {tag: text if tag == "signup-validator" else ast.literal_eval(text)
            for tag, text in _tagged_results(nb).items()}


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

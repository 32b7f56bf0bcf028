"""notebooks/05-clients.ipynb, executed in a real kernel: a notebook cell, the official PyPI
client in another process and plain HTTP share one deployment and see each other's writes live
(tests/test_notebooks.py runs every notebook; this checks what this one must show)."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path
from typing import Any

import pytest
from test_notebooks import _errors, _execute, _tagged_results

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "05-clients.ipynb"

pytestmark = [pytest.mark.notebook,
              pytest.mark.skipif(importlib.util.find_spec("convex") is None,
                                 reason="the PyPI `convex` client is not installed "
                                        "(pip install convex; it is in the test extra)")]


@pytest.fixture(scope="module")
def executed() -> Any:
    return _execute(NOTEBOOK)


def test_every_client_sees_the_others_writes(executed: Any) -> None:
    assert not _errors(executed), _errors(executed)
    results = {tag: ast.literal_eval(text) for tag, text in _tagged_results(executed).items()}
    assert results["served"] is True
    assert results["authors-after-process"] == ["notebook", "python", "python"]
    first, second = results["watcher"]
    assert first == "3 ACTIONS WORK TOO!"
    assert second == "4 pushed to the watcher"
    assert results["http-mutation"] == "success"
    error = results["http-error"]
    assert error["status"] == "error" and error["errorData"] == {"code": "EMPTY",
                                                                 "hint": "say something"}
    assert results["http-query"] == {"author": "curl", "body": "hello over HTTP"}
    assert results["web-page"] == (200, True, True)
    assert results["all-authors"] == ["curl", "notebook", "python"]


def test_the_process_output_shows_the_official_client_at_work(executed: Any) -> None:
    printed = "".join(output.get("text", "") for cell in executed.cells
                      if cell.cell_type == "code" for output in cell.outputs
                      if output.output_type == "stream")
    assert "shout -> " in printed and "refused: EMPTY" in printed
    assert "messages seen by the client: 3" in printed

"""The README's code runs as written and does what it says.

The fenced ``python`` blocks of two sections of README.md are executed verbatim:

* "In a notebook": each block is a cell of a real in-process IPython shell (``%load_ext`` and
  all), in order; the live table it shows must update when the last cell's ``send(...)`` commits,
  and ``%convex?`` must list every magic, as the text under the blocks says;
* "Quickstart (plain Python)": the blocks joined, run as a Python script, in a temporary
  directory (it opens ``chat.duckdb`` there).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import convex_lab as cl
from convex_lab import functions

README = Path(__file__).resolve().parent.parent / "README.md"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def section(title: str) -> str:
    """The text of the README section ``## title`` (up to the next ``## `` heading)."""
    text = README.read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match is not None, f"README.md has no section {title!r}"
    return match.group(1)


def python_blocks(title: str) -> list[str]:
    blocks = re.findall(r"^```python\n(.*?)^```", section(title), re.S | re.M)
    assert blocks, f"README section {title!r} has no python block"
    return blocks


@pytest.fixture
def shell(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A real IPython shell with a fresh default app and backend, and none of the names the
    extension binds (so the README's cells get them only from ``%load_ext``)."""
    pytest.importorskip("IPython", reason="IPython is not installed (pip install ipython)")
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    monkeypatch.setattr(functions, "_default_app", None)
    previous = cl.set_default_backend(None)
    for name in ("cl", "v", "define_table", "define_schema", "send", "list_messages"):
        ip.user_ns.pop(name, None)
    try:
        yield ip
    finally:
        ip.run_line_magic("unload_ext", "convex_lab")
        ours = cl.set_default_backend(previous)
        if ours is not None:
            ours.close()


def run(ip: Any, source: str) -> tuple[Any, str, list[dict[str, Any]]]:
    """Run one cell: (its result, what it printed, what it displayed); fails if it raised."""
    from IPython.utils.capture import capture_output

    with capture_output() as captured:
        result = ip.run_cell(source)
    printed = captured.stdout + captured.stderr
    assert result.success, f"README cell failed:\n{source}\n{printed}"
    return result.result, printed, [dict(o.__dict__) for o in captured.outputs]


def test_in_a_notebook_cells_run_verbatim_and_the_table_is_live(shell: Any) -> None:
    cells = python_blocks("In a notebook")
    assert cells[0].strip() == "%load_ext convex_lab"
    assert "send(" in cells[-1] and "cl.watch(" in cells[-2]

    _, loaded, _ = run(shell, cells[0])
    assert loaded.startswith("convex_lab: added cl, v, define_schema, define_table"), loaded
    for cell in cells[1:-2]:
        run(shell, cell)
    schema = cl.default_backend().store.schema
    assert schema is not None and "by_channel" in schema.tables["messages"].indexes

    live, _, shown = run(shell, cells[-2])
    assert isinstance(live, cl.LiveQuery) and live.value == []
    (output,) = [o for o in shown if WIDGET_VIEW in o["data"]]
    assert "(no rows)" in output["data"]["text/plain"]

    run_result, _, updates = run(shell, cells[-1])
    assert [m["body"] for m in live.value] == ["Hello!"]
    # the saved output follows: the same display id, re-sent with the new row
    ident = output["transient"]["display_id"]
    (update,) = [u for u in updates if u["update"] and u["transient"]["display_id"] == ident]
    assert "Hello!" in update["data"]["text/html"] and "1 row" in update["data"]["text/plain"]
    from ipywidgets.widgets.widget import _instances

    widget = _instances[output["data"][WIDGET_VIEW]["model_id"]]
    assert [row["body"] for row in widget.value] == ["Hello!"]
    assert run_result is not None  # send(...) returned the new document's ID


def test_convex_help_lists_every_magic(shell: Any) -> None:
    """The README says ``%convex?`` lists every magic: each one the extension registers."""
    from convex_lab.jupyter.magics import MAGICS

    assert "`%convex?` lists every magic" in section("In a notebook")
    run(shell, "%load_ext convex_lab")
    _, help_text, _ = run(shell, "%convex?")
    registered = [f"{'%%' if kind == 'cell' else '%'}{name}"
                  for cls in MAGICS for kind, names in cls.magics.items() for name in names]
    assert len(registered) >= 6, registered
    missing = [m for m in registered if not re.search(rf"^\s*{re.escape(m)}\b", help_text, re.M)]
    assert not missing, f"%convex? does not list {missing}:\n{help_text}"


def test_quickstart_plain_python_runs_verbatim(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Run as one script, statement by statement (an expression statement's value is what the
    README's comment beside it promises)."""
    source = "\n".join(python_blocks("Quickstart (plain Python)"))
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"__name__": "__main__"}
    shown: dict[str, Any] = {}
    for statement in ast.parse(source).body:
        code = ast.Module(body=[statement], type_ignores=[])
        if isinstance(statement, ast.Expr):
            shown[ast.unparse(statement)] = eval(
                compile(ast.Expression(statement.value), "README.md", "eval"), namespace)
        else:
            exec(compile(code, "README.md", "exec"), namespace)
    try:
        (tasks,) = [v for k, v in shown.items() if k.startswith("backend.query(list_open")]
        assert [(t["text"], t["done"]) for t in tasks] == [("try convex_lab", False)]
        assert set(tasks[0]) == {"_id", "_creationTime", "text", "done"}
        assert tasks[0]["_id"] == namespace["task_id"]
        assert namespace["backend"].closed
        durable = namespace["durable"]
        assert (tmp_path / "chat.duckdb").is_file() and not durable.closed
        assert durable.store.schema is namespace["app"].schema
    finally:
        namespace["durable"].close()

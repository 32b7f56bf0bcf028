"""Execute every tutorial under ``notebooks/`` in a real ``python3`` kernel.

Each notebook must run top to bottom without an error. For the notebooks listed below the last
expression of the cells tagged below must display exactly the expected ``text/plain`` value, so
the tutorial and the engine cannot drift apart silently. The kernel is this environment's Python
(ipykernel's ``python3`` kernelspec), so it imports the convex_lab under test.

The executed notebook is also what a saved ``.ipynb`` holds: every widget output must carry a
readable ``text/plain`` and ``text/html`` fallback (not ``<... object at 0x...>``) with the state
after the last cell, and nbconvert must show that fallback where it has no widget state.
"""

import ast
import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
TIMEOUT_S = 600
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")

# tag -> expected value of the cell's last expression (compared as Python literals)
QUICKSTART_EXPECTED: dict[str, object] = {
    "imports": "convex_lab",
    "schema": True,
    "functions": True,
    "inserted": 3,
    "open-texts": ["add a mutation", "query the open tasks"],
    "open-count": 2,
    "convex-error": "EMPTY_TEXT",
    "validation-error": "ArgumentValidationError",
    "open-count-after-errors": 2,
    "durable-written": True,
    "reopened-count": 2,
    "cleanup": False,
}
# 01-chat.ipynb, the chat tutorial (seeded 3 messages; 2 more from a cell, 1 from %convex run)
CHAT_EXPECTED: dict[str, object] = {
    "seeded": 3,
    "after-sends": ["Does it scale?", "Look up: the table and the chart just changed."],
    "sql-counts": {"ada": 3, "grace": 2, "linus": 1},
}
# 02-scheduling.ipynb: reminders in 10, 25 and 60 min (a fourth refused), one canceled, a
# daily digest cron advanced by a week
SCHEDULING_EXPECTED: dict[str, object] = {
    "clock-kind": "virtual",
    "pending-jobs": ["pending", "pending", "pending"],
    "after-10m": ["Tea is ready"],
    "after-1h": ["Tea is ready", "Stretch your legs", "Call Grace"],
    "job-states": {"success": 3, "canceled": 1},
    "digests": 7,
    # delivered at the virtual time each was due (cl.now() inside the scheduled mutation)
    "delivery-minutes": [("Tea is ready", 10.0), ("Stretch your legs", 25.0),
                         ("Call Grace", 60.0)],
}
EXPECTED_BY_NOTEBOOK: dict[str, dict[str, object]] = {
    "00-quickstart.ipynb": QUICKSTART_EXPECTED,
    "01-chat.ipynb": CHAT_EXPECTED,
    "02-scheduling.ipynb": SCHEDULING_EXPECTED,
}

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
OBJECT_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-f]+>")

pytestmark = pytest.mark.notebook


def _require(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed (pip install -e '.[test]')")


def _execute(path: Path) -> Any:
    _require("nbclient")
    _require("nbformat")
    _require("ipykernel")
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=TIMEOUT_S,
        allow_errors=False,
        resources={"metadata": {"path": str(path.parent)}},
    )
    try:
        client.execute()
    except CellExecutionError as err:
        message = ANSI_ESCAPE.sub("", str(err))
        pytest.fail(f"{path.name}: a cell raised an error:\n{message}", pytrace=False)
    return nb


def _tagged_results(nb: Any) -> dict[str, str]:
    """``text/plain`` of each tagged code cell's ``execute_result``."""
    results: dict[str, str] = {}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for tag in cell.metadata.get("tags", []):
            for output in cell.outputs:
                if output.output_type == "execute_result":
                    results[tag] = output.data.get("text/plain", "")
    return results


def _errors(nb: Any) -> list[str]:
    return [
        f"cell {i}: {output.ename}: {output.evalue}"
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "error"
    ]


def _cell(nb: Any, cell_id: str) -> Any:
    for cell in nb.cells:
        if cell.get("id") == cell_id:
            return cell
    raise AssertionError(f"no cell with id {cell_id!r}")


def _widget_state(nb: Any, cell_id: str) -> dict[str, Any]:
    """The stored state of the anywidget a cell displayed (nbclient stores widget state)."""
    views = [
        output.data[WIDGET_VIEW]
        for output in _cell(nb, cell_id).outputs
        if output.output_type in ("display_data", "execute_result") and WIDGET_VIEW in output.data
    ]
    assert len(views) == 1, f"cell {cell_id!r}: expected one widget output, got {len(views)}"
    states = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    model = states.get(views[0]["model_id"])
    assert model is not None, f"cell {cell_id!r}: no stored state for its widget"
    assert model["model_name"] == "AnyModel", model["model_name"]
    state: dict[str, Any] = model["state"]
    return state


def _widget_outputs(nb: Any, cell_id: str | None = None) -> list[Any]:
    """The widget outputs (of one cell, or of every cell) as the saved notebook holds them."""
    cells = [_cell(nb, cell_id)] if cell_id is not None else [
        c for c in nb.cells if c.cell_type == "code"]
    return [output for c in cells for output in c.outputs
            if output.output_type in ("display_data", "execute_result")
            and WIDGET_VIEW in output.get("data", {})]


def _fallback(nb: Any, cell_id: str) -> tuple[str, str]:
    """``(text/plain, text/html)`` of the one widget a cell displayed."""
    outputs = _widget_outputs(nb, cell_id)
    assert len(outputs) == 1, f"cell {cell_id!r}: expected one widget output, got {len(outputs)}"
    data = outputs[0].data
    return str(data.get("text/plain", "")), str(data.get("text/html", ""))


def _check_fallbacks(nb: Any, name: str) -> None:
    """Every widget output carries a readable fallback: a title line in text/plain (never the
    object's repr) and an HTML block GitHub and nbviewer can show."""
    for output in _widget_outputs(nb):
        plain, html = output.data.get("text/plain", ""), output.data.get("text/html", "")
        assert plain.strip() and not OBJECT_REPR.search(plain), f"{name}: text/plain {plain!r}"
        assert '<div class="cl-fallback"' in html, f"{name}: text/html {html[:200]!r}"
        assert not OBJECT_REPR.search(html), f"{name}: text/html {html[:200]!r}"


def _html_without_widget_state(nb: Any) -> str:
    """nbconvert's HTML of ``nb`` saved without widget state (as JupyterLab saves it by
    default): each widget output falls back to its text/html."""
    _require("nbconvert")
    import copy

    import nbformat
    from nbconvert import HTMLExporter

    saved = nbformat.reads(nbformat.writes(nb), as_version=4)  # a save and a reopen
    nbformat.validate(saved)
    stripped = copy.deepcopy(saved)
    stripped.metadata.pop("widgets", None)
    body, _ = HTMLExporter().from_notebook_node(stripped)
    return str(body)


def _check_chat_tutorial(nb: Any) -> None:
    """01-chat.ipynb: the live table, the live chart and the function runner are anywidget
    views of convex_lab's bundle, the table follows list_messages, the chart is a rendered PNG.

    nbclient has no front-end and keeps only the widget updates sent while a cell runs, so
    this checks the kernel-side state when each widget was shown; tests/browser checks that the
    DOM then updates live."""
    table = _widget_state(nb, "live-table")
    assert table["_view"] == "live_query"
    assert table["path"].endswith("list_messages"), table["path"]
    assert table["status"] == "ready", table.get("error")
    bodies = [row["body"] for row in table["value"]]
    assert bodies[:3] == ["Hello, world!", "Hi Ada. Shall we build a chat app?",
                          "It is already running, in this notebook."], bodies

    chart = _widget_state(nb, "live-chart")
    assert chart["_view"] == "live_query"
    assert chart["status"] == "ready", chart.get("error")
    assert chart["rendered"] is True
    assert '<img class="cl-render-img"' in chart["html"]
    assert "data:image/png;base64," in chart["html"]

    runner = _widget_state(nb, "function-runner")
    assert runner["_view"] == "function_runner"
    assert runner["selected"].endswith("send"), runner["selected"]
    send = [f for f in runner["functions"] if f["path"] == runner["selected"]]
    assert send and sorted(send[0]["args"]["value"]) == ["author", "body", "channel"], send

    run_output = "".join(
        str(output.get("data", {}).get("text/plain", "")) + str(output.get("text", ""))
        for output in _cell(nb, "convex-run").outputs
    )
    assert "messages" in run_output, f"%convex run send displayed {run_output!r}"

    # The saved outputs: the live table's fallback holds the messages sent by LATER cells too
    # (kept current after each cell), the chart's its last PNG, the runner's its functions.
    plain, html = _fallback(nb, "live-table")
    assert plain.startswith("Live query list_messages(channel="), plain
    assert "6 rows" in plain and "updated " in plain, plain
    for body in ("Hello, world!", "Does it scale?", "Sent with %convex run"):
        assert body in plain and body in html, (body, plain)
    assert "<table>" in html and "<th>author</th>" in html, html
    _, chart_html = _fallback(nb, "live-chart")
    assert "Live query" in chart_html and "messages_per_author" in chart_html
    assert '<img class="cl-render-img"' in chart_html and "data:image/png;base64," in chart_html
    runner_plain, _ = _fallback(nb, "function-runner")
    assert runner_plain.startswith("Function runner send"), runner_plain
    assert "list_messages" in runner_plain and "create_channel" in runner_plain

    converted = _html_without_widget_state(nb)
    assert "Sent with %convex run" in converted and 'class="cl-fallback"' in converted
    assert not OBJECT_REPR.search(converted.replace("&lt;", "<").replace("&gt;", ">"))


def _printed(nb: Any, cell_id: str) -> str:
    return "".join(str(output.get("text", "")) for output in _cell(nb, cell_id).outputs
                   if output.output_type == "stream")


def _check_scheduling_tutorial(nb: Any) -> None:
    """02-scheduling.ipynb: the jobs and crons widgets and the live list are anywidget views of
    the bundle (their stored state is the last one sent, after the week went by); the clock
    magic says how many jobs ran; the status lists jobs by state and the cron."""
    jobs = _widget_state(nb, "jobs-widget")
    assert jobs["_view"] == "jobs" and jobs["status"] == "ready", jobs.get("error")
    assert jobs["clock_kind"] == "virtual"
    assert jobs["total"] == sum(jobs["counts"].values()) == len(jobs["rows"])
    assert jobs["counts"]["pending"] == 0 and jobs["counts"]["canceled"] == 1, jobs["counts"]
    reminders = [r for r in jobs["rows"] if r["name"] == "send_reminder"]
    assert [r["args"]["text"] for r in reminders] == [
        "Water the plants", "Call Grace", "Stretch your legs", "Tea is ready"]  # newest first
    assert [r["state"] for r in reminders] == ["canceled", "success", "success", "success"]
    assert sum(r["name"] == "daily_digest" for r in jobs["rows"]) == 7

    crons = _widget_state(nb, "crons-widget")
    assert crons["_view"] == "crons" and crons["status"] == "ready", crons.get("error")
    (digest,) = crons["crons"]
    assert (digest["name"], digest["function"], digest["schedule_text"]) == (
        "digest", "daily_digest", "daily at 09:00 UTC")
    assert digest["lastRun"]["state"] == "success" and digest["nextRun"] > crons["clock_now"]

    live = _widget_state(nb, "live-reminders")
    assert live["_view"] == "live_query" and live["path"] == "list_reminders"
    assert live["value"] == ["Tea is ready", "Stretch your legs", "Call Grace"], live["value"]

    jobs_plain, jobs_html = _fallback(nb, "jobs-widget")
    assert jobs_plain.startswith("Scheduled functions · 10 success, 1 canceled"), jobs_plain
    assert "send_reminder" in jobs_html and "canceled" in jobs_html
    crons_plain, _ = _fallback(nb, "crons-widget")
    assert "digest" in crons_plain and "daily at 09:00 UTC" in crons_plain, crons_plain
    live_plain, _ = _fallback(nb, "live-reminders")
    assert all(text in live_plain for text in ("Tea is ready", "Stretch your legs",
                                               "Call Grace")), live_plain

    assert _printed(nb, "advance-10m").strip().endswith("(1 scheduled function ran)")
    assert _printed(nb, "advance-week").strip().endswith("(7 scheduled functions ran)")
    status = _printed(nb, "status")
    assert "Clock: virtual" in status and "Jobs: 10 success, 1 canceled" in status, status
    assert "Crons:\n  digest: daily at 09:00 UTC, next " in status, status


EXTRA_CHECKS = {"01-chat.ipynb": _check_chat_tutorial,
                "02-scheduling.ipynb": _check_scheduling_tutorial}


def test_notebooks_exist() -> None:
    assert NOTEBOOKS, f"no notebooks in {NOTEBOOK_DIR}"
    missing = set(EXPECTED_BY_NOTEBOOK) - {p.name for p in NOTEBOOKS}
    assert not missing, f"notebooks with expected outputs but no file: {sorted(missing)}"


@pytest.mark.timeout(TIMEOUT_S + 60)  # nbclient's per-cell timeout fires first
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path: Path) -> None:
    nb = _execute(path)
    assert not _errors(nb), f"{path.name}: errors in outputs:\n" + "\n".join(_errors(nb))

    expected = EXPECTED_BY_NOTEBOOK.get(path.name, {})
    results = _tagged_results(nb)
    missing = sorted(set(expected) - set(results))
    assert not missing, f"{path.name}: tagged cells without a displayed result: {missing}"
    for tag, want in expected.items():
        got = results[tag]
        try:
            value = ast.literal_eval(got)
        except (ValueError, SyntaxError):
            value = got
        assert value == want, f"{path.name} [{tag}]: expected {want!r}, displayed {got}"
    _check_fallbacks(nb, path.name)
    if path.name in EXTRA_CHECKS:
        EXTRA_CHECKS[path.name](nb)

"""A saved, executed chat tutorial reopened in JupyterLab without the kernel that made its widgets.

What a person sees depends on how the notebook was saved (convex_lab.jupyter._fallback):

* executed elsewhere (nbclient, ``nbconvert --execute``, a clone from GitHub): the notebook is not
  trusted, so JupyterLab shows each output's safe ``text/html`` — the widget's fallback: what it
  follows, when it was updated, the last rows as a table, the chart's last PNG;
* run and saved in JupyterLab with "Save Widget State Automatically" on: the notebook is trusted
  and holds the widgets' state, so JupyterLab rebuilds each widget view from it, showing the
  last rendering without running anything.

(Saved from JupyterLab with that setting off, JupyterLab itself prints "Error displaying widget:
model not found" for a trusted widget output; no output data can change that.)
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _jlab import TIMEOUT_MS, LabServer, NotebookPage

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "01-chat.ipynb"
LATEST = "Sent with %convex run"  # sent by the last cell that changes the table
SEEDED = "Hello, world!"
WIDGET_SETTINGS = Path("@jupyter-widgets") / "jupyterlab-manager" / "plugin.jupyterlab-settings"


def _execute_with_nbclient(target: Path) -> None:
    pytest.importorskip("nbclient", reason="nbclient is not installed (pip install -e '.[test]')")
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, kernel_name="python3", timeout=300,
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    # Reopened "with no kernel": no kernelspec, so JupyterLab asks, and we answer No Kernel.
    nb.metadata.pop("kernelspec", None)
    nb.metadata.pop("language_info", None)
    nbformat.write(nb, target)


@pytest.fixture
def without_kernel(lab: LabServer, chromium: Any, artifacts: Path,
                   request: pytest.FixtureRequest) -> Iterator[Callable[[str], NotebookPage]]:
    """``open(name)``: the notebook ``name`` of the lab's root in a new page, answering
    JupyterLab's "Select Kernel" dialog with No Kernel (conftest's ``notebook`` fixture waits
    for a kernel instead)."""
    from playwright.sync_api import expect

    contexts: list[tuple[Any, NotebookPage]] = []

    def open_notebook(name: str) -> NotebookPage:
        context = chromium.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(TIMEOUT_MS)
        nb = NotebookPage(context.new_page(), lab, artifacts, name)
        contexts.append((context, nb))
        nb.page.goto(lab.notebook_url(name))
        dialog = nb.page.locator(".jp-Dialog")
        expect(dialog).to_contain_text("Select Kernel")
        dialog.get_by_role("button", name="No Kernel").click()
        expect(nb.page.locator(".jp-NotebookPanel-toolbar")).to_contain_text("No Kernel")
        expect(nb.cells.first).to_be_visible()
        return nb

    yield open_notebook
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for context, nb in contexts:
        if failed:
            nb.screenshot(f"{request.node.name}-FAILED")
        nb.write_console_log(request.node.name)
        context.close()


def test_executed_elsewhere_shows_the_text_fallbacks(
        lab: LabServer, without_kernel: Callable[[str], NotebookPage]) -> None:
    """nbclient-executed and saved, opened with No Kernel: the live table's output is a table
    with the messages sent up to the last cell, the live chart's its last PNG, the function
    runner's its functions — never a Python repr or a widget error."""
    from playwright.sync_api import expect

    _execute_with_nbclient(lab.root / "saved-elsewhere.ipynb")
    nb = without_kernel("saved-elsewhere.ipynb")

    table = nb.output(nb.index_of("live-table"))
    table.scroll_into_view_if_needed()
    expect(table.locator("table")).to_contain_text(LATEST)
    expect(table.locator("table")).to_contain_text(SEEDED)
    expect(table).to_contain_text("Live query list_messages(channel=")
    expect(table).to_contain_text("6 rows")
    nb.screenshot("saved-elsewhere-1-live-table", at_cell=nb.index_of("live-table"))

    chart = nb.output(nb.index_of("live-chart"))
    chart.scroll_into_view_if_needed()
    img = chart.locator("img")
    expect(img).to_have_count(1)
    assert (img.get_attribute("src") or "").startswith("data:image/png")
    assert img.evaluate("i => i.naturalWidth") > 0, "the chart PNG did not decode"
    nb.screenshot("saved-elsewhere-2-live-chart", at_cell=nb.index_of("live-chart"))

    runner = nb.output(nb.index_of("function-runner"))
    expect(runner).to_contain_text("Function runner send")
    expect(runner.locator("table")).to_contain_text("messages_per_author")

    page_text = nb.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)").inner_text()
    assert "Error displaying widget" not in page_text
    assert " object at 0x" not in page_text
    assert not nb.page_errors(), nb.page_errors()


@pytest.fixture
def widget_state_saved(lab: LabServer) -> Iterator[None]:
    """JupyterLab's "Save Widget State Automatically" on for the pages opened meanwhile."""
    settings = lab.base / "settings" / WIDGET_SETTINGS
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text(json.dumps({"saveState": True}))
    try:
        yield
    finally:
        settings.unlink()


def _shut_down_kernels(lab: LabServer) -> None:
    headers = {"Authorization": f"token {lab.token}"}
    url = f"{lab.url}/api/sessions"
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
        sessions = json.load(r)
    for session in sessions:
        request = urllib.request.Request(f"{url}/{session['id']}", headers=headers,
                                         method="DELETE")
        urllib.request.urlopen(request, timeout=30).close()


def test_saved_from_jupyterlab_with_widget_state_shows_the_last_rendering(
        notebook: Callable[..., NotebookPage], lab: LabServer, widget_state_saved: None) -> None:
    """Run in JupyterLab, saved with widget state, kernel shut down, reopened: the widget views
    come back from the saved state with the last messages and the chart, nothing re-run."""
    from playwright.sync_api import expect

    nb = notebook("saved-in-lab.ipynb", NOTEBOOK)
    nb.run_all_in_order()
    table_cell = nb.index_of("live-table")
    expect(nb.output(table_cell)).to_contain_text(LATEST)
    counts_before = [nb.cell_state(i)[0] for i in nb.code_cells()]
    nb.save()
    saved = json.loads((lab.root / "saved-in-lab.ipynb").read_text())
    assert "application/vnd.jupyter.widget-state+json" in saved["metadata"].get("widgets", {})
    nb.page.context.close()
    _shut_down_kernels(lab)

    again = notebook("saved-in-lab.ipynb")
    table = again.output(again.index_of("live-table"))
    table.scroll_into_view_if_needed()
    expect(table.locator(".cl-root")).to_have_count(1)  # the widget view, not a fallback
    expect(table).to_contain_text(LATEST)
    expect(table).to_contain_text(SEEDED)
    chart = again.output(again.index_of("live-chart"))
    chart.scroll_into_view_if_needed()
    expect(chart.locator(".cl-root img")).to_have_count(1)
    counts_after = [again.cell_state(i)[0] for i in again.code_cells()]
    assert counts_after == counts_before, "a cell was re-run or lost its saved output"
    again.screenshot("saved-in-lab-1-restored-table", at_cell=again.index_of("live-table"))
    page_text = again.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)").inner_text()
    assert "Error displaying widget" not in page_text
    assert not again.page_errors(), again.page_errors()

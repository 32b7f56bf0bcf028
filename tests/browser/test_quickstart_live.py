"""The chat tutorial (``notebooks/01-chat.ipynb``) in a real JupyterLab, seen in the DOM.

nbclient (tests/test_notebooks.py) proves the kernel side; this proves what the reader sees:
widgets render, and live widgets update in place when a mutation commits — from a new cell and
from the function-runner widget's form — with no cell re-run.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

from _jlab import NotebookPage

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "01-chat.ipynb"
LIVE_UPDATE_TIMEOUT_MS = 20_000  # a live update should take well under a second

SEEDED = ["Hello, world!", "Shall we build a chat app?", "It is already running"]
SENT_LATER = ["Does it scale?", "Look up: the table and the chart just changed.",
              "Sent with %convex run"]


def chart_src(nb: NotebookPage, chart_cell: int) -> str:
    img = nb.output(chart_cell).locator("img").first
    return img.get_attribute("src") or ""


def test_chat_tutorial_live_widgets(notebook: Callable[..., NotebookPage]) -> None:
    """Running the tutorial top to bottom renders the live message table (seeded messages and
    those sent by later cells) and the live chart; a message sent from a NEW cell appears in the
    earlier table and re-renders the chart's <img>; a message sent through the function-runner
    widget's form (fill, click Run) appears in the table too."""
    from playwright.sync_api import expect

    nb = notebook("01-chat.ipynb", NOTEBOOK)
    nb.run_all_in_order()
    table_cell = nb.index_of("live-table")
    chart_cell = nb.index_of("live-chart")
    runner_cell = nb.index_of("function-runner")
    table = nb.output(table_cell)

    # 1. the live table shows the seeded messages and the ones later cells sent
    for body in SEEDED + SENT_LATER:
        expect(table).to_contain_text(body, timeout=LIVE_UPDATE_TIMEOUT_MS)
    expect(nb.output(chart_cell).locator("img")).to_have_count(1)
    expect(nb.output(nb.index_of("sql"))).to_contain_text("messages")
    nb.screenshot("quickstart-1-after-run-all", at_cell=table_cell)

    # 2. a NEW cell sends a message: the earlier cell's table shows it, the chart re-renders
    before = chart_src(nb, chart_cell)
    assert before.startswith("data:image/png"), before[:80]
    nonce = f"typed in a new cell {secrets.token_hex(4)}"
    new_cell = nb.append_cell(f'send(channel=general, author="playwright", body="{nonce}")')
    nb.run_cell(new_cell)
    expect(table).to_contain_text(nonce, timeout=LIVE_UPDATE_TIMEOUT_MS)
    nb.page.wait_for_function(
        """([i, before]) => {
          const cell = window.jupyterapp.shell.currentWidget.content.widgets[i];
          const img = cell.node.querySelector('.jp-OutputArea img');
          return img && img.getAttribute('src') !== before;
        }""",
        arg=[chart_cell, before],
        timeout=LIVE_UPDATE_TIMEOUT_MS,
    )
    nb.screenshot("quickstart-2-new-cell-message", at_cell=table_cell)
    nb.screenshot("quickstart-2b-chart-rerendered", at_cell=chart_cell)

    # 3. the function-runner widget: fill the form, click Run -> the live table updates
    runner = nb.output(runner_cell)
    runner.scroll_into_view_if_needed()
    channel_id = runner.get_by_text("channel ID:").inner_text().split("channel ID:")[1].strip()
    form_body = f"sent from the form {secrets.token_hex(4)}"
    runner.locator("[name='channel']").fill(channel_id)
    runner.locator("[name='author']").fill("runner")
    runner.locator("[name='body']").fill(form_body)
    runner.get_by_role("button", name="Run").click()
    expect(table).to_contain_text(form_body, timeout=LIVE_UPDATE_TIMEOUT_MS)
    nb.screenshot("quickstart-3-function-runner", at_cell=runner_cell)
    nb.screenshot("quickstart-4-table-after-runner", at_cell=table_cell)

    assert not nb.page_errors(), nb.page_errors()

"""Reloading the page restores convex_lab's live widgets from widget state, without re-running.

After a reload JupyterLab reopens the saved notebook and reconnects to the same kernel; the
widget manager restores the views' models (the live table's rows are synced traits), so the
table is back without executing anything — and it is still live.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

from _jlab import NotebookPage

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "01-chat.ipynb"
LIVE_UPDATE_TIMEOUT_MS = 20_000


def test_live_table_restored_after_reload(notebook: Callable[..., NotebookPage]) -> None:
    """The live table shows its messages and the live chart its image again after a page reload
    with no cell executed (the execution counts are unchanged), and a message sent afterwards
    still reaches the restored table."""
    from playwright.sync_api import expect

    nb = notebook("reload.ipynb", NOTEBOOK)
    nb.run_all_in_order()
    table_cell = nb.index_of("live-table")
    expect(nb.output(table_cell)).to_contain_text(
        "Hello, world!", timeout=LIVE_UPDATE_TIMEOUT_MS
    )
    counts_before = [nb.cell_state(i)[0] for i in nb.code_cells()]
    nb.save()

    nb.page.reload()
    expect(nb.cells.first).to_be_visible()
    nb.wait_kernel_ready()
    table = nb.output(nb.index_of("live-table"))
    expect(table).to_contain_text("Hello, world!", timeout=LIVE_UPDATE_TIMEOUT_MS)
    expect(table).to_contain_text("Sent with %convex run", timeout=LIVE_UPDATE_TIMEOUT_MS)
    chart = nb.output(nb.index_of("live-chart")).locator("img")
    expect(chart).to_have_count(1)
    assert (chart.get_attribute("src") or "").startswith("data:image/png")
    counts_after = [nb.cell_state(i)[0] for i in nb.code_cells()]
    assert counts_after == counts_before, "a cell was re-executed by the reload"
    nb.screenshot("reload-1-restored", at_cell=nb.index_of("live-table"))

    # still live after the reload: a message from a new cell reaches the restored view
    nonce = f"after the reload {secrets.token_hex(4)}"
    new_cell = nb.append_cell(f'send(channel=general, author="reload", body="{nonce}")')
    nb.run_cell(new_cell)
    expect(table).to_contain_text(nonce, timeout=LIVE_UPDATE_TIMEOUT_MS)
    nb.screenshot("reload-2-still-live", at_cell=nb.index_of("live-table"))
    assert not nb.page_errors(), nb.page_errors()

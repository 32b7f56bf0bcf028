"""The data browser, logs and crons views as a person sees them in JupyterLab (issue 9, item 6).

One notebook builds a backend on a virtual clock (a ``tasks`` table with an index on ``n``, a
cron that has run once) and shows the data browser, the logs and the crons widgets. The checks
read the rendered DOM and the pixels, never the kernel's state:

* an invalid edit's error is on screen under the row, readable without hovering, the cell rolled
  back to the stored value; a valid edit then clears it;
* column headers sort through an index (ascending, then descending); a header without an index
  says on screen which index to add;
* the delete control draws an SVG icon (Debian's chromium has no emoji font: the old 🗑 was an
  empty box) and has an accessible label;
* the logs show sub-millisecond runs in µs; the crons view writes every time one way.

Screenshots are kept in the artifacts dir (``$E2E_ARTIFACTS``): ``widget-views-*.png``.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable

from _jlab import LabServer, NotebookPage, write_notebook

SETUP = '''
import convex_lab as cl
from convex_lab import define_schema, define_table, v
from convex_lab.jupyter.widgets import crons_widget, data_browser, logs_dashboard

app = cl.App()
app.schema = define_schema({
    "tasks": define_table({"text": v.string(), "n": v.int64()}).index("by_n", ["n"]),
    "ticks": define_table({"at": v.float64()}),
})

@app.mutation(args={"text": v.string(), "n": v.int64()})
def add(ctx, text, n):
    return ctx.db.insert("tasks", {"text": text, "n": n})

@app.internal_mutation(args={})
def tick(ctx):
    ctx.db.insert("ticks", {"at": 1.0})

crons = cl.cron_jobs()
crons.interval("tick", {"minutes": 15}, cl.internal.tick)
app.crons = crons
backend = cl.Backend(app=app, clock="virtual")
backend.deploy()
for n in (3, 1, 2):
    backend.mutation(add, {"text": f"task {n}", "n": n})
backend.clock.advance(20 * 60_000)  # the cron ran at +15 min; next at +30 min
'''.strip()

BROWSER = 'browser = data_browser(backend, "tasks")\nbrowser'
LOGS = '''
logs = logs_dashboard(backend)
logs.add_entry({"function": "tasks:quick", "kind": "query", "lines": [], "error": None,
                "started": 1_700_000_000_000.0, "duration_ms": 0.34})
logs
'''.strip()
CRONS = "crons_widget(backend)"

TIME = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"


def texts(nb: NotebookPage, cell: int) -> list[str]:
    """The ``text`` column of the data browser, top to bottom."""
    return nb.output(cell).locator("tbody td.cl-v-string").all_inner_texts()


def test_data_browser_logs_and_crons_as_seen(
    lab: LabServer, notebook: Callable[..., NotebookPage]
) -> None:
    from PIL import Image
    from playwright.sync_api import expect

    write_notebook(lab.root / "widget_views.ipynb", [SETUP, BROWSER, LOGS, CRONS])
    nb = notebook("widget_views.ipynb")
    for i in range(4):
        nb.run_cell(i)
    out = nb.output(1)
    expect(out.locator("tbody td.cl-v-string")).to_have_count(3)
    assert texts(nb, 1) == ["task 2", "task 1", "task 3"]  # newest first

    # 1. column headers: n has an index, so it sorts (ascending, then descending) ------------
    expect(out.locator("thead th[aria-sort=descending]")).to_contain_text("_creationTime")
    out.locator("thead button.cl-sort", has_text=re.compile(r"^n$")).click()
    expect(out.locator("thead th[aria-sort=ascending]")).to_contain_text("n ↑")
    expect(out.locator("tbody td.cl-v-string").first).to_have_text("task 1")
    assert texts(nb, 1) == ["task 1", "task 2", "task 3"]
    nb.screenshot("widget-views-1-sorted-by-n-ascending", at_cell=1)
    out.locator("thead th[aria-sort=ascending] button").click()
    expect(out.locator("thead th[aria-sort=descending]")).to_contain_text("n ↓")
    expect(out.locator("tbody td.cl-v-string").first).to_have_text("task 3")
    assert texts(nb, 1) == ["task 3", "task 2", "task 1"]
    # text has no index: the header says so on screen, with the index to add
    out.locator("thead button.cl-sort-off", has_text="text").click()
    notice = out.locator(".cl-notice")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("no index of 'tasks' starts with 'text'")
    expect(notice).to_contain_text('.index("by_text", ["text"])')
    assert texts(nb, 1) == ["task 3", "task 2", "task 1"]  # not re-sorted
    nb.screenshot("widget-views-2-unsortable-header-notice", at_cell=1)

    # 2. an invalid edit: the schema's error on screen under the row, the value rolled back ---
    first_n = out.locator("tbody tr:not(.cl-row-error)").first.locator("td.cl-v-int64")
    expect(first_n).to_have_text("3n")
    first_n.dblclick()
    edit = out.locator("input.cl-cell-input")
    edit.fill("seven")
    edit.press("Enter")
    error_row = out.locator("tr.cl-row-error")
    expect(error_row).to_be_visible()
    expect(error_row).to_contain_text("n: not saved.")
    expect(error_row).to_contain_text("SchemaValidationError")
    expect(error_row).to_contain_text('Value: "seven"')
    expect(error_row).to_contain_text("Validator: v.int64()")
    expect(first_n).to_have_text("3n")  # rolled back to the stored value
    box = error_row.bounding_box()
    assert box is not None and box["height"] > 20 and box["width"] > 200, box
    nb.screenshot("widget-views-3-invalid-edit-error-on-screen", at_cell=1)
    # a valid edit of the same document clears it
    first_n.dblclick()
    edit.fill("30")
    edit.press("Enter")
    expect(error_row).to_have_count(0)
    expect(first_n).to_have_text("30n")

    # 3. the delete control: an SVG icon with a label, no glyph that needs an emoji font -----
    delete = out.locator("tbody tr:not(.cl-row-error)").first.locator("button.cl-delete")
    label = delete.get_attribute("aria-label") or ""
    assert re.fullmatch(r"delete document \w{6}…\w{4}", label), label
    assert delete.inner_text().strip() == ""
    icon = delete.locator("svg")
    expect(icon).to_be_visible()
    icon_box = icon.bounding_box()
    assert icon_box is not None and icon_box["width"] >= 10 and icon_box["height"] >= 10
    png = delete.screenshot(path=str(nb.artifacts / "widget-views-4-delete-button.png"))
    histogram = Image.open(io.BytesIO(png)).convert("L").histogram()  # pixels per grey level
    background = histogram.index(max(histogram))
    ink = sum(n for level, n in enumerate(histogram) if abs(level - background) > 60)
    assert ink >= 20, f"the delete icon drew {ink} pixels"
    delete.click()
    expect(delete).to_have_text("Delete?")
    expect(delete).to_have_attribute("aria-label", f"confirm: {label}")
    delete.click()
    expect(out.locator("tbody td.cl-v-string")).to_have_count(2)

    # 4. logs: a 0.34 ms run reads 340 µs; no run reads 0.0 ms ---------------------------------
    durations = nb.output(2).locator("td.cl-duration")
    expect(durations.first).to_have_text("340 µs")
    assert "0.0 ms" not in durations.all_inner_texts()
    nb.screenshot("widget-views-5-logs-durations", at_cell=2)

    # 5. crons: next run and last run written alike (local time, relative to the backend's clock)
    crons = nb.output(3)
    row = crons.locator("tbody tr[data-cron='tick']")
    expect(row).to_be_visible()
    cells = row.locator("td")
    expect(cells.nth(3)).to_have_text(re.compile(rf"^{TIME} \(in 10 min\)$"))
    last_run = row.locator("td.cl-last-run .cl-time")
    expect(last_run).to_have_text(re.compile(rf"^{TIME} \(5 min ago\)$"))
    expect(crons.locator(".cl-clock")).to_have_text(re.compile(rf"^virtual clock: {TIME}$"))
    assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d", crons.inner_text()), crons.inner_text()
    nb.screenshot("widget-views-6-crons-times", at_cell=3)
    assert not nb.page_errors(), nb.page_errors()

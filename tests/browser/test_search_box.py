"""The search tutorial's live search box in a real JupyterLab, as a person uses it: typing searches
(prefix last word, one channel), and a matching message sent from another cell appears in the
results without touching the box, while a non-matching one changes nothing.

Screenshots go to the artifacts dir (``$E2E_ARTIFACTS``): ``search-*.png``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from _jlab import LabServer, NotebookPage

TUTORIAL = Path(__file__).resolve().parents[2] / "notebooks" / "03-search.ipynb"


def test_typing_searches_and_results_stay_live(
    lab: LabServer, notebook: Callable[..., NotebookPage]
) -> None:
    from playwright.sync_api import expect

    nb = notebook("03-search.ipynb", TUTORIAL)
    code = nb.code_cells()
    for i in code[:-1]:  # the last cell closes the box
        nb.run_cell(i)
    view = nb.output(nb.index_of("search-box"))
    box = view.locator("input.cl-search-input")
    expect(box).to_have_value("lunch")  # the tutorial's box.search("lunch") reached the page
    rows = view.locator(".cl-body tbody tr")
    expect(rows).to_have_count(2)  # "Lunch at noon?" and "Lunch sounds good", #general only

    # Typing: the last word is a prefix; #random's "hello again" is filtered out.
    box.fill("")
    box.press_sequentially("data", delay=30)
    cells = view.locator(".cl-body tbody td.cl-v-string")
    expect(cells.filter(has_text="I can help with the database layer")).to_have_count(1)
    expect(cells.filter(has_text="Helsinki has great data engineers")).to_have_count(1)
    expect(cells.filter(has_text="Lunch")).to_have_count(0)
    nb.screenshot("search-1-typed", at_cell=nb.index_of("search-box"))

    # A matching message sent from a cell shows up live; one in another channel does not.
    sent = nb.append_cell(
        'send(channel="random", author="bob", body="database talk in random")\n'
        'send(channel="general", author="bob", body="Datasets for the workshop are ready")')
    nb.run_cell(sent)
    expect(cells.filter(has_text="Datasets for the workshop are ready")).to_have_count(1)
    expect(cells.filter(has_text="database talk in random")).to_have_count(0)

    # Clearing the words: Convex's search of no terms matches nothing.
    box.fill("")
    expect(view.locator(".cl-body .cl-muted")).to_have_text("No matches.")
    nb.screenshot("search-2-live", at_cell=nb.index_of("search-box"))
    assert not [e for e in nb.page_errors() if "convex_lab" in e or "widget" in e]

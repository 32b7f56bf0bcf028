"""The chat page the backend serves (issue 12 §5), in Chromium beside JupyterLab: a notebook
defines and serves the chat; the page (the official npm client's browser build, served by the
backend) and notebook cells edit the same messages and each sees the other's writes live; the
page's optimistic update shows at once, marked pending, gives way to the server's value, and
rolls back with the error when the mutation fails."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from _jlab import NotebookPage, write_notebook

LIVE_MS = 20_000

SETUP = '''\
%load_ext convex_lab
import time
import convex_lab as cl

@cl.query(name="messages:list")
def list_messages(ctx):
    return [{"author": m["author"], "body": m["body"]} for m in ctx.db.query("messages").collect()]

@cl.mutation(name="messages:send")
def send(ctx, author: str, body: str):
    if not body.strip():
        raise cl.ConvexError({"code": "EMPTY"})
    if body.startswith("slow"):
        time.sleep(1.5)  # long enough to see the optimistic update in the page
    return ctx.db.insert("messages", {"author": author, "body": body})

send(author="notebook", body="first from the notebook")
'''
SERVE = "%convex serve"
PAGE_URL = 'print("PAGE", cl.default_backend().serve().site_url + "/_convex_lab/chat")'
LIVE = "live = cl.watch(list_messages)\nlive"


def test_the_chat_page_and_the_notebook_edit_together(
        notebook: Callable[..., NotebookPage], tmp_path: Path) -> None:
    from playwright.sync_api import expect

    source = tmp_path / "web-page.ipynb"
    write_notebook(source, [SETUP, SERVE, PAGE_URL, LIVE])
    nb = notebook("web-page.ipynb", source)
    nb.run_all_in_order()
    expect(nb.output(1)).to_contain_text("CONVEX_URL=http://127.0.0.1:")
    printed = nb.output(2).inner_text()
    match = re.search(r"PAGE (\S+)", printed)
    assert match, printed
    page = nb.page.context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(match.group(1))
    items = page.locator("#messages li")
    expect(items).to_have_count(1, timeout=LIVE_MS)
    expect(items.first).to_contain_text("first from the notebook")

    # the page writes (slowly): shown at once as pending, then the server's value
    page.locator("#author").fill("web")
    page.locator("#body").fill("slow hello from the page")
    page.locator("button[type=submit]").click()
    pending = page.locator('#messages li[data-pending="true"]')
    expect(pending).to_have_count(1, timeout=1000)
    expect(pending).to_contain_text("slow hello from the page")
    expect(pending).to_have_count(0, timeout=LIVE_MS)
    expect(items).to_have_count(2)
    expect(items.nth(1)).to_contain_text("slow hello from the page")
    expect(nb.output(3)).to_contain_text("slow hello from the page", timeout=LIVE_MS)

    # the notebook writes: the page shows it live
    cell = nb.append_cell('send(author="notebook", body="pushed to the page")')
    nb.run_cell(cell)
    expect(items).to_have_count(3, timeout=LIVE_MS)
    expect(items.nth(2)).to_contain_text("pushed to the page")

    # a refused mutation rolls back and shows its error
    page.locator("#body").fill("   ")
    page.locator("button[type=submit]").click()
    expect(page.locator("#error")).to_contain_text("EMPTY", timeout=LIVE_MS)
    expect(items).to_have_count(3)
    expect(page.locator('#messages li[data-pending="true"]')).to_have_count(0)
    page.screenshot(path=str(nb.artifacts / "web-page-chat.png"))
    assert not errors, errors
    page.close()

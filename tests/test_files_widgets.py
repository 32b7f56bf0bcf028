"""The upload widget and the file previews widget, headless: requests as the front-end sends
them, over a real loopback server (the browser test clicks the real thing)."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

pytest.importorskip("anywidget", reason="anywidget is not installed (pip install anywidget)")

from _widget_fixtures import ask, bundle, make, sent, widgets  # noqa: F401

import convex_lab as cl
from convex_lab import v
from convex_lab.jupyter._upload import FilePreviewsWidget, UploadWidget, upload_widget


@pytest.fixture
def backend() -> Iterator[cl.Backend]:
    app = cl.App()
    app.schema = cl.define_schema({"files": cl.define_table({
        "storageId": v.id("_storage"), "name": v.string(), "owner": v.string()})})

    @app.mutation(name="save_file")
    def save_file(ctx: Any, storageId: Any, name: str, owner: str) -> Any:  # noqa: N803
        return ctx.db.insert("files", {"storageId": storageId, "name": name, "owner": owner})

    @app.mutation(name="save_bare")
    def save_bare(ctx: Any, storageId: Any) -> Any:  # noqa: N803
        if not ctx.db.system.get(storageId)["size"]:
            raise ValueError("empty file")
        return storageId

    @app.query(name="list_files")
    def list_files(ctx: Any) -> list[dict[str, Any]]:
        return [{"name": f["name"], "url": ctx.storage.get_url(f["storageId"])}
                for f in ctx.db.query("files").collect()]

    with cl.Backend(app=app) as b:
        yield b


def _post(url: str, data: bytes, content_type: str) -> str:
    request = urllib.request.Request(url, data=data, method="POST",
                                     headers={"Content-Type": content_type})
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(json.loads(response.read())["storageId"])


def test_upload_flow_calls_the_mutation_with_what_it_declares(
        backend: cl.Backend, make: Callable[..., Any], sent: list[dict[str, Any]]) -> None:
    w: UploadWidget = make(upload_widget, "save_file", args={"owner": "ada"}, accept="image/*",
                           backend=backend)
    assert (w.path, w.accept, w.multiple, w._view) == ("save_file", "image/*", True, "upload")
    url = ask(w, sent, {"type": "upload_url", "id": "1"})["result"]["url"]
    storage_id = _post(url, b"\x89PNG...", "image/png")
    got = ask(w, sent, {"type": "uploaded", "id": "2", "storageId": storage_id,
                        "name": "cat.png", "contentType": "image/png", "size": 7})
    assert got["ok"] is True
    [row] = backend.query("list_files")
    assert row["name"] == "cat.png"
    with urllib.request.urlopen(row["url"], timeout=10) as response:
        assert response.read() == b"\x89PNG..."
    assert w.uploads == [{"name": "cat.png", "size": 7.0, "storageId": storage_id,
                          "status": "saved", "error": None}]
    assert "cat.png" in w._fallback().plain()


def test_a_mutation_without_file_fields_gets_only_the_id(
        backend: cl.Backend, make: Callable[..., Any], sent: list[dict[str, Any]]) -> None:
    w = make(upload_widget, "save_bare", backend=backend)
    url = ask(w, sent, {"type": "upload_url", "id": "1"})["result"]["url"]
    storage_id = _post(url, b"data", "text/plain")
    got = ask(w, sent, {"type": "uploaded", "id": "2", "storageId": storage_id, "name": "a.txt",
                        "size": 4})
    assert got == {"type": "response", "id": "2", "ok": True, "result": storage_id}
    empty = _post(ask(w, sent, {"type": "upload_url", "id": "3"})["result"]["url"], b"", "x/y")
    failed = ask(w, sent, {"type": "uploaded", "id": "4", "storageId": empty, "name": "e"})
    assert failed["ok"] is False and "empty file" in failed["error"]["message"]
    assert [u["status"] for u in w.uploads] == ["saved", "error"]


def test_the_browser_cannot_pass_off_other_ids_or_functions(
        backend: cl.Backend, make: Callable[..., Any], sent: list[dict[str, Any]]) -> None:
    w = make(upload_widget, "save_bare", backend=backend)
    forged = ask(w, sent, {"type": "uploaded", "id": "1", "storageId": "not-an-id"})
    assert forged["ok"] is False and "not a storage ID" in forged["error"]["message"]
    w.path = "list_files"  # a trait the browser could write: ignored
    url = ask(w, sent, {"type": "upload_url", "id": "2"})["result"]["url"]
    storage_id = _post(url, b"x", "text/plain")
    assert ask(w, sent, {"type": "uploaded", "id": "3", "storageId": storage_id})[
        "result"] == storage_id
    assert backend.query("list_files") == []


def test_file_previews_follow_the_query(
        backend: cl.Backend, make: Callable[..., Any], sent: list[dict[str, Any]]) -> None:
    live = backend.client().subscribe("list_files")
    w = make(FilePreviewsWidget, live)
    assert (w._view, w.value) == ("upload_previews", [])
    url = backend.files.generate_upload_url()
    sid = _post(url, b"GIF89a", "image/gif")
    backend.client().mutation("save_file", {"storageId": sid, "name": "g.gif", "owner": "x"})
    assert w.value[0]["name"] == "g.gif" and "/api/storage/" in w.value[0]["url"]
    assert "g.gif" in w._fallback().plain()

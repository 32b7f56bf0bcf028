"""File storage (reference §12): ctx.storage by capability, uploads and downloads over the
loopback server, tokens, deletes, and what survives a restart."""

from __future__ import annotations

import base64
import hashlib
import http.client
import io
import json
import tracemalloc
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import convex_lab as cl
from convex_lab import v
from convex_lab.errors import ConvexLabError, InvalidIdError, NonexistentDocumentError


def make_app() -> cl.App:
    app = cl.App()
    app.schema = cl.define_schema({
        "files": cl.define_table({"storageId": v.id("_storage"), "name": v.string()}),
        "things": cl.define_table({"n": v.float64()}),
    })

    @app.mutation(name="upload_url")
    def upload_url(ctx: Any) -> str:
        return ctx.storage.generate_upload_url()  # type: ignore[no-any-return]

    @app.mutation(name="save")
    def save(ctx: Any, storageId: Any, name: str) -> Any:  # noqa: N803 (Convex's field name)
        return ctx.db.insert("files", {"storageId": storageId, "name": name})

    @app.query(name="listing")
    def listing(ctx: Any) -> list[dict[str, Any]]:
        return [{"name": f["name"], "url": ctx.storage.get_url(f["storageId"])}
                for f in ctx.db.query("files").collect()]

    @app.query(name="url")
    def url(ctx: Any, sid: str) -> Any:
        return ctx.storage.get_url(sid)

    @app.query(name="meta")
    def meta(ctx: Any, sid: str) -> Any:
        return ctx.storage.get_metadata(sid)

    @app.query(name="doc")
    def doc(ctx: Any, sid: str) -> Any:
        return ctx.db.system.get(sid)

    @app.action(name="put")
    def put(ctx: Any, data: bytes, content_type: Any = None) -> Any:
        return ctx.storage.store(data, content_type=content_type)

    @app.action(name="get")
    def get(ctx: Any, sid: str) -> Any:
        return ctx.storage.get(sid)

    @app.mutation(name="remove")
    def remove(ctx: Any, sid: str) -> None:
        ctx.storage.delete(sid)

    @app.mutation(name="remove_then_fail")
    def remove_then_fail(ctx: Any, sid: str) -> None:
        ctx.storage.delete(sid)
        raise RuntimeError("changed my mind")

    @app.query(name="query_store")
    def query_store(ctx: Any) -> Any:
        return ctx.storage.store(b"x")

    @app.mutation(name="mutation_get")
    def mutation_get(ctx: Any, sid: str) -> Any:
        return ctx.storage.get(sid)

    return app


@pytest.fixture
def backend() -> Iterator[cl.Backend]:
    with cl.Backend(app=make_app()) as b:
        yield b


def post(url: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, \
                response.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def b64sha(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


# Actions ---------------------------------------------------------------------------------------

def test_store_and_get_in_an_action(backend: cl.Backend) -> None:
    sid = backend.action("put", {"data": b"hello", "content_type": "text/plain"})
    assert backend.action("get", {"sid": sid}) == b"hello"
    doc = backend.query("doc", {"sid": sid})
    assert set(doc) == {"_id", "_creationTime", "sha256", "size", "contentType"}
    assert (doc["sha256"], doc["size"], doc["contentType"]) == (b64sha(b"hello"), 5.0,
                                                                "text/plain")
    assert backend.query("meta", {"sid": sid}) == {
        "storageId": sid, "sha256": hashlib.sha256(b"hello").hexdigest(), "size": 5.0,
        "contentType": "text/plain"}
    assert backend.action("put", {"data": b""}) is not None  # an empty file is a file


def test_store_takes_files_and_chunks_not_text(backend: cl.Backend) -> None:
    app = backend.app

    @app.action(name="put_many")
    def put_many(ctx: Any) -> list[Any]:
        return [ctx.storage.store(io.BytesIO(b"from a file")),
                ctx.storage.store(iter([b"chunk ", bytearray(b"by "), memoryview(b"chunk")])),
                ctx.storage.store(b"checked", sha256=hashlib.sha256(b"checked").hexdigest())]

    @app.action(name="put_text")
    def put_text(ctx: Any) -> Any:
        return ctx.storage.store("text")

    @app.action(name="put_wrong_hash")
    def put_wrong_hash(ctx: Any) -> Any:
        return ctx.storage.store(b"data", sha256="00" * 32)

    ids = backend.action("put_many")
    assert [backend.action("get", {"sid": i}) for i in ids] == [
        b"from a file", b"chunk by chunk", b"checked"]
    files_before = backend.files.blobs.usage()
    with pytest.raises(ConvexLabError, match=r"not str: encode text first"):
        backend.action("put_text")
    with pytest.raises(ConvexLabError, match="Sha256 mismatch"):
        backend.action("put_wrong_hash")
    assert backend.files.blobs.usage() == files_before  # nothing left behind


def test_storage_is_split_by_capability(backend: cl.Backend) -> None:
    sid = backend.action("put", {"data": b"x"})
    with pytest.raises(AttributeError, match=r"store\(\) is available in actions"):
        backend.query("query_store")
    with pytest.raises(AttributeError, match=r"get\(\) is available in actions"):
        backend.mutation("mutation_get", {"sid": sid})


def test_ids_must_be_storage_ids(backend: cl.Backend) -> None:
    thing = backend.mutation(cl.api.save, {"storageId": backend.action("put", {"data": b"x"}),
                                           "name": "n"})
    with pytest.raises(InvalidIdError, match="is not a storage ID"):
        backend.query("url", {"sid": thing})  # an ID of another table
    with pytest.raises(InvalidIdError, match="is not a storage ID"):
        backend.query("url", {"sid": "not an id"})


# Uploads -----------------------------------------------------------------------------------

def test_upload_url_flow(backend: cl.Backend) -> None:
    url = backend.mutation("upload_url")
    assert url.startswith("http://127.0.0.1:") and "/api/storage/upload?token=" in url
    data = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 10
    status, answer = post(url, data, {"Content-Type": "image/png", "Digest":
                                      f"sha-256={b64sha(data)}"})
    assert status == 200 and set(answer) == {"storageId"}
    sid = answer["storageId"]
    backend.mutation("save", {"storageId": sid, "name": "pic.png"})
    [row] = backend.query("listing")
    status, headers, body = get(row["url"])
    assert (status, body) == (200, data)
    assert headers["content-type"] == "image/png"
    assert headers["digest"] == f"sha-256={b64sha(data)}"
    assert headers["content-length"] == str(len(data))


def test_upload_tokens_are_single_use_signed_and_expire() -> None:
    with cl.Backend(app=make_app(), clock="virtual") as b:
        url = b.mutation("upload_url")
        assert post(url, b"one")[0] == 200
        status, answer = post(url, b"two")
        assert (status, answer["code"]) == (401, "StorageTokenUsed")
        forged = url[: url.rindex(".") + 1] + "A" * 22
        assert post(forged, b"x")[1]["code"] == "StorageTokenInvalid"
        assert post(url.split("?")[0], b"x")[1]["code"] == "StorageTokenInvalid"
        late = b.mutation("upload_url")
        b.clock.advance(60 * 60 * 1000 + 1)  # Convex's one hour, on the backend's clock
        status, answer = post(late, b"x")
        assert (status, answer["code"]) == (401, "StorageTokenExpired")
        assert len(b.store.tables["_storage"].docs) == 1


def test_a_failed_upload_stores_nothing_and_frees_its_token(backend: cl.Backend) -> None:
    url = backend.mutation("upload_url")
    status, answer = post(url, b"data", {"Digest": f"sha-256={b64sha(b'other')}"})
    assert (status, answer["code"]) == (400, "Sha256Mismatch")
    assert not backend.store.tables["_storage"].docs
    assert backend.files.blobs.usage() == 0
    assert post(url, b"data")[0] == 200  # the token was not used up


def test_an_upload_url_works_from_a_browser_origin(backend: cl.Backend) -> None:
    url = backend.mutation("upload_url")
    request = urllib.request.Request(url, method="OPTIONS", headers={
        "Origin": "http://localhost:8888", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["access-control-allow-origin"] == "http://localhost:8888"
        assert "POST" in response.headers["access-control-allow-methods"]


# Downloads and deletes -------------------------------------------------------------------------

def test_range_requests_and_head(backend: cl.Backend) -> None:
    sid = backend.action("put", {"data": b"0123456789"})
    url = backend.query("url", {"sid": sid})
    status, headers, body = get(url, {"Range": "bytes=2-5"})
    assert (status, body, headers["content-range"]) == (206, b"2345", "bytes 2-5/10")
    assert get(url, {"Range": "bytes=-3"})[2] == b"789"
    assert get(url, {"Range": "bytes=20-"})[0] == 416
    request = urllib.request.Request(url, method="HEAD")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["content-length"] == "10" and response.read() == b""


def test_file_urls_cannot_be_guessed_from_ids(backend: cl.Backend) -> None:
    sid = backend.action("put", {"data": b"secret"})
    url = backend.query("url", {"sid": sid})
    base = url.rsplit("/", 1)[0]
    assert get(base + "/AAAAAAAAAAAAAAAAAAAAAA")[0] == 404
    assert get(url)[2] == b"secret"


def test_delete_revokes_the_url_frees_the_space_and_updates_live_queries(
        backend: cl.Backend) -> None:
    sid = backend.action("put", {"data": b"x" * 1000})
    backend.mutation("save", {"storageId": sid, "name": "a"})
    live = backend.client().subscribe("listing")
    url = live.value[0]["url"]
    assert get(url)[0] == 200 and backend.files.blobs.usage() == 1000
    with pytest.raises(RuntimeError, match="changed my mind"):
        backend.mutation("remove_then_fail", {"sid": sid})
    assert get(url)[0] == 200  # rolled back with its mutation: still there
    backend.client().mutation("remove", {"sid": sid})
    assert live.value == [{"name": "a", "url": None}]
    assert get(url)[0] == 404
    assert backend.files.blobs.usage() == 0
    assert backend.action("get", {"sid": sid}) is None
    assert backend.query("meta", {"sid": sid}) is None
    with pytest.raises(NonexistentDocumentError, match=f"storage id {sid} not found") as info:
        backend.mutation("remove", {"sid": sid})
    assert info.value.code == "StorageIdNotFound"


# Durability --------------------------------------------------------------------------------------

def test_files_survive_a_restart_and_leftovers_are_swept(tmp_path: Path) -> None:
    path = tmp_path / "files.duckdb"
    with cl.Backend(path, app=make_app()) as b:
        keep = b.action("put", {"data": b"keep me", "content_type": "text/plain"})
        gone = b.action("put", {"data": b"delete me"})
        b.mutation("remove", {"sid": gone})
        old_url = b.query("url", {"sid": keep})
        root = b.files.blobs.root
    assert root == Path(str(path) + ".files")
    # What a crash can leave: a half-written upload and a placed file whose commit never came.
    (root / ".tmp-crashed").write_bytes(b"partial")
    (root / "0aqw5eyyjfy98rq9xxqz1r6za4v0xwg").write_bytes(b"orphan")
    with cl.Backend(path, app=make_app()) as b:
        assert sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) == [keep]
        assert not (root / ".tmp-crashed").exists()
        assert b.action("get", {"sid": keep}) == b"keep me"
        new_url = b.query("url", {"sid": keep})
        # The server has a new port, the URL the same path: it still serves the file.
        assert new_url.split("/api/")[1] == old_url.split("/api/")[1]
        assert get(new_url)[2] == b"keep me"


def test_an_in_memory_backend_removes_its_files_when_closed() -> None:
    b = cl.Backend(app=make_app())
    b.action("put", {"data": b"x"})
    root = b.files.blobs.root
    assert root.is_dir()
    b.close()
    assert not root.exists()


@pytest.mark.slow
def test_a_large_upload_and_download_stream_with_flat_memory(backend: cl.Backend) -> None:
    size = 48 * 1024 * 1024
    chunk = bytes(range(256)) * 4096  # 1 MiB

    class Body(io.RawIOBase):
        sent = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buf: Any) -> int:
            n = min(len(buf), size - self.sent, len(chunk))
            buf[:n] = chunk[:n]
            self.sent += n
            return n

    url = urllib.parse.urlsplit(backend.mutation("upload_url"))
    tracemalloc.start()
    try:
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
        conn.request("POST", f"{url.path}?{url.query}", body=io.BufferedReader(Body()),
                     headers={"Content-Length": str(size)})
        sid = json.loads(conn.getresponse().read())["storageId"]
        link = urllib.parse.urlsplit(backend.query("url", {"sid": sid}))
        conn.request("GET", link.path)
        response = conn.getresponse()
        digest = hashlib.sha256()
        received = 0
        while block := response.read(1024 * 1024):
            digest.update(block)
            received += len(block)
        conn.close()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    expected = hashlib.sha256()
    for _ in range(size // len(chunk)):
        expected.update(chunk)
    assert received == size and digest.digest() == expected.digest()
    assert peak < 12 * 1024 * 1024, f"peak Python allocations {peak / 2**20:.1f} MiB"

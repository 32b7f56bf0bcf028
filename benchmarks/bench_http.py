"""P9 (files through the loopback server) and P10 (HTTP action round trip), beside anchors measured
in the same run.

P9: a 100 MiB file uploaded to ``generate_upload_url()``'s URL and downloaded from its
``get_url`` URL with ``http.client`` over loopback (1 MiB blocks, the download written to a
file), in MiB/s, against copying the same file with ``shutil.copyfileobj`` (a plain read/write
copy, 1 MiB blocks). Two backends: in memory (its files in a temporary directory) and a DuckDB
file (each file ``fsync``ed before its document commits; the anchor then ``fsync``s its copy
too). Memory: the growth of the process's RSS while the 100 MiB go up and come back, sampled
every 2 ms (streamed: it must stay far below the file's size).

P10: the p50 of a trivial HTTP action (returns ``"ok"``) called over loopback on the site URL with
a keep-alive ``http.client`` connection, against the same client calling a bare starlette
endpoint (``async def`` returning ``PlainTextResponse("ok")``) served by uvicorn on its own
thread, as ours is.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import statistics
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

import convex_lab as cl
from benchmarks._common import PeakRss, Row, interleave, rounds
from convex_lab.server import _bind

SIZE = 100 * 1024 * 1024
BLOCK = 1024 * 1024
CALLS = 2000


def _files_app() -> cl.App:
    app = cl.App()

    @app.mutation(name="upload_url")
    def upload_url(ctx: Any) -> str:
        return ctx.storage.generate_upload_url()  # type: ignore[no-any-return]

    @app.query(name="url")
    def url(ctx: Any, sid: str) -> Any:
        return ctx.storage.get_url(sid)

    @app.mutation(name="remove")
    def remove(ctx: Any, sid: str) -> None:
        ctx.storage.delete(sid)

    return app


def _transfer(backend: cl.Backend, src: Path, dst: Path) -> float:
    """Upload ``src``, download it to ``dst``, delete it; MiB/s over both transfers."""
    target = urllib.parse.urlsplit(backend.mutation("upload_url"))
    conn = http.client.HTTPConnection(target.hostname, target.port, timeout=120,
                                      blocksize=BLOCK)
    t0 = time.perf_counter()
    with open(src, "rb") as body:
        conn.request("POST", f"{target.path}?{target.query}", body=body,
                     headers={"Content-Length": str(SIZE),
                              "Content-Type": "application/octet-stream"})
        sid = json.loads(conn.getresponse().read())["storageId"]
    link = urllib.parse.urlsplit(backend.query("url", {"sid": sid}))
    conn.request("GET", link.path)
    response = conn.getresponse()
    with open(dst, "wb") as out:
        while block := response.read(BLOCK):
            out.write(block)
    elapsed = time.perf_counter() - t0
    conn.close()
    assert dst.stat().st_size == SIZE
    backend.mutation("remove", {"sid": sid})
    return 2 * SIZE / 2**20 / elapsed


def _copy(src: Path, dst: Path, *, sync: bool) -> float:
    """Copy ``src`` to ``dst`` twice (as there are two transfers); MiB/s."""
    t0 = time.perf_counter()
    for _ in range(2):
        with open(src, "rb") as a, open(dst, "wb") as b:
            shutil.copyfileobj(a, b, BLOCK)
            if sync:
                b.flush()
                os.fsync(b.fileno())
    return 2 * SIZE / 2**20 / (time.perf_counter() - t0)


def bench_p9() -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench_http-") as tmp:
        src, dst, copy = Path(tmp) / "src.bin", Path(tmp) / "dst.bin", Path(tmp) / "copy.bin"
        with open(src, "wb") as f:
            for i in range(SIZE // BLOCK):
                f.write(os.urandom(64) * (BLOCK // 64) if i == 0 else bytes([i % 251]) * BLOCK)
        for label, path, sync in (("in memory", None, False),
                                  ("DuckDB file, fsync", Path(tmp) / "b.duckdb", True)):
            with cl.Backend(path, app=_files_app()) as backend:
                _transfer(backend, src, dst)  # warm up: server start, page cache
                with PeakRss() as peak:
                    ours, anchor, ratio = interleave(lambda b=backend: _transfer(b, src, dst),
                                                     lambda s=sync: _copy(src, copy, sync=s),
                                                     rounds())
            rows.append(Row("P9", f"100 MiB upload + download over loopback ({label})", ours,
                            "MiB/s", "shutil.copyfileobj" + (" + fsync" if sync else ""), anchor,
                            True, "≥ 0.5×", ratio >= 0.5, ratio))
            rows.append(Row("P9", f"RSS growth during those transfers ({label})", peak.growth,
                            "MiB", "file size", SIZE / 2**20, False, "flat (≪ file)",
                            peak.growth < 32))
    return rows


# P10 -------------------------------------------------------------------------------------------


def _bare_starlette() -> tuple[Any, int]:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def ping(_request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/ping", ping)])
    # The same socket as ours (convex_lab.server._bind: TCP_NODELAY applied by asyncio): with a
    # plain socket.socket() the anchor's responses wait ~40 ms for delayed ACKs, measuring Nagle.
    sock = _bind(0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False,
                                           lifespan="off", log_config=None))
    threading.Thread(target=lambda: server.run(sockets=[sock]), daemon=True).start()
    while not server.started:
        time.sleep(0.005)
    return server, sock.getsockname()[1]


def _p50_ms(port: int, path: str) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    times = []
    for _ in range(CALLS):
        t0 = time.perf_counter()
        conn.request("GET", path)
        body = conn.getresponse().read()
        times.append(time.perf_counter() - t0)
        assert body == b"ok", body
    conn.close()
    return statistics.median(times) * 1000


def bench_p10() -> list[Row]:
    app = cl.App()

    @app.http_action
    def ping(ctx: Any, request: cl.Request) -> cl.Response:
        return cl.Response("ok")

    app.http = cl.HttpRouter()
    app.http.route(path="/ping", method="GET", handler=ping)
    with cl.Backend(app=app) as backend:
        port = backend.serve().site_port
        bare, bare_port = _bare_starlette()
        try:
            _p50_ms(port, "/ping"), _p50_ms(bare_port, "/ping")  # warm up
            ours, anchor, ratio = interleave(lambda: _p50_ms(port, "/ping"),
                                             lambda: _p50_ms(bare_port, "/ping"), rounds())
        finally:
            bare.should_exit = True
    return [Row("P10", f"trivial HTTP action round trip over loopback, p50 of {CALLS}", ours,
                "ms", "bare starlette endpoint (uvicorn)", anchor, False, "≤ 2×", ratio <= 2,
                ratio)]

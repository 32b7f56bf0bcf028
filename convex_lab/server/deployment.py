"""The deployment URL: file uploads and downloads (reference §12), later the wire API.

* ``POST /api/storage/upload?token=<token>`` — the body is the file, streamed to disk as it
  arrives (never held whole), with its ``Content-Type`` and an optional ``Digest:
  sha-256=<base64>`` checked against the bytes. Answers ``{"storageId": "<id>"}``, or Convex's
  ``{"code", "message"}`` with 401 (a bad, expired or used token) or 400 (a digest mismatch).
* ``GET`` / ``HEAD /api/storage/<id>/<signature>`` — the bytes, streamed, with ``Content-Type``,
  ``Content-Length``, ``Digest: sha-256=<base64>``, ``Cache-Control: private,
  max-age=2592000`` (the bytes of a URL never change) and single ``Range`` requests (206).
  404 once the file is deleted.
* ``GET /`` — Convex's "This Convex deployment is running" text.
* Convex's HTTP API (``/api/query``, ``/api/mutation``, ... — ``server/api.py``) and the sync
  WebSocket (``/api/sync``, ``/api/<version>/sync`` — ``server/sync.py``).

CORS mirrors the caller's origin on every route, as Convex's router does, so a page (a widget in
JupyterLab, a page on another origin) can upload and call functions with ``fetch``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, BinaryIO

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from convex_lab.errors import BackendClosedError, ConvexLabError
from convex_lab.files.blobs import CHUNK, BlobWriter
from convex_lab.files.engine import parse_digest

if TYPE_CHECKING:
    from convex_lab.backend import Backend
    from convex_lab.server.asgi import ASGIApp
    from convex_lab.server.sync import SyncHub

RUNNING = "This Convex deployment is running. See https://docs.convex.dev/."
MAX_AGE_S = 60 * 60 * 24 * 30
_UNAUTHENTICATED = {"StorageTokenInvalid", "StorageTokenExpired", "StorageTokenUsed"}
PIPE_BYTES = 1 << 20  # an upload is hashed and written in batches of about this size
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _error(e: ConvexLabError) -> JSONResponse:
    status = 401 if e.code in _UNAUTHENTICATED else (503 if isinstance(e, BackendClosedError)
                                                     else 400)
    return JSONResponse({"code": e.code, "message": str(e)}, status_code=status)


def routes(backend: Backend) -> list[Route]:
    files = backend.files

    async def upload(request: Request) -> Response:
        try:
            if backend.closed:
                raise BackendClosedError("This backend is closed.")
            claim = files.tokens.claim(request.query_params.get("token"))
        except ConvexLabError as e:
            return _error(e)
        writer = None
        try:
            expected = parse_digest(request.headers.get("digest"))
            writer = files.blobs.writer()
            await _receive(request, writer)
            content_type = request.headers.get("content-type") or None
            storage_id = await run_in_threadpool(files.commit, writer, content_type, expected)
        except ConvexLabError as e:
            if writer is not None:
                writer.abort()
            files.tokens.release(claim)
            return _error(e)
        except (ClientDisconnect, OSError):
            if writer is not None:
                writer.abort()
            files.tokens.release(claim)
            return JSONResponse({"code": "UploadFailed", "message": "The upload did not "
                                 "complete: the body ended early or could not be written."},
                                status_code=400)
        except BaseException:
            if writer is not None:
                writer.abort()
            files.tokens.release(claim)
            raise
        files.tokens.spend(claim)
        return JSONResponse({"storageId": str(storage_id)})

    async def download(request: Request) -> Response:
        storage_id = request.path_params["storage_id"]
        try:
            opened = await run_in_threadpool(files.open_url, storage_id,
                                             request.path_params["signature"])
        except ConvexLabError as e:
            return _error(e)
        if opened is None:
            return JSONResponse({"code": "FileNotFound", "message": "File not found: it was "
                                 "deleted, or this is not a file URL of this backend."},
                                status_code=404)
        file, doc = opened
        size = int(doc["size"])
        headers = {"digest": f"sha-256={doc['sha256']}", "accept-ranges": "bytes",
                   "cache-control": f"private, max-age={MAX_AGE_S}"}
        if doc["contentType"]:
            headers["content-type"] = doc["contentType"]
        start, end, status = 0, size, 200
        wanted = request.headers.get("range")
        if wanted is not None:
            span = _parse_range(wanted, size)
            if span is None:
                file.close()
                return Response(status_code=416, headers={"content-range": f"bytes */{size}"})
            start, end = span
            status = 206
            headers["content-range"] = f"bytes {start}-{end - 1}/{size}"
            del headers["digest"]  # the digest is the whole file's
        headers["content-length"] = str(end - start)
        if request.method == "HEAD":
            file.close()
            return Response(status_code=status, headers=headers)
        return StreamingResponse(_read(file, start, end), status_code=status, headers=headers,
                                 media_type=None)

    async def root(_request: Request) -> Response:
        return PlainTextResponse(RUNNING)

    return [
        Route("/", root, methods=["GET"]),
        Route("/api/storage/upload", upload, methods=["POST"]),
        Route("/api/storage/{storage_id}/{signature}", download, methods=["GET", "HEAD"]),
    ]


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """One ``bytes=a-b`` range → ``(start, end)`` (end exclusive); ``None`` if unsatisfiable or
    not a single range (Convex serves one range at a time)."""
    match = _RANGE.match(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        n = int(last)
        return (max(size - n, 0), size) if n > 0 and size > 0 else None
    start = int(first)
    end = min(int(last) + 1, size) if last else size
    return (start, end) if start < end else None


async def _receive(request: Request, writer: BlobWriter) -> None:
    """Stream the request's body into ``writer``: hashing and writing (which release the GIL
    on large buffers) run on a worker thread, one batch of ~PIPE_BYTES at a time, while the loop
    receives the next batch, so the SHA-256 no longer halves the upload's throughput. On return,
    normal or not, no write is in flight (the caller may then abort the writer)."""
    pending: asyncio.Future[None] | None = None
    batch = bytearray()
    try:
        async for chunk in request.stream():
            batch += chunk
            if len(batch) >= PIPE_BYTES:
                if pending is not None:
                    await pending
                pending = asyncio.get_running_loop().run_in_executor(None, writer.write, batch)
                batch = bytearray()
        if pending is not None:
            await pending
            pending = None
        if batch:
            writer.write(batch)
    finally:
        if pending is not None:
            with contextlib.suppress(BaseException):
                await asyncio.shield(pending)


async def _read(file: BinaryIO, start: int, end: int) -> AsyncIterator[bytes]:
    """The bytes ``[start, end)`` in chunks (page-cache reads: brief, so done on the loop)."""
    try:
        file.seek(start)
        left = end - start
        while left > 0:
            chunk = file.read(min(CHUNK, left))
            if not chunk:
                break
            left -= len(chunk)
            yield chunk
    finally:
        file.close()


def deployment_app(backend: Backend, hub: SyncHub | None = None) -> ASGIApp:
    """Files, the HTTP API (``server/api.py``) and, given a hub, the sync WebSocket
    (``server/sync.py``)."""
    from convex_lab.server import api, sync  # noqa: PLC0415

    extra: list[Any] = api.routes(backend) + (sync.routes(hub) if hub is not None else [])
    cors = Middleware(CORSMiddleware, allow_origin_regex=".*", allow_credentials=True,
                      allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
                      allow_headers=["*"], expose_headers=["digest", "content-range"])
    app: Any = Starlette(routes=routes(backend) + extra, middleware=[cors])
    return app  # type: ignore[no-any-return]

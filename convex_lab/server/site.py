"""The site URL: every request is an HTTP action (``backend.handle_http``), as on Convex's
``.convex.site`` — except ``GET /_convex_lab/...``, convex_lab's own web page (``page.py``).
The body is read whole (at most 20 MiB, Convex's limit: 413 beyond) and the action runs in a
worker thread, so the server's loop keeps serving meanwhile."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from starlette.requests import ClientDisconnect, Request

from convex_lab.errors import BackendClosedError
from convex_lab.http import Request as HttpRequest
from convex_lab.http_router import MAX_BODY_BYTES
from convex_lab.server.asgi import ASGIApp, Receive, Scope, Send, send_bytes
from convex_lab.server.page import PREFIX, page

if TYPE_CHECKING:
    from convex_lab.backend import Backend


def site_app(backend: Backend, pool: ThreadPoolExecutor) -> ASGIApp:
    """``pool`` runs the actions: a plain executor costs less per request than anyio's worker
    threads (measured: ~0.15 ms of a ~0.5 ms round trip)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1003})
            return
        if scope["method"] == "GET" and scope["path"].startswith(PREFIX):
            server = backend._server
            served = page(scope["path"], server.url if server is not None else "")
            if served is not None:
                await send_bytes(send, *served)
                return
        request = Request(scope, receive)
        body = bytearray()
        try:
            async for chunk in request.stream():
                body += chunk
                if len(body) > MAX_BODY_BYTES:
                    await send_bytes(send, 413, b"The request body is over 20 MiB: HTTP actions "
                                                b"take at most 20 MiB.")
                    return
        except ClientDisconnect:
            return
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        try:
            incoming = HttpRequest(scope["method"], str(request.url), headers=headers,
                                   body=bytes(body))
        except ValueError as e:
            await send_bytes(send, 400, f"Bad request: {e}".encode())
            return
        try:
            response = await asyncio.get_running_loop().run_in_executor(
                pool, backend.handle_http, incoming)
        except BackendClosedError:
            await send_bytes(send, 503, b"This backend is closed.")
            return
        head = incoming.method == "HEAD"
        length = int(response.headers.get("content-length", "0")) if head else None
        await send_bytes(send, response.status, response.body, response.headers.items_list(),
                         head=head, length=length)

    return app

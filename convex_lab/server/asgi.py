"""ASGI plumbing shared by the deployment and site apps: dispatch by port, plain responses."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def by_port(apps: dict[int, ASGIApp], default: ASGIApp) -> ASGIApp:
    """One ASGI app for several listening sockets: the app of the port a request came in on."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        server = scope.get("server")
        port = server[1] if server else None
        await apps.get(port, default)(scope, receive, send)  # type: ignore[arg-type]

    return app


async def send_bytes(send: Send, status: int, body: bytes,
                     headers: list[tuple[str, str]] | None = None, *,
                     head: bool = False, length: int | None = None) -> None:
    """A whole response; ``content-length`` is the body's, or ``length`` (HEAD: what GET would
    send; no body is sent)."""
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers or []
           if k.lower() not in ("content-length", "transfer-encoding")]
    raw.append((b"content-length", str(len(body) if length is None else length).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": b"" if head else body})


async def send_json(send: Send, status: int, data: Any,
                    headers: list[tuple[str, str]] | None = None) -> None:
    body = json.dumps(data, separators=(",", ":")).encode()
    await send_bytes(send, status, body, [("content-type", "application/json"), *(headers or [])])

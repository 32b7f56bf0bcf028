"""The loopback server: a backend on ``127.0.0.1`` over HTTP (DESIGN §4, §8; reference §12-13).

``backend.serve(port=0)`` (or the first file URL a function asks for) starts one
:class:`LoopbackServer` per backend:

* ``.url`` — the deployment URL (Convex's ``.convex.cloud``): file uploads
  (``POST /api/storage/upload?token=...``) and downloads (``GET /api/storage/<id>/<sig>``),
  Convex's HTTP API (``/api/query``, ... — ``api.py``) and its sync WebSocket (``/api/sync`` —
  ``sync.py``), so the official ``convex`` clients (PyPI, npm) connect unmodified.
* ``.site_url`` — the site URL (Convex's ``.convex.site``): the app's HTTP actions at the root.

Both listen on 127.0.0.1 only, on ephemeral ports for ``port=0`` (else ``port`` and ``port +
1``, as ``npx convex dev``'s local backend uses 3210 and 3211). One uvicorn server (a real ASGI
stack, starlette + uvicorn) runs both sockets on its own thread and event loop, so a caller in the
kernel may block on a request to it (the official Python client does) without deadlocking. The
ASGI app picks the deployment or the site by the port a request arrived on. Handlers that touch
the store run in a worker thread; uploads and downloads stream in chunks on the loop, so a large
file is never held whole. ``close()`` stops it (``backend.close()`` calls it).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from convex_lab.errors import ConvexLabError

if TYPE_CHECKING:
    from convex_lab.backend import Backend

HOST = "127.0.0.1"
START_TIMEOUT_S = 15.0


def _bind(port: int) -> socket.socket:
    # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY only on sockets whose proto says TCP
    # (proto 0 does not), and without it a transition sent right after a mutation's response
    # waits ~40 ms for the client's delayed ACK (Nagle).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((HOST, port))
    except OSError as e:
        sock.close()
        raise ConvexLabError(f"Cannot serve on {HOST}:{port}: {e.strerror or e}. Choose another "
                             "port, or port=0 for free ones.", code="ServerError") from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


class LoopbackServer:
    """One backend served on loopback (module docstring)."""

    def __init__(self, backend: Backend, port: Any = 0) -> None:
        import uvicorn  # noqa: PLC0415 (the server stack loads with the first server)

        from convex_lab.server.asgi import by_port  # noqa: PLC0415
        from convex_lab.server.deployment import deployment_app  # noqa: PLC0415
        from convex_lab.server.site import site_app  # noqa: PLC0415
        from convex_lab.server.sync import SyncHub  # noqa: PLC0415
        from convex_lab.server.wire import capture_logs  # noqa: PLC0415

        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65534:
            raise ConvexLabError(f"port must be an int from 0 to 65534 (0: any free port); got "
                                 f"{port!r}.", code="ServerError")
        main = _bind(port)
        try:
            site = _bind(port + 1 if port else 0)
        except BaseException:
            main.close()
            raise
        self.port: int = main.getsockname()[1]
        self.site_port: int = site.getsockname()[1]
        self.url = f"http://{HOST}:{self.port}"
        self.site_url = f"http://{HOST}:{self.site_port}"
        self.sync = SyncHub(backend)
        self._stop_logs = capture_logs(backend)  # log lines in the API's responses
        # HTTP actions run on this pool (site.py), so the loop keeps serving meanwhile.
        self._actions = ThreadPoolExecutor(max_workers=32, thread_name_prefix="convex_lab-http")
        app = by_port({self.site_port: site_app(backend, self._actions)},
                      deployment_app(backend, self.sync))
        from uvicorn.config import WS_PROTOCOLS  # noqa: PLC0415

        # websockets' sans-I/O protocol where uvicorn has it (the legacy one is deprecated).
        ws = "websockets-sansio" if "websockets-sansio" in WS_PROTOCOLS else "auto"
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", ws=ws,
                                log_config=None, timeout_graceful_shutdown=1,
                                timeout_keep_alive=5, server_header=False)
        self._uvicorn = uvicorn.Server(config)
        self._sockets = [main, site]
        self._error: BaseException | None = None
        self.closed = False
        self._thread = threading.Thread(target=self._run, name=f"convex_lab-server-{self.port}",
                                        daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._uvicorn.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.close()
                raise ConvexLabError(f"The loopback server did not start: {self._error!r}",
                                     code="ServerError")
            time.sleep(0.002)

    def _run(self) -> None:
        try:
            asyncio.run(self._uvicorn.serve(sockets=self._sockets))
        except BaseException as e:  # noqa: BLE001 (reported by the starting thread)
            self._error = e
        finally:
            for sock in self._sockets:
                sock.close()

    def close(self) -> None:
        """Stop serving (idempotent); requests in flight get a second to finish."""
        self.closed = True
        self._uvicorn.should_exit = True
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=10)
        self.sync.close()
        self._stop_logs()
        self._actions.shutdown(wait=False)

    def __repr__(self) -> str:
        state = "closed" if self.closed else "serving"
        return f"<LoopbackServer {state}: url={self.url} site_url={self.site_url}>"


def start(backend: Backend, port: int) -> Any:
    """What ``convex_lab/__init__.py`` installs as ``backend.serve``'s starter."""
    return LoopbackServer(backend, port)

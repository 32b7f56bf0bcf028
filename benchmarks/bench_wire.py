"""W1 and W2: Convex's wire protocol over loopback (issue 12), beside anchors measured in the
same run.

W1: the p50 of a mutation round trip from the unmodified npm ``ConvexClient`` in Node (mutation
sent → its promise resolved, which waits for the ``MutationResponse`` *and* the ``Transition``
at its timestamp), against a WebSocket echo round trip from the same Node process's ``ws`` to a
bare starlette WebSocket endpoint served by uvicorn on its own thread (the same server stack).
Goal: p50 ≤ 2 ms and ≤ 3× the echo.

W2: 1,000 sync clients connected to one backend, each subscribed to its own query
(``counters:get`` of its own name); a mutation from the notebook touches one of them: the p50
time from the mutation's start to that client receiving its transition, against the same on a
second backend with 1 client connected, samples alternating between the two (goal ≤ 1.5×: a
transition costs what changed, not the number of clients). And the process's CPU use over 5 s
with the 1,000 clients idle, against 1 idle client (goal: ~0 — nothing runs between pings). The
clients are asyncio ``websockets`` connections on one thread per backend in this process.

Needs node and tests/node/node_modules (``npm ci`` there) for W1; W2 needs only Python.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import convex_lab as cl
from benchmarks._common import Row, interleave, rounds

NODE_DIR = Path(__file__).resolve().parent.parent / "tests" / "node"
CLIENT = NODE_DIR / "bench_wire_client.mjs"
CALLS = 300
MANY = 1000


def _app() -> cl.App:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests._wire_app import wire_app

    return wire_app()


def _node(mode: str, url: str) -> float:
    run = subprocess.run(["node", str(CLIENT), mode, url, str(CALLS)], cwd=NODE_DIR,
                         capture_output=True, text=True, timeout=300, check=True)
    return float(json.loads(run.stdout.strip().splitlines()[-1])["p50_ms"])


class _EchoServer:
    """A bare starlette WebSocket echo on uvicorn, on its own thread (the anchor's stack)."""

    def __init__(self) -> None:
        import socket

        import uvicorn
        from starlette.applications import Starlette
        from starlette.routing import WebSocketRoute
        from starlette.websockets import WebSocket, WebSocketDisconnect

        async def echo(ws: WebSocket) -> None:
            await ws.accept()
            try:
                while True:
                    await ws.send_text(await ws.receive_text())
            except WebSocketDisconnect:
                return

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        self.url = f"ws://127.0.0.1:{sock.getsockname()[1]}/echo"
        from uvicorn.config import WS_PROTOCOLS

        ws = "websockets-sansio" if "websockets-sansio" in WS_PROTOCOLS else "auto"  # as ours
        config = uvicorn.Config(Starlette(routes=[WebSocketRoute("/echo", echo)]),
                                log_level="warning", lifespan="off", ws=ws)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve([sock])),
                                       daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def bench_w1() -> list[Row]:
    if shutil.which("node") is None or not (NODE_DIR / "node_modules" / "convex").exists():
        print("  W1 skipped: needs node and tests/node/node_modules (npm ci in tests/node)",
              file=sys.stderr)
        return []
    backend = cl.Backend(app=_app())
    echo = _EchoServer()
    try:
        url = backend.serve().url
        ours, anchor, ratio = interleave(lambda: _node("mutation", url),
                                         lambda: _node("echo", echo.url), rounds())
    finally:
        echo.close()
        backend.close()
    return [Row("W1", "npm ConvexClient mutation round trip p50", ours, "ms",
                "WebSocket echo p50", anchor, False, "≤ 2 ms and ≤ 3× echo",
                ours <= 2.0 and ratio <= 3.0, ratio)]


class _Clients:
    """``n`` sync clients on one asyncio thread, client i subscribed to ``counters:get`` of
    ``c<i>``; ``wait(i)`` blocks until client i's next transition."""

    def __init__(self, url: str, n: int) -> None:
        self.url = url.replace("http://", "ws://") + "/api/1.51.0/sync"
        self.n = n
        self.events = [threading.Event() for _ in range(n)]
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self._main(),),
                                       daemon=True)
        self.stop: asyncio.Future[None] | None = None
        self.thread.start()
        if not self.ready.wait(300):
            raise RuntimeError("the sync clients did not connect")

    async def _one(self, i: int, connected: list[int]) -> None:
        from websockets.asyncio.client import connect

        async with connect(self.url, max_queue=None) as ws:
            await ws.send(json.dumps({"type": "Connect", "sessionId": str(uuid.uuid4()),
                                      "connectionCount": 0, "lastCloseReason": None,
                                      "clientTs": 0}))
            await ws.send(json.dumps({"type": "ModifyQuerySet", "baseVersion": 0,
                                      "newVersion": 1, "modifications": [
                                          {"type": "Add", "queryId": 0,
                                           "udfPath": "counters:get", "args": [{"name": f"c{i}"}]}
                                      ]}))
            await ws.recv()
            connected.append(i)
            if len(connected) == self.n:
                self.ready.set()
            async for text in ws:
                if '"Transition"' in str(text):
                    self.events[i].set()

    async def _main(self) -> None:
        self.stop = self.loop.create_future()
        connected: list[int] = []
        tasks = []
        for i in range(self.n):
            tasks.append(asyncio.ensure_future(self._one(i, connected)))
            if i % 50 == 49:
                await asyncio.sleep(0.05)  # a connection burst the listen backlog can take
        await self.stop
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)  # close each socket cleanly

    def close(self) -> None:
        def finish() -> None:
            if self.stop is not None and not self.stop.done():
                self.stop.set_result(None)
        self.loop.call_soon_threadsafe(finish)
        self.thread.join(30)


def _measure(backend: cl.Backend, clients: _Clients, k: int) -> float:
    """ms from a mutation (from the notebook's side) touching client i's query to client i
    receiving its transition."""
    i = (k * 7919) % clients.n
    event = clients.events[i]
    event.clear()
    t0 = time.perf_counter()
    backend.mutation("counters:bump", {"name": f"c{i}"})
    if not event.wait(30):
        raise RuntimeError(f"client {i} got no transition")
    return (time.perf_counter() - t0) * 1000


def _idle_cpu() -> float:
    """The process's CPU use over 5 s of doing nothing, in % of one core."""
    time.sleep(0.5)
    c0, w0 = time.process_time(), time.perf_counter()
    time.sleep(5)
    return (time.process_time() - c0) / (time.perf_counter() - w0) * 100


def bench_w2() -> list[Row]:
    """Two backends side by side (one with MANY clients, one with 1); the samples alternate
    between them, so machine noise hits both alike."""
    few, many = cl.Backend(app=_app()), cl.Backend(app=_app())
    one_client = many_clients = None
    try:
        one_client = _Clients(few.serve().url, 1)
        idle_one = _idle_cpu()
        many_clients = _Clients(many.serve().url, MANY)
        idle_many = _idle_cpu()
        ours: list[float] = []
        anchor: list[float] = []
        for k in range(100 * rounds()):
            if k % 2:
                ours.append(_measure(many, many_clients, k))
                anchor.append(_measure(few, one_client, k))
            else:
                anchor.append(_measure(few, one_client, k))
                ours.append(_measure(many, many_clients, k))
    finally:
        for clients in (one_client, many_clients):
            if clients is not None:
                clients.close()
        few.close()
        many.close()
    p50, p50_one = statistics.median(ours), statistics.median(anchor)
    return [Row("W2", f"mutation → its client's transition, {MANY} clients", p50, "ms",
                "same, 1 client", p50_one, False, "≤ 1.5×", p50 / p50_one <= 1.5),
            Row("W2i", f"CPU with {MANY} idle clients (5 s)", idle_many, "%",
                "1 idle client", idle_one, False, "≈ 0 between pings", idle_many < 1.0)]


def main() -> None:
    from benchmarks._common import print_table

    print_table(bench_w1() + bench_w2())


if __name__ == "__main__":
    main()

"""Convex's WebSocket sync protocol at ``/api/sync`` and ``/api/<version>/sync`` (reference §3).

One :class:`SyncHub` per server holds the live queries of every connected client in its own
:class:`~convex_lab.subscriptions.SubscriptionManager` (the read-set invalidation the notebook's
widgets use: equal queries of equal identities share one execution, a commit re-runs only the
executions whose reads it touched). One :class:`SyncSession` per socket speaks the protocol.

Invariants
----------
* **Exact version chain.** Every ``Transition`` a session sends starts at the ``endVersion`` it
  sent last (first: ``{querySet: 0, identity: 0, ts: 0}``); ``querySet`` is the last applied
  ``ModifyQuerySet.newVersion``, ``identity`` the number of applied ``Authenticate`` messages,
  ``ts`` never goes backwards. Transitions are built and queued under the hub's lock (the
  manager's refresh lock), so queue order is version order.
* **One snapshot per transition.** ``ts`` is the hub's snapshot: the latest snapshot at which a
  refresh re-ran every invalidated query. Queries it did not re-run read nothing that changed
  since, so every result in a transition is the result at ``ts`` (a commit still being delivered
  to listeners when a transition is built arrives in the next one).
* **Mutations** of a socket run one at a time in arrival order; each ``MutationResponse``
  (success with ``ts`` ≥ its commit, or failure with ``ts: null``) is followed by a
  ``Transition`` at that ``ts`` or later — always, even with nothing to report — so clients
  complete mutations and drop optimistic updates. Its effects are in that transition (read your
  writes). The outcome is kept under ``(sessionId, requestId)`` (the last 10,000): a request
  re-sent after a reconnect gets the stored outcome and runs exactly once.
* **Actions** run concurrently; ``ActionResponse`` then a ``Transition``.
* **Cost.** A commit costs the queries it invalidated and a transition for each session holding
  one of them: idle sessions cost nothing but a ``Ping`` after 15 s of silence.
* **Errors.** A malformed message gets ``FatalError`` and the socket closes; a token that does not
  verify gets ``AuthError`` (``authUpdateAttempted: true``) and the socket closes, as Convex does.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import OrderedDict, deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from convex_lab.auth.verify import LEEWAY_S
from convex_lab.context import NO_AUTH, Auth
from convex_lab.errors import BackendClosedError, ConvexError, ConvexLabError
from convex_lab.events import report
from convex_lab.server.api import verified_token
from convex_lab.server.wire import (
    Outcome,
    call,
    collected_lines,
    decode_args,
    encode,
    function_path,
    ts_to_wire,
)
from convex_lab.subscriptions import SubscriptionManager

if TYPE_CHECKING:
    from collections.abc import Callable

    from convex_lab.backend import Backend
    from convex_lab.subscriptions import LiveQuery

HEARTBEAT_S = 15.0
KEPT_OUTCOMES = 10_000
_SEMVER_HEAD = "0123456789"


class _WireManager(SubscriptionManager):
    """The hub's live queries: refreshes run on the server's worker threads, never on the
    kernel's loop (a cell blocked on a subprocess must not stall another process's mutation)."""

    def __init__(self, backend: Backend, hub: SyncHub) -> None:
        super().__init__(backend)
        self._loop = None
        self.hub = hub

    def _schedule(self) -> None:
        self.hub.request_refresh()

    def _refreshed(self, ts: int) -> None:
        self.hub.refreshed(ts)

    def _run(self, ex: Any, snapshot: int | None) -> tuple[bool, bool]:
        # Keep the run's log lines for QueryUpdated/QueryFailed.logLines (the npm client prints
        # them in the browser's console, as for Convex's queries).
        with collected_lines() as lines:
            changed = super()._run(ex, snapshot)
        ex.log_lines = lines
        return changed


class SyncHub:
    """The sync clients of one server (module docstring). Made by the loopback server; the
    live-query manager is made with the first session."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.store = backend.store
        self._manager: _WireManager | None = None
        self._made = threading.Lock()
        self.ts = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self.sessions: set[SyncSession] = set()
        self.dirty: set[SyncSession] = set()
        self._flag = threading.Lock()
        self._refresh_scheduled = False
        # Mutations run here (a plain pool: a lighter hand-over than anyio's, on the hot path).
        self.executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="convex_lab-sync")
        self._outcomes: OrderedDict[tuple[str, int], Future[tuple[Outcome, int | None]]] = (
            OrderedDict())
        self.closed = False

    @property
    def manager(self) -> _WireManager:
        manager = self._manager
        if manager is None:
            with self._made:
                manager = self._manager
                if manager is None:
                    manager = self._manager = _WireManager(self.backend, self)
                    self.ts = self.store.visible_ts
        return manager

    @property
    def lock(self) -> threading.RLock:
        """The manager's refresh lock: session state and transitions change under it."""
        return self.manager._refresh_lock

    # Refreshes -------------------------------------------------------------------------------
    def request_refresh(self) -> None:
        """A commit invalidated some query (any thread): refresh on a worker thread soon."""
        with self._flag:
            if self._refresh_scheduled:
                return
            self._refresh_scheduled = True
        loop = self.loop
        if loop is None or loop.is_closed():
            self._run_refresh()
            return
        loop.call_soon_threadsafe(self._start_refresh)

    def _start_refresh(self) -> None:
        assert self.loop is not None
        self.loop.run_in_executor(None, self._run_refresh)

    def _run_refresh(self) -> None:
        with self._flag:
            self._refresh_scheduled = False
        try:
            if not self.closed:
                self.manager.refresh()
        except Exception:  # noqa: BLE001 (a refresh failing must not kill the worker)
            report("the sync server's refresh failed")

    def refreshed(self, ts: int) -> None:
        """(Under the lock, from the manager.) Send the sessions whose queries changed."""
        self.ts = max(self.ts, ts)
        dirty, self.dirty = self.dirty, set()
        for session in dirty:
            session.flush()

    def sync_point(self) -> int:
        """(Under the lock.) Re-run what is invalidated, then move the hub's snapshot to the
        latest visible commit; returns it."""
        self.manager.refresh()
        token, visible = self.store.pin()
        self.store.end(token)
        self.ts = max(self.ts, visible)
        return self.ts

    # Exactly-once mutations --------------------------------------------------------------------
    def claim(self, key: tuple[str, int] | None) -> tuple[Future[tuple[Outcome, int | None]], bool]:
        """The outcome slot of a request: ``(future, True)`` if the caller must run it."""
        if key is None:
            return Future(), True
        with self._flag:
            future = self._outcomes.get(key)
            if future is not None:
                return future, False
            future = self._outcomes[key] = Future()
            while len(self._outcomes) > KEPT_OUTCOMES:
                self._outcomes.popitem(last=False)
            return future, True

    def close(self) -> None:
        self.closed = True
        self.executor.shutdown(wait=False, cancel_futures=True)
        if self._manager is not None:
            self._manager.close()


def _version(qs: int, identity: int, ts: int) -> dict[str, Any]:
    return {"querySet": qs, "identity": identity, "ts": ts_to_wire(ts) if ts else
            "AAAAAAAAAAA="}


class SyncSession:
    """One socket's protocol state (module docstring). ``send(*messages)`` queues messages for
    the socket, in order, from any thread (``None`` s are skipped)."""

    def __init__(self, hub: SyncHub, send: Callable[..., None]) -> None:
        self.hub = hub
        self.send = send
        self.session_id: str | None = None
        self.clock_skew = 0
        self.query_set = 0
        self.identity = 0
        self.sent = (0, 0, 0)
        self.auth: Auth = NO_AUTH
        # queryId -> (path, args, live or None, error message if it could not subscribe)
        self.queries: dict[int, tuple[str, dict[str, Any], LiveQuery | None, str | None]] = {}
        self._unwatch: dict[int, Callable[[], None]] = {}
        self.pending: dict[int, str] = {}  # queryId -> "update" | "remove", in order
        # While one of its mutations runs, a session's transitions wait: its response goes
        # first, then one transition with its effects (and whatever else changed meanwhile).
        self.mutating = False
        self._queue: deque[tuple[int, Any, Any]] = deque()
        self._queue_lock = threading.Lock()
        self._draining = False
        self.closed = False

    # State changes (worker threads, under the hub's lock) --------------------------------------
    def _subscribe(self, qid: int, path: str, args: dict[str, Any],
                   journal: str | None = None) -> None:
        hub = self.hub
        try:
            live = hub.manager.subscribe(path, args, auth=self.auth, public_only=True,
                                         journal=journal)
        except ConvexLabError as e:
            self.queries[qid] = (path, args, None, str(e))
        else:
            self.queries[qid] = (path, args, live, None)

            def changed(_live: LiveQuery) -> None:
                self.pending[qid] = "update"
                hub.dirty.add(self)

            self._unwatch[qid] = live.on_update(changed)
        self.pending[qid] = "update"

    def _unsubscribe(self, qid: int) -> None:
        entry = self.queries.pop(qid, None)
        unwatch = self._unwatch.pop(qid, None)
        if unwatch is not None:
            unwatch()
        if entry is not None and entry[2] is not None:
            entry[2].close()

    def modify(self, modifications: list[Any], new_version: int) -> None:
        hub = self.hub
        with hub.lock:
            for mod in modifications:
                if mod.get("type") == "Add":
                    qid = int(mod["queryId"])
                    self._unsubscribe(qid)
                    path = function_path(hub.backend, mod.get("udfPath"))
                    journal = mod.get("journal")
                    if journal is not None and not isinstance(journal, str):
                        raise TypeError(f"journal must be a string or null; got {journal!r}")
                    self._subscribe(qid, path, decode_args(mod.get("args")), journal)
                else:
                    qid = int(mod["queryId"])
                    self._unsubscribe(qid)
                    self.pending[qid] = "remove"
            self.query_set = new_version
            hub.sync_point()
            self.flush()

    def authenticate(self, auth: Auth) -> None:
        hub = self.hub
        with hub.lock:
            self.auth = auth
            for qid, (path, args, live, _error) in list(self.queries.items()):
                journal = live.journal if live is not None else None
                self._unsubscribe(qid)
                self._subscribe(qid, path, args, journal)
            self.identity += 1
            hub.sync_point()
            self.flush()

    def flush(self, force: bool = False) -> None:
        """(Under the hub's lock.) Send a Transition to the hub's snapshot with the pending
        modifications, if there is anything to say (``force``: always)."""
        message = self.transition(force)
        if message is not None:
            self.send(message)

    def transition(self, force: bool = False) -> dict[str, Any] | None:
        """(Under the hub's lock.) The Transition :meth:`flush` sends (counted as sent)."""
        if self.closed:
            self.pending.clear()
            return None
        if self.mutating and not force:
            return None
        end = (self.query_set, self.identity, self.hub.ts)
        if not self.pending and end == self.sent and not force:
            return None
        modifications = [self._modification(qid, op) for qid, op in self.pending.items()]
        self.pending.clear()
        start, self.sent = self.sent, end
        return {"type": "Transition", "startVersion": _version(*start),
                "endVersion": _version(*end), "modifications": modifications,
                "clientClockSkew": self.clock_skew, "serverTs": time.time_ns()}

    def _modification(self, qid: int, op: str) -> dict[str, Any]:
        entry = self.queries.get(qid)
        if op == "remove" or entry is None:
            return {"type": "QueryRemoved", "queryId": qid}
        _path, _args, live, failure = entry
        if live is not None and live.status != "error":
            return {"type": "QueryUpdated", "queryId": qid, "value": encode(live.value),
                    "logLines": live.log_lines, "journal": live.journal}
        error = live.error if live is not None else None
        out: dict[str, Any] = {"type": "QueryFailed", "queryId": qid,
                               "errorMessage": failure if failure is not None else str(error),
                               "logLines": live.log_lines if live is not None else [],
                               "journal": live.journal if live is not None else None}
        if isinstance(error, ConvexError):
            out["errorData"] = encode(error.data)
        return out

    def enqueue(self, request_id: int, path: Any, args: Any) -> None:
        """Queue a mutation: the session's mutations run one at a time, in arrival order, on
        the hub's pool (one drain job per session at a time)."""
        with self._queue_lock:
            self._queue.append((request_id, path, args))
            if self._draining:
                return
            self._draining = True
        self.hub.executor.submit(self._drain)

    def _drain(self) -> None:
        while True:
            with self._queue_lock:
                if not self._queue or self.closed:
                    self._queue.clear()
                    self._draining = False
                    return
                request_id, path, args = self._queue.popleft()
            try:
                self.run_mutation(request_id, path, args)
            except Exception:  # noqa: BLE001 (the next mutation still runs)
                report("the sync server failed to run a mutation")

    def run_mutation(self, request_id: int, path: Any, args: Any) -> None:
        hub = self.hub
        key = None if self.session_id is None else (self.session_id, request_id)
        future, fresh = hub.claim(key)
        self.mutating = True
        outcome = Outcome(error=ConvexLabError("The mutation did not run.", code="Internal"))
        ts: int | None = None
        try:
            if fresh:
                try:
                    outcome = call(hub.backend, function_path(hub.backend, path),
                                   decode_args(args), "mutation", self.auth)
                except ConvexLabError as e:
                    outcome = Outcome(error=e)
            else:  # a resend: the first run's outcome (waited for outside the lock)
                outcome, ts = future.result()
        finally:
            with hub.lock:
                now = hub.sync_point()  # still mutating: this session's transition waits
                self.mutating = False
                if fresh:
                    ts = now if outcome.ok else None
                    future.set_result((outcome, ts))
                message: dict[str, Any] = {"type": "MutationResponse", "requestId": request_id,
                                           "success": outcome.ok, "logLines": outcome.log_lines}
                if outcome.ok:
                    message.update(result=encode(outcome.value), ts=ts_to_wire(ts or 0))
                else:
                    message.update(result=str(outcome.error), ts=None)
                    if isinstance(outcome.error, ConvexError):
                        message["errorData"] = encode(outcome.error.data)
                # One hand-over to the socket for both: the response, then its transition.
                self.send(message, self.transition(force=True))

    def run_action(self, request_id: int, path: Any, args: Any) -> None:
        hub = self.hub
        try:
            outcome = call(hub.backend, function_path(hub.backend, path), decode_args(args),
                           "action", self.auth)
        except ConvexLabError as e:
            outcome = Outcome(error=e)
        message: dict[str, Any] = {"type": "ActionResponse", "requestId": request_id,
                                   "success": outcome.ok, "logLines": outcome.log_lines}
        if outcome.ok:
            message["result"] = encode(outcome.value)
        else:
            message["result"] = str(outcome.error)
            if isinstance(outcome.error, ConvexError):
                message["errorData"] = encode(outcome.error.data)
        with hub.lock:
            self.send(message)
            hub.sync_point()
            self.flush(force=True)

    def close(self) -> None:
        hub = self.hub
        with hub.lock:
            self.closed = True
            for qid in list(self.queries):
                self._unsubscribe(qid)
            hub.dirty.discard(self)
            hub.sessions.discard(self)


# ---------------------------------------------------------------------------------------------
# The socket


def _check_version(version: str) -> bool:
    parts = version.split("-", 1)[0].split(".")
    return len(parts) == 3 and all(p and p[0] in _SEMVER_HEAD and p.isdigit() for p in parts)


async def serve_socket(hub: SyncHub, ws: WebSocket) -> None:
    """Speak the sync protocol on one accepted socket until it closes."""
    loop = asyncio.get_running_loop()
    hub.loop = loop
    outbox: asyncio.Queue[list[str] | None] = asyncio.Queue()

    def send(*messages: dict[str, Any] | None) -> None:
        texts = [json.dumps(m, separators=(",", ":")) for m in messages if m is not None]
        loop.call_soon_threadsafe(outbox.put_nowait, texts)

    session = SyncSession(hub, send)
    hub.sessions.add(session)
    tasks: set[asyncio.Task[Any]] = set()
    # When the session's token expires (wall clock, ms), as the JWT's exp says: the socket then
    # gets Convex's AuthError (authUpdateAttempted: false) and closes, and the client fetches a
    # fresh token and reconnects. None: no token.
    expires_at: list[float | None] = [None]

    async def sender() -> None:
        while True:
            wait = HEARTBEAT_S
            if expires_at[0] is not None:
                wait = max(0.0, min(wait, expires_at[0] / 1000 - time.time()))
            try:
                texts = await asyncio.wait_for(outbox.get(), wait)
            except TimeoutError:
                if expires_at[0] is not None and time.time() * 1000 >= expires_at[0]:
                    await ws.send_text(json.dumps({
                        "type": "AuthError", "baseVersion": session.identity,
                        "authUpdateAttempted": False,
                        "error": "Token expired: the client's JWT passed its exp; send a "
                                 "fresh token (Authenticate)."}))
                    await ws.close(code=1000)
                    return
                texts = ['{"type":"Ping"}']
            if texts is None:
                return
            for text in texts:
                await ws.send_text(text)

    async def handle(message: dict[str, Any]) -> dict[str, Any] | None:
        """Apply one message; returns the FatalError/AuthError that ends the socket, if any."""
        kind = message.get("type")
        if kind == "Connect":
            session.session_id = str(message.get("sessionId"))
            client_ts = message.get("clientTs")
            if isinstance(client_ts, int | float) and client_ts > 0:
                session.clock_skew = int(client_ts - time.time() * 1000)
        elif kind == "ModifyQuerySet":
            base, new = message.get("baseVersion"), message.get("newVersion")
            if base != session.query_set or not isinstance(new, int) or new <= base:
                return {"type": "FatalError", "error": f"BaseVersionMismatch: the server's "
                        f"query set is at {session.query_set}; got {base}->{new}"}
            await run_in_threadpool(session.modify, list(message.get("modifications") or []),
                                    new)
        elif kind == "Mutation":
            session.enqueue(int(message["requestId"]), message.get("udfPath"),
                            message.get("args"))
        elif kind == "Action":
            task = asyncio.ensure_future(run_in_threadpool(
                session.run_action, int(message["requestId"]), message.get("udfPath"),
                message.get("args")))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        elif kind == "Authenticate":
            return await authenticate(message)
        elif kind != "Event":  # telemetry: accepted and ignored
            return {"type": "FatalError", "error": f"Unknown message type {kind!r}."}
        return None

    async def authenticate(message: dict[str, Any]) -> dict[str, Any] | None:
        base = message.get("baseVersion")
        token_type = message.get("tokenType")
        if base != session.identity:
            return {"type": "AuthError", "baseVersion": session.identity,
                    "authUpdateAttempted": True,
                    "error": f"Authenticate's baseVersion is {base}; the server's identity "
                             f"version is {session.identity}."}
        expires: float | None = None
        if token_type == "None":
            auth: Auth = NO_AUTH
        elif token_type == "User":
            try:
                token = await run_in_threadpool(verified_token, hub.backend,
                                                str(message.get("value")))
            except ConvexLabError as e:
                return {"type": "AuthError", "error": str(e), "baseVersion": base,
                        "authUpdateAttempted": True}
            auth = Auth(token.identity)
            expires = token.expires_at + LEEWAY_S * 1000
        else:
            return {"type": "AuthError", "baseVersion": base, "authUpdateAttempted": True,
                    "error": "Admin keys are not used by convex_lab (the notebook is the "
                             "deployment's admin): authenticate with a user JWT."}
        await run_in_threadpool(session.authenticate, auth)
        expires_at[0] = expires
        outbox.put_nowait([])  # the sender re-reads the deadline
        return None

    send_task = asyncio.ensure_future(sender())
    close_code = 1000
    try:
        while True:
            text = await ws.receive_text()
            try:
                message = json.loads(text)
                if not isinstance(message, dict):
                    raise ValueError("not an object")
                fatal = await handle(message)
            except BackendClosedError as e:
                send({"type": "FatalError", "error": str(e)})
                close_code = 1011
                break
            except (ValueError, KeyError, TypeError, ConvexLabError, RecursionError) as e:
                send({"type": "FatalError", "error": f"Malformed message: {e}"})
                close_code = 4000
                break
            if fatal is not None:
                send(fatal)
                close_code = 1000 if fatal["type"] == "AuthError" else 4000
                break
    except (WebSocketDisconnect, RuntimeError):
        close_code = 0
    finally:
        await run_in_threadpool(session.close)
        outbox.put_nowait(None)
        if close_code:
            try:
                await asyncio.wait_for(send_task, 5)
                await ws.close(code=close_code)
            except Exception:  # noqa: BLE001 (the peer may be gone already)
                send_task.cancel()
        else:
            send_task.cancel()


def routes(hub: SyncHub) -> list[WebSocketRoute]:
    async def sync(ws: WebSocket) -> None:
        version = ws.path_params.get("version")
        if version is not None and not _check_version(version):
            await ws.close(code=1008)
            return
        await ws.accept()
        await serve_socket(hub, ws)

    return [WebSocketRoute("/api/sync", sync), WebSocketRoute("/api/{version}/sync", sync)]

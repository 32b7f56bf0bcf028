"""Live queries: query results kept current as commits change what they read (docs/api.md).

Model (reference §6). A subscription is an *execution* of one query with fixed arguments and
identity; identical subscriptions (equal identities) share one execution. Each run records the
read set; a :class:`~convex_lab.store.readindex.ReadIndex` maps each commit (the store's
``commits`` event) back to the executions whose reads it touched, and only those re-run.

Each execution keeps a query journal (reference §4.5, ``store.database.QueryJournal``): after a
successful run it holds where the run's ``paginate()`` ended, and later runs read up to there, so
a live page grows or shrinks as documents come and go but never shifts (``[1, 2, 3]`` becomes
``[1, 2, 2.5, 3]`` with the same ``continueCursor``). The journal lives beside the execution, not
in its arguments. A new subscription joins an existing execution only while that one has no
recorded page end; otherwise it starts its own page, as a fresh Convex subscription would.

Invariants
----------
* **One snapshot.** A refresh pins the latest visible snapshot and re-runs every invalidated
  execution at it; executions not invalidated are still exact at that snapshot (no commit since
  their run touched their reads), so every live query a client sees is consistent at one ts.
* **Read your writes.** ``Client.mutation`` returns only after a refresh that includes its commit.
* **Delivery.** Inside a Jupyter kernel (an asyncio loop running in the main thread) refreshes
  are scheduled on that loop: commits made while a cell runs are coalesced into one refresh that
  runs when the cell yields or ends, and callbacks run on the kernel's main thread. Elsewhere a
  refresh runs synchronously in the committing thread, right after the commit.
* **Callbacks.** ``on_change(cb)`` gets each new *different* successful value; ``on_update(cb)``
  gets the live query after any change of value, error or status. A failing run keeps the last
  good value. Nothing fires after ``close()``. A callback that raises is reported on stderr and
  does not disturb the commit that triggered it.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from convex_lab._loop import kernel_loop
from convex_lab._runtime import for_client
from convex_lab.errors import CLOSED_MESSAGE, BackendClosedError
from convex_lab.events import report
from convex_lab.store.readindex import ReadIndex
from convex_lab.values import values_equal

if TYPE_CHECKING:
    from convex_lab.backend import Backend
    from convex_lab.context import Auth
    from convex_lab.functions import FunctionDef, FunctionLike
    from convex_lab.store.commits import Commit
    from convex_lab.store.database import QueryJournal
    from convex_lab.store.readset import ReadSet


def _report(what: str) -> None:
    report(f"a live-query callback raised ({what})")


class _Execution:
    """One query run repeatedly: shared by identical live queries (or owned by one page)."""

    __slots__ = ("__weakref__", "args", "auth", "dirty", "error", "journal", "key", "lives",
                 "log_lines", "manager", "path", "public_only", "ran", "status", "value",
                 "version")

    def __init__(self, manager: SubscriptionManager, key: Any, path: str, args: dict[str, Any],
                 *, auth: Auth | None, public_only: bool) -> None:
        from convex_lab.store.database import QueryJournal  # noqa: PLC0415 (loaded with a store)

        self.journal: QueryJournal = QueryJournal()
        self.manager = manager
        self.key = key
        self.path = path
        self.args = args
        self.auth = auth
        self.public_only = public_only
        self.value: Any = None
        self.error: BaseException | None = None
        self.status = "loading"
        self.version = 0
        self.ran = False
        self.lives: list[Any] = []
        # The log lines of its last run, for managers that collect them (the wire server's:
        # Convex's QueryUpdated.logLines); empty otherwise.
        self.log_lines: list[str] = []

    def run(self, snapshot: int | None) -> tuple[bool, bool]:
        """Re-run at ``snapshot``; returns (value changed, anything changed)."""
        return self.manager._run(self, snapshot)

    def _run(self, snapshot: int | None) -> tuple[bool, bool]:
        manager = self.manager
        backend = manager.backend
        reads: list[ReadSet] = []
        try:
            if backend.closed:
                raise BackendClosedError(CLOSED_MESSAGE)
            # The executor directly (Backend.run_function, which checks the same, has no
            # journal to pass): the journal is the execution's, never in the arguments.
            value = backend.executor.call(
                self.path, self.args, kind="query", identity=self.auth,
                public_only=self.public_only,
                caller="client" if self.public_only else "backend", snapshot=snapshot,
                on_reads=reads.append, journal=self.journal)
            error: BaseException | None = None
        except Exception as e:  # noqa: BLE001 (a failing query shows its error, stays live)
            # A client's live query holds what a client may see: no server frames.
            value, error = None, (for_client(e, redact=manager.backend.redact_errors)
                                  if self.public_only else e)
        if reads:
            manager.index.add(self, reads[-1], manager.index_kinds())
        else:  # it failed before reading: re-run on any change to the function only
            manager.index.remove(self)
        first = not self.ran
        self.ran = True
        if error is not None:
            changed_any = self.status != "error" or str(error) != str(self.error)
            self.error, self.status = error, "error"
            if changed_any:
                self.version += 1
            return False, changed_any
        changed = first or not values_equal(value, self.value)
        changed_any = changed or self.status != "ready"
        self.value, self.error, self.status = value, None, "ready"
        if changed_any:
            self.version += 1
        return changed, changed_any


class LiveQuery:
    """A query kept current (see module docstring and ``docs/live-queries.md``)."""

    def __init__(self, manager: SubscriptionManager, execution: _Execution,
                 render: Callable[[Any], Any] | None = None) -> None:
        self._manager = manager
        self._execution: _Execution | None = execution
        self._on_change: list[Callable[[Any], None]] = []
        self._on_update: list[Callable[[LiveQuery], None]] = []
        self._last: tuple[Any, BaseException | None, str, int] = (None, None, "loading", 0)
        self.path = execution.path
        self.args = execution.args
        self.render = render
        self._sync()

    def _sync(self) -> None:
        ex = self._execution
        if ex is not None:
            self._last = (ex.value, ex.error, ex.status, ex.version)

    @property
    def value(self) -> Any:
        return self._last[0]

    @property
    def error(self) -> BaseException | None:
        return self._last[1]

    @property
    def status(self) -> str:
        return "closed" if self._execution is None else self._last[2]

    @property
    def version(self) -> int:
        return self._last[3]

    @property
    def closed(self) -> bool:
        return self._execution is None

    @property
    def log_lines(self) -> list[str]:
        """The log lines of the latest run, when the manager collects them (the wire server's,
        for Convex's ``logLines``); ``[]`` otherwise."""
        ex = self._execution
        return list(ex.log_lines) if ex is not None else []

    @property
    def journal(self) -> str | None:
        """Convex's query journal of this live query (an opaque string, or ``None`` when its
        query has not paginated): where its ``paginate()`` page ends. A subscription given it
        back (``subscribe(..., journal=)``, the wire protocol's reconnect) keeps the same page."""
        ex = self._execution
        return ex.journal.end_cursor if ex is not None else None

    def to_pandas(self) -> Any:
        """The current value as a pandas DataFrame: a list of dicts (documents, or any rows) is
        one row each, a page is its page, one dict is one row; typed like
        ``backend.to_pandas`` (``convex_lab/interop/tables_out.py``). Call it again after an
        update for the new value."""
        from convex_lab.interop.tables_out import value_to_pandas  # noqa: PLC0415 (pandas)

        return value_to_pandas(self.value)

    def on_change(self, callback: Callable[[Any], None]) -> Callable[[], None]:
        """Call ``callback(value)`` after each new, different successful result."""
        self._on_change.append(callback)
        return lambda: self._on_change.remove(callback) if callback in self._on_change else None

    def on_update(self, callback: Callable[[LiveQuery], None]) -> Callable[[], None]:
        """Call ``callback(live)`` after any change of value, error or status."""
        self._on_update.append(callback)
        return lambda: self._on_update.remove(callback) if callback in self._on_update else None

    def _deliver(self, changed: bool, changed_any: bool) -> None:
        if self._execution is None:
            return
        self._sync()
        if changed:
            for cb in list(self._on_change):
                try:
                    cb(self.value)
                except Exception:  # noqa: BLE001 (reported; other callbacks still run)
                    _report(f"on_change of {self.path}")
        if changed_any:
            for cb in list(self._on_update):
                try:
                    cb(self)
                except Exception:  # noqa: BLE001
                    _report(f"on_update of {self.path}")

    def close(self) -> None:
        """Stop updating; the last value stays readable."""
        ex = self._execution
        if ex is None:
            return
        self._execution = None
        self._manager.release(ex, self)
        for cb in list(self._on_update):
            try:
                cb(self)
            except Exception:  # noqa: BLE001
                _report(f"on_update of {self.path}")
        self._on_change.clear()
        self._on_update.clear()

    def refresh(self) -> None:
        """Deliver pending updates now (normally automatic)."""
        self._manager.refresh()

    def __repr__(self) -> str:
        state = self.status if self.status != "error" else f"error: {self.error}"
        return f"<LiveQuery {self.path}({self.args}) {state}, version {self.version}>"


_managers: weakref.WeakSet[SubscriptionManager] = weakref.WeakSet()


def flush_all() -> None:
    """Deliver every pending live-query update now, in every backend (the IPython extension
    calls this after each cell, so saved widget state and ``live.value`` are current when the
    cell's output is complete, not only once the loop turns)."""
    for manager in list(_managers):
        if manager._dirty:
            manager.refresh()


class SubscriptionManager:
    """The live queries of one backend (made on first use: ``backend.subscriptions``)."""

    def __init__(self, backend: Backend) -> None:
        _managers.add(self)
        self.backend = backend
        self.index = ReadIndex()
        self._executions: dict[Any, _Execution] = {}
        self._lock = threading.RLock()
        self._refresh_lock = threading.RLock()
        self._dirty: set[_Execution] = set()
        self._own = itertools.count()  # keys of executions that could not be shared
        self._scheduled = False
        self._loop = kernel_loop()
        executor = backend.executor
        self._unsubscribe = [
            backend.store.commits.subscribe(self._on_commit),
            executor.registered.subscribe(self._on_register),
            executor.deployed.subscribe(self._on_deploy),
        ]
        self._app = executor.app

    # Subscribing ---------------------------------------------------------------------------
    def subscribe(self, ref: FunctionLike, args: Mapping[str, Any] | None, *, auth: Auth | None,
                  public_only: bool, render: Callable[[Any], Any] | None = None,
                  journal: str | None = None) -> LiveQuery:
        """A live query of ``ref(args)``; ``journal`` (a :attr:`LiveQuery.journal` kept by a
        client) starts it from that journal: its page ends where it ended."""
        fn = self.backend.resolve(ref, "query", public_only=public_only,
                                  caller="client" if public_only else "backend")
        ex = self._execution_for(fn.path, dict(args or {}), auth, public_only, journal)
        live = LiveQuery(self, ex, render)
        ex.lives.append(live)
        return live

    def _execution_for(self, path: str, args: dict[str, Any], auth: Auth | None,
                       public_only: bool, journal: str | None) -> _Execution:
        """The execution a new subscriber of ``path(args)`` as ``auth`` joins (made and run
        once if there is none to share)."""
        key: tuple[Any, ...] = (path, _args_key(args), _auth_key(auth), public_only)
        with self._lock:
            ex = self._executions.get(key)
            if journal is not None:  # its own journal: never shared
                key, ex = (*key, next(self._own)), None
            elif ex is not None and ex.journal.end_cursor is not None:
                # Its page's end is recorded (it may have grown since): a new subscriber gets
                # its own first page, as a fresh Convex subscription gets a fresh journal.
                key, ex = (*key, next(self._own)), None
            fresh = ex is None
            if ex is None:
                ex = self._executions[key] = _Execution(self, key, path, args, auth=auth,
                                                        public_only=public_only)
                ex.journal.end_cursor = journal
        if fresh:
            with self._refresh_lock:
                ex.run(None)
        return ex

    def rebind(self, live: LiveQuery, auth: Auth | None) -> None:
        """Move ``live`` to the same query as ``auth`` (a client's ``set_auth`` /
        ``clear_auth``): it shows that identity's result from now on, delivered as an update
        (``on_change`` when the value differs). Nothing happens for a closed live query or an
        equal identity."""
        old = live._execution
        if old is None or _auth_key(old.auth) == _auth_key(auth):
            return
        ex = self._execution_for(old.path, old.args, auth, old.public_only, None)
        with self._refresh_lock:
            before = (live.value, live.status)
            ex.lives.append(live)
            live._execution = ex
            self.release(old, live)
            changed = ex.status != before[1] or not values_equal(ex.value, before[0])
            live._deliver(changed and ex.status == "ready", True)

    def _run(self, ex: _Execution, snapshot: int | None) -> tuple[bool, bool]:
        """Run ``ex`` at ``snapshot`` (every run goes through here: a subclass may wrap it)."""
        return ex._run(snapshot)

    def page_execution(self, path: str, args: dict[str, Any], auth: Auth | None,
                       public_only: bool, owner: Any) -> _Execution:
        """An unshared execution for one page of a paginated live query."""
        key = ("page", id(owner), id(args))
        ex = _Execution(self, key, path, args, auth=auth, public_only=public_only)
        with self._lock:
            self._executions[key] = ex
        return ex

    def release(self, ex: _Execution, live: Any) -> None:
        with self._lock:
            if live in ex.lives:
                ex.lives.remove(live)
            if not ex.lives and self._executions.get(ex.key) is ex:
                del self._executions[ex.key]
                self.index.remove(ex)
                self._dirty.discard(ex)

    def index_kinds(self) -> dict[tuple[str, str], str]:
        return {(t.name, name): spec.kind for t in self.backend.store.tables.values()
                for name, spec in t.specs.items()}

    # Invalidation --------------------------------------------------------------------------
    def _on_commit(self, commit: Commit) -> None:
        owners = self.index.affected(commit, self.backend.store.tables)
        if owners:
            with self._lock:
                self._dirty.update(o for o in owners if isinstance(o, _Execution))
            self._schedule()

    def _on_register(self, fn: FunctionDef) -> None:
        """A (re)defined function: its live queries re-run with the new code."""
        with self._lock:
            hit = [ex for ex in self._executions.values() if ex.path == fn.path]
            self._dirty.update(hit)
        if hit:
            self._schedule()

    def _on_deploy(self, app: Any) -> None:
        """A redeploy with another App: every live query re-runs with its code."""
        if app is self._app:
            return
        self._app = app
        with self._lock:
            self._dirty.update(self._executions.values())
        self._schedule()

    def _schedule(self) -> None:
        loop = self._loop
        if loop is None or not loop.is_running() or loop.is_closed():
            self.refresh()
            return
        with self._lock:
            if self._scheduled:
                return
            self._scheduled = True
        if threading.current_thread() is threading.main_thread():
            loop.call_soon(self.refresh)
        else:
            loop.call_soon_threadsafe(self.refresh)

    def refresh(self) -> None:
        """Re-run every invalidated execution at one snapshot, then deliver the updates."""
        with self._refresh_lock:
            with self._lock:
                self._scheduled = False
                dirty = [ex for ex in self._dirty if self._executions.get(ex.key) is ex]
                self._dirty.clear()
            if not dirty:
                return
            store = self.backend.store
            token, ts = store.pin()
            try:
                results = [(ex, ex.run(ts)) for ex in dirty]
            finally:
                store.end(token)
            # Move every live query to the new snapshot first, then call back: a callback
            # that reads another live query sees it at the same snapshot.
            for ex, _ in results:
                for live in list(ex.lives):
                    if isinstance(live, LiveQuery):
                        live._sync()
            for ex, (changed, changed_any) in results:
                for live in list(ex.lives):
                    live._deliver(changed, changed_any)
            self._refreshed(ts)

    def _refreshed(self, ts: int) -> None:
        """Hook: a refresh re-ran executions at snapshot ``ts`` and delivered their updates
        (still under the refresh lock). The wire server's manager sends its transitions here."""

    def close(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        with self._lock:
            self._executions.clear()
            self._dirty.clear()

    def __len__(self) -> int:
        return len(self._executions)


def _args_key(args: Mapping[str, Any]) -> Any:
    from convex_lab.values import sort_key  # noqa: PLC0415

    try:
        return sort_key(dict(args))
    except Exception:  # noqa: BLE001 (unhashable/odd args: never share)
        return object()


def _auth_key(auth: Auth | None) -> Any:
    """Executions are shared only between callers with equal identities (every claim)."""
    return None if auth is None else auth.key()


def watch(ref: FunctionLike, args: Mapping[str, Any] | None = None, /, *,
          render: Callable[[Any], Any] | None = None, **kwargs: Any) -> LiveQuery:
    """A live query on the default backend, as the notebook's owner sees it (docs/api.md).

    Arguments come as a dict or as keywords: ``cl.watch(list_messages, channel=c)``. In IPython
    the result displays itself as a live widget; ``render=`` (a function of the value returning
    a DataFrame, HTML or a matplotlib figure) is what the widget shows, re-rendered on change.
    """
    from convex_lab.backend import default_backend  # noqa: PLC0415 (backend imports us lazily)

    if args is not None and kwargs:
        raise TypeError("Give the query's arguments as a dict or as keywords, not both.")
    return default_backend().subscribe(ref, args if args is not None else kwargs, render=render)

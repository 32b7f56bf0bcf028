"""A running deployment: a store, the app's code, a clock, logs, and the calls into them.

Contract (docs/api.md)
------------------------
* ``Backend(path=None, *, app=None, clock="real")`` opens a store (in memory, or the DuckDB file
  at ``path``) and deploys ``app`` (default: :func:`~convex_lab.functions.default_app`).
* ``deploy(app)`` pushes the app's schema (existing documents are validated first) and makes its
  functions the served code. Functions are looked up in the app at call time, so a function
  redefined in the app is served at once; a schema assigned to ``app.schema`` later is pushed
  before the next call. An app without a schema keeps the schema the store already has.
* ``query/mutation/action(ref, args)`` are admin calls (internal functions allowed);
  ``client(identity)`` makes a :class:`~convex_lab.client.Client` that reaches public functions
  only. Unknown functions and wrong kinds raise ``FunctionError`` naming the fix.
* Queries run read-only at the latest snapshot; mutations are serializable and re-run on OCC
  conflicts (4 retries); actions run in the caller's thread, concurrently with anything else.
* ``redact_errors=True`` makes clients (``client()``, and the HTTP and wire servers) receive
  Convex's production ``"[Request ID: …] Server Error"`` for any error but ``ConvexError``;
  by default they get the message (Convex's dev deployments), never the server's frames.
* ``logs()`` lists the last 1000 executions (top-level and nested), oldest first.

The store (and so DuckDB) is imported inside ``Backend.__init__``: importing this module is cheap.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from convex_lab import functions as _functions
from convex_lab.clock import Clock, make_clock
from convex_lab.context import Auth
from convex_lab.errors import CLOSED_MESSAGE, BackendClosedError, FunctionError
from convex_lab.functions import App, FunctionDef, FunctionLike, default_app

if TYPE_CHECKING:
    from convex_lab.client import Client
    from convex_lab.executor import Executor
    from convex_lab.logs import LogEntry
    from convex_lab.scheduler.runner import JobRunner
    from convex_lab.store.engine import Commit, Store
    from convex_lab.subscriptions import LiveQuery, SubscriptionManager


class Backend:
    """One deployment; see the module docstring."""

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        app: App | None = None,
        clock: str | Clock = "real",
        log_size: int = 1000,
        redact_errors: bool = False,
    ) -> None:
        # The store (and DuckDB) and the executor load with the first Backend, not on import.
        from convex_lab.executor import Executor  # noqa: PLC0415
        from convex_lab.scheduler.jobs import Scheduler  # noqa: PLC0415
        from convex_lab.store.engine import Store  # noqa: PLC0415

        self.clock: Clock = make_clock(clock)
        self.path = None if path is None else str(path)
        self.store: Store = Store(self.path, now=self.clock.now)
        # Convex's production deployments redact errors for clients (reference §15); the
        # notebook's own calls always see everything.
        self.executor: Executor = Executor(self.store, self.clock, log_size=log_size,
                                           redact_errors=redact_errors)
        self.executor.provide("scheduler", Scheduler)
        self.closed = False
        self._subscriptions: SubscriptionManager | None = None
        self._scheduler: JobRunner | None = None
        self._scheduler_lock = threading.Lock()
        # The job runner starts with the first scheduled function (or at once if the store
        # already holds some, or the app has crons): backends that never schedule pay nothing.
        self._unsubscribe = [self.store.commits.subscribe(self._jobs_appeared)]
        try:
            self.deploy(app if app is not None else default_app())
        except BaseException:
            self.store.close()  # e.g. existing data breaks the app's schema: don't leak the file
            raise
        self._unsubscribe.append(self.executor.deployed.subscribe(self._crons_deployed))
        if (self.store.tables["_scheduled_functions"].docs or self.app.crons
                or self.store.tables["_cron_jobs"].docs):  # the last: crons removed from code
            _ = self.scheduler

    @property
    def app(self) -> App:
        """The served code (set by :meth:`deploy`)."""
        app = self.executor.app
        assert app is not None
        return app

    @property
    def redact_errors(self) -> bool:
        return self.executor.redact_errors

    # Code ------------------------------------------------------------------------------------
    def deploy(self, app: App | None = None) -> None:
        """Serve ``app`` (default: the current one): push its schema, then its functions."""
        app = app if app is not None else self.app
        self.executor.deploy(app)
        app._deployed_to(self)

    def _crons_deployed(self, app: App) -> None:
        if app.crons and self._scheduler is None:
            # Crons deployed to a backend that never scheduled anything: start the runner now
            # (it syncs them); made later, inside a commit's notification, its cron sync would
            # commit from within that notification.
            _ = self.scheduler

    def functions(self) -> dict[str, FunctionDef]:
        """The served functions by path."""
        return dict(self.app.functions)

    def resolve(self, ref: FunctionLike, kind: str | None = None, *, public_only: bool = False,
                caller: str = "backend") -> FunctionDef:
        """The served function for ``ref``; checks visibility and (if given) kind."""
        return self.executor.resolve(ref, kind, public_only=public_only, caller=caller)

    # Admin calls ------------------------------------------------------------------------------
    def query(self, ref: FunctionLike, args: Mapping[str, Any] | None = None) -> Any:
        """Run a query (internal ones too) at the latest snapshot."""
        if self.closed:
            raise BackendClosedError(CLOSED_MESSAGE)
        return self.executor.admin_call(ref, args, "query")

    def mutation(self, ref: FunctionLike, args: Mapping[str, Any] | None = None) -> Any:
        """Run a mutation (internal ones too) in its own transaction."""
        if self.closed:
            raise BackendClosedError(CLOSED_MESSAGE)
        return self.executor.admin_call(ref, args, "mutation")

    def action(self, ref: FunctionLike, args: Mapping[str, Any] | None = None) -> Any:
        """Run an action (internal ones too)."""
        if self.closed:
            raise BackendClosedError(CLOSED_MESSAGE)
        return self.executor.admin_call(ref, args, "action")

    def run_function(self, ref: FunctionLike, args: Any = None, *, kind: str | None = None,
                     identity: Auth | Mapping[str, Any] | None = None, public_only: bool = False,
                     caller: str = "backend", retries: int = 4, snapshot: int | None = None,
                     on_reads: Callable[[Any], None] | None = None,
                     ) -> Any:
        """Run any function top-level (see ``Executor.call``): clients, live queries and servers
        come through here."""
        if self.closed:
            raise BackendClosedError(CLOSED_MESSAGE)
        return self.executor.call(ref, args, kind=kind, identity=identity,
                                  public_only=public_only, caller=caller, retries=retries,
                                  snapshot=snapshot, on_reads=on_reads)

    def client(self, identity: Mapping[str, Any] | None = None) -> Client:
        """A client of this backend: public functions only; ``identity`` → ``ctx.auth``."""
        from convex_lab.client import Client  # noqa: PLC0415 (client imports this module)

        return Client(self, identity)

    # Scheduler -------------------------------------------------------------------------------
    @property
    def scheduler(self) -> JobRunner:
        """Scheduled functions and crons: ``jobs()``, ``wait_idle()``, ``run_due()``."""
        runner = self._scheduler
        if runner is None:
            with self._scheduler_lock:
                runner = self._scheduler
                if runner is None:
                    from convex_lab.scheduler.runner import JobRunner  # noqa: PLC0415

                    runner = self._scheduler = JobRunner(self.executor)
        return runner

    def _jobs_appeared(self, commit: Commit) -> None:
        if self._scheduler is None and "_scheduled_functions" in commit.writes:
            _ = self.scheduler  # it loads the new jobs itself

    # Live queries ----------------------------------------------------------------------------
    @property
    def subscriptions(self) -> SubscriptionManager:
        """The live queries of this backend (made on first use)."""
        manager = self._subscriptions
        if manager is None:
            from convex_lab.subscriptions import SubscriptionManager  # noqa: PLC0415

            manager = self._subscriptions = SubscriptionManager(self)
        return manager

    def subscribe(self, ref: FunctionLike, args: Mapping[str, Any] | None = None, *,
                  render: Callable[[Any], Any] | None = None) -> LiveQuery:
        """A live query as the notebook's owner sees it (internal queries allowed)."""
        return self.subscriptions.subscribe(ref, args, auth=None, public_only=False,
                                            render=render)

    def refresh_live_queries(self) -> None:
        """Deliver pending live-query updates now (a client's mutation calls this before it
        returns: read your writes)."""
        if self._subscriptions is not None:
            self._subscriptions.refresh()

    def add_commit_listener(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener()`` after each commit becomes visible; returns a remover."""
        return self.store.commits.subscribe(lambda _commit: listener())

    def add_log_listener(self, listener: Callable[[LogEntry], None]) -> Callable[[], None]:
        """Call ``listener(entry)`` for each new ``logs()`` entry; returns a remover."""
        return self.executor.log.added.subscribe(listener)

    # Data ------------------------------------------------------------------------------------
    def import_documents(self, table: str, documents: Any) -> list[str]:
        """Bulk-insert documents (dicts) into ``table`` as one commit; returns the new IDs.

        Documents are validated against the schema like ``ctx.db.insert`` (nothing is written if
        one fails; the error names its position); they get fresh ``_id``s and creation times.
        Much faster than a mutation per document: use it to load data into a notebook.
        """
        self._check_open()
        self.executor.sync_schema()
        return self.store.import_documents(table, documents)

    def sql(self, query: str, params: Any = None) -> Any:
        """Read-only DuckDB SQL over one view per table at one snapshot → a pandas DataFrame.

        See :mod:`convex_lab.interop.sql` for the views, their column types and the read-only rules.
        """
        from convex_lab.interop.sql import snapshot_sql  # noqa: PLC0415 (pandas, DuckDB on use)

        self._check_open()
        self.executor.sync_schema()
        return snapshot_sql(self.store, query, params=params)

    # Observability ---------------------------------------------------------------------------
    def logs(self) -> list[LogEntry]:
        """The last executions: function, kind, lines, error, started, duration_ms.

        Entries are in completion order, so nested calls come just before the call that made
        them; a mutation re-run after an OCC conflict is logged once (its last attempt).
        """
        return self.executor.log.entries()

    def clear_logs(self) -> None:
        self.executor.log.clear()

    # Lifecycle --------------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self.closed:
            raise BackendClosedError(CLOSED_MESSAGE)

    def close(self) -> None:
        """Flush and close the store; calls afterwards fail with ``BackendClosedError``."""
        if self.closed:
            return
        self.closed = True
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        if self._scheduler is not None:
            self._scheduler.close()
        if self._subscriptions is not None:
            self._subscriptions.close()
        self.executor.close()
        self.store.close()

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        where = self.path or "in memory"
        state = "closed" if self.closed else f"{len(self.app.functions)} functions"
        return f"<Backend {where}, {self.clock.kind} clock, {state}>"


# ---------------------------------------------------------------------------------------------
# The default backend

_default_backend: Backend | None = None
_default_lock = threading.Lock()


def default_backend() -> Backend:
    """The notebook's backend: in memory, serving :func:`default_app` (made on first use)."""
    global _default_backend
    backend = _default_backend
    if backend is not None and not backend.closed:
        return backend
    with _default_lock:
        if _default_backend is None or _default_backend.closed:
            _default_backend = Backend(app=default_app())
        return _default_backend


def set_default_backend(backend: Backend | None) -> Backend | None:
    """Make ``backend`` the default (``None``: make a fresh one on next use); returns the old."""
    global _default_backend
    with _default_lock:
        old, _default_backend = _default_backend, backend
    return old


def backend_for_app(app: App | None) -> Backend:
    """Where a function object called from notebook code runs (docs/api.md)."""
    app = app if app is not None else default_app()
    current = _default_backend
    if current is not None and not current.closed and current.app is app:
        return current
    if app is default_app() and (current is None or current.closed):
        return default_backend()
    served = app.backend
    if served is not None:
        return served
    raise FunctionError(
        "This function belongs to an App that no open Backend serves: make one with "
        "cl.Backend(app=app), or call backend.query/mutation/action(fn, args) on it."
    )


def _call_directly(fn: FunctionDef, args: Any) -> Any:
    """``fn(...)`` from notebook code: an admin call on the backend serving ``fn``'s app."""
    backend = backend_for_app(fn.app)
    backend._check_open()
    return backend.executor.admin_call(fn, args, fn.kind)


_functions.set_direct_caller(_call_directly)

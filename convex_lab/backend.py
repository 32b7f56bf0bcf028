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
* Files, HTTP actions and auth: ``ctx.storage`` (``convex_lab/files/``), ``fetch(path, ...)``
  (the app's HTTP actions in process), ``serve(port=0)`` (the loopback server, started lazily
  when a file URL is first needed; stopped by ``close()``), ``client(token=jwt)`` and
  ``verify_token(jwt)`` (``app.auth``'s providers, ``convex_lab/auth/``).

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
from convex_lab.context import NO_AUTH, Auth
from convex_lab.errors import CLOSED_MESSAGE, BackendClosedError, ConvexLabError, FunctionError
from convex_lab.functions import App, FunctionDef, FunctionLike, default_app

if TYPE_CHECKING:
    from convex_lab.auth.verify import VerifiedToken
    from convex_lab.client import Client
    from convex_lab.executor import Executor
    from convex_lab.http import Request as HttpRequest
    from convex_lab.http import Response as HttpResponse
    from convex_lab.logs import LogEntry
    from convex_lab.scheduler.runner import JobRunner
    from convex_lab.store.commits import Commit
    from convex_lab.store.engine import Store
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
        self.executor.provide("vector_search", lambda _frame: self.store.vector_search)
        from convex_lab.auth.verify import AuthenticatorCache  # noqa: PLC0415 (no pyjwt yet)
        from convex_lab.files.engine import FileStorage  # noqa: PLC0415

        # File URLs need the loopback server: it starts the first time one is asked for.
        self.files: FileStorage = FileStorage(self.store, self.clock.now,
                                              lambda: self.serve().url)
        self.executor.provide("storage", self.files.for_frame)
        self._authenticators = AuthenticatorCache()
        self._server: Any = None
        self._server_lock = threading.Lock()
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
            self.files.close()
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
        if app.auth is not None:
            self._authenticators.get(app.auth)  # a bad auth config fails the deploy, not a call
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

    def client(self, identity: Mapping[str, Any] | None = None, *,
               token: str | None = None) -> Client:
        """A client of this backend: public functions only. ``identity`` (a trusted test
        identity) or ``token`` (a JWT verified against ``app.auth``) → ``ctx.auth``."""
        from convex_lab.client import Client  # noqa: PLC0415 (client imports this module)

        return Client(self, identity, token=token)

    def verify_token(self, token: str) -> VerifiedToken:
        """Verify a JWT against the app's auth providers (``app.auth``): its identity and
        expiry, or a ``ConvexLabError`` saying why not (``convex_lab/auth/verify.py``)."""
        self._check_open()
        return self._authenticators.get(self.app.auth).verify(token)

    # HTTP ------------------------------------------------------------------------------------
    def fetch(self, path: Any, method: str = "GET", body: bytes | str | None = None,
              headers: Mapping[str, str] | None = None) -> HttpResponse:
        """Call the app's HTTP actions in process, as the site URL would: ``path`` (with any
        query string) through ``app.http``; returns a ``cl.Response``."""
        from convex_lab.http import Request  # noqa: PLC0415 (loaded on use)

        self._check_open()
        if not isinstance(path, str) or not path.startswith("/"):
            raise FunctionError(f"fetch() takes a path starting with '/', such as "
                                f"'/webhooks/stripe?x=1'; got {path!r}.")
        server = self._server
        base = server.site_url if server is not None else "http://127.0.0.1"
        return self.handle_http(Request(method, base + path, headers=headers, body=body))

    def handle_http(self, request: HttpRequest) -> HttpResponse:
        """Run one request through the app's router (``backend.fetch`` and the site URL):
        ``Authorization: Bearer <jwt>`` becomes ``ctx.auth`` (a token that does not verify
        still runs the handler, whose ``get_user_identity()`` then raises, as in Convex)."""
        from convex_lab.context import FailedAuth  # noqa: PLC0415
        from convex_lab.http import Response  # noqa: PLC0415
        from convex_lab.http_router import MAX_BODY_BYTES, dispatch  # noqa: PLC0415

        self._check_open()
        if len(request.body) > MAX_BODY_BYTES:
            return Response(f"The request body is {len(request.body)} bytes: HTTP actions "
                            "take at most 20 MiB.", status=413)
        auth: Auth = NO_AUTH
        header = request.headers.get("authorization")
        if header is not None:
            if header[:7].lower() != "bearer " or len(header) <= 7:
                auth = FailedAuth(FunctionError(
                    "Header must begin with `bearer `: send 'Authorization: Bearer <jwt>'.",
                    code="InvalidAuthHeader"))
            else:
                try:
                    auth = Auth(self.verify_token(header[7:].strip()).identity)
                except ConvexLabError as e:
                    auth = FailedAuth(e)
        self.executor.sync_schema()
        return dispatch(self.executor, self.app.http, request, auth)

    def serve(self, port: int = 0) -> Any:
        """Serve this backend on 127.0.0.1 (started once; later calls return the same server):
        ``.url`` (the deployment URL: file uploads and downloads) and ``.site_url`` (HTTP
        actions at the root). ``port=0`` picks free ports; otherwise the site is on port + 1."""
        self._check_open()
        with self._server_lock:
            server = self._server
            if server is None:
                if _server_starter is None:
                    raise FunctionError("No server is installed: import convex_lab (the package "
                                        "installs it) before calling serve().")
                server = self._server = _server_starter(self, port)
            elif port not in (0, server.port):
                raise FunctionError(
                    f"This backend is already served on port {server.port} ({server.url}); "
                    "backend.close() stops it. One backend, one server.")
        return server

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

    def import_table(self, table: str, source: Any, *, mode: str = "require_empty",
                     progress: bool | None = None) -> int:
        """Load a DataFrame (pandas, polars), Arrow table, list of dicts or a .parquet/.csv/
        .jsonl/.json file into ``table`` as one commit, validated column by column against the
        schema; returns the number of documents. ``mode``: ``"require_empty"`` (Convex's
        default), ``"append"``, ``"replace"``. See :mod:`convex_lab.interop.tables_in`."""
        from convex_lab.interop.tables_in import import_table  # noqa: PLC0415 (pyarrow on use)

        self._check_open()
        self.executor.sync_schema()
        return import_table(self.store, table, source, mode=mode, progress=progress)

    def to_arrow(self, table: str) -> Any:
        """``table``'s documents at the latest snapshot as a pyarrow Table (typed columns;
        see :mod:`convex_lab.interop.tables_out`)."""
        from convex_lab.interop.tables_out import to_arrow  # noqa: PLC0415

        self._check_open()
        self.executor.sync_schema()
        return to_arrow(self.store, table)

    def to_pandas(self, table: str) -> Any:
        """``table``'s documents at the latest snapshot as a pandas DataFrame (Arrow-backed
        dtypes: int64 stays int64, bytes stay bytes, a missing field is <NA>)."""
        from convex_lab.interop.tables_out import to_pandas  # noqa: PLC0415

        self._check_open()
        self.executor.sync_schema()
        return to_pandas(self.store, table)

    def to_parquet(self, table: str, path: str | Path) -> int:
        """Write ``table`` at the latest snapshot to a Parquet file; returns the row count."""
        from convex_lab.interop.tables_out import write_parquet  # noqa: PLC0415

        self._check_open()
        self.executor.sync_schema()
        return write_parquet(self.store, table, path)

    def export_zip(self, path: str | Path, *, progress: bool | None = None) -> dict[str, int]:
        """Write a Convex snapshot ZIP of every table (and the stored files) at one snapshot,
        streaming; returns the documents written per table. ``npx convex import`` reads it.
        See :mod:`convex_lab.interop.snapshot`."""
        from convex_lab.interop.snapshot import export_zip  # noqa: PLC0415

        self._check_open()
        self.executor.sync_schema()
        return export_zip(self.store, path, files=self.files, progress=progress)

    def import_zip(self, path: str | Path, mode: str = "require_empty", *,
                   progress: bool | None = None) -> dict[str, int]:
        """Load a Convex snapshot ZIP (ours or ``npx convex export``'s) as one commit, IDs and
        creation times kept; ``mode``: ``"require_empty"``, ``"append"``, ``"replace"``.
        Returns the documents loaded per table."""
        from convex_lab.interop.snapshot import import_zip  # noqa: PLC0415

        self._check_open()
        self.executor.sync_schema()
        return import_zip(self.store, path, mode=mode, files=self.files, progress=progress)

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
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        if self._scheduler is not None:
            self._scheduler.close()
        if self._subscriptions is not None:
            self._subscriptions.close()
        self.executor.close()
        self.store.close()
        self.files.close()

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


# ---------------------------------------------------------------------------------------------
# The loopback server (servers layer, above this one): installed by the package's facade.

ServerStarter = Callable[[Backend, int], Any]
_server_starter: ServerStarter | None = None


def set_server_starter(starter: ServerStarter) -> None:
    """Install what ``backend.serve(port)`` starts (``convex_lab/__init__.py`` installs
    ``convex_lab.server``'s): this module never imports the server."""
    global _server_starter
    _server_starter = starter

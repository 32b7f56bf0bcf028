"""A running deployment: a store, the app's code, a clock, logs, and the calls into them.

Contract (DESIGN §4, §8)
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

import difflib
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from convex_lab import logs as _logs
from convex_lab._runtime import (
    MAX_DEPTH,
    Frame,
    call_handler,
    export_error,
    finish_result,
    prepare_args,
)
from convex_lab.clock import Clock, make_clock
from convex_lab.context import (
    NO_AUTH,
    ActionCtx,
    Auth,
    MutationCtx,
    QueryCtx,
    normalize_identity,
)
from convex_lab.errors import FunctionError
from convex_lab.functions import (
    App,
    FunctionDef,
    FunctionLike,
    default_app,
    kind_phrase,
    reference_path,
)

if TYPE_CHECKING:
    from convex_lab.client import Client
    from convex_lab.logs import LogEntry
    from convex_lab.scheduler.runner import JobRunner
    from convex_lab.store.engine import Store
    from convex_lab.store.transaction import Transaction
    from convex_lab.subscriptions import LiveQuery, SubscriptionManager

_CALL_VERB = {"query": "query", "mutation": "mutation", "action": "action"}
_CTX_VERB = {"query": "run_query", "mutation": "run_mutation", "action": "run_action"}


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
        from convex_lab.store.database import (  # noqa: PLC0415 (DuckDB loads on first Backend)
            DatabaseReader,
            DatabaseWriter,
        )
        from convex_lab.store.engine import Store  # noqa: PLC0415 (same)

        self._reader = DatabaseReader
        self._writer = DatabaseWriter
        self.clock: Clock = make_clock(clock)
        # Convex's production deployments redact errors for clients (reference §15); the
        # notebook's own calls always see everything.
        self.redact_errors = redact_errors
        self.path = None if path is None else str(path)
        self.store: Store = Store(self.path, now=self.clock.now)
        self._tables = self.store.table_name_for_number
        self._log = _logs.ExecutionLog(log_size)
        self._schema_lock = threading.RLock()
        self._pushed_schema: Any = self.store.schema
        self.app: App = app if app is not None else default_app()
        self.closed = False
        self._subscriptions: SubscriptionManager | None = None
        self._scheduler: JobRunner | None = None
        self._scheduler_lock = threading.Lock()
        # The job runner starts with the first scheduled function (or at once if the store
        # already holds some, or the app has crons): backends that never schedule pay nothing.
        self._unlisten_jobs = self.store.add_listener(self._jobs_appeared)
        try:
            self.deploy(self.app)
        except BaseException:
            self.store.close()  # e.g. existing data breaks the app's schema: don't leak the file
            raise
        if self.store.tables["_scheduled_functions"].docs or self.app.crons:
            _ = self.scheduler
        elif self.store.tables["_cron_jobs"].docs:
            _ = self.scheduler  # crons removed from the code: their state is cleaned up

    # Code ------------------------------------------------------------------------------------
    def deploy(self, app: App | None = None) -> None:
        """Serve ``app`` (default: the current one): push its schema, then its functions."""
        app = app if app is not None else self.app
        with self._schema_lock:
            if app.schema is not None and app.schema is not self._pushed_schema:
                self.store.set_schema(app.schema)
                self._pushed_schema = app.schema
            old, self.app = self.app, app
        app._deployed_to(self)
        manager = self._subscriptions
        if manager is not None and old is not app:
            manager.switch_app(app)
        runner = getattr(self, "_scheduler", None)  # None during __init__'s first deploy
        if runner is not None:
            runner.deployed(app)
        elif app.crons and hasattr(self, "_scheduler"):
            # Crons deployed to a backend that never scheduled anything: start the runner now
            # (it syncs them); made later, inside a commit's notification, its cron sync would
            # commit from within that notification.
            _ = self.scheduler

    def _sync_schema(self) -> None:
        if self.app.schema is not self._pushed_schema and self.app.schema is not None:
            self.deploy(self.app)

    def functions(self) -> dict[str, FunctionDef]:
        """The served functions by path."""
        return dict(self.app.functions)

    def resolve(self, ref: FunctionLike, kind: str | None = None, *, public_only: bool = False,
                caller: str = "backend") -> FunctionDef:
        """The served function for ``ref``; checks visibility and (if given) kind."""
        if type(ref) is FunctionDef:  # the common case, without the general dispatch
            path, ref_public = ref.path, False
        else:
            path, ref_public = reference_path(ref)
        fn = self.app.functions.get(path)
        public_only = public_only or ref_public
        if fn is None or (public_only and fn.visibility != "public"):
            if caller == "client":
                raise FunctionError(self._not_found_for_client(path))
            raise FunctionError(self._not_found(path, public_only, fn))
        if kind is not None and fn.kind != kind:
            verbs = _CTX_VERB if caller == "ctx" else _CALL_VERB
            hint = (f": use {caller}.{verbs[fn.kind]}(...)" if fn.kind in verbs
                    else ": call it through an HTTP route with backend.fetch(...)")
            raise FunctionError(f"{path} is {kind_phrase(fn.kind)}, not {kind_phrase(kind)}{hint}")
        return fn

    def _not_found_for_client(self, path: str) -> str:
        """What a client learns about a path it cannot call: Convex's text, plus (unless the
        backend redacts) up to three close public names. Never whether an internal function
        exists there, and never a list of the deployment's functions."""
        message = f"Could not find public function for '{path}'."
        if self.redact_errors:
            return message
        public = [p for p, f in self.app.functions.items() if f.visibility == "public"]
        close = difflib.get_close_matches(path, public, n=3, cutoff=0.75)
        if close:
            return message + " Did you mean " + " or ".join(repr(c) for c in close) + "?"
        return message

    def _not_found(self, path: str, public_only: bool, found: FunctionDef | None) -> str:
        what = "public function" if public_only else "function"
        message = f"Could not find {what} for '{path}'."
        if found is not None:
            return (f"{message} ({path} is an internal function: clients cannot call it. Call it "
                    "from another function with ctx.run_*, or as an admin with backend.query/"
                    "mutation/action.)")
        candidates = [p for p, f in self.app.functions.items()
                      if not public_only or f.visibility == "public"]
        # Same function name in another module first ("send" → "messages:send"), then whole
        # paths (a high cutoff: paths in one module share a long prefix), then bare names.
        name = path.rpartition(":")[2]
        close = [p for p in candidates if p.rpartition(":")[2] == name][:3]
        close = close or difflib.get_close_matches(path, candidates, n=3, cutoff=0.8)
        if not close:
            by_name = {p.rpartition(":")[2]: p for p in candidates}
            close = [by_name[n] for n in difflib.get_close_matches(
                name, list(by_name), n=3, cutoff=0.6)]
        if close:
            return message + " Did you mean " + " or ".join(repr(c) for c in close) + "?"
        if not candidates:
            return message + " No functions are registered: define one with @cl.query etc."
        return message + f" Registered: {', '.join(sorted(candidates)[:20])}."

    # Admin calls ------------------------------------------------------------------------------
    def query(self, ref: FunctionLike, args: Mapping[str, Any] | None = None) -> Any:
        """Run a query (internal ones too) at the latest snapshot."""
        return self.run_function(ref, args, kind="query")

    def mutation(self, ref: FunctionLike, args: Mapping[str, Any] | None = None) -> Any:
        """Run a mutation (internal ones too) in its own transaction."""
        return self.run_function(ref, args, kind="mutation")

    def action(self, ref: FunctionLike, args: Mapping[str, Any] | None = None) -> Any:
        """Run an action (internal ones too)."""
        return self.run_function(ref, args, kind="action")

    def run_function(self, ref: FunctionLike, args: Any = None, *, kind: str | None = None,
                     identity: Auth | Mapping[str, Any] | None = None, public_only: bool = False,
                     caller: str = "backend", retries: int = 4, snapshot: int | None = None,
                     on_reads: Callable[[Any], None] | None = None,
                     tx_hooks: tuple[Callable[[Any], None], Callable[[Any], None]] | None = None,
                     ) -> Any:
        """Run any function top-level: the entry point for clients, the scheduler, servers.

        ``kind`` (if given) must match the function's; ``identity`` is a client identity dict
        (``{"subject", "issuer", ...}``) or an :class:`~convex_lab.context.Auth`; ``retries``
        bounds OCC re-runs of a mutation. ``snapshot`` runs a query at a pinned snapshot and
        ``on_reads(read_set)`` receives what it read (live queries use both). ``tx_hooks``
        ``(before, after)`` run inside a mutation's transaction around the handler (the scheduler
        marks a job done in the same transaction as the job's writes).
        """
        if self.closed:
            raise FunctionError("This backend is closed. Make a new one: cl.Backend(...).")
        fn = self.resolve(ref, kind, public_only=public_only, caller=caller)
        schema = self.app.schema
        if schema is not None and schema is not self._pushed_schema:
            self._sync_schema()
        auth = _auth(identity)
        records: list[Frame] = []
        try:
            return self._execute(fn, {} if args is None else args, auth, depth=0,
                                 records=records, retries=retries, snapshot=snapshot,
                                 on_reads=on_reads, tx_hooks=tx_hooks)
        except BaseException as e:
            export_error(e)
            raise
        finally:
            self._log.add(records)

    def run_http_action(self, fn: FunctionDef, request: Any,
                        identity: Auth | Mapping[str, Any] | None = None) -> Any:
        """Run an HTTP action handler ``(ctx, request)``; returns what the handler returned."""
        auth = _auth(identity)
        records: list[Frame] = []
        frame = Frame(self, fn, auth, depth=0, records=records, started=self.clock.now())
        token = _logs.current.set(frame)
        error: BaseException | None = None
        try:
            return call_handler(fn, ActionCtx(frame), {"request": request})
        except BaseException as e:
            error = e
            raise
        finally:
            _logs.current.reset(token)
            frame.finish(error)
            self._log.add(records)

    def client(self, identity: Mapping[str, Any] | None = None) -> Client:
        """A client of this backend: public functions only; ``identity`` → ``ctx.auth``."""
        from convex_lab.client import Client  # noqa: PLC0415 (client imports this module)

        return Client(self, identity)

    # Execution --------------------------------------------------------------------------------
    def _execute(self, fn: FunctionDef, args: Any, auth: Auth, *, depth: int,
                 records: list[Frame], retries: int = 4, snapshot: int | None = None,
                 on_reads: Callable[[Any], None] | None = None,
                 tx_hooks: tuple[Callable[[Any], None], Callable[[Any], None]] | None = None,
                 ) -> Any:
        """Run ``fn`` top-level (its own transaction, if it has one) and log it."""
        _logs.ensure_capture()
        frame = Frame(self, fn, auth, depth=depth, records=records, started=self.clock.now())
        token = _logs.current.set(frame)
        error: BaseException | None = None
        try:
            prepared = prepare_args(fn, args, self._tables)
            kind = fn.kind
            if kind == "action":
                return finish_result(fn, call_handler(fn, ActionCtx(frame), prepared),
                                     self._tables)
            if kind == "httpAction":
                raise FunctionError(f"{fn.path} is an HTTP action: call it with backend.fetch().")
            mark = len(records)
            mutation = kind == "mutation"

            def body(tx: Transaction) -> Any:
                frame.restart(mark)
                frame.tx = tx
                ctx = (MutationCtx(frame, self._writer(tx)) if mutation
                       else QueryCtx(frame, self._reader(tx)))
                try:
                    if tx_hooks is not None:
                        tx_hooks[0](tx)
                        result = finish_result(fn, call_handler(fn, ctx, prepared), self._tables)
                        tx_hooks[1](tx)
                        return result
                    return finish_result(fn, call_handler(fn, ctx, prepared), self._tables)
                finally:
                    if on_reads is not None:  # failed runs too: their reads decide the re-run
                        on_reads(tx.reads)

            return self.store.run(body, read_only=not mutation, retries=retries,
                                  snapshot=None if mutation else snapshot)
        except BaseException as e:
            error = e
            raise
        finally:
            _logs.current.reset(token)
            frame.tx = None
            frame.finish(error)

    def _nested_in_tx(self, parent: Frame, kind: str, ref: FunctionLike, args: Any) -> Any:
        """``ctx.run_query/run_mutation`` inside a query or mutation: same transaction."""
        fn = self._nested_target(parent, kind, ref)
        tx = parent.tx
        if tx is None:
            raise FunctionError("ctx was used after its function returned.")
        frame = Frame(self, fn, parent.auth, depth=parent.depth + 1, records=parent.records,
                      started=self.clock.now())
        frame.tx = tx
        token = _logs.current.set(frame)
        error: BaseException | None = None
        try:
            prepared = prepare_args(fn, args if args is not None else {}, self._tables)
            if kind == "query":
                ctx: Any = QueryCtx(frame, self._reader(tx))
                return finish_result(fn, call_handler(fn, ctx, prepared), self._tables)
            savepoint = tx.savepoint()
            try:
                ctx = MutationCtx(frame, self._writer(tx))
                return finish_result(fn, call_handler(fn, ctx, prepared), self._tables)
            except BaseException:
                tx.rollback(savepoint)  # also on Conflict: the whole attempt is discarded anyway
                raise
        except BaseException as e:
            error = e
            raise
        finally:
            _logs.current.reset(token)
            frame.tx = None
            frame.finish(error)

    def _nested_call(self, parent: Frame, kind: str, ref: FunctionLike, args: Any) -> Any:
        """``ctx.run_*`` inside an action: each call is its own transaction."""
        fn = self._nested_target(parent, kind, ref)
        return self._execute(fn, args if args is not None else {}, parent.auth,
                             depth=parent.depth + 1, records=parent.records)

    def _nested_target(self, parent: Frame, kind: str, ref: FunctionLike) -> FunctionDef:
        if parent.depth + 1 > MAX_DEPTH:
            raise FunctionError(
                f"Too many nested function calls: ctx.{_CTX_VERB[kind]} would nest more than "
                f"{MAX_DEPTH} levels deep (Convex's limit). Is a function calling itself?"
            )
        return self.resolve(ref, kind, caller="ctx")

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

                    runner = self._scheduler = JobRunner(self)
        return runner

    def _jobs_appeared(self, commit: Any) -> None:
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

    def add_commit_listener(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener()`` after each commit becomes visible; returns a remover."""
        return self.subscriptions.add_commit_listener(listener)

    def add_log_listener(self, listener: Callable[[LogEntry], None]) -> Callable[[], None]:
        """Call ``listener(entry)`` for each new ``logs()`` entry; returns a remover."""
        return self._log.add_listener(listener)

    # Data ------------------------------------------------------------------------------------
    def import_documents(self, table: str, documents: Any) -> list[str]:
        """Bulk-insert documents (dicts) into ``table`` as one commit; returns the new IDs.

        Documents are validated against the schema like ``ctx.db.insert`` (nothing is written if
        one fails; the error names its position); they get fresh ``_id``s and creation times.
        Much faster than a mutation per document: use it to load data into a notebook.
        """
        self._sync_schema()
        return self.store.import_documents(table, documents)

    def sql(self, query: str, params: Any = None) -> Any:
        """Read-only DuckDB SQL over one view per table at one snapshot → a pandas DataFrame.

        See :mod:`convex_lab.sql` for the views, their column types and the read-only rules.
        """
        from convex_lab.sql import snapshot_sql  # noqa: PLC0415 (pandas/DuckDB load on use)

        self._sync_schema()
        return snapshot_sql(self, query, params=params)

    # Observability ---------------------------------------------------------------------------
    def logs(self) -> list[LogEntry]:
        """The last executions: function, kind, lines, error, started, duration_ms.

        Entries are in completion order, so nested calls come just before the call that made
        them; a mutation re-run after an OCC conflict is logged once (its last attempt).
        """
        return self._log.entries()

    def clear_logs(self) -> None:
        self._log.clear()

    # Lifecycle --------------------------------------------------------------------------------
    def close(self) -> None:
        """Flush and close the store; calls afterwards fail."""
        if self.closed:
            return
        self.closed = True
        self._unlisten_jobs()
        if self._scheduler is not None:
            self._scheduler.close()
        if self._subscriptions is not None:
            self._subscriptions.close()
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


def _auth(identity: Auth | Mapping[str, Any] | None) -> Auth:
    if isinstance(identity, Auth):
        return identity
    normalized = normalize_identity(identity)
    return NO_AUTH if normalized is None else Auth(normalized)


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
    """Where a function object called from notebook code runs (DESIGN §4)."""
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

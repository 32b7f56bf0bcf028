"""The executor: the one place that runs a function (docs/architecture.md, "The path of a call").

Everything that runs a Convex function — the backend's admin calls, clients, live queries, the
scheduler, and later HTTP actions and the wire server — goes through an :class:`Executor`:

* **Code.** It serves one :class:`~convex_lab.functions.App` (``deploy``): the app's schema is
  pushed to the store first (existing documents are validated), and a schema assigned to
  ``app.schema`` later is pushed before the next call. ``resolve`` finds a function by reference.
* **A call.** ``call`` resolves, then ``run`` converts the arguments (the function's validators),
  builds the ``ctx`` for its kind (:func:`make_ctx`), runs the handler in a transaction when it
  has one (queries read-only at one snapshot; mutations serializable, re-run on OCC conflicts),
  converts the result, and records the execution in ``log`` (what it printed and logged, with
  Convex's levels: ``convex_lab.logs``). A live query passes its query journal, which the query's
  ``paginate()`` reads and a successful run updates (``store.database.QueryJournal``).
* **Nested calls.** ``run_nested`` serves ``ctx.run_query/run_mutation/run_action``: inside a
  query or mutation, in the caller's transaction (a nested mutation is a sub-transaction rolled
  back if it raises); inside an action, each in its own transaction. At most 8 levels deep. The
  caller's identity propagates.
* **Components.** A mounted component's function (``FunctionDef.mount``) gets a ``ctx.db``
  confined to its ``"<name>/"`` tables and its ``ctx.run_*`` reach only its own functions; with
  mounts the store gets the app's schema merged with theirs (``schema.with_components``).
* **Capabilities.** Engines above this layer plug into ``ctx`` with :meth:`Executor.provide`:
  ``provide("scheduler", factory)`` makes ``ctx.scheduler`` ``factory(frame)``. The executor
  imports none of them.
* **Events.** ``deployed`` (an App) after each deploy; ``registered`` (a FunctionDef) whenever
  the served app (re)defines a function. Live queries and the scheduler subscribe to them.

Errors a handler raises reach the caller unchanged (a ``ConvexError``'s data made canonical);
turning them into what a client may see is the client's job (``_runtime.for_client``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from convex_lab import logs as _logs
from convex_lab._resolve import nested_verb, resolve, resolve_in_mount
from convex_lab._runtime import (
    MAX_DEPTH,
    Frame,
    call_handler,
    export_error,
    finish_result,
    prepare_args,
)
from convex_lab.context import NO_AUTH, ActionCtx, Auth, MutationCtx, QueryCtx, normalize_identity
from convex_lab.errors import FunctionError
from convex_lab.events import Event
from convex_lab.store.transaction import run_with_retries

if TYPE_CHECKING:
    from convex_lab.clock import Clock
    from convex_lab.functions import App, FunctionDef, FunctionLike
    from convex_lab.store.database import QueryJournal
    from convex_lab.store.engine import Store
    from convex_lab.store.transaction import Transaction

TxHooks = tuple[Callable[[Any], None], Callable[[Any], None]]


class Executor:
    """Runs the functions of one deployment; see the module docstring."""

    def __init__(self, store: Store, clock: Clock, *, log_size: int = 1000,
                 redact_errors: bool = False) -> None:
        from convex_lab.store.database import (  # noqa: PLC0415 (keeps `import convex_lab` light)
            DatabaseReader,
            DatabaseWriter,
        )

        self.store = store
        self.clock = clock
        self.log = _logs.ExecutionLog(log_size)
        self.redact_errors = redact_errors
        self.app: App | None = None
        # A listener's failure (a cron that cannot be synced, say) fails the deploy.
        self.deployed: Event[App] = Event("deploy", errors="raise")
        self.registered: Event[FunctionDef] = Event("function registration")
        self._reader = DatabaseReader
        self._writer = DatabaseWriter
        self._tables = store.table_name_for_number
        self._capabilities: dict[str, Callable[[Frame], Any]] = {}
        self._schema_lock = threading.RLock()
        self._pushed_schema: Any = store.schema
        # With components mounted: the app's schema and each mount's, as last pushed merged.
        self._pushed_parts: tuple[Any, ...] = ()
        self._mount_lookups: dict[str, Callable[[int], str | None]] = {}
        self._unlisten_app: Callable[[], None] | None = None

    # Code ------------------------------------------------------------------------------------
    def deploy(self, app: App) -> None:
        """Serve ``app``: push its schema (an app without one keeps the store's), then its
        functions; then tell ``deployed``'s listeners."""
        with self._schema_lock:
            if app.mounts:
                self._push_merged_schema(app)
            elif app.schema is not None and app.schema is not self._pushed_schema:
                self.store.set_schema(app.schema)
                self._pushed_schema = app.schema
            if app is not self.app:
                if self._unlisten_app is not None:
                    self._unlisten_app()
                self._unlisten_app = app.registered.subscribe(self.registered.emit)
                self.app = app
        self.deployed.emit(app)

    def sync_schema(self) -> None:
        """Push a schema assigned to ``app.schema`` (or a component's) since the last deploy,
        and a component mounted since (a cheap check)."""
        app = self.app
        if app is None:
            return
        if app.mounts:
            if not self._merged_current(app):  # checked without the lock: every call asks
                with self._schema_lock:
                    self._push_merged_schema(app)
        elif app.schema is not None and app.schema is not self._pushed_schema:
            self.deploy(app)

    def _merged_current(self, app: App) -> bool:
        """Whether the merged schema pushed last is of this app's schema and these mounts'
        (names by value, schemas by identity), without building anything."""
        old = self._pushed_parts
        if not old or old[0] is not app.schema or len(old) != 1 + 2 * len(app.mounts):
            return False
        i = 1
        for name, mount in app.mounts.items():
            if old[i] != name or old[i + 1] is not mount.definition.schema:
                return False
            i += 2
        return True

    def _push_merged_schema(self, app: App) -> None:
        """The app's schema plus each mounted component's tables as ``<name>/<table>``
        (``schema.with_components``), pushed when any part changed (callers hold the lock)."""
        from convex_lab.schema import with_components  # noqa: PLC0415 (lower layer, lazily)

        if self._merged_current(app):
            return
        parts: tuple[Any, ...] = (app.schema, *(
            x for name, m in app.mounts.items() for x in (name, m.definition.schema)))
        merged = with_components(app.schema, {name: m.definition.schema
                                              for name, m in app.mounts.items()})
        self.store.set_schema(merged)
        self._pushed_schema = app.schema
        self._pushed_parts = parts

    def resolve(self, ref: FunctionLike, kind: str | None = None, *, public_only: bool = False,
                caller: str = "backend") -> FunctionDef:
        """The served function for ``ref`` (see ``_resolve.resolve``)."""
        assert self.app is not None, "deploy() an app first"
        return resolve(self.app, ref, kind, public_only=public_only, caller=caller,
                       redact=self.redact_errors)

    # Capabilities ----------------------------------------------------------------------------
    def provide(self, name: str, factory: Callable[[Frame], Any]) -> None:
        """Make ``ctx.<name>`` (where a ctx has it) ``factory(frame)`` for each execution."""
        self._capabilities[name] = factory

    def capability(self, name: str, frame: Frame) -> Any:
        """``ctx.<name>`` for ``frame``, or ``None`` when no engine provides it."""
        factory = self._capabilities.get(name)
        return factory(frame) if factory is not None else None

    # Calls -----------------------------------------------------------------------------------
    def call(self, ref: FunctionLike, args: Any = None, *, kind: str | None = None,
             identity: Auth | Mapping[str, Any] | None = None, public_only: bool = False,
             caller: str = "backend", retries: int = 4, snapshot: int | None = None,
             on_reads: Callable[[Any], None] | None = None, tx_hooks: TxHooks | None = None,
             journal: QueryJournal | None = None) -> Any:
        """Resolve ``ref`` and :meth:`run` it top-level: the entry point of every caller.

        ``kind`` (if given) must match the function's; ``identity`` is a client identity dict
        (``{"subject", "issuer", ...}``) or an :class:`~convex_lab.context.Auth`; ``retries``
        bounds OCC re-runs of a mutation. ``snapshot`` runs a query at a pinned snapshot and
        ``on_reads(read_set)`` receives what it read (live queries use both). ``tx_hooks``
        ``(before, after)`` run inside a mutation's transaction around the handler (the scheduler
        marks a job done in the same transaction as the job's writes). ``journal`` is a live
        query's :class:`~convex_lab.store.database.QueryJournal`: a query reads it and, when it
        succeeds, leaves the end of its ``paginate()`` there (reference §4.5).
        """
        fn = self.resolve(ref, kind, public_only=public_only, caller=caller)
        app = self.app
        if app is not None and (app.mounts or (app.schema is not None
                                               and app.schema is not self._pushed_schema)):
            self.sync_schema()
        return self.run(fn, {} if args is None else args, as_auth(identity), retries=retries,
                        snapshot=snapshot, on_reads=on_reads, tx_hooks=tx_hooks,
                        journal=journal)

    def admin_call(self, ref: FunctionLike, args: Any, kind: str) -> Any:
        """``call(ref, args, kind=kind)`` as the deployment's owner (no identity, internal
        functions allowed): the notebook's own calls, without ``call``'s options to pass."""
        fn = self.resolve(ref, kind)
        app = self.app
        if app is not None and (app.mounts or (app.schema is not None
                                               and app.schema is not self._pushed_schema)):
            self.sync_schema()
        records: list[Frame] = []
        try:
            return self._execute(fn, {} if args is None else args, NO_AUTH, 0, records)
        except BaseException as e:
            export_error(e)
            raise
        finally:
            self.log.add(records)

    def run(self, fn: FunctionDef, args: Any, auth: Auth, *, retries: int = 4,
            snapshot: int | None = None, on_reads: Callable[[Any], None] | None = None,
            tx_hooks: TxHooks | None = None, journal: QueryJournal | None = None) -> Any:
        """Run ``fn`` top-level and log it with the executions it nested."""
        records: list[Frame] = []
        try:
            return self._execute(fn, args, auth, 0, records, retries, snapshot, on_reads,
                                 tx_hooks, journal)
        except BaseException as e:
            export_error(e)
            raise
        finally:
            self.log.add(records)

    def run_nested(self, parent: Frame, kind: str, ref: FunctionLike, args: Any) -> Any:
        """``ctx.run_query/run_mutation/run_action`` from the execution ``parent``."""
        if parent.depth + 1 > MAX_DEPTH:
            raise FunctionError(
                f"Too many nested function calls: ctx.{nested_verb(kind)} would nest more than "
                f"{MAX_DEPTH} levels deep (Convex's limit). Is a function calling itself?")
        mount = parent.fn.mount
        # A component's function reaches only its component's functions; the app's, any.
        fn = (self.resolve(ref, kind, caller="ctx") if mount is None
              else resolve_in_mount(mount, ref, kind, caller="ctx"))
        args = {} if args is None else args
        if parent.fn.kind in {"query", "mutation"}:
            return self._nested_in_tx(parent, fn, args)
        return self._execute(fn, args, parent.auth, parent.depth + 1, parent.records)

    def run_http(self, fn: FunctionDef, request: Any,
                 identity: Auth | Mapping[str, Any] | None = None) -> Any:
        """Run an HTTP action handler ``(ctx, request)``; returns what the handler returned.
        Logged as an ``httpAction`` execution, with what it printed and any nested calls."""
        _logs.ensure_capture()
        records: list[Frame] = []
        frame = Frame(self, fn, as_auth(identity), depth=0, records=records,
                      started=self.clock.now())
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
            self.log.add(records)

    # Execution --------------------------------------------------------------------------------
    def _execute(self, fn: FunctionDef, args: Any, auth: Auth, depth: int,  # noqa: PLR0917 (hot)
                 records: list[Frame], retries: int = 4, snapshot: int | None = None,
                 on_reads: Callable[[Any], None] | None = None, tx_hooks: TxHooks | None = None,
                 journal: QueryJournal | None = None) -> Any:
        """Run ``fn`` in its own transaction (if its kind has one), as one frame."""
        _logs.ensure_capture()
        frame = Frame(self, fn, auth, depth=depth, records=records, started=self.clock.now())
        token = _logs.current.set(frame)
        error: BaseException | None = None
        tables = self._tables if fn.mount is None else self._mount_tables(fn.mount.namespace)
        try:
            prepared = prepare_args(fn, args, tables)
            kind = fn.kind
            if kind == "action":
                return finish_result(fn, call_handler(fn, ActionCtx(frame), prepared), tables)
            if kind == "httpAction":
                raise FunctionError(f"{fn.path} is an HTTP action: it is called through an HTTP "
                                    "route, not as a function.")
            mark = len(records)
            mutation = kind == "mutation"

            def body(tx: Transaction) -> Any:
                frame.restart(mark)
                frame.tx = tx
                ctx = self.make_ctx(kind, frame, tx, journal)
                try:
                    if tx_hooks is not None:
                        tx_hooks[0](tx)
                        result = finish_result(fn, call_handler(fn, ctx, prepared), tables, tx)
                        tx_hooks[1](tx)
                        return result
                    result = finish_result(fn, call_handler(fn, ctx, prepared), tables, tx)
                    if journal is not None:  # a successful run's journal is the next run's
                        journal.end_cursor = ctx.db.page_end
                    return result
                finally:
                    frame.capturing = False  # the commit and its listeners are not this function
                    if on_reads is not None:  # failed runs too: their reads decide the re-run
                        on_reads(tx.reads)

            return run_with_retries(self.store, body, not mutation, retries,
                                    None if mutation else snapshot)
        except BaseException as e:
            error = e
            raise
        finally:
            _logs.current.reset(token)
            frame.tx = None
            frame.finish(error)

    def _nested_in_tx(self, parent: Frame, fn: FunctionDef, args: Any) -> Any:
        """A nested query or mutation inside a query or mutation: the caller's transaction."""
        tx = parent.tx
        if tx is None:
            raise FunctionError("ctx was used after its function returned.")
        frame = Frame(self, fn, parent.auth, depth=parent.depth + 1, records=parent.records,
                      started=self.clock.now(), frozen=parent.time)
        frame.tx = tx
        token = _logs.current.set(frame)
        error: BaseException | None = None
        tables = self._tables if fn.mount is None else self._mount_tables(fn.mount.namespace)
        try:
            prepared = prepare_args(fn, args, tables)
            if fn.kind == "query":
                ctx = self.make_ctx("query", frame, tx)
                return finish_result(fn, call_handler(fn, ctx, prepared), tables, tx)
            savepoint = tx.savepoint()
            try:
                ctx = self.make_ctx("mutation", frame, tx)
                return finish_result(fn, call_handler(fn, ctx, prepared), tables, tx)
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

    def make_ctx(self, kind: str, frame: Frame, tx: Transaction | None = None,
                 journal: QueryJournal | None = None) -> Any:
        """The ``ctx`` of an execution of ``kind``: the one place ctx objects are built."""
        mount = frame.fn.mount
        if kind == "query":
            assert tx is not None
            if mount is not None:  # a component's function: its own tables only
                return QueryCtx(frame, self._reader(tx, frame.warn, journal,
                                                    namespace=mount.namespace))
            return QueryCtx(frame, self._reader(tx, frame.warn, journal))
        if kind == "mutation":
            assert tx is not None
            if mount is not None:
                return MutationCtx(frame, self._writer(tx, frame.warn,
                                                       namespace=mount.namespace))
            return MutationCtx(frame, self._writer(tx, frame.warn))
        return ActionCtx(frame)

    def _mount_tables(self, namespace: str) -> Callable[[int], str | None]:
        """Table names as a component's validators see them: its own without the
        ``<name>/`` prefix (``v.id("nodes")``), anything else as the store names it."""
        cached = self._mount_lookups.get(namespace)
        if cached is not None:
            return cached
        lookup = self._tables
        cut = len(namespace)

        def tables(number: int) -> str | None:
            name = lookup(number)
            if name is not None and name.startswith(namespace) and "/" not in name[cut:]:
                return name[cut:]
            return name

        self._mount_lookups[namespace] = tables
        return tables

    def close(self) -> None:
        if self._unlisten_app is not None:
            self._unlisten_app()
            self._unlisten_app = None


def as_auth(identity: Auth | Mapping[str, Any] | None) -> Auth:
    """A caller's identity as ``ctx.auth``: an :class:`Auth` as is, a dict normalised."""
    if isinstance(identity, Auth):
        return identity
    normalized = normalize_identity(identity)
    return NO_AUTH if normalized is None else Auth(normalized)

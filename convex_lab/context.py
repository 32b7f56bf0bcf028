"""The ``ctx`` objects handed to handlers, split by capability as Convex splits them.

==============  ==========================  ===========================================
ctx             has                         has not
==============  ==========================  ===========================================
``QueryCtx``    ``db`` (a reader), ``auth``,  ``run_mutation``, ``run_action``, writes
                ``run_query``, ``storage``
``MutationCtx`` ``db`` (a writer), ``auth``,  ``run_action``
                ``run_query``,
                ``run_mutation``,
                ``scheduler``, ``storage``
``ActionCtx``   ``auth``, ``run_query``,      ``db`` (reading it raises ``AttributeError``
                ``run_mutation``,             with what to do instead)
                ``run_action``, ``scheduler``
==============  ==========================  ===========================================

Nested calls (reference §5.3, §7)
---------------------------------
* In a query or mutation, ``ctx.run_query`` runs in the same transaction with a new reader;
  ``ctx.run_mutation`` (mutations only) runs in the same transaction as a sub-transaction: if it
  raises, its writes are rolled back and the error propagates (the caller may catch it).
* In an action, each ``run_query`` / ``run_mutation`` is its own transaction; ``run_action``
  runs the action in this thread.
* The caller's identity propagates; nesting is limited to 8 levels; the target's validators check
  the arguments when it runs. The methods are plain calls, also inside ``async def`` handlers.

``scheduler`` and ``storage`` are capabilities: the engine that provides one plugs it in with
``Executor.provide`` (docs/architecture.md, "Where capabilities plug in"); this module imports
no engine.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from convex_lab.errors import ConvexLabError, FunctionError
from convex_lab.values import convert, sort_key

if TYPE_CHECKING:
    from convex_lab._runtime import Frame
    from convex_lab.functions import FunctionLike
    from convex_lab.store.database import DatabaseReader, DatabaseWriter

def normalize_identity(identity: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A client's identity → Convex's ``UserIdentity`` dict (``tokenIdentifier = "iss|sub"``).

    ``subject`` and ``issuer`` are required (JWT's ``sub`` and ``iss`` are accepted too); every
    other field is kept as given, converted to a Convex value. ``tokenIdentifier`` is always
    derived from them, as Convex derives it: a given one must agree (a client cannot borrow
    another user's token identifier). The result is the caller's own copy.
    """
    if identity is None:
        return None
    if not isinstance(identity, Mapping):
        raise FunctionError(
            f"identity must be a dict with 'subject' and 'issuer'; got {identity!r}")
    fields = dict(identity)
    subject = fields.pop("subject", None) or fields.pop("sub", None)
    issuer = fields.pop("issuer", None) or fields.pop("iss", None)
    if not isinstance(subject, str) or not isinstance(issuer, str) or not subject or not issuer:
        raise FunctionError(
            "identity needs string 'subject' and 'issuer' fields, e.g. "
            "{'subject': 'user1', 'issuer': 'https://auth.example.com', 'name': 'Ada'}; "
            f"got {dict(identity)!r}"
        )
    token = f"{issuer}|{subject}"
    given = fields.pop("tokenIdentifier", None)
    if given is not None and given != token:
        raise FunctionError(
            f"identity's tokenIdentifier {given!r} does not match its issuer and subject: Convex "
            f"derives it as 'issuer|subject' ({token!r}). Leave tokenIdentifier out.")
    try:
        claims = convert(fields)
    except ConvexLabError as e:
        raise FunctionError(f"identity claims must be Convex values: {e}") from None
    return {"tokenIdentifier": token, "subject": subject, "issuer": issuer, **claims}


class Auth:
    """``ctx.auth``: the caller's identity (``None`` for admin calls and scheduled functions).

    The identity is immutable from the outside: every read hands out a deep copy, so a function
    that edits what it got (nested claims included) changes nothing for later calls.
    """

    __slots__ = ("_identity", "_key")

    def __init__(self, identity: dict[str, Any] | None) -> None:
        self._identity = identity
        self._key: Any = None

    def get_user_identity(self) -> dict[str, Any] | None:
        """Convex's ``getUserIdentity()``: a fresh deep copy each call, or ``None``."""
        identity = self._identity
        return copy.deepcopy(identity) if identity is not None else None

    @property
    def identity(self) -> dict[str, Any] | None:
        return self.get_user_identity()

    def key(self) -> Any:
        """A hashable value equal for equal identities (all claims, not only the token
        identifier): live queries share an execution only between equal identities."""
        if self._key is None:
            self._key = (sort_key(self._identity) if self._identity is not None else ())
        return self._key

    def __repr__(self) -> str:
        who = self._identity["tokenIdentifier"] if self._identity else None
        return f"<Auth {who!r}>"


NO_AUTH: Final = Auth(None)


class FailedAuth(Auth):
    """``ctx.auth`` of an HTTP action whose ``Authorization: Bearer`` token did not verify: the
    handler still runs, and ``get_user_identity()`` raises the verification error (as in
    Convex), so a bad token can never pass for an identity (nor for no identity)."""

    __slots__ = ("_error",)

    def __init__(self, error: Exception) -> None:
        super().__init__(None)
        self._error = error

    def get_user_identity(self) -> dict[str, Any] | None:
        error = self._error
        fresh = type(error).__new__(type(error))
        fresh.__dict__.update(error.__dict__)
        fresh.args = error.args
        raise fresh

    def key(self) -> Any:
        return ("failed", id(self))  # shared with no one

    def __repr__(self) -> str:
        return f"<FailedAuth {self._error}>"


class _Ctx:
    __slots__ = ("_frame", "auth")
    _kind = "ctx"

    def __init__(self, frame: Frame) -> None:
        self._frame = frame
        self.auth = frame.auth

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(self._missing(name))

    def _missing(self, name: str) -> str:
        return f"'{type(self).__name__}' object has no attribute '{name}'"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self._frame.fn.path}>"


class QueryCtx(_Ctx):
    """``ctx`` of a query: read-only ``db``, ``auth``, ``run_query``."""

    __slots__ = ("db",)

    def __init__(self, frame: Frame, db: DatabaseReader) -> None:
        self._frame = frame
        self.auth = frame.auth
        self.db = db

    @property
    def storage(self) -> Any:
        """File storage as a query has it: ``get_url``, ``get_metadata`` (``files/ctx.py``)."""
        frame = self._frame
        return frame.executor.capability("storage", frame)

    def run_query(self, ref: FunctionLike, args: Mapping[str, Any] | None = None) -> Any:
        """Run a query in this transaction (same snapshot); returns its result."""
        frame = self._frame
        return frame.executor.run_nested(frame, "query", ref, args)

    def _missing(self, name: str) -> str:
        if name in ("run_mutation", "run_action", "scheduler"):
            return (f"Queries are read-only: a query's ctx has no {name}. Call it from a mutation "
                    "or an action instead.")
        return super()._missing(name)


class MutationCtx(_Ctx):
    """``ctx`` of a mutation: ``db`` writer, ``auth``, ``run_query``, ``run_mutation``,
    ``scheduler``."""

    __slots__ = ("_scheduler", "db")

    def __init__(self, frame: Frame, db: DatabaseWriter) -> None:
        self._frame = frame  # assigned here, not via super(): this runs on every call
        self.auth = frame.auth
        self.db = db
        self._scheduler: Any = None

    @property
    def scheduler(self) -> Any:
        """``run_after / run_at / cancel``; scheduling is part of this mutation's transaction."""
        if self._scheduler is None:  # made on first use: most mutations never schedule
            frame = self._frame
            self._scheduler = frame.executor.capability("scheduler", frame)
        return self._scheduler

    @property
    def storage(self) -> Any:
        """File storage as a mutation has it: also ``generate_upload_url``, ``delete`` (in this
        transaction)."""
        frame = self._frame
        return frame.executor.capability("storage", frame)

    def run_query(self, ref: FunctionLike, args: Mapping[str, Any] | None = None) -> Any:
        """Run a query in this transaction (it sees this mutation's writes so far)."""
        frame = self._frame
        return frame.executor.run_nested(frame, "query", ref, args)

    def run_mutation(self, ref: FunctionLike, args: Mapping[str, Any] | None = None) -> Any:
        """Run a mutation as a sub-transaction: if it raises, its writes are undone."""
        frame = self._frame
        return frame.executor.run_nested(frame, "mutation", ref, args)

    def _missing(self, name: str) -> str:
        if name == "run_action":
            return ("Mutations cannot call actions directly (they must be deterministic): "
                    "schedule it with ctx.scheduler.run_after(0, fn, args).")
        return super()._missing(name)


class ActionCtx(_Ctx):
    """``ctx`` of an action: ``run_query/run_mutation/run_action``, ``auth``, ``scheduler``,
    ``storage``; no ``db``."""

    __slots__ = ("_scheduler",)

    def __init__(self, frame: Frame) -> None:
        super().__init__(frame)
        self._scheduler: Any = None

    @property
    def scheduler(self) -> Any:
        """``run_after / run_at / cancel``; from an action, scheduling happens at once."""
        if self._scheduler is None:
            frame = self._frame
            self._scheduler = frame.executor.capability("scheduler", frame)
        return self._scheduler

    @property
    def storage(self) -> Any:
        """File storage as an action has it: also ``store``, ``get`` (``files/ctx.py``)."""
        frame = self._frame
        return frame.executor.capability("storage", frame)

    def vector_search(self, table: str, index: str, vector: Any = None, limit: int = 10,
                      filter: Any = None) -> list[dict[str, Any]]:
        """Convex's ``ctx.vectorSearch``: ``[{"_id", "_score"}]`` of the ``limit`` (1..256)
        documents most similar to ``vector`` (cosine, best first), optionally filtered with
        ``filter=lambda q: q.eq(field, value)`` or ``q.or_(...)``; reflects every commit made
        before the call (reference §11)."""
        frame = self._frame
        search = frame.executor.capability("vector_search", frame)
        if search is None:
            raise FunctionError("Vector search needs a backend: run this action through one.")
        return search(table, index, vector=vector, limit=limit, filter=filter)  # type: ignore[no-any-return]

    def run_query(self, ref: FunctionLike, args: Mapping[str, Any] | None = None) -> Any:
        """Run a query in its own transaction (at the latest snapshot)."""
        frame = self._frame
        return frame.executor.run_nested(frame, "query", ref, args)

    def run_mutation(self, ref: FunctionLike, args: Mapping[str, Any] | None = None) -> Any:
        """Run a mutation in its own transaction (committed when this call returns)."""
        frame = self._frame
        return frame.executor.run_nested(frame, "mutation", ref, args)

    def run_action(self, ref: FunctionLike, args: Mapping[str, Any] | None = None) -> Any:
        """Run another action (Convex meant this for crossing into the Node runtime)."""
        frame = self._frame
        return frame.executor.run_nested(frame, "action", ref, args)

    def _missing(self, name: str) -> str:
        if name == "db":
            return ("Actions have no ctx.db: they don't run in a transaction. Read and write "
                    "through a query or mutation: ctx.run_query(fn, args) / "
                    "ctx.run_mutation(fn, args).")
        return super()._missing(name)

"""A client of a backend: what a browser or app sees (docs/api.md).

* Reaches **public** functions only: an internal one is "Could not find public function for ...".
* Carries an identity: ``identity={"subject": ..., "issuer": ..., ...}`` (trusted, like
  convex-test's ``withIdentity``) or ``token=<jwt>`` (verified against ``app.auth``'s providers)
  becomes ``ctx.auth.get_user_identity()`` in every function it calls (and their nested calls),
  with ``tokenIdentifier = "<issuer>|<subject>"``. ``set_auth(jwt)`` / ``clear_auth()`` change
  it for later calls and re-run the client's open live queries as the new identity; a bad token
  is refused there, with the reason. Once a token's ``exp`` has
  passed, calls fail until ``set_auth`` gets a fresh one (as Convex's server refuses them).
* Errors reach the caller as fresh exceptions carrying no server frames: ``ConvexError`` with
  its data, convex_lab's own errors with their message, anything else as ``ServerError``; with
  ``Backend(redact_errors=True)`` every non-``ConvexError`` is Convex's redacted
  ``"[Request ID: …] Server Error"``.
* Mutations from one client run one at a time, in the order they were called (Convex's
  per-client ordering, reference §5.2); queries and actions may run concurrently.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from convex_lab._runtime import for_client
from convex_lab.context import NO_AUTH, Auth, normalize_identity
from convex_lab.errors import ConvexLabError, FunctionError

if TYPE_CHECKING:
    from convex_lab.backend import Backend
    from convex_lab.functions import FunctionLike
    from convex_lab.live_pages import PaginatedLiveQuery
    from convex_lab.subscriptions import LiveQuery


class Client:
    """See module docstring. Made by :meth:`Backend.client`."""

    def __init__(self, backend: Backend, identity: Mapping[str, Any] | None = None, *,
                 token: str | None = None) -> None:
        self.backend = backend
        if identity is not None and token is not None:
            raise FunctionError("Give a client an identity= (trusted) or a token= (verified), "
                                "not both.")
        normalized = normalize_identity(identity)
        self._auth = NO_AUTH if normalized is None else Auth(normalized)
        self._expires_at: float | None = None
        # Open live queries made by this client: they follow set_auth / clear_auth.
        self._lives: weakref.WeakSet[Any] = weakref.WeakSet()
        if token is not None:
            self.set_auth(token)
        # A fair lock would be stricter about arrival order; threads calling one client at the
        # same instant have no defined order anyway, and calls from one thread stay in order.
        self._mutation_lock = threading.Lock()

    @property
    def identity(self) -> dict[str, Any] | None:
        return self._auth.get_user_identity()

    def set_auth(self, token: str) -> dict[str, Any]:
        """Authenticate later calls with ``token`` (a JWT for one of ``app.auth``'s providers);
        returns the identity. A token that does not verify raises and changes nothing."""
        verified = self.backend.verify_token(token)
        self._auth = Auth(verified.identity)
        self._expires_at = verified.expires_at
        self._follow_identity()
        return verified.identity

    def clear_auth(self) -> None:
        """Call as no one from now on (``ctx.auth.get_user_identity()`` is ``None``)."""
        self._auth = NO_AUTH
        self._expires_at = None
        self._follow_identity()

    def _follow_identity(self) -> None:
        """This client's open live queries re-run as its new identity (as Convex's sync
        protocol re-runs a client's query set after ``Authenticate``)."""
        for live in list(self._lives):
            reauth = getattr(live, "reauth", None)  # a PaginatedLiveQuery re-runs its pages
            if reauth is not None:
                reauth(self._auth)
            else:
                self.backend.subscriptions.rebind(live, self._auth)

    def _check_token(self) -> None:
        expires = self._expires_at
        if expires is not None and time.time() * 1000.0 >= expires + 5000.0:  # Convex's leeway
            raise ConvexLabError(
                "This client's token expired: get a fresh one and call client.set_auth(token) "
                "(or client.clear_auth() to call as no one).", code="InvalidAuthHeader")

    def _call(self, ref: FunctionLike, args: Mapping[str, Any] | None, kind: str) -> Any:
        """Run a public function as this client; a failure reaches the caller as a fresh error
        without the server's frames (see ``_runtime.for_client``)."""
        backend = self.backend
        self._check_token()
        try:
            return backend.run_function(ref, args, kind=kind, identity=self._auth,
                                        public_only=True, caller="client")
        except Exception as e:  # noqa: BLE001 (converted below, outside this block)
            error = for_client(e, redact=backend.redact_errors)
        # Raised outside the except block, so the fresh error has no __context__ chaining it
        # to the server's exception (and its frames).
        raise error

    def query(self, ref: FunctionLike, args: Mapping[str, Any] | None = None) -> Any:
        """Run a public query at the latest snapshot."""
        return self._call(ref, args, "query")

    def mutation(self, ref: FunctionLike, args: Mapping[str, Any] | None = None) -> Any:
        """Run a public mutation; this client's mutations run one at a time, in order."""
        with self._mutation_lock:
            result = self._call(ref, args, "mutation")
        self.backend.refresh_live_queries()  # read your writes: live queries reflect it on return
        return result

    def subscribe(self, ref: FunctionLike, args: Mapping[str, Any] | None = None, *,
                  render: Callable[[Any], Any] | None = None) -> LiveQuery:
        """A live query of a public query as this client sees it (``docs/live-queries.md``)."""
        live = self.backend.subscriptions.subscribe(ref, args, auth=self._auth,
                                                    public_only=True, render=render)
        self._lives.add(live)
        return live

    def subscribe_paginated(self, ref: FunctionLike, args: Mapping[str, Any] | None = None, *,
                            initial_num_items: int = 10) -> PaginatedLiveQuery:
        """A paginated live query (the query takes ``paginationOpts``; see live_pages.py)."""
        from convex_lab.live_pages import PaginatedLiveQuery  # noqa: PLC0415

        fn = self.backend.resolve(ref, "query", public_only=True, caller="client")
        live = PaginatedLiveQuery(self.backend.subscriptions, fn.path, args or {},
                                  auth=self._auth, public_only=True,
                                  initial_num_items=initial_num_items)
        self._lives.add(live)
        return live

    def action(self, ref: FunctionLike, args: Mapping[str, Any] | None = None) -> Any:
        """Run a public action (actions of one client may run concurrently)."""
        return self._call(ref, args, "action")

    def __repr__(self) -> str:
        who = self._auth.get_user_identity()
        return f"<Client of {self.backend!r}, identity={who['tokenIdentifier'] if who else None}>"

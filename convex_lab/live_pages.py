"""Paginated live queries: Convex's ``usePaginatedQuery`` (reference §4.5, "Reactive stability").

The query function takes ``paginationOpts`` and returns ``ctx.db.query(...).paginate(opts)``. Each
loaded page is a live execution of that query with ``{"numItems", "cursor"}``: after its first
run the execution's query journal holds the page's end (``subscriptions.py``), so when documents
are inserted or deleted a page grows or shrinks but never shifts, and pages stay contiguous.
``load_more(n)`` adds a page starting at the last page's ``continueCursor``.

As Convex's client does, ``endCursor`` reaches the function's arguments only when a page is
split: a page that grew past twice ``initial_num_items`` (or that the server asks to split,
``pageStatus``) is replaced by two pages, ``(cursor, splitCursor]`` and ``(splitCursor,
continueCursor]``, with the same items. A page whose cursor no longer fits its query
(``InvalidCursor``: the query changed under it) restarts the whole list from a first page, as
``usePaginatedQuery`` does.

``status``: "LoadingFirstPage" until the first page has a result, then "CanLoadMore" while the last
page is not done, "Exhausted" once it is; "LoadingMore" while a new page loads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from convex_lab.events import report

if TYPE_CHECKING:
    from convex_lab.context import Auth
    from convex_lab.subscriptions import SubscriptionManager, _Execution

_SPLIT_STATUSES = ("SplitRecommended", "SplitRequired")
_MAX_SPLITS = 64  # per update: every split halves a page, so this is never reached in practice


class PaginatedLiveQuery:
    """See module docstring. Made by ``Client.subscribe_paginated``."""

    def __init__(self, manager: SubscriptionManager, path: str, args: Mapping[str, Any], *,
                 auth: Auth | None, public_only: bool, initial_num_items: int) -> None:
        if initial_num_items < 1:
            raise ValueError("initial_num_items must be at least 1.")
        self._manager = manager
        self.path = path
        self.args = dict(args)
        self._auth = auth
        self._public_only = public_only
        self._initial = initial_num_items
        self._pages: list[_Execution] = []
        self._loading = False
        self._closed = False
        self._on_update: list[Callable[[PaginatedLiveQuery], None]] = []
        self.version = 0
        self._add_page({"numItems": initial_num_items, "cursor": None})
        self._settle()

    # State ---------------------------------------------------------------------------------
    @property
    def results(self) -> list[Any]:
        out: list[Any] = []
        for page in self._pages:
            if isinstance(page.value, dict):
                out.extend(page.value.get("page", []))
        return out

    @property
    def error(self) -> BaseException | None:
        return next((p.error for p in self._pages if p.error is not None), None)

    @property
    def status(self) -> str:
        if self._closed:
            return "closed"
        if self._loading:
            return "LoadingMore" if len(self._pages) > 1 else "LoadingFirstPage"
        if not self._pages or not self._pages[0].ran or self._pages[0].value is None:
            return "LoadingFirstPage"
        last = self._pages[-1].value
        return "Exhausted" if isinstance(last, dict) and last.get("isDone") else "CanLoadMore"

    @property
    def pages(self) -> list[list[Any]]:
        """The items of each loaded page (for tests and debugging)."""
        return [list(p.value.get("page", [])) if isinstance(p.value, dict) else []
                for p in self._pages]

    # Loading -------------------------------------------------------------------------------
    def _page(self, opts: dict[str, Any]) -> _Execution:
        """A live execution of the query for one page, run once at the latest snapshot."""
        args = dict(self.args, paginationOpts=opts)
        ex = self._manager.page_execution(self.path, args, self._auth, self._public_only, self)
        ex.lives.append(self)
        self._loading = True
        try:
            ex.run(None)
        finally:
            self._loading = False
        return ex

    def _add_page(self, opts: dict[str, Any]) -> None:
        self._pages.append(self._page(opts))

    def reauth(self, auth: Auth | None) -> None:
        """Follow a new identity (a client's ``set_auth`` / ``clear_auth``): every loaded page
        re-runs as ``auth`` (same page bounds) and the change is delivered as an update."""
        if self._closed:
            return
        self._auth = auth
        with self._manager._refresh_lock:
            for page in self._pages:
                page.auth = auth
                page.run(None)
        self._settle()

    def load_more(self, num_items: int) -> bool:
        """Load one more page of ``num_items``; False if there is nothing more to load."""
        if self._closed or self.status != "CanLoadMore":
            return False
        last = self._pages[-1].value
        self._add_page({"numItems": num_items, "cursor": last["continueCursor"]})
        self._settle()
        return True

    def _settle(self, *, restarted: bool = False) -> None:
        """Restart after an ``InvalidCursor`` (once: a first page that fails again shows its
        error), split pages that grew too large, then tell."""
        if not restarted and self._restart_if_invalid():
            return
        for _ in range(_MAX_SPLITS):
            if not self._split_one():
                break
        self.version += 1
        self._tell()

    def _restart_if_invalid(self) -> bool:
        if not any(getattr(p.error, "code", None) == "InvalidCursor" for p in self._pages):
            return False
        for page in self._pages:
            self._manager.release(page, self)
        self._pages = []
        self._add_page({"numItems": self._initial, "cursor": None})
        self._settle(restarted=True)
        return True

    def _split_one(self) -> bool:
        """Split the first page that needs it (Convex's client rule); False if none does."""
        for i, page in enumerate(self._pages):
            value = page.value
            if page.error is not None or not isinstance(value, dict):
                continue
            split = value.get("splitCursor")
            if split is None or not (value.get("pageStatus") in _SPLIT_STATUSES
                                     or len(value.get("page", ())) > 2 * self._initial):
                continue
            opts = page.args["paginationOpts"]
            first = self._page(dict(opts, endCursor=split))
            second = self._page(dict(opts, cursor=split, endCursor=value["continueCursor"]))
            self._pages[i:i + 1] = [first, second]
            self._manager.release(page, self)
            return True
        return False

    # Live-query protocol (called by the manager) -------------------------------------------
    def _deliver(self, changed: bool, changed_any: bool) -> None:
        if self._closed:
            return
        if changed_any:
            self._settle()

    def _tell(self) -> None:
        for cb in list(self._on_update):
            try:
                cb(self)
            except Exception:  # noqa: BLE001 (reported; never breaks a commit)
                report(f"a live-query callback raised (on_update of paginated {self.path})")

    def on_update(self, callback: Callable[[PaginatedLiveQuery], None]) -> Callable[[], None]:
        """Call ``callback(pq)`` after any change (new page, changed page, error, status)."""
        self._on_update.append(callback)
        return lambda: self._on_update.remove(callback) if callback in self._on_update else None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for page in self._pages:
            self._manager.release(page, self)
        self._tell()
        self._on_update.clear()

    def __repr__(self) -> str:
        return (f"<PaginatedLiveQuery {self.path}: {len(self.results)} items in "
                f"{len(self._pages)} page(s), {self.status}>")

"""Paginated live queries: Convex's ``usePaginatedQuery`` (reference §4.5, "Reactive stability").

The query function takes ``paginationOpts`` and returns ``ctx.db.query(...).paginate(opts)``. Each
loaded page is a live execution of that query. After a page's first run its end is fixed as
``endCursor`` (Convex's query journal), so when documents are inserted or deleted a page grows or
shrinks but never shifts, and pages stay contiguous. ``load_more(n)`` adds a page starting at the
last page's ``continueCursor``.

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
        self._pages: list[_Execution] = []
        self._loading = False
        self._closed = False
        self._on_update: list[Callable[[PaginatedLiveQuery], None]] = []
        self.version = 0
        self._add_page(None, initial_num_items)

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
    def _add_page(self, cursor: str | None, num_items: int) -> None:
        opts = {"numItems": num_items, "cursor": cursor}
        args = dict(self.args, paginationOpts=opts)
        ex = self._manager.page_execution(self.path, args, self._auth, self._public_only, self)
        ex.lives.append(self)
        self._pages.append(ex)
        self._loading = True
        try:
            ex.run(None)
        finally:
            self._loading = False
        self._fix_end(ex)
        self.version += 1
        self._tell()

    def _fix_end(self, ex: _Execution) -> None:
        """Record the page's end as its endCursor once it has one (the journal)."""
        opts = ex.args["paginationOpts"]
        if "endCursor" not in opts and isinstance(ex.value, dict):
            opts["endCursor"] = ex.value.get("continueCursor")

    def load_more(self, num_items: int) -> bool:
        """Load one more page of ``num_items``; False if there is nothing more to load."""
        if self._closed or self.status != "CanLoadMore":
            return False
        last = self._pages[-1].value
        self._add_page(last["continueCursor"], num_items)
        return True

    # Live-query protocol (called by the manager) -------------------------------------------
    def _deliver(self, changed: bool, changed_any: bool) -> None:
        if self._closed:
            return
        for page in self._pages:
            self._fix_end(page)
        if changed_any:
            self.version += 1
            self._tell()

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

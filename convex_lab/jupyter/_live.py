"""Live query widgets: one query's value, and a paginated query with "Load more".

Both follow their query through ``on_update`` (docs/live-queries.md) and mirror it into traits:

* :class:`LiveQueryWidget` — ``value`` (display JSON of ``live.value``), ``status``
  (``live.status``), ``error`` (structured, while the last good ``value`` stays), ``version``
  (``live.version``; an update older than the one shown is dropped), ``updated_at`` (when the
  value last changed), ``html`` (the ``render=`` output, re-rendered on each new value; a failing
  render sets ``error`` and keeps the last HTML).
* :class:`PaginatedWidget` — ``rows`` (the concatenated pages), ``pagination_status``
  (``pq.status``: LoadingFirstPage | CanLoadMore | LoadingMore | Exhausted), ``page_size``;
  request ``load_more`` (``num_items`` optional) answers ``True`` if a page was requested,
  ``False`` when the query cannot load more now.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import traitlets

from convex_lab.jupyter._base import ConvexWidget, RequestHandler, now_ms
from convex_lab.jupyter._protocol import encode, encode_error, field
from convex_lab.jupyter._render import render_html

Unsubscribe = Callable[[], None]


class LiveQueryLike(Protocol):
    """What the widget needs of a ``convex_lab.subscriptions.LiveQuery``."""

    @property
    def value(self) -> Any: ...
    @property
    def error(self) -> BaseException | None: ...
    @property
    def status(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def path(self) -> str: ...
    @property
    def args(self) -> Any: ...
    def on_update(self, callback: Callable[[Any], None]) -> Unsubscribe: ...


class PaginatedLike(Protocol):
    """What the widget needs of a ``convex_lab.subscriptions.PaginatedLiveQuery``."""

    @property
    def results(self) -> list[Any]: ...
    @property
    def status(self) -> str: ...
    @property
    def error(self) -> BaseException | None: ...
    @property
    def version(self) -> int: ...
    def on_update(self, callback: Callable[[Any], None]) -> Unsubscribe: ...
    def load_more(self, num_items: int) -> Any: ...


class LiveQueryWidget(ConvexWidget):
    """A live query's value as a table, a value or a JSON tree; or ``render=``'s HTML."""

    _view = traitlets.Unicode("live_query").tag(sync=True)
    value = traitlets.Any(None).tag(sync=True)
    path = traitlets.Unicode("").tag(sync=True)
    args = traitlets.Any(None).tag(sync=True)
    html = traitlets.Unicode("").tag(sync=True)
    rendered = traitlets.Bool(False).tag(sync=True)
    has_value = traitlets.Bool(False).tag(sync=True)

    def __init__(self, live: LiveQueryLike,
                 render: Callable[[Any], Any] | None = None) -> None:
        super().__init__(path=str(live.path), args=encode(live.args),
                         rendered=render is not None)
        self.live = live
        self._render = render
        self._shown_version = -1
        self._shown_value: Any = None
        self._has_value = False
        self.sync_from(live)
        self._on_close(live.on_update(self.sync_from))

    def sync_from(self, live: Any = None) -> None:
        """Mirror the query's current state into the traits (the ``on_update`` callback)."""
        live = self.live
        with self._lock:
            version = int(live.version)
            if version < self._shown_version:
                return  # an older update delivered late: the newer state is already shown
            self._shown_version = version
            status = str(live.status)
            state: dict[str, Any] = {"status": status}
            error = live.error
            state["error"] = None if error is None else dict(encode_error(error))
            if status == "ready" or self._has_value or live.value is not None:
                value = encode(live.value)
                if not self._has_value or value != self._shown_value:
                    self._has_value = True
                    self._shown_value = value
                    state["value"] = value
                    state["has_value"] = True
                    state["updated_at"] = now_ms()
                    if self._render is not None:
                        state.update(self._rendered(live.value))
            self._set_state(version=version, **state)

    def _rendered(self, value: Any) -> dict[str, Any]:
        assert self._render is not None
        try:
            return {"html": render_html(self._render(value))}
        except Exception as e:  # noqa: BLE001 (shown in the widget; the last good HTML stays)
            return {"status": "error", "error": {
                **encode_error(e), "message": f"render= failed: {e}"}}


class PaginatedWidget(ConvexWidget):
    """A paginated live query as a growing table with a "Load more" button."""

    _view = traitlets.Unicode("paginated").tag(sync=True)
    rows: traitlets.List[Any] = traitlets.List().tag(sync=True)
    pagination_status = traitlets.Unicode("LoadingFirstPage").tag(sync=True)
    page_size = traitlets.Int(10).tag(sync=True)
    path = traitlets.Unicode("").tag(sync=True)

    def __init__(self, pq: PaginatedLike, page_size: int = 10) -> None:
        super().__init__(page_size=page_size, path=str(getattr(pq, "path", "")))
        self.pq = pq
        self._shown_version = -1
        self.sync_from()
        self._on_close(pq.on_update(self.sync_from))

    def sync_from(self, _pq: Any = None) -> None:
        """Mirror the paginated query into the traits (the ``on_update`` callback)."""
        pq = self.pq
        with self._lock:
            version = int(pq.version)
            if version < self._shown_version:
                return
            self._shown_version = version
            error = pq.error
            pstatus = str(pq.status)
            rows = [encode(r) for r in pq.results]
            state: dict[str, Any] = {
                "pagination_status": pstatus,
                "error": None if error is None else dict(encode_error(error)),
                "status": "error" if error is not None else (
                    "loading" if pstatus == "LoadingFirstPage" else "ready"),
            }
            if rows != self.rows:
                state["rows"] = rows
                state["updated_at"] = now_ms()
            self._set_state(version=version, **state)

    def _handlers(self) -> dict[str, RequestHandler]:
        return {"load_more": self._load_more}

    def _load_more(self, request: dict[str, Any]) -> bool:
        n = field(request, "num_items", int, self.page_size)
        if n < 1:
            raise ValueError(f"num_items must be at least 1, not {n}.")
        if self.pq.status != "CanLoadMore":
            return False
        self.pq.load_more(n)
        return True

"""The live search box: a text input over a search query, whose results stay live.

``search_box(backend, query, arg="text", args=None)`` follows ``query`` (a query function taking
the search text as ``arg``, plus the fixed ``args``) as a live query. Typing in the box sends a
``search`` request with the text (debounced by the front-end); the widget then follows the query
for the new text instead (the previous live query is closed). Because full-text reads are
reactive (reference §10), the results change when a commit writes a matching document — a new
message that fits the typed prefix appears without typing again — and only then.

Traits (besides the common ones, ``_base``): ``text`` (the text the results are for), ``path``,
``arg``, ``placeholder``, ``value`` (display JSON of the results), ``has_value``. The text comes
from the request, never from a trait the browser wrote (``_base``: inputs are not trusted).
:meth:`SearchBoxWidget.search` does what typing does, from Python.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import traitlets

from convex_lab.jupyter._base import ConvexWidget, RequestHandler, now_ms
from convex_lab.jupyter._fallback import Fallback, show_value
from convex_lab.jupyter._protocol import encode, encode_error, field

if TYPE_CHECKING:
    from convex_lab.backend import Backend
    from convex_lab.functions import FunctionLike

MAX_TEXT = 1024  # characters: more than any search uses (only the first 16 terms count)


class SearchBoxWidget(ConvexWidget):
    """A search input and the live results of ``query`` for what it holds (module docstring)."""

    _view = traitlets.Unicode("search_box").tag(sync=True)
    text = traitlets.Unicode("").tag(sync=True)
    path = traitlets.Unicode("").tag(sync=True)
    arg = traitlets.Unicode("text").tag(sync=True)
    placeholder = traitlets.Unicode("Search…").tag(sync=True)
    value = traitlets.Any(None).tag(sync=True)
    has_value = traitlets.Bool(False).tag(sync=True)

    def __init__(self, backend: Backend, query: FunctionLike, *, arg: str = "text",
                 args: Mapping[str, Any] | None = None, text: str = "",
                 placeholder: str = "Search…") -> None:
        fn = backend.resolve(query, "query")
        super().__init__(path=fn.path, arg=arg, placeholder=placeholder)
        self._backend = backend
        self._query = fn
        self._args = dict(args or {})
        self._live: Any = None
        self._unsubscribe: Any = None
        self._on_close(self._stop)
        self.search(text)

    def _handlers(self) -> dict[str, RequestHandler]:
        return {"search": self._search_request}

    def _search_request(self, request: dict[str, Any]) -> str:
        text = field(request, "text", str, "")
        self.search(text)
        return self.text

    def search(self, text: str) -> None:
        """Show the live results for ``text`` (what typing it in the box does)."""
        given: object = text
        if not isinstance(given, str):
            raise TypeError(f"search() takes the text to search for, a string; got {text!r}.")
        text = text[:MAX_TEXT]
        with self._lock:
            self._stop()
            self._set_state(text=text, status="loading")
            live = self._backend.subscribe(self._query, {**self._args, self.arg: text})
            self._live = live
            self._unsubscribe = live.on_update(self._sync)
            self._sync(live)

    def _stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._live is not None:
            self._live.close()
            self._live = None

    def _sync(self, _live: Any = None) -> None:
        """Mirror the current live query into the traits (its ``on_update`` callback)."""
        with self._lock:
            live = self._live
            if live is None or (_live is not None and _live is not live):
                return  # an update of a query this box no longer follows
            state: dict[str, Any] = {"status": str(live.status)}
            error = live.error
            state["error"] = None if error is None else dict(encode_error(error))
            if live.status == "ready":
                value = encode(live.value)
                if not self.has_value or value != self.value:
                    state.update(value=value, has_value=True, updated_at=now_ms())
            self._set_state(**state)

    def _fallback(self) -> Fallback:
        error: Any = self.error
        fb = Fallback("Search", f"{self.path}({self.arg}={self.text!r})",
                      error=str(error.get("message")) if error else None)
        if self.has_value:
            show_value(fb, self.value)
        else:
            fb.text = "(no results yet)"
        return fb


def search_box(backend: Backend, query: FunctionLike, *, arg: str = "text",
               args: Mapping[str, Any] | None = None, text: str = "",
               placeholder: str = "Search…") -> SearchBoxWidget:
    """A typeahead box over ``query`` (see the module docstring)."""
    return SearchBoxWidget(backend, query, arg=arg, args=args, text=text,
                           placeholder=placeholder)

"""The base of every convex_lab widget: the shared front-end bundle, common state, requests.

Contract
--------
* Every widget is a :class:`ConvexWidget`, an ``anywidget.AnyWidget`` whose ``_esm``/``_css`` are
  the one bundle built from ``extension/`` into ``convex_lab/static/`` (``widget.js``,
  ``widget.css``); the front-end picks the view from the ``_view`` trait. A missing bundle raises
  :class:`BundleMissingError` with the command that builds it, when a widget is made (never at
  import).
* State is in synced traits, so a re-rendered or reloaded view restores without the kernel:
  ``status`` ("loading" | "ready" | "error" | "closed"), ``error`` (a structured error or None),
  ``version`` (+1 on each state change), ``updated_at`` (ms since the epoch of the last new
  value), ``protocol_version``.
* Requests arrive as custom messages (``_protocol``); each is answered by exactly one response
  with its id. A request runs only the handler its view registered in :meth:`_handlers`; a
  failing handler becomes an ``ok: false`` response with the structured error (and is not
  raised: the front-end shows it). The browser never sends code: handlers take names and values.
* Trait values written by the front-end are never trusted: handlers read their inputs from the
  request and their permissions from private attributes set in Python.
* ``close()`` runs the widget's cleanups (unsubscribing from live queries and backend hooks)
  before closing the comm; it is idempotent.
* Displayed, a widget's output also carries ``text/plain`` and ``text/html`` fallbacks (what
  GitHub, nbviewer and nbconvert show): its title, what it follows, when it was last updated and
  its first rows, kept current after each cell (``_display``, ``_fallback``). A subclass whose
  state the describers there do not know overrides :meth:`ConvexWidget._fallback`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from convex_lab.errors import BundleMissingError, ProtocolError
from convex_lab.jupyter._display import FallbackDisplay
from convex_lab.jupyter._protocol import (
    PROTOCOL_VERSION,
    Response,
    encode_error,
    failed,
    ok,
)

STATIC = Path(__file__).resolve().parent.parent / "static"
"""Where the build of ``extension/`` puts ``widget.js`` and ``widget.css``."""

BUILD_COMMAND = "npm --prefix extension ci && npm --prefix extension run build"

RequestHandler = Callable[[dict[str, Any]], Any]

_bundle_cache: dict[Path, tuple[float, str]] = {}


def _read(path: Path) -> str:
    mtime = path.stat().st_mtime
    cached = _bundle_cache.get(path)
    if cached is not None and cached[0] == mtime:
        return cached[1]
    text = path.read_text(encoding="utf-8")
    _bundle_cache[path] = (mtime, text)
    return text


def load_bundle(static: Path | None = None) -> tuple[str, str]:
    """``(esm, css)`` of the built front-end; re-read when the files change (``npm run dev``).

    Raises :class:`BundleMissingError` naming the build command when ``widget.js`` is missing.
    """
    static = STATIC if static is None else static
    js, css = static / "widget.js", static / "widget.css"
    if not js.is_file():
        raise BundleMissingError(
            f"widget bundle missing: run npm --prefix extension run build (expected {js}). "
            f"In a convex_lab checkout: `{BUILD_COMMAND}`, or reinstall with `pip install -e .` "
            "(it builds the bundle when npm is present), or run ./scripts/test / ./scripts/lab, "
            "which build it when needed."
        )
    return _read(js), (_read(css) if css.is_file() else "")


def now_ms() -> float:
    return time.time() * 1000.0


class ConvexWidget(FallbackDisplay, anywidget.AnyWidget):
    """Base of the convex_lab widgets (module docstring). Subclasses set ``_view``; the text
    fallbacks come from ``_fallback()`` (by ``_view``: ``convex_lab.jupyter._fallback``)."""

    _view = traitlets.Unicode("").tag(sync=True)
    protocol_version = traitlets.Int(PROTOCOL_VERSION).tag(sync=True)
    status = traitlets.Unicode("loading").tag(sync=True)
    error = traitlets.Dict(default_value=None, allow_none=True).tag(sync=True)
    version = traitlets.Int(0).tag(sync=True)
    updated_at = traitlets.Float(default_value=None, allow_none=True).tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        esm, css = load_bundle()
        # anywidget turns these attributes into the synced `_esm`/`_css` traits.
        self._esm = esm
        self._css = css
        super().__init__(**kwargs)
        self._lock = threading.RLock()
        self._cleanups: list[Callable[[], None]] = []
        self._closed = False
        self.on_msg(self._on_custom_msg)

    # Requests --------------------------------------------------------------------------------
    def _handlers(self) -> dict[str, RequestHandler]:
        """Request type → handler (taking the request dict, returning a JSON-able result)."""
        return {}

    def _on_custom_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        self.handle_request(content)

    def handle_request(self, content: Any) -> Response | None:
        """Answer one front-end request (also what tests call); returns the response sent.

        A message without a string ``id`` cannot be answered and is ignored (``None``).
        """
        if not isinstance(content, dict) or not isinstance(content.get("id"), str):
            return None
        request_id: str = content["id"]
        kind = content.get("type")
        handler = self._handlers().get(kind) if isinstance(kind, str) else None
        response: Response
        if handler is None:
            known = ", ".join(sorted(self._handlers())) or "none"
            response = failed(request_id, ProtocolError(
                f"Unknown request type {kind!r} for the {self._view} widget (it takes: {known})."))
        else:
            try:
                response = ok(request_id, handler(content))
            except Exception as e:  # noqa: BLE001 (becomes a structured error the widget shows)
                response = failed(request_id, e)
        self.send(dict(response))
        return response

    # State helpers ---------------------------------------------------------------------------
    def _set_state(self, *, version: int | None = None, **traits: Any) -> None:
        """Set several traits in one sync message; ``version`` (default: +1) with them."""
        with self._lock, self.hold_sync():
            for name, value in traits.items():
                setattr(self, name, value)
            self.version = self.version + 1 if version is None else version

    def _set_error(self, error: BaseException | None) -> None:
        self._set_state(status="error" if error is not None else "ready",
                        error=None if error is None else dict(encode_error(error)))

    def _on_close(self, cleanup: Callable[[], Any]) -> None:
        """Run ``cleanup`` when the widget closes (unsubscribe functions, listener removers)."""
        self._cleanups.append(cleanup)

    def close(self) -> None:
        """Unsubscribe everything, then close the comm (idempotent)."""
        if not getattr(self, "_closed", True):
            self._closed = True
            cleanups, self._cleanups = self._cleanups, []
            for cleanup in reversed(cleanups):
                cleanup()
        super().close()

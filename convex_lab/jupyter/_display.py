"""Displaying a widget with its text fallbacks, and keeping the saved output current.

Contract
--------
* A :class:`FallbackDisplay` (every convex_lab widget, and the dashboard) displays as ONE
  ``display_data``: its widget class's own bundle (the widget-view mime type, anywidget's
  metadata) with ``text/plain`` replaced by and ``text/html`` added from its fallback
  (``convex_lab.jupyter._fallback``). The output has a display id, the same for every display of
  that widget.
* Kept current (:func:`refresh_displays`, run after each cell): each displayed widget is
  remembered (weakly) with the data last sent for it; one whose data changed is re-sent with
  ``update_display`` to its display id, so the outputs that nbclient or JupyterLab save hold the
  state the last cell left. A change between cells (a widget's button, a real-clock job) is sent
  after the next cell. Closed or collected widgets are forgotten.
* Re-sending makes JupyterLab render that output again (it builds a new view of the same model),
  so an output is re-sent only when its text changed, at most once per cell — never on each live
  update — and never where updates are not understood (a terminal IPython prints them).
"""

from __future__ import annotations

import uuid
import weakref
from typing import Any

from convex_lab.jupyter._fallback import Fallback, fallback_for


class _Shown:
    __slots__ = ("data", "ref")

    def __init__(self, obj: Any, data: dict[str, Any]) -> None:
        self.ref = weakref.ref(obj)
        self.data = data


_shown: dict[str, _Shown] = {}
"""display id → the widget shown there and the data last sent."""


def display_id_of(obj: Any) -> str:
    """The display id every output of ``obj`` shares (made on first use)."""
    ident: str | None = getattr(obj, "_cl_display_id", None)
    if ident is None:
        ident = f"convex-lab-{uuid.uuid4().hex}"
        obj._cl_display_id = ident
    return ident


def show(obj: Any) -> None:
    """Display ``obj`` (a :class:`FallbackDisplay`) under its display id and follow it."""
    from IPython.display import display  # noqa: PLC0415 (only when displaying)

    data, metadata = obj._display_bundle()
    ident = display_id_of(obj)
    display(data, raw=True, metadata=metadata, display_id=ident)
    _shown[ident] = _Shown(obj, data)
    _ensure_hook()


def refresh_displays(*_: Any) -> int:
    """Re-send each displayed widget whose display data changed; returns how many were sent.

    The ``post_run_cell`` hook. Pending live-query updates are delivered first, so the text is
    the state the cell left.
    """
    if not _shown or not _updates_understood():
        return 0
    from IPython.display import update_display  # noqa: PLC0415

    from convex_lab.subscriptions import flush_all  # noqa: PLC0415

    flush_all()
    sent = 0
    for ident, shown in list(_shown.items()):
        obj = shown.ref()
        if obj is None or getattr(obj, "_closed", False) or getattr(obj, "comm", True) is None:
            del _shown[ident]
            continue
        data, metadata = obj._display_bundle()
        if data != shown.data:
            shown.data = data
            update_display(data, raw=True, metadata=metadata, display_id=ident)
            sent += 1
    return sent


def _updates_understood() -> bool:
    """Whether the running shell's display publisher handles ``update_display`` (a kernel's
    does, and so does ``capture_output``'s); the base one of a terminal just prints."""
    from IPython import get_ipython  # noqa: PLC0415
    from IPython.core.displaypub import DisplayPublisher  # noqa: PLC0415

    shell = get_ipython()
    return shell is not None and type(shell.display_pub) is not DisplayPublisher


def _ensure_hook() -> None:
    """Run :func:`refresh_displays` after each cell of the running IPython (registered once)."""
    from IPython import get_ipython  # noqa: PLC0415

    shell = get_ipython()
    if shell is not None and refresh_displays not in shell.events.callbacks["post_run_cell"]:
        shell.events.register("post_run_cell", refresh_displays)


class FallbackDisplay:
    """Mixin, listed before the widget class: display with the text fallbacks, kept current.

    Subclasses override :meth:`_fallback` (what the text says) and :meth:`_fallback_view`.
    """

    def _fallback(self) -> Fallback:
        return fallback_for(self)

    def _fallback_view(self) -> str:
        """The ``data-convex-lab-view`` of the HTML fallback (the widget's ``_view``)."""
        return str(getattr(self, "_view", "") or "widget")

    def _display_bundle(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(data, metadata)``: the widget class's bundle with the fallbacks (module docstring).
        A closed widget (no comm) has no view left, only the fallbacks."""
        base_repr = getattr(super(), "_repr_mimebundle_", None)
        base = base_repr() if base_repr is not None and getattr(self, "comm", None) else None
        data, metadata = base if isinstance(base, tuple) else (base or {}, {})
        fallback = self._fallback()
        data = {**data, "text/plain": fallback.plain(),
                "text/html": fallback.to_html(self._fallback_view())}
        return data, dict(metadata or {})

    def _repr_mimebundle_(self, **_kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        return self._display_bundle()

    def _ipython_display_(self, **_kwargs: Any) -> None:
        show(self)

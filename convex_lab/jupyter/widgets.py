"""convex_lab's notebook widgets (docs/api.md): factories over one shared anywidget front-end.

::

    live_widget(live, render=None)        a LiveQuery: table / value / JSON tree, or render='s HTML
    paginated_widget(pq)                  a PaginatedLiveQuery with "Load more"
    data_browser(backend, table=None)     page, order, filter, edit a field, delete
    function_runner(backend, ref=None, *, allow_internal=True)   a form from the args validator
    logs_dashboard(backend)               recent executions, live
    jobs_widget(backend)                  scheduled functions (_scheduled_functions), live; cancel
    crons_widget(backend)                 crons: schedule, next run, last run, live
    dashboard(backend)                    logs, scheduled functions and crons, one below the other

Every widget keeps its state in synced traits and answers front-end requests with structured
responses (``convex_lab.jupyter._protocol``); ``widget.close()`` unsubscribes it from its query
or backend. ``render=`` is a function of the query's value returning a DataFrame, HTML (a string
or an object with ``_repr_html_``) or a matplotlib figure; it runs again on every new value, so
a chart drawn from a live query is a live chart.

Displayed, each widget's output also carries a ``text/plain`` and a ``text/html`` fallback (what
it follows, when it was updated, its first rows), kept current after each cell, for GitHub,
nbviewer and nbconvert (``convex_lab.jupyter._display``).

This module imports anywidget, so ``convex_lab`` itself never imports it: the core reaches it
lazily (``LiveQuery._ipython_display_`` calls :func:`display_live`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from convex_lab.errors import BundleMissingError
from convex_lab.jupyter._base import STATIC, ConvexWidget, load_bundle
from convex_lab.jupyter._browser import DataBrowserWidget
from convex_lab.jupyter._display import FallbackDisplay
from convex_lab.jupyter._fallback import Fallback
from convex_lab.jupyter._live import (
    LiveQueryLike,
    LiveQueryWidget,
    PaginatedLike,
    PaginatedWidget,
)
from convex_lab.jupyter._protocol import PROTOCOL_VERSION
from convex_lab.jupyter._runner import FunctionRunnerWidget, LogsWidget
from convex_lab.jupyter._scheduler_views import CronsWidget, JobsWidget, SchedulerDashboard
from convex_lab.jupyter._search_box import SearchBoxWidget, search_box

if TYPE_CHECKING:
    from convex_lab.backend import Backend
    from convex_lab.functions import FunctionLike


def live_widget(live: LiveQueryLike, render: Callable[[Any], Any] | None = None) -> LiveQueryWidget:
    """A widget following ``live`` (a ``LiveQuery``); ``render`` as in the module docstring
    (default: the ``render=`` the live query was subscribed with, if any).

    >>> w = live_widget(client.subscribe(list_messages, {"channel": c}))   # doctest: +SKIP
    >>> live_widget(live, render=lambda rows: pd.DataFrame(rows).plot().figure)  # doctest: +SKIP
    """
    if render is None:
        render = getattr(live, "render", None)
    return LiveQueryWidget(live, render)


def paginated_widget(pq: PaginatedLike, page_size: int = 10) -> PaginatedWidget:
    """A widget following ``pq`` (a ``PaginatedLiveQuery``); "Load more" asks ``page_size``."""
    return PaginatedWidget(pq, page_size)


def data_browser(backend: Backend, table: str | None = None, *,
                 page_size: int = 25) -> DataBrowserWidget:
    """Browse ``backend``'s tables (starting at ``table``, else the first one)."""
    return DataBrowserWidget(backend, table, page_size=page_size)


def function_runner(backend: Backend, ref: FunctionLike | None = None, *,
                    allow_internal: bool = True) -> FunctionRunnerWidget:
    """Run ``backend``'s functions from a generated form (``ref`` preselects one).

    ``allow_internal``: whether internal functions are listed and runnable. The notebook's owner
    is the deployment's admin, so it defaults to True; pass False for a widget that should
    reach only what a client could.
    """
    return FunctionRunnerWidget(backend, ref, allow_internal=allow_internal)


def logs_dashboard(backend: Backend, *, limit: int = 200) -> LogsWidget:
    """The last ``limit`` executions of ``backend``, updated as functions run."""
    return LogsWidget(backend, limit=limit)


def jobs_widget(backend: Backend, *, limit: int = 200) -> JobsWidget:
    """``backend``'s scheduled functions (newest ``limit``), updated after each commit; pending
    jobs have a Cancel button."""
    return JobsWidget(backend, limit=limit)


def crons_widget(backend: Backend) -> CronsWidget:
    """``backend``'s crons: schedule, function, next run, last run; updated after each commit."""
    return CronsWidget(backend)


class _Dashboard(FallbackDisplay, SchedulerDashboard):
    """The dashboard, displayed with the text fallbacks of its three parts, one after another."""

    def _fallback(self) -> Fallback:
        return Fallback("Dashboard", details=["logs, scheduled functions and crons"],
                        sections=[part._fallback() for part in self.parts])

    def _fallback_view(self) -> str:
        return "dashboard"


def dashboard(backend: Backend, *, limit: int = 200) -> SchedulerDashboard:
    """The logs, scheduled functions and crons of ``backend``, one below the other (docs/api.md)."""
    return _Dashboard([logs_dashboard(backend, limit=limit),
                       jobs_widget(backend, limit=limit), crons_widget(backend)])


def display_live(live: LiveQueryLike) -> LiveQueryWidget:
    """Display ``live`` as a live widget in the current output (``_ipython_display_``)."""
    from IPython.display import display  # noqa: PLC0415 (only when displaying)

    widget = live_widget(live)
    display(widget)
    return widget


__all__ = [
    "PROTOCOL_VERSION",
    "STATIC",
    "BundleMissingError",
    "ConvexWidget",
    "CronsWidget",
    "DataBrowserWidget",
    "FunctionRunnerWidget",
    "JobsWidget",
    "LiveQueryWidget",
    "LogsWidget",
    "PaginatedWidget",
    "SchedulerDashboard",
    "SearchBoxWidget",
    "crons_widget",
    "dashboard",
    "data_browser",
    "display_live",
    "function_runner",
    "jobs_widget",
    "live_widget",
    "load_bundle",
    "logs_dashboard",
    "paginated_widget",
    "search_box",
]

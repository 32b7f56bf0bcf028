"""convex_lab: the Convex backend model in a Python process and a Jupyter kernel.

The public surface is this module's ``__all__`` (sorted), exactly the names of docs/api.md
(locked both ways by ``tests/test_package.py``).
Importing it is cheap and Jupyter-free: the store (and DuckDB) load when a ``Backend`` is made.
"""

from __future__ import annotations

import os as _os
import sys as _sys
from typing import Any as _Any

# DuckDB's bundled jemalloc keeps freed pages for 10 s by default, so memory released by a
# checkpoint (which compresses tables) would stay in RSS. Return it at once instead. jemalloc reads
# this when DuckDB loads, so it is set here, before any Backend imports duckdb; a user's own
# setting wins, and it has no effect if duckdb was imported first. See store/persist.py.
_os.environ.setdefault("DUCKDB_JE_MALLOC_CONF", "dirty_decay_ms:0,muzzy_decay_ms:0")

from convex_lab import backend as _backend
from convex_lab._runtime import function_time as _function_time
from convex_lab.auth.test_issuer import TestIssuer
from convex_lab.backend import Backend, default_backend, set_default_backend
from convex_lab.client import Client
from convex_lab.components import define_component
from convex_lab.errors import ConvexError
from convex_lab.functions import (
    App,
    action,
    api,
    default_app,
    http_action,
    internal,
    internal_action,
    internal_mutation,
    internal_query,
    mutation,
    query,
)
from convex_lab.http import Request, Response
from convex_lab.http_router import HttpRouter
from convex_lab.ids import Id
from convex_lab.scheduler.crons import cron_jobs
from convex_lab.schema import define_schema, define_table
from convex_lab.subscriptions import LiveQuery, watch
from convex_lab.validators import pagination_opts_validator, v
from convex_lab.values import UNDEFINED, Int64

__all__ = [
    "App",
    "Backend",
    "Client",
    "ConvexError",
    "HttpRouter",
    "Id",
    "Int64",
    "LiveQuery",
    "Request",
    "Response",
    "TestIssuer",
    "UNDEFINED",
    "action",
    "api",
    "cron_jobs",
    "default_app",
    "default_backend",
    "define_component",
    "define_schema",
    "define_table",
    "http_action",
    "internal",
    "internal_action",
    "internal_mutation",
    "internal_query",
    "load_ipython_extension",
    "mutation",
    "now",
    "pagination_opts_validator",
    "query",
    "set_default_backend",
    "unload_ipython_extension",
    "upload_widget",
    "v",
    "watch",
    "watch_files",
]


def now() -> float:
    """Milliseconds since the Unix epoch on the backend's clock, real or virtual (docs/api.md).

    Inside a query or mutation: the function's time, frozen when it started (Convex's
    ``Date.now()`` rule; a query or mutation it calls shares it). Inside an action: its
    backend's clock now. Outside functions: the default backend's clock now.
    """
    frozen = _function_time()
    return frozen if frozen is not None else default_backend().clock.now()


def upload_widget(mutation: _Any, *, args: _Any = None, accept: str | None = None,
                  multiple: bool = True, backend: Backend | None = None) -> _Any:
    """A file picker that uploads each chosen file and passes its ``storageId`` to ``mutation``
    (docs/api.md; ``convex_lab/jupyter/_upload.py``). Needs the notebook widgets."""
    from convex_lab.jupyter._upload import upload_widget as make  # noqa: PLC0415 (Jupyter)

    return make(mutation, args=args, accept=accept, multiple=multiple, backend=backend)


def watch_files(query_ref: _Any, args: _Any = None, /, **kwargs: _Any) -> _Any:
    """``cl.watch`` whose table shows file URLs (``ctx.storage.get_url``) as previews: images
    as thumbnails, other files as links (docs/api.md). Needs the notebook widgets."""
    from convex_lab.jupyter._upload import watch_files as make  # noqa: PLC0415 (Jupyter)

    return make(query_ref, args, **kwargs)


def _start_server(backend: Backend, port: int) -> _Any:
    """``backend.serve(port)``: the loopback server (servers layer), loaded on first use."""
    from convex_lab.server import start  # noqa: PLC0415 (starlette and uvicorn load on use)

    return start(backend, port)


_backend.set_server_starter(_start_server)


def load_ipython_extension(ipython: _Any) -> None:
    """``%load_ext convex_lab``: register the magics (see :mod:`convex_lab.jupyter`)."""
    from convex_lab.jupyter import load_ipython_extension as load  # noqa: PLC0415 (IPython only here)

    load(ipython)


def unload_ipython_extension(ipython: _Any) -> None:
    """``%unload_ext convex_lab`` (and ``%reload_ext``): remove what loading registered."""
    from convex_lab.jupyter import unload_ipython_extension as unload  # noqa: PLC0415 (same)

    unload(ipython)


def _register_display() -> None:
    """Imported inside a running IPython (a notebook), show live queries as live widgets.

    Only checks ``sys.modules``: a plain Python process never imports anything for this.
    """
    ipython_module = _sys.modules.get("IPython")
    shell = getattr(ipython_module, "get_ipython", lambda: None)() if ipython_module else None
    if shell is not None and hasattr(shell, "display_formatter"):
        from convex_lab.jupyter import register_display  # noqa: PLC0415 (Jupyter only here)

        register_display(shell)


_register_display()

"""convex_lab in Jupyter: the IPython extension (magics) and, beside it, the widgets.

This package is the only part of convex_lab that imports IPython, ipywidgets, anywidget or
traitlets (docs/architecture.md); the core never imports it at module level.

``%load_ext convex_lab`` calls :func:`load_ipython_extension`, which

* registers the magics of :mod:`convex_lab.jupyter.magics` on the shell;
* binds the names a cell needs (``cl``, ``v``, ``define_table``, ``query``, ...; see
  :mod:`convex_lab.jupyter._namespace`) where the user has not bound them, and prints one line
  saying which;
* shows errors raised through convex_lab short: the message once and the user's own frames
  (:mod:`convex_lab.jupyter._tracebacks`).

:func:`unload_ipython_extension` removes exactly the magics and the traceback handler it
registered (the names stay: see ``_namespace``), so ``%reload_ext convex_lab`` picks up new
code. Loading twice is harmless.
"""

from __future__ import annotations

from typing import Any

# Per shell: the Magics instances this extension registered (to unregister exactly those).
_registered: dict[int, list[Any]] = {}


def register_display(ipython: Any) -> None:
    """Show live queries as live widgets in ``ipython``'s outputs.

    The core's ``LiveQuery`` knows nothing of Jupyter: this registers, with IPython's display
    formatter, how to show one (by type name, so nothing is imported until one is displayed).
    ``import convex_lab`` in a running IPython calls it, and so does ``%load_ext convex_lab``.
    """
    formatter = ipython.display_formatter.ipython_display_formatter
    formatter.for_type_by_name("convex_lab.subscriptions", "LiveQuery", _display_live)


def _display_live(live: Any) -> None:
    from convex_lab.jupyter.widgets import display_live  # noqa: PLC0415 (anywidget on use)

    display_live(live)


def load_ipython_extension(ipython: Any) -> None:
    """Register the ``%convex``, ``%%schema``, ``%%query``/``%%mutation``/``%%action`` and
    ``%%sql`` magics on ``ipython``, the display of live queries, the short tracebacks, and bind
    the notebook's names (module docstring); print one line saying what a cell can use."""
    from convex_lab.jupyter import _namespace, _tracebacks  # noqa: PLC0415 (IPython only here)
    from convex_lab.jupyter.magics import MAGICS  # noqa: PLC0415

    unload_ipython_extension(ipython)
    register_display(ipython)
    instances = [cls(shell=ipython) for cls in MAGICS]
    ipython.register_magics(*instances)
    _registered[id(ipython)] = instances
    ipython.events.register("post_run_cell", _flush_live_queries)
    _tracebacks.install(ipython)
    print(_namespace.summary(*_namespace.inject(ipython.user_ns)))


def _flush_live_queries(*_: Any) -> None:
    """After each cell: deliver live-query updates its commits caused (they would otherwise wait
    for the event loop), so widget state is current before the cell's output is final."""
    from convex_lab.subscriptions import flush_all  # noqa: PLC0415

    flush_all()


def unload_ipython_extension(ipython: Any) -> None:
    """Remove what :func:`load_ipython_extension` registered on ``ipython``: the magics and the
    short tracebacks (the names it bound stay)."""
    from convex_lab.jupyter import _tracebacks  # noqa: PLC0415

    _tracebacks.uninstall(ipython)
    instances = _registered.pop(id(ipython), [])
    if _flush_live_queries in ipython.events.callbacks.get("post_run_cell", []):
        ipython.events.unregister("post_run_cell", _flush_live_queries)
    manager = ipython.magics_manager
    for instance in instances:
        for kind in ("line", "cell"):
            table = manager.magics[kind]
            for name in instance.magics[kind]:
                # Only if it is still ours: another extension may have taken the name since.
                if getattr(table.get(name), "__self__", None) is instance:
                    del table[name]
        manager.registry.pop(type(instance).__name__, None)


__all__ = ["load_ipython_extension", "register_display", "unload_ipython_extension"]

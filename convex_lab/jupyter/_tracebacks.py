"""Short tracebacks for errors raised through convex_lab in a notebook cell.

``send(channel=1, body="x")`` in a cell fails deep inside the executor; IPython would print every
frame between the cell and the validator (9 to 18 of convex_lab's own) and the exception line as
``ArgumentValidationError: ArgumentValidationError: Value does not match validator...``. With the
extension loaded, such errors show what a person can act on: the message once, and only their
own frames — the cell's, and a handler's when the handler raised.

Contract
--------
* :func:`install` sets an IPython custom exception handler (``shell.set_custom_exc``) for
  ``Exception``; :func:`uninstall` puts back whatever was there before (another handler keeps
  its own exception classes: they are passed on to it first).
* An exception is shown trimmed when its traceback passes through convex_lab and either it is
  one of convex_lab's errors (``ConvexLabError``) or a ``ConvexError``, or it was raised outside
  convex_lab (a handler's ``ValueError``: its frame is where the bug is), or it is the
  ``AttributeError`` of a convex_lab object's ``__getattr__`` called from the user's own line
  (``ctx.db.insert`` in a query, a misspelt method). Trimmed means: every
  frame of the convex_lab package (and code convex_lab generated) is left out, in chained
  exceptions too; IPython formats the rest as usual (same colors, ``%xmode``, ``%debug``).
* Anything else is shown exactly as IPython would: an error raised inside convex_lab that is not
  one of its own errors is a bug in convex_lab, and its frames are what a bug report needs;
  ``UsageError`` stays one line; cells that never enter convex_lab are untouched.
* The exception line names the class once: when the message already starts with the class name
  (Convex's ``"ArgumentValidationError: ..."`` texts), the repeat is dropped. A message that
  starts with a different Convex code (``InvalidCursorError: InvalidCursor: ...``) keeps it: the
  class is what to ``except``, the code is Convex's text.
"""

from __future__ import annotations

import contextlib
import re
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError

from convex_lab.errors import ConvexError, ConvexLabError

PACKAGE_DIR = str(Path(__file__).resolve().parent.parent)
"""Frames from files under this directory are convex_lab's own."""

_ANSI = r"(?:\x1b\[[0-9;]*m)*"

# Per shell: (the custom exceptions and handler before ours)
_previous: dict[int, tuple[tuple[type[BaseException], ...], Any]] = {}


def is_library_frame(frame: types.FrameType) -> bool:
    """Whether ``frame`` runs convex_lab's code: a module of the package, or code it generated
    with ``exec`` (a ``<...>`` file name and no ``__name__`` in its globals, unlike a cell)."""
    filename = frame.f_code.co_filename
    if filename.startswith(PACKAGE_DIR) and filename[len(PACKAGE_DIR):][:1] in ("/", "\\"):
        return True
    module = frame.f_globals.get("__name__")
    if isinstance(module, str):
        return module == "convex_lab" or module.startswith("convex_lab.")
    return filename.startswith("<")


def _frames(tb: types.TracebackType | None) -> Iterator[types.TracebackType]:
    while tb is not None:
        yield tb
        tb = tb.tb_next


def should_trim(value: BaseException, tb: types.TracebackType | None) -> bool:
    """The rule of the module docstring."""
    if isinstance(value, (UsageError, SyntaxError)):
        return False
    entries = list(_frames(tb))
    if not any(is_library_frame(t.tb_frame) for t in entries):
        return False
    if isinstance(value, (ConvexLabError, ConvexError)):
        return True
    raised_in = entries[-1].tb_frame
    if not is_library_frame(raised_in):
        return True  # the user's code raised it (through convex_lab, e.g. a handler)
    # ``ctx.db.insert`` in a query, ``ctx.db.quer``: an attribute the user's own line asked a
    # convex_lab object for, refused by its ``__getattr__`` — the user's error, not a bug.
    return (isinstance(value, AttributeError) and raised_in.f_code.co_name == "__getattr__"
            and len(entries) > 1 and not is_library_frame(entries[-2].tb_frame))


def trimmed(tb: types.TracebackType | None) -> types.TracebackType | None:
    """``tb`` without convex_lab's frames (a new chain: the original is left as it was)."""
    kept = [t for t in _frames(tb) if not is_library_frame(t.tb_frame)]
    out: types.TracebackType | None = None
    for t in reversed(kept):
        out = types.TracebackType(out, t.tb_frame, t.tb_lasti, t.tb_lineno)
    return out


@contextlib.contextmanager
def _chain_trimmed(value: BaseException) -> Iterator[None]:
    """While formatting: the chained exceptions' tracebacks trimmed too; restored afterwards."""
    saved: list[tuple[BaseException, types.TracebackType | None]] = []
    seen: set[int] = set()
    todo: list[BaseException | None] = [value.__cause__, value.__context__]
    while todo:
        exc = todo.pop()
        if exc is None or id(exc) in seen:
            continue
        seen.add(id(exc))
        saved.append((exc, exc.__traceback__))
        exc.__traceback__ = trimmed(exc.__traceback__)
        todo += [exc.__cause__, exc.__context__]
    try:
        yield
    finally:
        for exc, tb in saved:
            exc.__traceback__ = tb


def once(stb: list[str], etype: type[BaseException], value: BaseException) -> list[str]:
    """The structured traceback with ``Name: Name: message`` shown as ``Name: message``."""
    name = etype.__name__
    if not stb or not str(value).startswith(f"{name}:"):
        return stb
    pattern = re.compile(re.escape(name) + _ANSI + ": " + _ANSI + re.escape(name) + ":" + " ?")
    last = stb[-1]

    def keep_first(match: re.Match[str]) -> str:
        return match.group(0)[: match.group(0).rindex(name)]

    fixed = pattern.sub(keep_first, last, count=1)
    return [*stb[:-1], fixed]


def _handler(shell: Any, etype: type[BaseException], value: BaseException,
             tb: types.TracebackType | None, tb_offset: int | None = None) -> list[str] | None:
    """IPython's ``CustomTB``: show ``value`` trimmed, or as IPython would (module docstring)."""
    previous_types, previous_handler = _previous.get(id(shell), ((), None))
    if previous_types and isinstance(value, previous_types) and previous_handler is not None:
        result: list[str] | None = previous_handler(etype, value, tb, tb_offset=tb_offset)
        return result
    if not should_trim(value, tb):
        shell.showtraceback((etype, value, tb), tb_offset=tb_offset, running_compiled_code=True)
        return None
    shell._get_exc_info((etype, value, tb))  # sys.last_* for %debug and %tb, as showtraceback
    with _chain_trimmed(value):
        stb = shell.InteractiveTB.structured_traceback(etype, value, trimmed(tb),
                                                       tb_offset=tb_offset)
    stb = once(stb, etype, value)
    shell._showtraceback(etype, value, stb)
    if shell.call_pdb:
        shell.debugger(force=True)
    return None


def install(shell: Any) -> None:
    """Show errors raised through convex_lab short in ``shell`` (idempotent)."""
    if id(shell) in _previous:
        return
    previous = (tuple(shell.custom_exceptions), getattr(shell, "CustomTB", None))
    _previous[id(shell)] = previous if previous[0] else ((), None)
    shell.set_custom_exc((Exception,), _handler)


def uninstall(shell: Any) -> None:
    """Put back the custom exception handling ``shell`` had before :func:`install`."""
    previous = _previous.pop(id(shell), None)
    if previous is None:
        return
    types_, handler = previous
    if types_ and handler is not None:
        shell.custom_exceptions, shell.CustomTB = types_, handler
    else:
        shell.set_custom_exc((), None)

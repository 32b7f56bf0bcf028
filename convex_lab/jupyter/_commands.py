"""What the ``%convex`` subcommands do, over the public Python API (docs/api.md).

The magics in :mod:`convex_lab.jupyter.magics` parse their line and call these functions; these
know nothing of IPython except :class:`UsageError`, the one error kind a user sees from a magic
(IPython prints it as one line, without a traceback). Every error that is the user's — an unknown
function, table or subcommand, a bad argument, a schema that existing data breaks, a
``ConvexError`` thrown by a handler — becomes one, with a "did you mean" for close misspellings.
"""

from __future__ import annotations

import ast
import contextlib
import difflib
import importlib
import os
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError

import convex_lab as cl
from convex_lab.errors import ConvexError, ConvexLabError
from convex_lab.jupyter._schedule_text import duration_text, scheduler_status, state_counts


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn convex_lab's errors and ``ConvexError`` s into a one-line :class:`UsageError`."""
    try:
        yield
    except ConvexError as e:
        raise UsageError(f"ConvexError: {e}") from None
    except ConvexLabError as e:
        raise UsageError(str(e)) from None


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    """``" Did you mean 'x'?"`` for a close misspelling of one of ``choices``, else ``""``."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


def widget_factory(name: str) -> tuple[Callable[..., Any] | None, str]:
    """``convex_lab.jupyter.widgets.<name>`` or ``(None, why not)``: widgets may be missing."""
    try:
        module = importlib.import_module("convex_lab.jupyter.widgets")
    except (ImportError, OSError) as e:  # not built yet, or anywidget not installed
        return None, f"widgets unavailable ({e})"
    factory = getattr(module, name, None)
    return (factory, "") if callable(factory) else (None, f"no {name} widget in this version")


# ---------------------------------------------------------------------------------------------
# Arguments: key=value with Python literals


def split_words(line: str) -> list[str]:
    """Split at spaces outside quotes and brackets, keeping quotes: ``body="hi there"`` and
    ``tags=['a', 'b']`` stay one word each, so their values read as Python literals."""
    words: list[str] = []
    current: list[str] = []
    quote = ""
    depth = 0
    escaped = False
    for ch in line:
        if quote:
            escaped = ch == "\\" and not escaped
            if ch == quote and not escaped:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(depth - 1, 0)
        elif ch.isspace() and depth == 0:
            if current:
                words.append("".join(current))
                current = []
            continue
        current.append(ch)
    if current:
        words.append("".join(current))
    return words


def parse_call_args(words: Sequence[str]) -> dict[str, Any]:
    """``["n=3", "name=ada", "tags=['a']"]`` → ``{"n": 3, "name": "ada", "tags": ["a"]}``.

    Each value is a Python literal (``ast.literal_eval``), else the string as written (docs/api.md).
    A single ``{...}`` literal is the whole argument object.
    """
    if len(words) == 1 and words[0].lstrip().startswith("{"):
        value = _literal(words[0])
        if isinstance(value, dict):
            return value
    args: dict[str, Any] = {}
    for word in words:
        key, sep, text = word.partition("=")
        if not sep or not key.isidentifier():
            raise UsageError(
                f"Arguments are key=value (e.g. channel=general n=3); got {word!r}.")
        args[key] = _literal(text)
    return args


def unquote(word: str) -> str:
    """A word as written, or the string it quotes (``"my file.duckdb"`` → ``my file.duckdb``)."""
    value = _literal(word)
    return value if isinstance(value, str) else word


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


# ---------------------------------------------------------------------------------------------
# Status


def _when(ms: float) -> str:
    moment = datetime.fromtimestamp(ms / 1000.0, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def table_names(backend: cl.Backend) -> list[str]:
    """User tables of the backend: those holding documents and those its schema lists."""
    names = set(backend.store.user_tables())
    schema = backend.store.schema
    if schema is not None:
        names.update(schema.tables)
    return sorted(names)


def document_count(backend: cl.Backend, table: str) -> int:
    data = backend.store.table(table)
    return len(data.docs) if data is not None else 0


def status(backend: cl.Backend) -> str:
    """The text of ``%convex``: backend, clock, tables, functions, jobs, crons."""
    where = f"file {backend.path}" if backend.path else "in memory"
    lines = [f"Backend: {where}", f"Clock: {backend.clock.kind}, now {_when(backend.clock.now())}"]
    every = table_names(backend)
    tables = [t for t in every if "/" not in t]  # components' tables are listed with them
    if tables:
        lines.append("Tables:")
        lines += [f"  {t}: {_count(document_count(backend, t), 'document')}" for t in tables]
    else:
        lines.append("Tables: none yet (%%schema defines them; an insert creates one)")
    lines += _components_status(backend, every)
    functions = backend.functions()
    if functions:
        lines.append("Functions:")
        width = max(len(p) for p in functions)
        lines += [f"  {p.ljust(width)}  {f.kind:<8}  {f.visibility}"
                  for p, f in sorted(functions.items())]
    else:
        lines.append("Functions: none yet (%%query, %%mutation, %%action define them)")
    lines += scheduler_status(backend)
    return "\n".join(lines)


def _components_status(backend: cl.Backend, tables: list[str]) -> list[str]:
    """Mounted components: name, definition, functions and their tables (``<name>/<table>``)."""
    mounts = backend.app.mounts
    if not mounts:
        return []
    lines = ["Components:"]
    for name, mount in sorted(mounts.items()):
        own = [t for t in tables if t.startswith(name + "/")]
        held = ", ".join(f"{t} ({_count(document_count(backend, t), 'document')})"
                         for t in own) or "no tables yet"
        of = f" ({mount.definition.name})" if mount.definition.name != name else ""
        lines.append(f"  {name}{of}: {_count(len(mount.definition.functions), 'function')}; "
                     f"{held}")
    return lines


def logs_text(backend: cl.Backend, limit: int = 50) -> str:
    """The last ``limit`` executions as text: time, kind, function, duration, error, lines."""
    entries = backend.logs()[-limit:]
    if not entries:
        return "No function executions yet."
    out: list[str] = []
    for e in entries:
        error = f"  ERROR {e['error']}" if e["error"] else ""
        out.append(f"{_when(e['started'])}  {e['kind']:<8}  {e['function']}  "
                   f"{duration_text(e['duration_ms'])}{error}")
        out += [f"    {line}" for line in e["lines"]]
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# Functions and tables by name


def resolve(backend: cl.Backend, name: str, kind: str | None = None) -> Any:
    """The served function called ``name`` (a path); unknown → one line with "did you mean"."""
    with user_errors():
        return backend.resolve(name, kind)


def run(backend: cl.Backend, name: str, words: Sequence[str]) -> Any:
    """``%convex run``: an admin call of whatever kind the function is."""
    fn = resolve(backend, name)
    if fn.kind not in ("query", "mutation", "action"):
        raise UsageError(f"{fn.path} is an HTTP action: it runs through an HTTP route, not "
                         "with %convex run.")
    args = parse_call_args(words)
    with user_errors():
        return backend.run_function(fn, args, kind=fn.kind)


def check_table(backend: cl.Backend, table: str) -> None:
    tables = table_names(backend)
    if table not in tables:
        listing = ", ".join(tables) if tables else "none yet"
        raise UsageError(f"Unknown table {table!r}.{did_you_mean(table, tables)} "
                         f"Tables: {listing}.")


def data_fallback(backend: cl.Backend, table: str, limit: int = 100) -> Any:
    """The first documents of ``table`` as a DataFrame (or a list without pandas)."""
    try:
        importlib.import_module("pandas")
    except ImportError:
        data = backend.store.table(table)
        return list(data.docs.values())[:limit] if data is not None else []
    with user_errors():
        return backend.sql(f'SELECT * FROM "{table}" LIMIT {int(limit)}')


# ---------------------------------------------------------------------------------------------
# Switching and wiping the default backend


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _summary(backend: cl.Backend) -> str:
    tables = table_names(backend)
    docs = sum(document_count(backend, t) for t in tables)
    return f"{_count(docs, 'document')} in {_count(len(tables), 'table')}"


def open_backend(path: str) -> str:
    """``%convex open PATH``: the default backend becomes the DuckDB file at ``path``."""
    target = str(Path(path).expanduser().resolve())
    old = cl.default_backend()
    if old.path == target:
        return f"Already open: {target} ({_summary(old)})."
    # Open the new one first: if it fails (a bad path, data the schema rejects) the old one stays.
    with user_errors():
        try:
            new = cl.Backend(target, app=cl.default_app(), clock=old.clock.kind)
        except OSError as e:
            raise UsageError(f"Cannot open {target}: {e}") from None
    cl.set_default_backend(new)
    old.close()
    return f"Default backend: file {target} ({_summary(new)})."


def reset_backend() -> str:
    """``%convex reset``: wipe the default backend (in memory, or its file) and start empty."""
    old = cl.default_backend()
    summary, path, clock = _summary(old), old.path, old.clock.kind
    old.close()
    if path is None:
        cl.set_default_backend(cl.Backend(app=cl.default_app(), clock=clock))
        return f"Wiped the in-memory backend ({summary}); it is empty now."
    for victim in (path, path + ".wal"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(victim)
    with user_errors():
        cl.set_default_backend(cl.Backend(path, app=cl.default_app(), clock=clock))
    return f"Wiped {path} ({summary}, and its .wal); reopened empty."


def serve(backend: cl.Backend, words: Sequence[str]) -> str:
    """``%convex serve [PORT]``: serve the default backend on loopback; both URLs."""
    if len(words) > 1 or (words and not words[0].isdigit()):
        raise UsageError("Usage: %convex serve  or  %convex serve PORT (the site URL takes "
                         "PORT + 1)")
    with user_errors():
        server = backend.serve(int(words[0]) if words else 0)
    return (f"Serving the default backend on 127.0.0.1:\n"
            f"  deployment URL (CONVEX_URL, file uploads and URLs): {server.url}\n"
            f"  site URL (HTTP actions):                           {server.site_url}\n"
            f"Official clients connect with CONVEX_URL={server.url} (Convex's HTTP API and "
            f"sync WebSocket; the PyPI client from another process)")


# ---------------------------------------------------------------------------------------------
# Clock


_UNITS = {"ms": 1.0, "s": 1000.0, "m": 60_000.0, "min": 60_000.0, "h": 3_600_000.0,
          "d": 86_400_000.0}


def parse_duration(text: str) -> float:
    """``"1h"``, ``"30m"``, ``"10s"``, ``"2d"``, ``"500ms"`` or a number of ms → ms."""
    raw = text.strip().lower()
    for unit in sorted(_UNITS, key=len, reverse=True):
        if raw.endswith(unit):
            number = raw[: -len(unit)]
            break
    else:
        unit, number = "ms", raw
    try:
        return float(number) * _UNITS[unit]
    except ValueError:
        raise UsageError(f"Not a duration: {text!r}. Use e.g. 500ms, 10s, 30m, 1h or 2d.") from None


def clock(backend: cl.Backend, words: Sequence[str]) -> str:
    """``%convex clock`` shows the clock; ``%convex clock advance 1h`` moves a virtual one."""
    if not words:
        return f"{backend.clock.kind} clock: {_when(backend.clock.now())}"
    if words[0] != "advance" or len(words) != 2:
        raise UsageError("Usage: %convex clock  or  %convex clock advance 1h"
                         f"{did_you_mean(words[0], ['advance'])}")
    if backend.clock.kind != "virtual":
        raise UsageError("The real clock cannot be moved. Use a virtual one: "
                         "cl.set_default_backend(cl.Backend(clock='virtual')).")
    def finished() -> int:
        counts = state_counts(backend.scheduler.jobs())
        return counts["success"] + counts["failed"]

    before = finished()
    with user_errors():
        backend.clock.advance(parse_duration(words[1]))
    ran = finished() - before
    return (f"virtual clock: {_when(backend.clock.now())} "
            f"({_count(ran, 'scheduled function')} ran)")


_MODES = ("require_empty", "append", "replace")


def transfer(backend: cl.Backend, sub: str, words: Sequence[str]) -> str:
    """``%convex export PATH`` and ``%convex import PATH [--table T] [--append | --replace |
    --mode M]`` (the flags of ``npx convex import``); returns the line to print."""
    paths = [unquote(w) for w in words if not w.startswith("--")]
    flags = [w for w in words if w.startswith("--")]
    if sub == "export":
        if len(paths) != 1 or flags:
            raise UsageError("Usage: %convex export PATH.zip (a Convex snapshot ZIP).")
        counts = backend.export_zip(paths[0])
        files = counts.pop("_storage", 0)
        size = os.path.getsize(paths[0])
        return (f"Exported {_count(sum(counts.values()), 'document')} from "
                f"{_count(len(counts), 'table')}" + (f" and {_count(files, 'file')}" if files
                                                      else "")
                + f" to {paths[0]} ({size / 1e6:.1f} MB). `npx convex import` reads it.")
    table, mode = None, "require_empty"
    rest = list(words)
    paths = []
    while rest:
        word = rest.pop(0)
        if not word.startswith("--"):
            paths.append(unquote(word))
        elif word in ("--append", "--replace"):
            mode = word[2:]
        elif word in ("--table", "--mode") and rest:
            value = unquote(rest.pop(0))
            if word == "--table":
                table = value
            elif value in _MODES:
                mode = value
            else:
                raise UsageError(f"--mode takes {', '.join(_MODES)}; got {value!r}.")
        elif word.startswith("--"):
            raise UsageError(f"Unknown flag {word!r}. Usage: %convex import PATH [--table T] "
                             "[--append | --replace].")
    if len(paths) != 1:
        raise UsageError("Usage: %convex import PATH [--table T] [--append | --replace]: a "
                         "snapshot .zip, or a .parquet/.csv/.jsonl/.json file with --table.")
    path = paths[0]
    is_zip = path.lower().endswith(".zip")
    if is_zip and table is not None:
        raise UsageError("A snapshot .zip holds its own tables: drop --table (as with "
                         "`npx convex import`).")
    if not is_zip and table is None:
        raise UsageError(f"Importing {path} needs the table to load it into: "
                         f"%convex import {path} --table TABLE.")
    if is_zip:
        counts = backend.import_zip(path, mode=mode)
        files = counts.pop("_storage", 0)
        return (f"Imported {_count(sum(counts.values()), 'document')} into "
                f"{_count(len(counts), 'table')}" + (f" and {_count(files, 'file')}" if files
                                                      else "")
                + f" from {path} (one commit, mode={mode}).")
    assert table is not None
    n = backend.import_table(table, path, mode=mode)
    return f"Imported {_count(n, 'document')} into {table} from {path} (mode={mode})."

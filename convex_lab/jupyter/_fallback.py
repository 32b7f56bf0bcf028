"""The text a saved notebook shows for a widget where no widget front-end runs.

A displayed widget's output carries (``convex_lab.jupyter._display``) the widget view and two
fallbacks built here:

* ``text/html`` — what GitHub, nbviewer and nbconvert show (nbconvert whenever the notebook holds
  no saved state for the widget's model), and what JupyterLab shows for an untrusted notebook
  (one executed elsewhere): a line naming the widget, what it follows and when it was last
  updated, then a small table of the first :data:`MAX_ROWS` rows of its last value (or the
  ``render=`` output itself, e.g. a chart's PNG);
* ``text/plain`` — the same as aligned text (terminals, ``nbconvert --to markdown``).

Contract
--------
* :func:`fallback_for` reads only a widget's synced traits (its documented state), chosen by its
  ``_view``; a view without a describer gets its name and status. It never raises: a widget
  whose state cannot be described still gets a line naming it, because a display must not fail
  over its fallback.
* Every value is HTML-escaped. The one unescaped fragment is a live query's ``render=`` output:
  HTML that the notebook owner's own function produced and that the widget itself shows.
* Values are display JSON (``convex_lab.jupyter._protocol.encode``): int64 shows as its digits,
  bytes as ``<n bytes>``, ``_creationTime`` as a UTC time, long texts cut with an ellipsis.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from convex_lab.jupyter._schedule_text import duration_text

MAX_ROWS = 10
"""Rows shown in a fallback table (the rest are counted)."""
MAX_COLUMNS = 8
MAX_CELL = 60
"""Characters of one table cell before it is cut with an ellipsis."""
NOTE = "A convex_lab widget; run the notebook to see it live."
SYSTEM_FIELDS = ("_id", "_creationTime")

Column = tuple[str, Callable[[Mapping[str, Any]], str]]


# ---------------------------------------------------------------------------------------------
# Cells: display JSON → short text


def _cut(text: str, limit: int = MAX_CELL) -> str:
    text = " ".join(text.split()) if "\n" in text or "\t" in text else text
    return text if len(text) <= limit else text[: limit - 1] + "…"


def when(ms: Any) -> str:
    """``2026-11-21 09:00:00 UTC`` for ms since the epoch; ``""`` for anything else."""
    if isinstance(ms, bool) or not isinstance(ms, (int, float)):
        return ""
    try:
        moment = datetime.fromtimestamp(float(ms) / 1000.0, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return ""
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def cell_text(value: Any, limit: int = MAX_CELL) -> str:
    """One value of display JSON as the short text of a table cell."""
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        number = float(value)
        return str(int(number)) if number.is_integer() and abs(number) < 1e15 else repr(number)
    if isinstance(value, str):
        return _cut(value, limit)
    if isinstance(value, dict) and len(value) == 1:
        ((tag, inner),) = value.items()
        if tag in ("$int64", "$float", "$repr") and isinstance(inner, str):
            return _cut(inner, limit)
        if tag == "$bytes" and isinstance(inner, str):
            try:
                return f"<{len(base64.standard_b64decode(inner))} bytes>"
            except ValueError:
                return "<bytes>"
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    except (TypeError, ValueError):
        text = repr(value)
    return _cut(text, limit)


def _field_cell(name: str, value: Any) -> str:
    if name == "_creationTime" and isinstance(value, (int, float)):
        return when(value) or cell_text(value)
    return cell_text(value)


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


# ---------------------------------------------------------------------------------------------
# What one widget's fallback says, as text and as HTML


@dataclass
class Fallback:
    """A title (``Live query``), its subject (``list_messages(channel="…")``), details
    (``6 rows``, ``updated …``), then one of: a table (``columns``/``rows``, cell texts), a
    ``text``, or a ready ``html`` fragment; then more fallbacks (``sections``)."""

    title: str
    subject: str = ""
    details: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    more_rows: int = 0
    more_columns: int = 0
    text: str | None = None
    html: str | None = None
    error: str | None = None
    sections: list[Fallback] = field(default_factory=list)

    def heading(self) -> str:
        head = self.title + (f" {self.subject}" if self.subject else "")
        return " · ".join([head, *(d for d in self.details if d)])

    def _more(self) -> str:
        more = []
        if self.more_rows:
            more.append(f"… {_plural(self.more_rows, 'more row')}")
        if self.more_columns:
            more.append(f"{_plural(self.more_columns, 'more field')} not shown")
        return "; ".join(more)

    def plain(self) -> str:
        """The ``text/plain`` fallback: the heading, then an aligned table (or the text)."""
        lines = [self.heading()]
        if self.error:
            lines.append(f"  error: {self.error}")
        if self.text is not None:
            lines.append(f"  {self.text}")
        elif self.columns:
            widths = [max([len(c), *(len(r[i]) for r in self.rows)])
                      for i, c in enumerate(self.columns)]
            for cells in [self.columns, *self.rows]:
                lines.append("  " + "  ".join(
                    c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())
        elif self.html is not None:
            lines.append("  (a rendered output: see the HTML version)")
        if self._more():
            lines.append(f"  {self._more()}")
        for section in self.sections:
            lines += ["", section.plain()]
        return "\n".join(lines)

    def html_fragment(self) -> str:
        e = html.escape
        subject = f" <code>{e(self.subject)}</code>" if self.subject else ""
        details = "".join(f" · {e(d)}" for d in self.details if d)
        out = [f"<p><strong>{e(self.title)}</strong>{subject}{details}</p>"]
        if self.error:
            out.append(f"<p><strong>Error:</strong> {e(self.error)}</p>")
        if self.text is not None:
            out.append(f"<pre>{e(self.text)}</pre>")
        elif self.html is not None:
            out.append(self.html)
        elif self.columns:
            head = "".join(f"<th>{e(c)}</th>" for c in self.columns)
            body = "".join("<tr>" + "".join(f"<td>{e(v)}</td>" for v in row) + "</tr>"
                           for row in self.rows)
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        if self._more():
            out.append(f"<p><em>{e(self._more())}</em></p>")
        out += [section.html_fragment() for section in self.sections]
        return "\n".join(out)

    def to_html(self, view: str) -> str:
        """The ``text/html`` fallback: one ``div.cl-fallback`` naming the view."""
        return (f'<div class="cl-fallback" data-convex-lab-view="{html.escape(view)}">\n'
                f"{self.html_fragment()}\n<p><small>{html.escape(NOTE)}</small></p>\n</div>")


def _is_tagged(value: Mapping[str, Any]) -> bool:
    return len(value) == 1 and next(iter(value)).startswith("$")


def show_value(fb: Fallback, value: Any, *, count: bool = True) -> Fallback:
    """Fill ``fb`` with ``value`` (display JSON): documents → a table of their fields (user
    fields first, then ``_id`` and ``_creationTime``), a list of scalars → one column, an object
    → field/value rows, anything else → its text. ``count``: add ``N rows`` to the details."""
    if isinstance(value, list):
        shown = value[:MAX_ROWS]
        fb.more_rows = len(value) - len(shown)
        if count:
            fb.details.append(_plural(len(value), "row"))
        if not value:
            fb.text = "(no rows)"
        elif all(isinstance(r, dict) and not _is_tagged(r) for r in shown):
            keys: list[str] = []
            for row in shown:
                keys += [k for k in row if k not in keys]
            ordered = ([k for k in keys if not k.startswith("_")]
                       + [k for k in SYSTEM_FIELDS if k in keys]
                       + [k for k in keys if k.startswith("_") and k not in SYSTEM_FIELDS])
            fb.columns = ordered[:MAX_COLUMNS]
            fb.more_columns = len(ordered) - len(fb.columns)
            fb.rows = [[_field_cell(c, row[c]) if c in row else "" for c in fb.columns]
                       for row in shown]
        else:
            fb.columns = ["value"]
            fb.rows = [[cell_text(r)] for r in shown]
    elif isinstance(value, dict) and not _is_tagged(value):
        items = list(value.items())
        fb.columns = ["field", "value"]
        fb.rows = [[k, _field_cell(k, v)] for k, v in items[:MAX_ROWS]]
        fb.more_rows = len(items) - len(fb.rows)
    else:
        fb.text = cell_text(value, limit=500)
    return fb


def show_records(fb: Fallback, rows: Iterable[Any], columns: Sequence[Column]) -> Fallback:
    """Fill ``fb`` with chosen columns of JSON rows (non-objects skipped), each formatted by its
    own function; ``(none yet)`` when there are none."""
    listed = [r for r in rows if isinstance(r, dict)]
    if not listed:
        fb.text = "(none yet)"
        return fb
    shown = listed[:MAX_ROWS]
    fb.columns = [name for name, _ in columns]
    fb.rows = [[fmt(row) for _, fmt in columns] for row in shown]
    fb.more_rows = len(listed) - len(shown)
    return fb


def args_text(args: Any) -> str:
    """``(channel="k57…", n=3)`` from a display-JSON argument object."""
    if not isinstance(args, dict) or not args:
        return "()"

    def one(value: Any) -> str:
        if isinstance(value, str):
            return json.dumps(_cut(value, 28), ensure_ascii=False)
        return cell_text(value, 28)

    return "(" + ", ".join(f"{k}={one(v)}" for k, v in args.items()) + ")"


# ---------------------------------------------------------------------------------------------
# One describer per view, over the widget's traits


def _get(widget: Any, name: str, default: Any = None) -> Any:
    value = getattr(widget, name, default)
    return default if value is None else value


def _error(widget: Any) -> str | None:
    error = _get(widget, "error")
    return str(error["message"]) if isinstance(error, dict) and error.get("message") else None


def _updated(widget: Any) -> str:
    stamp = when(_get(widget, "updated_at"))
    return f"updated {stamp}" if stamp else ""


def _live_query(w: Any) -> Fallback:
    fb = Fallback("Live query", f"{_get(w, 'path', '')}{args_text(_get(w, 'args'))}",
                  error=_error(w))
    if not _get(w, "has_value", False):
        fb.details.append(str(_get(w, "status", "loading")))
        fb.text = "(no value yet)"
    elif _get(w, "rendered", False) and _get(w, "html", ""):
        fb.html = str(_get(w, "html"))
    else:
        show_value(fb, _get(w, "value"))
    fb.details.append(_updated(w))
    return fb


def _paginated(w: Any) -> Fallback:
    fb = Fallback("Paginated query", str(_get(w, "path", "")), error=_error(w))
    show_value(fb, list(_get(w, "rows", [])))
    fb.details += [str(_get(w, "pagination_status", "")), _updated(w)]
    return fb


def _data_browser(w: Any) -> Fallback:
    table = str(_get(w, "table", ""))
    fb = Fallback("Data browser", table, error=_error(w))
    if not table:
        fb.text = "(no tables yet)"
        return fb
    counts = {t.get("name"): t.get("count") for t in _get(w, "tables", []) if isinstance(t, dict)}
    count = counts.get(table)
    if isinstance(count, int):
        fb.details.append(_plural(count, "document"))
    fb.details += [f"index {_get(w, 'index', '')} ({_get(w, 'order', '')}), "
                   f"page {int(_get(w, 'page_index', 0)) + 1}", _updated(w)]
    return show_value(fb, list(_get(w, "rows", [])), count=False)


def _function_runner(w: Any) -> Fallback:
    functions = [f for f in _get(w, "functions", []) if isinstance(f, dict)]
    fb = Fallback("Function runner", str(_get(w, "selected", "")),
                  details=[_plural(len(functions), "function")], error=_error(w))
    show_records(fb, functions, [("function", lambda f: str(f.get("path", ""))),
                                 ("kind", lambda f: str(f.get("kind", ""))),
                                 ("visibility", lambda f: str(f.get("visibility", "")))])
    last = str(_get(w, "last_path", ""))
    if last:
        fb.sections.append(show_value(Fallback("Last run", last, details=[_updated(w)]),
                                      _get(w, "result"), count=False))
    return fb


def _duration(entry: Mapping[str, Any]) -> str:
    ms = entry.get("duration_ms")
    if isinstance(ms, bool) or not isinstance(ms, (int, float)):
        return ""
    return duration_text(float(ms))  # the live logs view's text, so saved and live agree


def _outcome(entry: Mapping[str, Any]) -> str:
    if entry.get("error"):
        return _cut(f"error: {entry['error']}")
    return _cut(" | ".join(str(line) for line in entry.get("lines") or []))


def _logs(w: Any) -> Fallback:
    entries = [e for e in _get(w, "entries", []) if isinstance(e, dict)]
    fb = Fallback("Function logs", details=[_plural(len(entries), "execution"), _updated(w)])
    return show_records(fb, reversed(entries),  # newest first
                        [("started", lambda e: when(e.get("started"))),
                         ("kind", lambda e: str(e.get("kind", ""))),
                         ("function", lambda e: str(e.get("function", ""))),
                         ("duration", _duration), ("output", _outcome)])


def _job_state(row: Mapping[str, Any]) -> str:
    error = f": {_cut(str(row['error']))}" if row.get("error") else ""
    return str(row.get("state", "")) + error


def _jobs(w: Any) -> Fallback:
    counts = _get(w, "counts", {})
    summary = ", ".join(f"{n} {state}" for state, n in counts.items()
                        if isinstance(n, int) and n)
    fb = Fallback("Scheduled functions", details=[summary, _updated(w)])
    return show_records(fb, _get(w, "rows", []),
                        [("function", lambda r: str(r.get("name", ""))),
                         ("args", lambda r: cell_text(r.get("args"))),
                         ("scheduled", lambda r: when(r.get("scheduledTime"))),
                         ("state", _job_state)])


def _last_run(row: Mapping[str, Any]) -> str:
    run = row.get("lastRun")
    if not isinstance(run, dict):
        return "never"
    return f"{run.get('state', '')} ({when(run.get('scheduledTime'))})"


def _crons(w: Any) -> Fallback:
    fb = Fallback("Crons", details=[_updated(w)])
    return show_records(fb, _get(w, "crons", []),
                        [("name", lambda r: str(r.get("name", ""))),
                         ("schedule", lambda r: str(r.get("schedule_text", ""))),
                         ("function", lambda r: str(r.get("function", ""))),
                         ("next run", lambda r: when(r.get("nextRun"))),
                         ("last run", _last_run)])


DESCRIBERS: dict[str, Callable[[Any], Fallback]] = {
    "live_query": _live_query, "paginated": _paginated, "data_browser": _data_browser,
    "function_runner": _function_runner, "logs": _logs, "jobs": _jobs, "crons": _crons,
}
"""``_view`` → the function describing that widget from its traits."""


def fallback_for(widget: Any) -> Fallback:
    """The fallback of a convex_lab widget, by its ``_view`` (module docstring); never raises."""
    view = str(getattr(widget, "_view", "") or "")
    describer = DESCRIBERS.get(view)
    name = f"convex_lab {view or type(widget).__name__} widget"
    if describer is None:
        return Fallback(name, details=[str(getattr(widget, "status", "") or "")])
    try:
        return describer(widget)
    except Exception as e:  # noqa: BLE001 (a display must not fail over its fallback)
        return Fallback(name, details=[f"no text version ({type(e).__name__}: {e})"])

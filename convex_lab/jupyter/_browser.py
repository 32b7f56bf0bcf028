"""The data browser: page through a table, order by an index, filter, edit a field, delete.

State (traits): ``tables`` (``[{"name", "count"}]``), ``table``, ``indexes``
(``[{"name", "fields"}]`` of the table), ``index``, ``order`` ("asc" | "desc"), ``filter``
(``{"field", "value"}`` with a display-JSON value, or None), ``page_size``, ``page_index``,
``has_next``, ``rows`` (display JSON documents), ``fields`` (top-level field → its validator's
``to_json()`` with ``optional``, from the pushed schema; ``{}`` without one), ``sortable``
(field → the index a click on its column header sorts through: :func:`sort_indexes`).

Requests:

* ``browse`` {table, index?, order?, filter?, page_size?} → first page of that view; answers
  ``{"count": rows on the page}``;
* ``sort`` {field, order?} → first page ordered by ``field`` through an index that starts with it
  (the current index if it does, else ``sortable[field]``), keeping the filter; without
  ``order``: ascending, or the other direction when the view is already ordered by ``field`` (a
  header clicked twice). Answers ``{"index", "order"}``. A field no index starts with is refused
  with the fix (add an index): Convex orders documents only through an index, and sorting the
  whole table in memory is what an index exists to avoid, so the browser never does it;
* ``page`` {direction: "next" | "prev" | "first"} → moves, answers ``{"page_index"}``;
* ``edit`` {doc_id, field, value | unset: true} → ``ctx.db.patch``-like write of one top-level
  field, validated against the schema like any write (a rejected edit answers the
  ``SchemaValidationError``); system fields (``_id``, ``_creationTime``) are refused;
* ``delete`` {doc_id} → deletes the document (the front-end asks for confirmation first);
* ``refresh`` → re-reads the current page.

Security (docs/api.md): the browser sends a table name, an index name, field names and values,
never a query: the page is built here with the query builder, and writes go through
``DatabaseWriter`` in a store transaction, so the schema validates them like a mutation's.
Pages are cursor-based (``paginate``): each page remembers its start cursor, so "prev" returns
to the same boundary. The page is re-read after every commit (``backend.add_commit_listener``).
"""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING, Any

import traitlets

from convex_lab.errors import InvalidTableError, ProtocolError
from convex_lab.jupyter._base import ConvexWidget, RequestHandler, now_ms
from convex_lab.jupyter._protocol import decode, encode, field
from convex_lab.store.database import DatabaseReader, DatabaseWriter
from convex_lab.values import UNDEFINED

if TYPE_CHECKING:
    from convex_lab.backend import Backend
    from convex_lab.store.transaction import Transaction

MAX_PAGE_SIZE = 500


def sort_indexes(indexes: list[dict[str, Any]]) -> dict[str, str]:
    """Field → the index a header click sorts it through: ``_creationTime`` → ``by_creation_time``;
    any other field → the index whose first field it is (the fewest fields first, then by name,
    so ``by_n`` wins over ``by_n_and_text``). Fields no index starts with are absent: a nested
    path such as ``author.name`` orders documents by that path, not by ``author``."""
    out = {"_creationTime": "by_creation_time"}
    for index in sorted(indexes, key=lambda i: (len(i["fields"]), i["name"])):
        fields = index["fields"]
        if fields and fields[0] not in out:
            out[fields[0]] = index["name"]
    return out


class DataBrowserWidget(ConvexWidget):
    """See the module docstring. Made by ``data_browser(backend, table=None)``."""

    _view = traitlets.Unicode("data_browser").tag(sync=True)
    tables: traitlets.List[Any] = traitlets.List().tag(sync=True)
    table = traitlets.Unicode("").tag(sync=True)
    indexes: traitlets.List[Any] = traitlets.List().tag(sync=True)
    index = traitlets.Unicode("by_creation_time").tag(sync=True)
    order = traitlets.Unicode("desc").tag(sync=True)
    filter = traitlets.Dict(default_value=None, allow_none=True).tag(sync=True)
    page_size = traitlets.Int(25).tag(sync=True)
    page_index = traitlets.Int(0).tag(sync=True)
    has_next = traitlets.Bool(False).tag(sync=True)
    rows: traitlets.List[Any] = traitlets.List().tag(sync=True)
    fields = traitlets.Dict().tag(sync=True)
    sortable = traitlets.Dict().tag(sync=True)

    def __init__(self, backend: Backend, table: str | None = None, *,
                 page_size: int = 25) -> None:
        super().__init__(page_size=page_size)
        self.backend = backend
        self._cursors: list[str | None] = [None]  # start cursor of each page seen
        self._refresh_lock = threading.Lock()
        self._refresh_again = False
        names = self._table_names()
        start = table if table is not None else (names[0] if names else "")
        if start:
            self._browse(start, "by_creation_time", "desc", None, page_size)
        else:
            self._set_state(status="ready", tables=self._table_list())
        self._on_close(backend.add_commit_listener(self._on_commit))

    # Reading ---------------------------------------------------------------------------------
    def _table_names(self) -> list[str]:
        store = self.backend.store
        names = set(store.user_tables())
        schema = store.schema
        if schema is not None:
            names.update(schema.tables)
        return sorted(names)

    def _table_list(self) -> list[dict[str, Any]]:
        tables = self.backend.store.tables
        return [{"name": n, "count": len(tables[n]) if n in tables else 0}
                for n in self._table_names()]

    def _table_info(self, table: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        store = self.backend.store
        schema = store.schema
        table_def = schema.table(table) if schema is not None else None
        data = store.tables.get(table)
        if data is not None:
            specs = {n: list(s.fields) for n, s in data.specs.items()}
        else:
            specs = {"by_creation_time": []}
            if table_def is not None:
                specs.update({n: list(f) for n, f in dict(table_def.indexes).items()})
        indexes = [{"name": n, "fields": specs[n]} for n in specs if n != "by_id"]
        fields: dict[str, Any] = {}
        if table_def is not None:
            doc_json = table_def.document_validator.to_json()
            if doc_json.get("type") == "object":
                fields = dict(doc_json["value"])
        return indexes, fields

    def _fetch(self, cursor: str | None) -> tuple[dict[str, Any], bool]:
        """The page starting at ``cursor``, and whether anything follows it (a one-document
        peek in the same snapshot: Convex's ``isDone`` is false after an exactly full page)."""
        table, index, order = self.table, self.index, self.order
        flt = self.filter
        size = self.page_size

        def query(tx: Transaction) -> Any:
            ns, name = _split_component(table)
            q = DatabaseReader(tx, namespace=ns).query(name)
            if index != "by_creation_time":
                q = q.with_index(index)
            q = q.order(order)
            if flt is not None:
                name, value = flt["field"], decode(flt["value"])
                q = q.filter(lambda f: f.eq(f.field(name), value))
            return q

        def body(tx: Transaction) -> tuple[dict[str, Any], bool]:
            page: dict[str, Any] = query(tx).paginate({"numItems": size, "cursor": cursor})
            if page["isDone"]:
                return page, False
            peek = query(tx).paginate({"numItems": 1, "cursor": page["continueCursor"]})
            return page, bool(peek["page"])

        result: tuple[dict[str, Any], bool] = self.backend.store.run(body, read_only=True)
        return result

    def _show_page(self, *, raising: bool) -> None:
        """Read the current page and publish it. A failure is shown (the old rows kept) and,
        with ``raising``, raised too (a request's answer carries it)."""
        try:
            page, has_next = self._fetch(self._cursors[self.page_index])
        except Exception as e:
            self._set_error(e)
            if raising:
                raise
            return
        if not page["page"] and self.page_index > 0:  # the page emptied (deletes): step back
            self.page_index -= 1
            del self._cursors[self.page_index + 1:]
            self._show_page(raising=raising)
            return
        del self._cursors[self.page_index + 1:]
        if has_next:
            self._cursors.append(page["continueCursor"])
        self._set_state(rows=[encode(d) for d in page["page"]], has_next=has_next,
                        tables=self._table_list(), status="ready", error=None,
                        updated_at=now_ms())

    def refresh(self, *, raising: bool = False) -> None:
        """Re-read the current page; calls that overlap a running refresh coalesce into one."""
        if not self.table:
            self._set_state(tables=self._table_list())
            return
        if not self._refresh_lock.acquire(blocking=False):
            self._refresh_again = True
            return
        try:
            while True:
                self._refresh_again = False
                self._show_page(raising=raising)
                if not self._refresh_again:
                    break
        finally:
            self._refresh_lock.release()

    def _on_commit(self, *_: Any) -> None:
        if not self._closed:
            self.refresh()

    def _browse(self, table: str, index: str, order: str, flt: dict[str, Any] | None,
                page_size: int, *, raising: bool = False) -> None:
        if table not in self._table_names():
            raise InvalidTableError(f"Table {table!r} does not exist. Tables: "
                                    f"{', '.join(self._table_names()) or 'none yet'}.")
        indexes, fields = self._table_info(table)
        if index not in {i["name"] for i in indexes}:
            raise ProtocolError(f"Table {table!r} has no index {index!r}; its indexes: "
                                f"{', '.join(i['name'] for i in indexes)}.")
        with self._lock, self.hold_sync():
            self.table, self.index, self.order = table, index, order
            self.filter = flt  # type: ignore[assignment]  # allow_none=True; the stubs miss it
            self.page_size, self.indexes, self.fields = page_size, indexes, fields
            self.sortable = sort_indexes(indexes)
            self.page_index = 0
            self._cursors = [None]
        self.refresh(raising=raising)

    # Requests --------------------------------------------------------------------------------
    def _handlers(self) -> dict[str, RequestHandler]:
        return {"browse": self._req_browse, "sort": self._req_sort, "page": self._req_page,
                "edit": self._req_edit, "delete": self._req_delete,
                "refresh": self._req_refresh}

    def _req_browse(self, request: dict[str, Any]) -> dict[str, Any]:
        table = field(request, "table", str, self.table)
        order = field(request, "order", str, "desc")
        if order not in ("asc", "desc"):
            raise ProtocolError(f'order is "asc" or "desc", not {order!r}.')
        flt = field(request, "filter", dict, None)
        if flt is not None:
            name = field(flt, "field", str)
            if "value" not in flt:
                raise ProtocolError("A filter needs a 'value'.")
            decode(flt["value"])  # a malformed value fails here, not in every refresh
            flt = {"field": name, "value": flt["value"]}
        size = field(request, "page_size", int, self.page_size)
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise ProtocolError(f"page_size must be 1 … {MAX_PAGE_SIZE}, not {size}.")
        self._browse(table, field(request, "index", str, "by_creation_time"), order, flt, size,
                     raising=True)
        return {"count": len(self.rows)}

    def _req_sort(self, request: dict[str, Any]) -> dict[str, Any]:
        if not self.table:
            raise ProtocolError("No table is selected.")
        name: str = field(request, "field", str)
        order = field(request, "order", str, None)
        if order not in (None, "asc", "desc"):
            raise ProtocolError(f'order is "asc" or "desc", not {order!r}.')
        # From the store, not the synced traits: a front-end can write those.
        indexes, _ = self._table_info(self.table)
        current: list[str] = next(
            (i["fields"] for i in indexes if i["name"] == self.index), [])
        sorted_by = "_creationTime" if self.index == "by_creation_time" else (
            current[0] if current else None)
        again = sorted_by == name
        index = self.index if again else sort_indexes(indexes).get(name)
        if index is None and name == "_id":
            raise ProtocolError("Cannot sort by _id: document IDs are random, so their order "
                                "means nothing. Sort by _creationTime instead.")
        if index is None:
            suggested = "by_" + re.sub(r"\W", "_", name)
            raise ProtocolError(
                f"Cannot sort {self.table!r} by {name!r}: Convex orders documents only through "
                f"an index, and no index of {self.table!r} starts with {name!r}. Add "
                f'.index("{suggested}", ["{name}"]) to the table in the schema to sort by it.')
        if order is None:
            order = ("desc" if self.order == "asc" else "asc") if again else "asc"
        self._browse(self.table, index, order, self.filter, self.page_size, raising=True)
        return {"index": index, "order": order}

    def _req_page(self, request: dict[str, Any]) -> dict[str, Any]:
        direction = field(request, "direction", str)
        if direction == "next":
            if not self.has_next or len(self._cursors) <= self.page_index + 1:
                raise ProtocolError("There is no next page.")
            self.page_index += 1
        elif direction == "prev":
            if self.page_index == 0:
                raise ProtocolError("This is the first page.")
            self.page_index -= 1
        elif direction == "first":
            self.page_index = 0
        else:
            raise ProtocolError(f'direction is "next", "prev" or "first", not {direction!r}.')
        self.refresh(raising=True)
        return {"page_index": self.page_index}

    def _doc_id(self, request: dict[str, Any]) -> str:
        if not self.table:
            raise ProtocolError("No table is selected.")
        doc_id: str = field(request, "doc_id", str)
        return doc_id

    def _req_edit(self, request: dict[str, Any]) -> None:
        doc_id = self._doc_id(request)
        name: str = field(request, "field", str)
        if name.startswith("_"):
            raise ProtocolError(f"{name} is a system field: it cannot be edited.")
        if field(request, "unset", bool, False):
            value: Any = UNDEFINED
        elif "value" in request:
            value = decode(request["value"])
        else:
            raise ProtocolError("An edit needs a 'value' (or unset: true).")
        table = self.table
        self.backend.store.run(
            lambda tx: _writer(tx, table).patch(_split_component(table)[1], doc_id,
                                                {name: value}))
        self.refresh()

    def _req_delete(self, request: dict[str, Any]) -> None:
        doc_id = self._doc_id(request)
        table = self.table
        self.backend.store.run(
            lambda tx: _writer(tx, table).delete(_split_component(table)[1], doc_id))
        self.refresh()

    def _req_refresh(self, _request: dict[str, Any]) -> None:
        self.refresh(raising=True)


def _split_component(table: str) -> tuple[str, str]:
    """``"<component>/<table>"`` → ``("<component>/", "<table>")``; an app table → ``("", t)``.
    The browser reaches a component's tables as the component does (its own ``ctx.db``)."""
    component, sep, name = table.rpartition("/")
    return (component + sep, name)


def _writer(tx: Any, table: str) -> DatabaseWriter:
    return DatabaseWriter(tx, namespace=_split_component(table)[0])

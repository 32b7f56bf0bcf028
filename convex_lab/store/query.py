"""The query builder behind ``ctx.db.query(table)``, with Convex's rules.

``db.query(t).with_index(name, range).order("asc"|"desc").filter(fn)`` then one of
``collect() take(n) first() unique() paginate(opts)`` or plain iteration. A query is a single-use
builder: ``with_index`` only first and once, ``order`` at most once, and once it runs (or
iteration starts) it cannot be chained or run again (reference §4.4).

Documents come from an index walk (:class:`~convex_lab.store.transaction.Scan`); filters run on
what the walk returns, so filtered-out documents still count as read. The read set is what the
walk consumed: ``first()`` reads a small slice, ``collect()`` the whole range.

Pagination (reference §4.5): a cursor names a position in the index (just after a key, or the
end) plus a fingerprint of the query; a cursor from another query is ``InvalidCursor``. With
``endCursor`` the page is exactly ``(cursor, endCursor]`` so a live page keeps its boundaries.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from convex_lab.errors import ConvexLabError, InvalidCursorError, InvalidIndexRangeError
from convex_lab.store.keys import KEY_AFTER, IndexRangeBuilder, IndexSpec, Interval, Key, full_range
from convex_lab.store.transaction import MAX_DOCS_READ
from convex_lab.values import Int64

if TYPE_CHECKING:
    from convex_lab.store.database import DatabaseReader
    from convex_lab.store.filters import Expr
    from convex_lab.store.tables import TableData

MAX_QUERY_OPERATORS = 256
PREFETCH = 100
_CONSUMED = ("A query can only be chained once and can't be chained after iteration begins. "
             "Build a new query with ctx.db.query(...).")


def _encode_key(key: Any) -> Any:
    t = type(key)
    if t is tuple:
        return [_encode_key(x) for x in key]
    if t is float:
        return {"f": key.hex()}
    if t is bytes:
        return {"b": base64.b64encode(key).decode()}
    if t is bool:
        return {"t": key}
    if t is int:
        return {"i": str(key)}
    return key


def _decode_key(data: Any) -> Any:
    if type(data) is list:
        return tuple(_decode_key(x) for x in data)
    if type(data) is dict:
        (tag, value), = data.items()
        if tag == "f":
            return float.fromhex(value)
        if tag == "b":
            return base64.b64decode(value)
        if tag == "t":
            return bool(value)
        if tag == "i":
            return int(value)
        raise ValueError(tag)
    if type(data) is str:
        return data
    raise ValueError(data)


class Query:
    """See module docstring. Created by ``DatabaseReader.query``."""

    def __init__(self, db: DatabaseReader, table_name: str, table: TableData | None, *,
                 specs: dict[str, IndexSpec], field_converter: Callable[[str, Any], Any] | None,
                 filter_builder: Callable[[], Any]) -> None:
        self._db = db
        self._table_name = table_name
        self._table = table
        self._specs = specs
        self._convert = field_converter
        self._filter_builder = filter_builder
        self._index = "by_creation_time"
        self._range: IndexRangeBuilder | None = None
        self._interval: Interval | None = None
        self._order: str | None = None
        self._filters: list[Expr] = []
        self._operators = 0
        self._stage = 0  # 0: initial, 1: index chosen, 2: ordered, 3: consumed

    # Building ------------------------------------------------------------------------------
    def with_index(self, index_name: str,
                   range_fn: Callable[[IndexRangeBuilder], Any] | None = None) -> Query:
        if self._stage >= 3:
            raise ConvexLabError(_CONSUMED, code="QueryConsumed")
        if self._stage >= 1 or self._filters:
            raise ConvexLabError(
                "with_index() must come first, right after db.query(table), and only once.",
                code="InvalidQuery")
        spec = self._specs.get(index_name)
        if spec is None:
            names = ", ".join(sorted(self._specs))
            raise InvalidIndexRangeError(
                f"Index {self._table_name}.{index_name} not found. This table's indexes are: "
                f"{names}. Declare it in the schema with define_table(...).index(...).",
                code="IndexNotFound")
        builder = IndexRangeBuilder(spec, self._table_name, self._convert)
        if range_fn is not None:
            result = range_fn(builder)
            if result is not builder and result is not None:
                raise InvalidIndexRangeError(
                    "The with_index range function must return the range builder: "
                    "lambda q: q.eq('field', value).gt('other', x).", code="InvalidIndexRange")
        self._index = index_name
        self._range = builder
        self._interval = builder.compile()
        self._stage = 1
        return self

    def with_search_index(self, *_: Any, **__: Any) -> Query:
        raise ConvexLabError(
            "with_search_index() is not available yet in convex_lab: full-text search arrives "
            "with the search issue. Use with_index() and filter() meanwhile.", code="NotYet")

    def order(self, order: str) -> Query:
        if self._stage >= 3:
            raise ConvexLabError(_CONSUMED, code="QueryConsumed")
        if self._order is not None:
            raise ConvexLabError("order() may be called at most once per query.",
                                 code="InvalidQuery")
        if order not in ("asc", "desc"):
            raise ConvexLabError(f'order() takes "asc" or "desc", not {order!r}.',
                                 code="InvalidQuery")
        self._order = order
        self._stage = 2
        return self

    def filter(self, predicate: Callable[[Any], Expr]) -> Query:
        if self._stage >= 3:
            raise ConvexLabError(_CONSUMED, code="QueryConsumed")
        expr = predicate(self._filter_builder())
        from convex_lab.store.filters import Expr  # noqa: PLC0415

        if not isinstance(expr, Expr):
            raise ConvexLabError(
                "filter() takes a function of the filter builder returning an expression, e.g. "
                "lambda q: q.eq(q.field('done'), False); got "
                f"{type(expr).__name__}. (Python's and/or/not don't build expressions: "
                "use q.and_, q.or_, q.not_.)", code="InvalidQuery")
        self._add_operator()
        self._filters.append(expr)
        return self

    def _add_operator(self) -> None:
        self._operators += 1
        if self._operators > MAX_QUERY_OPERATORS:
            raise ConvexLabError(
                f"Too many operators in this query (limit: {MAX_QUERY_OPERATORS} filters/limits).",
                code="TooManyQueryOperators")

    # Running -------------------------------------------------------------------------------
    def _start(self) -> None:
        if self._stage >= 3:
            raise ConvexLabError(_CONSUMED, code="QueryConsumed")
        self._stage = 3

    def _spec(self) -> IndexSpec:
        return self._specs[self._index]

    def _full(self) -> Interval:
        return self._interval if self._interval is not None else full_range(self._spec())

    def _missing_table(self, interval: Interval) -> bool:
        """True when the table does not exist yet. The range still goes into the read set, so
        the first insert into the table conflicts with (and invalidates) this read."""
        if self._table is not None:
            return False
        tx = self._db._tx
        tx.reads.add_range(self._table_name, self._index, interval.lo, interval.hi)
        tx._count_interval()
        return True

    def _rows(self, interval: Interval, batch: int) -> Iterator[dict[str, Any]]:
        """Stored documents passing the filters, in order, fetched lazily."""
        if self._missing_table(interval):
            return
        assert self._table is not None
        scan = self._db._tx.scan(self._table, self._index, interval,
                                 reverse=self._order == "desc")
        filters = self._filters
        while True:
            rows = scan.fetch(batch)
            if filters:
                for doc in rows:
                    if all(f.matches(doc) for f in filters):
                        yield doc
            else:
                yield from rows
            if scan.done:
                return
            batch = max(batch, PREFETCH)

    def _copier(self) -> Callable[[dict[str, Any]], dict[str, Any]]:
        if self._table is None:
            return dict
        return self._db._tx.copier(self._table)  # type: ignore[no-any-return]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        self._start()
        copy = self._copier()
        for doc in self._rows(self._full(), PREFETCH):
            yield copy(doc)

    def collect(self) -> list[dict[str, Any]]:
        self._start()
        copy = self._copier()
        return [copy(d) for d in self._rows(self._full(), 256)]

    def take(self, n: int) -> list[dict[str, Any]]:
        count: Any = n
        if type(count) is float and count.is_integer():
            count = int(count)
        if (type(count) is not int and type(count) is not Int64) or count < 0:
            raise ConvexLabError(f"take() requires a non-negative integer; got {n!r}.",
                                 code="InvalidQuery")
        n = int(count)
        self._add_operator()
        self._start()
        if n == 0 or self._missing_table(self._full()):
            return []
        copy = self._copier()
        assert self._table is not None  # _missing_table() returned False
        if not self._filters:  # one fetch of exactly n: the read set is exactly what is returned
            scan = self._db._tx.scan(self._table, self._index, self._full(),
                                     reverse=self._order == "desc")
            return scan.fetch(n, copy)
        out = []
        for doc in self._rows(self._full(), n):
            out.append(copy(doc))
            if len(out) >= n:
                break
        return out

    def first(self) -> dict[str, Any] | None:
        got = self.take(1)
        return got[0] if got else None

    def unique(self) -> dict[str, Any] | None:
        got = self.take(2)
        if len(got) > 1:
            ids = ", ".join(d["_id"] for d in got)
            raise ConvexLabError(
                f"unique() query returned more than one result from table {self._table_name}:\n"
                f" [{ids}, ...]", code="UniqueQueryFailed")
        return got[0] if got else None

    # Pagination ----------------------------------------------------------------------------
    def _fingerprint(self) -> str:
        desc = {
            "t": self._table_name,
            "i": self._index,
            "r": self._range.describe() if self._range is not None else [],
            "o": self._order or "asc",
            "f": [json.dumps(f.to_json(), sort_keys=True) for f in self._filters],
        }
        return hashlib.sha256(json.dumps(desc, sort_keys=True).encode()).hexdigest()[:24]

    def _cursor(self, key: Key | None, fingerprint: str) -> str:
        body = {"p": _encode_key(key) if key is not None else None, "q": fingerprint}
        return base64.urlsafe_b64encode(json.dumps(body, separators=(",", ":")).encode()).decode()

    def _parse_cursor(self, cursor: Any, fingerprint: str, what: str) -> tuple[bool, Key | None]:
        """(is_end, key) of a cursor; InvalidCursor if it belongs to another query."""
        try:
            body = json.loads(base64.urlsafe_b64decode(cursor.encode()))
            if body["q"] != fingerprint:
                raise ValueError("fingerprint")
            p = body["p"]
            return (p is None, None if p is None else _decode_key(p))
        except Exception:  # noqa: BLE001 (any malformed cursor is simply invalid)
            raise InvalidCursorError(
                f"InvalidCursor: the {what} does not belong to this query (it came from a "
                "different query, different arguments, or was altered). Start again with "
                "cursor=None.") from None

    def paginate(self, opts: dict[str, Any]) -> dict[str, Any]:
        """One page: ``{page, isDone, continueCursor, splitCursor, pageStatus}``."""
        if not isinstance(opts, dict):
            raise ConvexLabError("paginate() takes pagination options: "
                                 '{"numItems": 10, "cursor": None}.', code="InvalidQuery")
        self._db._note_paginate()
        self._start()
        num_items = opts.get("numItems")
        cursor = opts.get("cursor")
        end_cursor = opts.get("endCursor")
        max_rows = opts.get("maximumRowsRead")
        if end_cursor is None and (not isinstance(num_items, int | float) or num_items < 1):
            raise ConvexLabError(
                f"Must request at least 1 document while paginating (numItems={num_items!r}).",
                code="InvalidQuery")
        if end_cursor is None and num_items > MAX_DOCS_READ:  # type: ignore[operator]
            raise ConvexLabError(f"numItems may be at most {MAX_DOCS_READ}.", code="InvalidQuery")
        if max_rows is not None and max_rows <= 0:
            raise ConvexLabError("maximumRowsRead must be > 0.", code="InvalidQuery")
        fp = self._fingerprint()
        reverse = self._order == "desc"
        full = self._full()
        lo, hi = full.lo, full.hi
        if cursor is not None:
            is_end, key = self._parse_cursor(cursor, fp, "cursor")
            if is_end:
                return {"page": [], "isDone": True, "continueCursor": self._cursor(None, fp),
                        "splitCursor": None, "pageStatus": None}
            assert key is not None
            if reverse:
                hi = min(hi, key)
            else:
                lo = max(lo, key + KEY_AFTER)
        end_key: Key | None = None
        if end_cursor is not None:
            end_is_end, end_key = self._parse_cursor(end_cursor, fp, "endCursor")
            if not end_is_end:
                assert end_key is not None
                if reverse:
                    lo = max(lo, end_key)
                else:
                    hi = min(hi, end_key + KEY_AFTER)
        page: list[dict[str, Any]] = []
        last_key: Key | None = None
        copy = self._copier()
        rows_read = 0
        exhausted = False
        status: str | None = None
        if lo < hi and not self._missing_table(Interval(lo, hi)):
            assert self._table is not None
            scan = self._db._tx.scan(self._table, self._index, Interval(lo, hi), reverse=reverse)
            limit = None if end_cursor is not None else int(num_items)  # type: ignore[arg-type]
            while not exhausted:
                want = PREFETCH if limit is None else max(1, limit - len(page))
                if max_rows is not None and end_cursor is None:
                    want = min(want, int(max_rows) - rows_read)
                rows = scan.fetch(want)
                rows_read += len(rows)
                if rows:
                    last_key = scan.last_key
                for doc in rows:
                    if all(f.matches(doc) for f in self._filters):
                        page.append(copy(doc))
                exhausted = scan.done
                if limit is not None and len(page) >= limit:
                    break
                if max_rows is not None and end_cursor is None and rows_read >= max_rows:
                    if not exhausted:
                        status = "SplitRequired"
                    break
        else:
            exhausted = True
        if end_cursor is not None:
            continue_cursor = end_cursor
            is_done = end_key is None
        elif exhausted:
            continue_cursor, is_done = self._cursor(None, fp), True
        else:
            assert last_key is not None
            continue_cursor, is_done = self._cursor(last_key, fp), False
        split = None
        if status is None and (rows_read > 0.75 * min(max_rows or MAX_DOCS_READ, MAX_DOCS_READ)
                               or len(page) > 6144):
            status = "SplitRecommended"
        if status is not None and len(page) > 2:
            mid = page[len(page) // 2 - 1]
            split = self._cursor(self._spec().key(mid), fp)
        return {"page": page, "isDone": is_done, "continueCursor": continue_cursor,
                "splitCursor": split, "pageStatus": status}


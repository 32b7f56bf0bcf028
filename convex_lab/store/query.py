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
``endCursor`` the page is exactly ``(cursor, endCursor]``; a live query's later runs get the end
of their first page from the execution's journal (``database.QueryJournal``), so a live page
keeps its boundaries without anything added to the function's arguments.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import math
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from convex_lab.errors import ConvexLabError, InvalidCursorError, InvalidIndexRangeError
from convex_lab.store.keys import KEY_AFTER, IndexRangeBuilder, IndexSpec, Interval, Key, full_range
from convex_lab.store.transaction import MAX_DOCS_READ
from convex_lab.values import NOT_NUMPY, format_value, from_numpy, safe_repr

if TYPE_CHECKING:
    from convex_lab.store.database import DatabaseReader
    from convex_lab.store.filters import Expr
    from convex_lab.store.search_query import SearchQuery
    from convex_lab.store.tables import TableData

MAX_QUERY_OPERATORS = 256
PREFETCH = 100
# Our cursors are a few hundred bytes (an index key and a fingerprint); index keys are bounded by
# the 1 MiB document size, so anything longer than this is not a cursor we made.
_MAX_CURSOR_LEN = 4 << 20
# Counts past this many documents or bytes read are all "no limit" in a transaction (its read
# limits are 32,000 documents and 16 MiB): capped so huge ints never reach list slicing.
_MAX_COUNT = 1 << 40
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
        if tag == "f" and type(value) is str:
            return float.fromhex(value)
        if tag == "b" and type(value) is str:
            return base64.b64decode(value, validate=True)
        if tag == "t" and type(value) is bool:
            return value
        if tag == "i" and type(value) is str and len(value) <= 40:
            return int(value)
        raise ValueError(tag)
    if type(data) is str:
        return data
    raise ValueError(data)


# The slots that follow each type rank in a ``values.sort_key`` (see its module docstring):
# undefined and null have none; int64, boolean, string and bytes one; float64 two (the value and
# a tie-break for -0.0 and NaN payloads); arrays and objects one nested tuple.
_SLOT_TYPES: dict[int, tuple[type, ...]] = {
    0: (), 1: (), 2: (int,), 3: (float, int), 4: (bool,), 5: (str,), 6: (bytes,),
}


def _value_end(parts: tuple[Any, ...], i: int, depth: int) -> int:
    """Where the sort key of one value that starts at ``parts[i]`` ends; ``ValueError`` if the
    parts are not a well-formed sort key (so every comparison with real keys works)."""
    rank = parts[i]
    if type(rank) is not int or depth > 64:
        raise ValueError("bad rank")
    if rank in _SLOT_TYPES:
        slots = _SLOT_TYPES[rank]
        for j, want in enumerate(slots, i + 1):
            if j >= len(parts) or type(parts[j]) is not want:
                raise ValueError("bad slot")
        return i + 1 + len(slots)
    if rank not in (7, 8) or i + 1 >= len(parts) or type(parts[i + 1]) is not tuple:
        raise ValueError("bad container")
    inner, k = parts[i + 1], 0
    while k < len(inner):
        if rank == 8:  # objects: (field name, value key) pairs
            if type(inner[k]) is not str:
                raise ValueError("bad field name")
            k += 1
        k = _value_end(inner, k, depth + 1)
    return i + 2


def _check_key(spec: IndexSpec, key: Any) -> None:
    """``ValueError`` unless ``key`` has the shape of a key of index ``spec`` (keys.py): one sort
    key per user field, then ``_creationTime`` and ``_id`` (``by_id``: the ID alone)."""
    if type(key) is not tuple:
        raise ValueError("not a key")
    i = 0
    if spec.kind == "user":
        for _ in spec.fields:
            if i >= len(key):
                raise ValueError("short key")
            i = _value_end(key, i, 0)
    tail = (str,) if spec.kind == "by_id" else (float, str)
    if tuple(type(x) for x in key[i:]) != tail:
        raise ValueError("bad system fields")


def _page_count(opts: dict[str, Any], name: str, *, required: bool = False) -> int | None:
    """``opts[name]`` as a count of documents (or bytes) ≥ 1, ``None`` when absent (and not
    ``required``).

    Convex sends these as unsigned integers (``usize``): NaN, infinities, fractions, negative
    numbers and non-numbers are rejected with one clear message instead of failing later (a
    fractional ``maximumRowsRead`` once made the page loop forever). ``0`` gets Convex's own texts.
    """
    value = opts.get(name)
    if value is None and not required:
        return None
    plain = from_numpy(value)
    number = value if plain is NOT_NUMPY else plain
    if isinstance(number, float) and math.isfinite(number) and number.is_integer():
        number = int(number)
    if isinstance(number, bool) or not isinstance(number, int) or number < 0:
        what = "number of documents" if name != "maximumBytesRead" else "number of bytes"
        raise ConvexLabError(
            f"`options.{name}` must be a positive whole {what}. Received `{format_value(value)}`. "
            'Example: ctx.db.query(...).paginate({"numItems": 10, "cursor": None}).',
            code="InvalidPaginationOptions")
    if number == 0:
        if name == "numItems":
            raise ConvexLabError("Must request at least 1 document while paginating",
                                 code="NoDocumentsForPagination")
        raise ConvexLabError("maximumRowsRead and maximumBytesRead must be greater than 0",
                             code="InvalidPaginationLimit")
    return min(int(number), _MAX_COUNT)


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
        # The annotations say what callers should pass; what arrives is checked (issue 7).
        name: object = index_name
        fn: object = range_fn
        spec = self._specs.get(name) if isinstance(name, str) else None
        if spec is None:
            names = ", ".join(sorted(self._specs))
            shown = name if isinstance(name, str) else safe_repr(name)
            raise InvalidIndexRangeError(
                f"Index {self._table_name}.{shown[:80]} not found. This table's indexes are: "
                f"{names}. Declare it in the schema with define_table(...).index(...).",
                code="IndexNotFound")
        if fn is not None and not callable(fn):
            raise InvalidIndexRangeError(
                "with_index() takes an index name and a function of the range builder, e.g. "
                "with_index('by_channel', lambda q: q.eq('channel', c)); got "
                f"{safe_repr(range_fn)} as the range.", code="InvalidIndexRange")
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

    def with_search_index(self, index_name: str,
                          search_fn: Callable[[Any], Any]) -> SearchQuery:
        """A full-text query over search index ``index_name`` (``store/search_query.py``)."""
        from convex_lab.store.search_query import (  # noqa: PLC0415 (loads numpy)
            SearchFilterBuilder,
            SearchQuery,
            compile_search,
        )

        if self._stage >= 1 or self._filters:
            raise ConvexLabError(
                "with_search_index() must come first, right after db.query(table), and only once.",
                code="InvalidQuery")
        schema = self._db._tx.schema
        table_def = schema.table(self._table_name) if schema is not None else None
        definition = (table_def.search_indexes.get(index_name)
                      if table_def is not None and isinstance(index_name, str) else None)
        if definition is None:
            names = ", ".join(sorted(table_def.search_indexes)) if table_def is not None else ""
            raise InvalidIndexRangeError(
                f"Search index {self._table_name}.{safe_repr(index_name)[:80]} not found. This "
                f"table's search indexes are: {names or '(none)'}. Declare it in the schema with "
                "define_table(...).search_index(name, search_field=..., filter_fields=[...]).",
                code="IndexNotFound")
        if not callable(search_fn):
            raise InvalidIndexRangeError(
                "with_search_index() takes an index name and a function of the search filter "
                "builder, e.g. with_search_index('search_body', lambda q: q.search('body', "
                f"text)); got {safe_repr(search_fn)}.", code="InvalidSearchQuery")
        builder = SearchFilterBuilder(self._convert)
        if search_fn(builder) is not builder:
            raise InvalidIndexRangeError(
                "The with_search_index function must return the search filter builder: "
                "lambda q: q.search('body', text).eq('channel', c).", code="InvalidSearchQuery")
        query, read = compile_search(self._table_name, index_name, definition, builder)
        self._stage = 3  # this builder is used up: the search query carries on
        return SearchQuery(self._db, self._table_name, self._table, index_name=index_name,
                           query=query, read=read, filter_builder=self._filter_builder)

    def order(self, order: str) -> Query:
        if self._stage >= 3:
            raise ConvexLabError(_CONSUMED, code="QueryConsumed")
        if self._order is not None:
            raise ConvexLabError("order() may be called at most once per query.",
                                 code="InvalidQuery")
        given: object = order
        if not isinstance(given, str) or given not in ("asc", "desc"):
            raise ConvexLabError(f'order() takes "asc" or "desc", not {safe_repr(given)}.',
                                 code="InvalidQuery")
        self._order = str(given)
        self._stage = 2
        return self

    def filter(self, predicate: Callable[[Any], Expr]) -> Query:
        if self._stage >= 3:
            raise ConvexLabError(_CONSUMED, code="QueryConsumed")
        checked: object = predicate
        if not callable(checked):
            raise ConvexLabError(
                "filter() takes a function of the filter builder, e.g. "
                f"lambda q: q.eq(q.field('done'), False); got {safe_repr(predicate)}.",
                code="InvalidQuery")
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

    def _copies(self, originals: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Copies of stored documents for user code. Shallow copies are remembered with their
        originals, so a result made of them needs no conversion (``store/handout.py``)."""
        copy = self._copier()
        if copy is dict:
            out = list(map(dict, originals))
            self._db._tx.hand_out(out, originals)
            return out
        return list(map(copy, originals))

    def collect(self) -> list[dict[str, Any]]:
        self._start()
        return self._copies(list(self._rows(self._full(), 256)))

    def take(self, n: int) -> list[dict[str, Any]]:
        """The first ``n`` documents (``n`` a whole number ≥ 0: an int, ``Int64``, a float such
        as ``10.0`` or a numpy integer)."""
        if type(n) is not int or n < 0:  # the common case first: a plain non-negative int
            count: Any = n
            plain = from_numpy(count)
            if plain is not NOT_NUMPY:
                count = plain
            if isinstance(count, float) and count.is_integer():
                count = int(count)
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise ConvexLabError(
                    f"take() requires a non-negative integer; got {safe_repr(n)}.",
                    code="InvalidQuery")
            n = int(count)
        # Reading more than the transaction's read limit fails anyway (TooManyDocumentsRead),
        # so a larger n reads the same: the cap keeps arbitrarily large ints out of islice().
        n = min(n, MAX_DOCS_READ + 1)
        self._add_operator()
        self._start()
        if n == 0 or self._missing_table(self._full()):
            return []
        assert self._table is not None  # _missing_table() returned False
        if not self._filters:  # one fetch of exactly n: the read set is exactly what is returned
            scan = self._db._tx.scan(self._table, self._index, self._full(),
                                     reverse=self._order == "desc")
            return self._copies(scan.fetch(n))
        return self._copies(list(itertools.islice(self._rows(self._full(), n), n)))

    def first(self) -> dict[str, Any] | None:
        return self._one(self.take(1))

    def _one(self, got: list[dict[str, Any]]) -> dict[str, Any] | None:
        """The first of ``got`` (copies ``take`` handed out), remembered on its own too."""
        if not got:
            return None
        handed = self._db._tx.handed
        if handed is not None:
            handed.also_one(got)
        return got[0]

    def unique(self) -> dict[str, Any] | None:
        got = self.take(2)
        if len(got) > 1:
            ids = ", ".join(d["_id"] for d in got)
            raise ConvexLabError(
                f"unique() query returned more than one result from table {self._table_name}:\n"
                f" [{ids}, ...]", code="UniqueQueryFailed")
        return self._one(got)

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
        """(is_end, key) of a cursor; InvalidCursor if it belongs to another query, or is not a
        cursor at all. Cursors reach clients and come back from them, so anything may arrive:
        a position is only used once it has the exact shape of a key of this query's index."""
        try:
            if type(cursor) is not str or len(cursor) > _MAX_CURSOR_LEN:
                raise ValueError("not a cursor string")
            body = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))
            if type(body) is not dict or body.get("q") != fingerprint:
                raise ValueError("fingerprint")
            p = body["p"]
            if p is None:
                return True, None
            key = _decode_key(p)
            _check_key(self._spec(), key)
            return False, key
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
        num_items = _page_count(opts, "numItems", required=opts.get("endCursor") is None)
        max_rows = _page_count(opts, "maximumRowsRead")
        _page_count(opts, "maximumBytesRead")  # checked as Convex does; not enforced here
        journaled = self._db._note_paginate()
        self._start()
        cursor = opts.get("cursor")
        end_cursor = opts.get("endCursor")
        # A live query's later runs read up to where its first run ended (the query journal,
        # reference §4.5); an endCursor in the options wins, as in Convex.
        end_what = "endCursor"
        if end_cursor is None and journaled is not None:
            end_cursor, end_what = journaled, "page end this live query recorded"
        if end_cursor is None and num_items is not None and num_items > MAX_DOCS_READ:
            raise ConvexLabError(f"numItems may be at most {MAX_DOCS_READ}.", code="InvalidQuery")
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
            end_is_end, end_key = self._parse_cursor(end_cursor, fp, end_what)
            if not end_is_end:
                assert end_key is not None
                if reverse:
                    lo = max(lo, end_key)
                else:
                    hi = min(hi, end_key + KEY_AFTER)
        page: list[dict[str, Any]] = []
        read: list[dict[str, Any]] = []  # every row the walk returned, filtered out or not
        last_key: Key | None = None
        rows_read = 0
        exhausted = False
        status: str | None = None
        if lo < hi and not self._missing_table(Interval(lo, hi)):
            assert self._table is not None
            scan = self._db._tx.scan(self._table, self._index, Interval(lo, hi), reverse=reverse)
            limit = None if end_cursor is not None else num_items
            while not exhausted:
                want = PREFETCH if limit is None else max(1, limit - len(page))
                if max_rows is not None and end_cursor is None:
                    want = min(want, max_rows - rows_read)
                rows = scan.fetch(want)
                rows_read += len(rows)
                read += rows
                if rows:
                    last_key = scan.last_key
                for doc in rows:
                    if all(f.matches(doc) for f in self._filters):
                        page.append(doc)
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
        if rows_read > 2:
            # Convex computes it for every reactive page, from the rows the walk read
            # (BE: index_range.rs split_cursor_position); a client splits a page with it when
            # the page grew too large or pageStatus asks for it.
            split = self._cursor(self._spec().key(read[rows_read // 2]), fp)
        self._db.page_end = continue_cursor  # the journal's entry for this execution
        result = {"page": self._copies(page), "isDone": is_done,
                  "continueCursor": continue_cursor, "splitCursor": split, "pageStatus": status}
        handed = self._db._tx.handed
        if handed is not None and handed.unchanged(result["page"]):
            handed.page(result)  # strings, booleans and None besides the page: canonical
        return result


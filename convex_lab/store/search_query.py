"""Full-text queries (``with_search_index``) and vector searches, with Convex's rules.

Full text (reference §10): ``db.query(t).with_search_index(name, lambda q: q.search(field,
text).eq(f, v)...)`` then ``.filter(...)`` and ``collect/take/first/unique/paginate`` or
iteration. Exactly one ``search`` on the index's search field, at most 8 ``eq`` on its filter
fields, with Convex's error names (``MissingSearchFilterError``, ``DuplicateSearchFiltersError``,
``IncorrectSearchField``, ``IncorrectFilterFieldError``,
``TooManyFilterConditionsInSearchQueryError``). Results are the best 1,024 candidates by BM25
relevance, then newest first; reading past them raises ``SearchQueryScannedTooManyDocumentsError``.
The search runs at the transaction's snapshot with its own writes (``Transaction.overlay``) and
records a :class:`~convex_lab.store.readset.SearchRead`, so OCC and live queries follow it.

Vector (reference §11): :func:`vector_search` backs ``ctx.vector_search`` in actions: at the
latest visible snapshot, cosine similarity, limit 1..256, ``eq``/``or_`` filters over declared
filter fields (at most 64 values).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Final

from convex_lab.errors import ConvexLabError, InvalidCursorError, InvalidIndexRangeError
from convex_lab.store.readset import SearchRead
from convex_lab.store.text_index import MAX_CANDIDATES, TextQuery
from convex_lab.store.text_tokens import query_terms
from convex_lab.values import UNDEFINED, safe_repr, sort_key

if TYPE_CHECKING:
    from convex_lab.store.database import DatabaseReader
    from convex_lab.store.engine import Store
    from convex_lab.store.filters import Expr
    from convex_lab.store.tables import TableData

MAX_FILTER_CONDITIONS: Final = 8
MAX_VECTOR_RESULTS: Final = 256
MAX_VECTOR_FILTER_VALUES: Final = 64
_TOO_MANY = ("Search query scanned too many documents (fetched {n}). Consider using a smaller "
             "limit, paginating the query, or using a filter field to limit the number of "
             "documents pulled from the search index.")


class SearchFilterBuilder:
    """The ``q`` of ``with_search_index(name, lambda q: q.search(field, text).eq(f, v))``."""

    __slots__ = ("_convert", "filters")

    def __init__(self, convert: Callable[[str, Any], Any] | None) -> None:
        self._convert = convert
        self.filters: list[tuple[str, str, Any]] = []  # ("search" | "eq", field, value)

    def search(self, field: str, text: str) -> SearchFilterBuilder:
        """Match documents whose ``field`` (the index's search field) contains ``text``'s terms."""
        given: tuple[object, object] = (field, text)
        if not isinstance(given[0], str) or not isinstance(given[1], str):
            raise ConvexLabError(
                "q.search() takes the search field's name and the text to search for, both "
                f"strings: q.search('body', 'hello'); got {safe_repr(field)}, {safe_repr(text)}.",
                code="InvalidSearchQuery")
        self.filters.append(("search", field, text))
        return self

    def eq(self, field: str, value: Any) -> SearchFilterBuilder:
        """Keep documents whose filter field ``field`` equals ``value`` (``UNDEFINED``: missing)."""
        name: object = field
        if not isinstance(name, str):
            raise ConvexLabError(
                f"q.eq() takes a filter field's name first; got {safe_repr(field)}.",
                code="InvalidSearchQuery")
        if value is not UNDEFINED:
            value = self._convert(field, value) if self._convert is not None else value
        self.filters.append(("eq", field, value))
        return self


def compile_search(table_name: str, index_name: str, definition: dict[str, Any],
                   builder: SearchFilterBuilder) -> tuple[TextQuery, SearchRead]:
    """The query and read of a search filter, checked as Convex checks it."""
    printable = f"{table_name}.{index_name}"
    search_field = definition["search_field"]
    filter_fields: list[str] = list(definition.get("filter_fields", ()))
    text: str | None = None
    filters: list[tuple[int, Any]] = []
    read_filters: dict[str, Any] = {}
    for kind, field, value in builder.filters:
        if kind == "search":
            if field != search_field:
                raise ConvexLabError(
                    f"Search query against {printable} contains a search filter against "
                    f"{field!r}, which doesn't match the indexed `searchField` {search_field!r}.",
                    code="IncorrectSearchField")
            if text is not None:
                raise ConvexLabError(
                    f"Search query against {printable} contains multiple search filters against "
                    f"{field!r}. Only one is allowed.", code="DuplicateSearchFiltersError")
            text = value
            continue
        if field not in filter_fields:
            raise ConvexLabError(
                f"Search query against {printable} contains an equality filter on {field!r} but "
                "that field isn't indexed for filtering in `filterFields`.",
                code="IncorrectFilterFieldError")
        key = sort_key(value)
        filters.append((filter_fields.index(field), key))
        read_filters[field] = key
    if text is None:
        raise ConvexLabError(
            f"Search query against {printable} does not contain any search filters. You must "
            f"include a search filter like `q.search({search_field!r}, searchText)`.",
            code="MissingSearchFilterError")
    if len(filters) > MAX_FILTER_CONDITIONS:
        raise ConvexLabError(
            f"Search query against {printable} has too many filter conditions. Max: "
            f"{MAX_FILTER_CONDITIONS} Actual: {len(filters)}",
            code="TooManyFilterConditionsInSearchQueryError")
    terms = query_terms(text)
    first = next((key for position, key in filters if position == 0), None)
    read = SearchRead(table_name, index_name, terms, read_filters, first)
    return TextQuery(terms, filters), read


class SearchQuery:
    """A query over a search index: ``filter`` then ``collect/take/first/unique/paginate`` or
    iteration (no ``order``: results come by relevance). Single use, like every query."""

    def __init__(self, db: DatabaseReader, table_name: str, table: TableData | None, *,
                 index_name: str, query: TextQuery, read: SearchRead,
                 filter_builder: Callable[[], Any]) -> None:
        self._db = db
        self._table_name = table_name
        self._table = table
        self._index = index_name
        self._query = query
        self._read = read
        self._filter_builder = filter_builder
        self._filters: list[Expr] = []
        self._consumed = False

    def order(self, order: str) -> SearchQuery:
        raise ConvexLabError(
            "Search queries are ordered by relevance: order() is not available after "
            "with_search_index(). Sort the results in your function if you need another order.",
            code="InvalidQuery")

    def filter(self, predicate: Callable[[Any], Expr]) -> SearchQuery:
        """Keep results for which ``predicate(q)`` holds (documents filtered out still count as
        read, as in Convex)."""
        self._check_open()
        from convex_lab.store.filters import Expr  # noqa: PLC0415 (filters imports query)

        if not callable(predicate):
            raise ConvexLabError("filter() takes a function of the filter builder, e.g. "
                                 "lambda q: q.eq(q.field('done'), False).", code="InvalidQuery")
        expr = predicate(self._filter_builder())
        if not isinstance(expr, Expr):
            raise ConvexLabError(
                "filter() takes a function of the filter builder returning an expression, e.g. "
                f"lambda q: q.eq(q.field('done'), False); got {type(expr).__name__}.",
                code="InvalidQuery")
        self._filters.append(expr)
        return self

    def _check_open(self) -> None:
        if self._consumed:
            raise ConvexLabError(
                "A query can only be chained once and can't be chained after iteration begins. "
                "Build a new query with ctx.db.query(...).", code="QueryConsumed")

    # Running --------------------------------------------------------------------------------
    def _candidates(self, limit: int) -> list[tuple[tuple[float, float, str], dict[str, Any]]]:
        """The best ``limit`` results at this transaction's snapshot (stored dicts), recorded
        as a search read."""
        self._check_open()
        self._consumed = True
        tx = self._db._tx
        tx.reads.add(self._read)
        tx._count_interval()
        table = self._table
        if table is None:
            return []
        with tx.store.lock:
            index = table.search.get(self._index)
            if index is None:  # the schema changed under this transaction: it will conflict
                return []
            return index.search(self._query, tx.overlay(table), table.docs, limit)

    def _stream(self, limit: int) -> Iterator[tuple[tuple[float, float, str], dict[str, Any]]]:
        """Results passing the filters, counting every candidate read; raises past 1,024."""
        got = self._candidates(limit)
        table = self._table
        tx = self._db._tx
        filters = self._filters
        for i, (key, doc) in enumerate(got):
            assert table is not None
            tx._count_read(table, doc)
            if not filters or all(f.matches(doc) for f in filters):
                yield key, doc
            if i + 1 == MAX_CANDIDATES:
                raise ConvexLabError(_TOO_MANY.format(n=MAX_CANDIDATES),
                                     code="SearchQueryScannedTooManyDocumentsError")

    def _copies(self, originals: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if self._table is None:
            return []
        tx = self._db._tx
        copy = tx.copier(self._table)
        if copy is dict:
            out = list(map(dict, originals))
            tx.hand_out(out, originals)
            return out
        return list(map(copy, originals))

    def __iter__(self) -> Iterator[dict[str, Any]]:
        copy = self._db._tx.copier(self._table) if self._table is not None else dict
        for _, doc in self._stream(MAX_CANDIDATES):
            yield copy(doc)

    def collect(self) -> list[dict[str, Any]]:
        return self._copies([doc for _, doc in self._stream(MAX_CANDIDATES)])

    def take(self, n: int) -> list[dict[str, Any]]:
        count: object = n
        if isinstance(count, float) and count.is_integer():
            count = int(count)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ConvexLabError(f"take() requires a non-negative integer; got {safe_repr(n)}.",
                                 code="InvalidQuery")
        n = int(count)
        if n == 0:
            self._candidates(0)
            return []
        limit = MAX_CANDIDATES if self._filters else min(n, MAX_CANDIDATES)
        out = []
        for _, doc in self._stream(limit):
            out.append(doc)
            if len(out) >= n:
                break
        return self._copies(out)

    def first(self) -> dict[str, Any] | None:
        got = self.take(1)
        return got[0] if got else None

    def unique(self) -> dict[str, Any] | None:
        got = self.take(2)
        if len(got) > 1:
            raise ConvexLabError(
                f"unique() query returned more than one result from table {self._table_name}:\n"
                f" [{got[0]['_id']}, {got[1]['_id']}, ...]", code="UniqueQueryFailed")
        return got[0] if got else None

    # Pagination -----------------------------------------------------------------------------
    def _fingerprint(self) -> str:
        desc = [self._table_name, self._index, self._query.terms,
                [[p, repr(k)] for p, k in self._query.filters],
                [json.dumps(f.to_json(), sort_keys=True) for f in self._filters]]
        return hashlib.sha256(json.dumps(desc).encode()).hexdigest()[:24]

    @staticmethod
    def _cursor(key: tuple[float, float, str] | None, fingerprint: str) -> str:
        pos = None if key is None else [key[0].hex(), key[1].hex(), key[2]]
        body = json.dumps({"p": pos, "q": fingerprint}, separators=(",", ":"))
        return base64.urlsafe_b64encode(body.encode()).decode()

    @staticmethod
    def _parse(cursor: Any, fingerprint: str, what: str) -> tuple[bool, Any]:
        try:
            if type(cursor) is not str or len(cursor) > 4096:
                raise ValueError("not a cursor")
            body = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))
            if type(body) is not dict or body.get("q") != fingerprint:
                raise ValueError("fingerprint")
            pos = body["p"]
            if pos is None:
                return True, None
            score, ct, doc_id = pos
            if type(doc_id) is not str:
                raise ValueError("id")
            return False, (float.fromhex(score), float.fromhex(ct), doc_id)
        except Exception:  # noqa: BLE001 (any malformed cursor is simply invalid)
            raise InvalidCursorError(
                f"InvalidCursor: the {what} does not belong to this query (it came from a "
                "different query, different arguments, or was altered). Start again with "
                "cursor=None.") from None

    def paginate(self, opts: dict[str, Any]) -> dict[str, Any]:
        """One page of results in relevance order: ``{page, isDone, continueCursor, ...}``
        (cursors are positions in that order; ``endCursor`` fixes a page's end)."""
        from convex_lab.store.query import _page_count  # noqa: PLC0415 (query imports us)

        if not isinstance(opts, dict):
            raise ConvexLabError("paginate() takes pagination options: "
                                 '{"numItems": 10, "cursor": None}.', code="InvalidQuery")
        num_items = _page_count(opts, "numItems", required=opts.get("endCursor") is None)
        journaled = self._db._note_paginate()
        fp = self._fingerprint()
        end_cursor = opts.get("endCursor")
        if end_cursor is None and journaled is not None:  # a live page keeps its end
            end_cursor = journaled
        start_done, start = (False, None)
        if opts.get("cursor") is not None:
            start_done, start = self._parse(opts["cursor"], fp, "cursor")
        end_key = None
        if end_cursor is not None:
            _, end_key = self._parse(end_cursor, fp, "endCursor")
        if start_done:
            self._candidates(0)
            return {"page": [], "isDone": True, "continueCursor": self._cursor(None, fp),
                    "splitCursor": None, "pageStatus": None}
        page: list[dict[str, Any]] = []
        last: tuple[float, float, str] | None = None
        exhausted = True
        for key, doc in self._stream(MAX_CANDIDATES):
            if start is not None and key <= start:
                continue
            if end_key is not None and key > end_key:
                break
            page.append(doc)
            last = key
            if end_cursor is None and num_items is not None and len(page) >= num_items:
                exhausted = False
                break
        if end_cursor is not None:
            cont, done = end_cursor, end_key is None
        elif exhausted:
            cont, done = self._cursor(None, fp), True
        else:
            cont, done = self._cursor(last, fp), False
        self._db.page_end = cont  # the live-query journal's entry for this execution
        return {"page": self._copies(page), "isDone": done, "continueCursor": cont,
                "splitCursor": None, "pageStatus": None}


# Vector search ----------------------------------------------------------------------------------


class VectorFilter:
    """One vector-search filter expression: an ``eq`` or an ``or_`` of them (``a | b`` too)."""

    __slots__ = ("terms",)

    def __init__(self, terms: list[tuple[str, Any]]) -> None:
        self.terms = terms  # (field, value) pairs, any of which may match

    def __or__(self, other: VectorFilter) -> VectorFilter:
        if not isinstance(other, VectorFilter):
            return NotImplemented
        return VectorFilter(self.terms + other.terms)


class VectorFilterBuilder:
    """The ``q`` of ``ctx.vector_search(..., filter=lambda q: q.eq(f, v))``: ``eq`` and
    ``or_`` only, as in Convex."""

    def eq(self, field: str, value: Any) -> VectorFilter:
        name: object = field
        if not isinstance(name, str):
            raise ConvexLabError(
                "`q.eq` must take a field path as its first argument and a value as its second",
                code="InvalidVectorSearchFilter")
        if value is not UNDEFINED:
            from convex_lab.values import convert  # noqa: PLC0415

            value = convert(value)
        return VectorFilter([(field, value)])

    def or_(self, *exprs: VectorFilter) -> VectorFilter:
        terms: list[tuple[str, Any]] = []
        for e in exprs:
            if not isinstance(e, VectorFilter):
                raise ConvexLabError("Filters should be a combination of `q.eq` and `q.or_`.",
                                     code="InvalidVectorSearchFilter")
            terms += e.terms
        return VectorFilter(terms)

    def __getattr__(self, name: str) -> Any:
        raise ConvexLabError(
            f"Vector search filters support q.eq and q.or_ only (not q.{name}). Filter further "
            "on the documents you fetch with ctx.run_query.", code="InvalidVectorSearchFilter")


def _query_vector(vector: Any, dimensions: int) -> Any:
    import numpy as np  # noqa: PLC0415

    from convex_lab.store.vector_index import normalise  # noqa: PLC0415

    if isinstance(vector, (str, bytes, dict)) or vector is None:
        raise ConvexLabError("`vector` must be a non-empty Array in vectorSearch",
                             code="InvalidVectorSearch")
    try:
        arr = np.asarray(vector, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConvexLabError("`vector` must be a non-empty array of numbers in vectorSearch; "
                             f"got {safe_repr(vector)}.", code="InvalidVectorSearch") from None
    if arr.ndim != 1 or len(arr) == 0:
        raise ConvexLabError("`vector` must be a non-empty Array in vectorSearch",
                             code="InvalidVectorSearch")
    if len(arr) != dimensions:
        raise ConvexLabError(
            f"Expected a vector with dimensions {dimensions}, received {len(arr)}.",
            code="VectorDimensionsMismatch")
    if not np.isfinite(arr).all():
        raise ConvexLabError("`vector` must hold finite numbers (no NaN or infinity).",
                             code="InvalidVectorSearch")
    return normalise(arr.astype(np.float32))


def vector_search(store: Store, table_name: str, index_name: str, *, vector: Any = None,
                  limit: Any = 10, filter: Any = None) -> list[dict[str, Any]]:
    """``ctx.vector_search``: ``[{"_id", "_score"}]`` of the ``limit`` documents most similar
    to ``vector`` (cosine), at the latest visible snapshot (reference §11)."""
    from convex_lab.ids import Id  # noqa: PLC0415

    printable = f"{safe_repr(table_name)}.{safe_repr(index_name)}"
    schema = store.schema
    table_def = schema.table(table_name) if schema is not None and isinstance(
        table_name, str) else None
    definition = (table_def.vector_indexes.get(index_name)
                  if table_def is not None and isinstance(index_name, str) else None)
    if definition is None:
        raise InvalidIndexRangeError(
            f"Index {printable} not found. Declare it in the schema with "
            "define_table(...).vector_index(name, vector_field=..., dimensions=...).",
            code="IndexNotFound")
    printable = f"{table_name}.{index_name}"
    if limit is None:
        limit = 10
    if (isinstance(limit, bool) or not isinstance(limit, (int, float))
            or (isinstance(limit, float) and not limit.is_integer())):  # NaN, inf, 2.5
        raise ConvexLabError(f"limit must be an integer between 1 and {MAX_VECTOR_RESULTS}; "
                             f"got {safe_repr(limit)}.", code="InvalidVectorLimit")
    limit = int(limit)
    if limit > MAX_VECTOR_RESULTS:
        raise ConvexLabError(f"Vector queries can fetch at most {MAX_VECTOR_RESULTS} results, "
                             f"requested {limit}.", code="VectorLimitTooLargeError")
    if limit < 1:
        raise ConvexLabError(f"limit must be at least 1; got {limit}.",
                             code="InvalidVectorLimit")
    query = _query_vector(vector, definition["dimensions"])
    allowed = None
    if filter is not None:
        if not callable(filter):
            raise ConvexLabError("filter must be a function of the filter builder, e.g. "
                                 "filter=lambda q: q.eq('cuisine', 'french').",
                                 code="InvalidVectorSearchFilter")
        expr = filter(VectorFilterBuilder())
        if not isinstance(expr, VectorFilter):
            raise ConvexLabError("Filters should be a combination of `q.eq` and `q.or_`.",
                                 code="InvalidVectorSearchFilter")
        fields = list(definition.get("filter_fields", ()))
        by_field: dict[int, list[Any]] = {}
        for field, value in expr.terms:
            if field not in fields:
                raise ConvexLabError(
                    f"Vector query against {printable} contains a filter on {field!r} but that "
                    "field isn't indexed for filtering in `filterFields`.",
                    code="IncorrectVectorFilterField")
            keys = by_field.setdefault(fields.index(field), [])
            if sort_key(value) not in keys:
                keys.append(sort_key(value))
        count = sum(map(len, by_field.values()))
        if count > MAX_VECTOR_FILTER_VALUES:
            raise ConvexLabError(
                f"Vector query against {printable} has too many conditions. Max: "
                f"{MAX_VECTOR_FILTER_VALUES} Actual: {count}",
                code="TooManyElementsInVectorQueryError")
        allowed = list(by_field.items())
    tx = store.begin(read_only=True)
    try:
        with store.lock:
            table = store.tables.get(table_name)
            index = table.vectors.get(index_name) if table is not None else None
            if table is None or index is None:
                return []
            found = index.search(query, limit, allowed, tx.overlay(table))
    finally:
        tx.abort()
    return [{"_id": Id(doc_id, table_name), "_score": score} for score, doc_id in found]

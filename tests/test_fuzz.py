"""Property-based fuzzing of the public API with hostile input (issue 7).

Generated documents, arguments, index ranges, filters, pagination options, cursors and IDs are
thrown at a running :class:`convex_lab.Backend` over a DuckDB *file*, through an app whose
functions pass what they receive straight into ``ctx.db`` (tables with a flat schema, a nested
schema, and no schema). Two properties:

1. **Every failure is a convex_lab error** (``ConvexLabError`` or ``ConvexError``), never a bare
   ``TypeError``/``ValueError``/``RecursionError`` from inside the engine, and never a client
   ``ServerError`` (which is what a bare exception becomes for a client).
2. **Every acknowledged write survives a reopen**: a dict model records each document a call
   reported as written (read back inside the same mutation, so what was accepted could also be
   read and returned); after closing the backend, the file reopens with exactly those documents.

Values reach ``ctx.db`` two ways: through function arguments, sent by a client (converted like a
client's), and "computed in the handler" — taken raw from an in-process inbox by functions called
as the admin, so numpy arrays, sets, huge ints, self-referencing lists and other Python objects
reach ``ctx.db`` as they are.

The quick test runs by default; ``-m slow`` runs ten thousand examples and prints the counts.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import json
import math
import string
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import convex_lab as cl
from convex_lab import Int64, define_schema, define_table, v
from convex_lab.errors import ConvexError, ConvexLabError, ServerError
from convex_lab.values import UNDEFINED, convert_document, safe_repr, sort_key

# The fuzzer queries misspelt and odd table names on purpose: their warning is expected.
pytestmark = pytest.mark.filterwarnings("ignore::convex_lab.errors.UnknownTableWarning")

TABLES = ("flat", "nest", "free")  # flat schema (compiled builder), nested schema, no schema

SCHEMA = define_schema({
    "flat": define_table({"a": v.float64(), "s": v.optional(v.string()),
                          "i": v.optional(v.int64())})
    .index("by_a", ["a"]).index("by_s_a", ["s", "a"]),
    "nest": define_table({"x": v.optional(v.any()), "tags": v.optional(v.array(v.string())),
                          "o": v.optional(v.object({"y": v.optional(v.float64())}))})
    .index("by_x", ["x"]).index("by_o_y", ["o.y"]),
})
INDEXES = {"flat": ["by_a", "by_s_a"], "nest": ["by_x", "by_o_y"], "free": []}

# ---------------------------------------------------------------------------------------------
# The app: functions that hand their input to ctx.db as it is

app = cl.App(schema=SCHEMA)
INBOX: dict[str, Any] = {}  # "computed in the handler": raw Python objects, never converted


def _doc(ctx: Any, doc_id: Any) -> Any:
    return ctx.db.get(doc_id)


@app.mutation(name="fuzz:insert")
def insert(ctx: Any, table: Any = None, doc: Any = None, raw: bool = False) -> Any:
    if raw:
        table, doc = INBOX["table"], INBOX["doc"]
    doc_id = ctx.db.insert(table, doc)
    return {"id": doc_id, "doc": _doc(ctx, doc_id)}


@app.mutation(name="fuzz:insert_validated",
              args={"a": v.float64(), "s": v.optional(v.string()), "i": v.optional(v.int64())})
def insert_validated(ctx: Any, **fields: Any) -> Any:
    doc_id = ctx.db.insert("flat", fields)
    return {"id": doc_id, "doc": _doc(ctx, doc_id)}


@app.mutation(name="fuzz:update")
def update(ctx: Any, verb: Any = None, target: Any = None, fields: Any = None,
           raw: bool = False) -> Any:
    if raw:
        verb, target, fields = INBOX["verb"], INBOX["target"], INBOX["fields"]
    getattr(ctx.db, verb)(*target, fields)
    return _doc(ctx, target[-1])


@app.mutation(name="fuzz:delete")
def delete(ctx: Any) -> None:
    ctx.db.delete(*INBOX["target"])


@app.query(name="fuzz:get")
def get(ctx: Any) -> Any:
    return ctx.db.get(*INBOX["target"])


@app.query(name="fuzz:normalize")
def normalize(ctx: Any) -> Any:
    return ctx.db.normalize_id(INBOX["table"], INBOX["text"])


def _build_range(ops: list[tuple[str, Any, Any]]) -> Callable[[Any], Any]:
    def range_fn(q: Any) -> Any:
        for method, field, value in ops:
            q = getattr(q, method)(field, value)
        return q

    return range_fn


def _build_expr(q: Any, plan: Any) -> Any:
    kind = plan[0]
    if kind == "field":
        return q.field(plan[1])
    if kind == "lit":
        return plan[1]
    if kind in ("and_", "or_"):
        return getattr(q, kind)(*(_build_expr(q, p) for p in plan[1]))
    if kind in ("not_", "neg"):
        return getattr(q, kind)(_build_expr(q, plan[1]))
    return getattr(q, kind)(_build_expr(q, plan[1]), _build_expr(q, plan[2]))


@app.query(name="fuzz:query")
def run_query(ctx: Any) -> Any:
    spec = INBOX["query"]
    query = ctx.db.query(spec["table"])
    if spec["index"] is not None:
        query = query.with_index(spec["index"], spec["range"])
    if spec["order"] is not None:
        query = query.order(spec["order"])
    if spec["filter"] is not None:
        plan = spec["filter"]
        query = query.filter(lambda q: _build_expr(q, plan))
    terminal, arg = spec["terminal"]
    if terminal == "paginate":
        return query.paginate(arg)
    if terminal == "take":
        return query.take(arg)
    return getattr(query, terminal)()


@app.query(name="fuzz:paginate_args")
def paginate_args(ctx: Any, table: Any = None, opts: Any = None) -> Any:
    return ctx.db.query(table).paginate(opts)


@app.query(name="fuzz:page_all", args={"table": v.string(), "cursor": v.union(v.string(),
                                                                                v.null())})
def page_all(ctx: Any, table: str, cursor: str | None) -> Any:
    return ctx.db.query(table).paginate({"numItems": 1000, "cursor": cursor})


# ---------------------------------------------------------------------------------------------
# Hostile values


def _deep_list(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


def _deep_dict(depth: int) -> Any:
    value: Any = {}
    for _ in range(depth):
        value = {"k": value}
    return value


def _self_list() -> Any:
    value: list[Any] = [1.0]
    value.append(value)
    return value


def _self_dict() -> Any:
    value: dict[str, Any] = {"a": 1.0}
    value["me"] = value
    return value


def _released() -> memoryview:
    view = memoryview(b"abc")
    view.release()
    return view


def _huge() -> int:
    # Built on demand: hypothesis prints strategies, and repr() of this int raises ValueError.
    return 10**5000


class _Opaque:
    """A custom object: not a Convex value."""


class _BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


ODD_FACTORIES: list[Callable[[], Any]] = [
    lambda: math.nan, lambda: math.inf, lambda: -math.inf, lambda: -0.0, lambda: 2**53 + 1,
    _huge, lambda: -(10**400), lambda: Int64(2**63), lambda: Int64(-(10**30)),
    lambda: np.float64(1.5), lambda: np.float32(math.nan), lambda: np.int64(7),
    lambda: np.uint64(2**64 - 1), lambda: np.bool_(True), lambda: np.array([1.0, 2.5]),
    lambda: np.array([[1, 2], [3, 4]]), lambda: np.array(3.0), lambda: np.array(["a", "b"]),
    lambda: np.array(["2020-01-01"], dtype="datetime64[ns]"), lambda: np.complex128(1j),
    lambda: np.str_("np"), lambda: np.bytes_(b"np"), lambda: np.array([{"a": 1}], dtype=object),
    lambda: {1, 2}, frozenset, _Opaque, _BadRepr, lambda: 1j, lambda: decimal.Decimal("1.5"),
    lambda: datetime.datetime(2024, 1, 1), lambda: range(3), lambda: (i for i in range(2)),
    lambda: bytearray(b"ba"), lambda: memoryview(b"mv"), _released, lambda: UNDEFINED,
    lambda: [UNDEFINED], _self_list, _self_dict, lambda: type, lambda: len, lambda: ...,
    lambda: "lone \ud800 surrogate", lambda: "\x00nul", lambda: [0.0] * 8193,
    lambda: {f"k{i}": 1.0 for i in range(1025)}, lambda: "x" * 1_100_000,
]
def mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``good`` most of the time: hostile input is most useful around plausible input
    (a query must get past its table name before its cursor is exercised). ``st.one_of`` would
    not do: hypothesis does not pick its branches evenly. 0 (what shrinking goes to) is good."""
    # Hypothesis favours the ends of a range, so "bad" sits in the middle of it.
    return st.integers(0, 6).flatmap(lambda pick: bad if pick in (2, 4) else good)


odd_values = st.sampled_from(ODD_FACTORIES).map(lambda make: make())
deep_values = st.one_of(st.integers(10, 3000).map(_deep_list),
                        st.integers(10, 3000).map(_deep_dict))

field_names = mostly(
    st.sampled_from(["a", "s", "i", "x", "o", "tags", "y", "k"]),
    st.one_of(st.sampled_from(["_id", "_creationTime", "_x", "$x", "", "é", "a.b", "with space",
                               "k" * 1025]),
              st.text(string.ascii_letters, min_size=1, max_size=4)),
)
odd_keys = mostly(field_names, st.one_of(
    st.integers(-5, 5), st.none(), st.just((1, 2)), st.just(b"k"), st.builds(_huge),
    st.just(np.str_("npkey"))))

convex_scalars = st.one_of(
    st.none(), st.booleans(), st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(2**60), 2**60), st.builds(Int64, st.integers(-(2**63), 2**63 - 1)),
    st.text(max_size=6), st.binary(max_size=6),
)
# Convex values (plain ints included), then anything at all.
convex_values = st.recursive(
    convex_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(field_names, inner, max_size=4)),
    max_leaves=6,
)
hostile_values = st.one_of(
    odd_values,
    deep_values,
    st.recursive(
        st.one_of(convex_scalars, odd_values),
        lambda inner: st.one_of(st.lists(inner, max_size=4), st.tuples(inner),
                                st.dictionaries(odd_keys, inner, max_size=4)),
        max_leaves=8,
    ),
)
values = mostly(convex_values, hostile_values)


def _wide(n: int) -> dict[str, float]:
    return {f"w{i}": 1.0 for i in range(n)}


flat_docs = st.fixed_dictionaries(
    {"a": mostly(st.one_of(st.floats(), st.integers(-1000, 1000)), values)},
    optional={"s": mostly(st.text(max_size=5), values),
              "i": mostly(st.integers(-(2**63), 2**63 - 1), values)},
)
nest_docs = st.fixed_dictionaries(
    {}, optional={"x": values,
                  "tags": mostly(st.lists(st.text(max_size=3), max_size=3), values),
                  "o": mostly(st.fixed_dictionaries({}, optional={"y": st.floats()}), values)},
)
documents = st.one_of(
    flat_docs, nest_docs,
    st.dictionaries(field_names, values, max_size=5),
    st.dictionaries(odd_keys, values, max_size=3),
    st.sampled_from([1021, 1022, 1023, 1024, 1100]).map(_wide),
    values,
)
table_names = mostly(
    st.sampled_from(TABLES),
    st.one_of(st.sampled_from(["_scheduled_functions", "_storage", "bad name", "", "x" * 65,
                               "ghost", None, 123, ["flat"], b"flat"]), st.builds(_huge)),
)

# IDs: ("known", index, edit) picks one of the IDs seen so far and maybe damages it;
# ("raw", value) is any value at all.
id_specs = mostly(
    st.tuples(st.just("known"), st.integers(0, 10**6),
              st.sampled_from(["same", "same", "same", "trunc", "flip", "upper", "pad", "str"])),
    st.tuples(st.just("raw"), st.one_of(st.text(max_size=40), values,
                                        st.text("0123456789abcdefghjkmnpqrstvwxyz", min_size=31,
                                                max_size=37))),
)

range_ops = st.lists(
    st.tuples(mostly(st.sampled_from(["eq", "gt", "gte", "lt", "lte"]),
                     st.sampled_from(["eq", "eq"])),  # repeated eqs are an error too
              mostly(st.sampled_from(["a", "s", "x", "o.y", "_creationTime", "_id"]),
                     st.one_of(st.just("zz"), odd_keys)),
              mostly(st.one_of(st.floats(), st.text(max_size=3), st.integers(-5, 5)),
                     st.one_of(values, st.just(UNDEFINED)))),
    max_size=3,
)

filter_plans = st.recursive(
    st.one_of(st.tuples(st.just("field"), mostly(st.sampled_from(["a", "s", "x", "i", "o.y"]),
                                                 odd_keys)),
              st.tuples(st.just("lit"), mostly(convex_scalars, values))),
    lambda inner: st.one_of(
        st.tuples(st.sampled_from(["eq", "neq", "lt", "lte", "gt", "gte",
                                   "add", "sub", "mul", "div", "mod"]), inner, inner),
        st.tuples(st.sampled_from(["and_", "or_"]), st.lists(inner, max_size=3)),
        st.tuples(st.sampled_from(["not_", "neg"]), inner),
    ),
    max_leaves=6,
)

counts = mostly(
    st.integers(1, 20),
    st.one_of(st.integers(-3, 0), st.floats(allow_nan=True), st.builds(_huge),
              st.sampled_from([2.0, 2.5, True, "3", None, 32_001, Int64(5), np.int64(3),
                               np.float64(2.0), [1]])),
)
# Cursors: ("seen", index, edit) reuses a cursor returned earlier, maybe damaged.
cursor_specs = mostly(
    st.one_of(st.just(("none",)), st.tuples(st.just("seen"), st.integers(0, 10**6),
                                            st.just("same"))),
    st.one_of(
        st.tuples(st.just("seen"), st.integers(0, 10**6),
                  st.sampled_from(["trunc", "flip", "position", "other"])),
        st.tuples(st.just("raw"), st.one_of(st.text(max_size=30), values,
                                            st.binary(max_size=30).map(
                                                lambda b: base64.urlsafe_b64encode(b).decode()))),
    ),
)
opts_specs = mostly(
    st.fixed_dictionaries(
        {"numItems": counts, "cursor": cursor_specs},
        optional={"endCursor": cursor_specs, "maximumRowsRead": counts,
                  "maximumBytesRead": mostly(st.integers(1, 10**7), counts)}),
    values,
)
terminals = st.one_of(
    st.tuples(st.sampled_from(["collect", "first", "unique"]), st.none()),
    st.tuples(st.just("take"), counts),
    st.tuples(st.just("paginate"), opts_specs),
    st.tuples(st.just("paginate"), opts_specs),
)
INDEX_FIELDS = {"by_a": ["a"], "by_s_a": ["s", "a"], "by_x": ["x"], "by_o_y": ["o.y"],
                "by_creation_time": [], "by_id": ["_id"]}
range_values = mostly(st.one_of(st.floats(), st.text(max_size=3), st.integers(-5, 5)),
                      st.one_of(values, st.just(UNDEFINED)))


def _good_range(index: str) -> st.SearchStrategy[Any]:
    """A range Convex accepts on ``index``: eq on a prefix of its fields, then maybe bounds."""
    fields = INDEX_FIELDS[index] + (["_creationTime", "_id"] if index != "by_id" else [])
    return st.integers(0, len(fields)).flatmap(lambda n: st.tuples(
        st.lists(range_values, min_size=n, max_size=n),
        st.sampled_from([[], ["gt"], ["gte"], ["lt"], ["lte"], ["gt", "lt"], ["gte", "lte"]]),
        st.lists(range_values, min_size=2, max_size=2),
    ).map(lambda parts: [("eq", f, x) for f, x in zip(fields, parts[0], strict=False)]
          + ([(op, fields[n], x) for op, x in zip(parts[1], parts[2], strict=False)]
             if n < len(fields) else [])))


def _index_and_range(table: str) -> st.SearchStrategy[Any]:
    names = [i for i in INDEXES[table]] + ["by_creation_time", "by_id"]
    good = st.one_of(st.tuples(st.none(), st.none()),
                     st.sampled_from(names).flatmap(lambda i: st.tuples(
                         st.just(i), st.one_of(st.none(), _good_range(i)))))
    bad = st.tuples(mostly(st.sampled_from(list(INDEX_FIELDS)), st.one_of(st.just("nope"),
                                                                            odd_keys)),
                    mostly(range_ops, st.sampled_from([123, "not callable"])))
    return mostly(good, bad)


queries = st.sampled_from(TABLES).flatmap(lambda table: st.fixed_dictionaries({
    "table": mostly(st.just(table), table_names),
    "index_range": _index_and_range(table),
    "order": mostly(st.one_of(st.none(), st.sampled_from(["asc", "desc"])), values),
    "filter": mostly(st.none(), filter_plans),
    "terminal": terminals,
}))

operations = st.one_of(
    st.tuples(st.just("insert"), table_names, documents, st.booleans()),
    st.tuples(st.just("insert"), table_names, documents, st.booleans()),
    st.tuples(st.just("insert_validated"), flat_docs),
    st.tuples(st.just("update"), st.sampled_from(["patch", "replace"]), id_specs,
              st.one_of(documents, st.dictionaries(field_names, st.just(UNDEFINED), max_size=2)),
              st.booleans(), st.booleans()),
    st.tuples(st.just("delete"), id_specs, st.booleans()),
    st.tuples(st.just("get"), id_specs, st.booleans()),
    st.tuples(st.just("normalize"), table_names, id_specs),
    st.tuples(st.just("query"), queries),
    st.tuples(st.just("query"), queries),
    st.tuples(st.just("query"), queries),
    st.tuples(st.just("paginate_args"), table_names, opts_specs),
    # the next page of the last paginated query, with its cursor as given or damaged
    st.tuples(st.just("continue"), mostly(st.just("same"), st.sampled_from(
        ["trunc", "flip", "position", "other"])), st.booleans(), st.booleans(), counts),
    st.tuples(st.just("import"), st.sampled_from(TABLES),
              st.lists(st.one_of(flat_docs, nest_docs, documents,
                                 st.dictionaries(odd_keys, values, max_size=3)),
                       min_size=1, max_size=3)),
)

# ---------------------------------------------------------------------------------------------
# Running operations against the backend and the model


class Fuzzer:
    """One backend over a file, the model of what it acknowledged, and the counts."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.backend = cl.Backend(path, app=app)
        self.client = self.backend.client()  # clients get ServerError for a bare exception
        self.model: dict[str, tuple[str, dict[str, Any]]] = {}  # id -> (table, document)
        self.ids: list[str] = []  # every ID ever returned (deleted ones too)
        self.cursors: list[str] = []
        self.last_page: tuple[dict[str, Any], dict[str, Any]] | None = None  # (query, result)
        self.counts: Counter[str] = Counter()

    # Resolving generated specs into concrete (possibly damaged) IDs and cursors ---------------
    def _known_id(self, index: int, edit: str) -> Any:
        if not self.ids:
            return "j57a5m8s0m6sqy1d0zj0v2x4cd7p0qzz"  # well formed, names nothing
        text = self.ids[index % len(self.ids)]
        return {"same": text, "trunc": text[:-2], "flip": text[:-1] + ("a" if text[-1] != "a"
                else "b"), "upper": text.upper(), "pad": text + "0", "str": str(text)}[edit]

    def _id(self, spec: tuple[Any, ...]) -> Any:
        return self._known_id(spec[1], spec[2]) if spec[0] == "known" else spec[1]

    def _target(self, spec: tuple[Any, ...], two_args: bool) -> tuple[Any, ...]:
        doc_id = self._id(spec)
        if two_args:
            table = self.model.get(doc_id, ("flat",))[0] if isinstance(doc_id, str) else "flat"
            return (table, doc_id)
        return (doc_id,)

    def _cursor(self, spec: tuple[Any, ...]) -> Any:
        if spec[0] == "none":
            return None
        if spec[0] == "raw":
            return spec[1]
        if not self.cursors:
            return None
        return self._damage(self.cursors[spec[1] % len(self.cursors)], spec[2])

    @staticmethod
    def _damage(text: str, edit: str) -> str:
        if edit == "trunc":
            return text[: len(text) // 2]
        if edit == "flip":
            return text[:-3] + ("A" if text[-3] != "A" else "B") + text[-2:]
        if edit in ("position", "other"):
            try:
                body = json.loads(base64.urlsafe_b64decode(text))
                if edit == "position":
                    body["p"] = [5, "x"] if body.get("p") is None else body["p"][::-1]
                else:
                    body["q"] = "0" * 24
                return base64.urlsafe_b64encode(json.dumps(body).encode()).decode()
            except Exception:  # noqa: BLE001 (not our cursor format: send it as it is)
                return text
        return text

    def _opts(self, spec: Any) -> Any:
        if not isinstance(spec, dict) or "cursor" not in spec:
            return spec
        opts = dict(spec)
        opts["cursor"] = self._cursor(spec["cursor"])
        if "endCursor" in spec:
            opts["endCursor"] = self._cursor(spec["endCursor"])
        return opts

    def _remember_page(self, result: Any) -> None:
        if isinstance(result, dict):
            for key in ("continueCursor", "splitCursor"):
                if isinstance(result.get(key), str):
                    self.cursors.append(result[key])

    def _acknowledge(self, result: Any, table: str | None = None) -> None:
        """Record a written document as the mutation read it back."""
        doc = result.get("doc") if isinstance(result, dict) and "id" in result else result
        if isinstance(doc, dict) and "_id" in doc:
            found = self.model.get(doc["_id"])
            name = table or (found[0] if found else None)
            # an update can only succeed on a document the model knows (IDs come from it)
            assert name is not None, f"a write to {doc['_id']}, which was never created"
            self.model[doc["_id"]] = (name, doc)
            if doc["_id"] not in self.ids:
                self.ids.append(doc["_id"])

    # One operation ---------------------------------------------------------------------------
    def run(self, op: tuple[Any, ...]) -> None:
        self.counts["inputs"] += 1
        INBOX.clear()
        try:
            self._run(op)
        except (ConvexLabError, ConvexError) as e:
            if isinstance(e, ServerError):  # a bare exception, as a client would see it
                self.counts["other"] += 1
                raise AssertionError(f"{safe_repr(op)} gave a ServerError: {e}") from e
            self.counts["clean errors"] += 1
        except AssertionError:  # the test's own checks (the model, what was stored)
            raise
        except Exception as e:
            self.counts["other"] += 1
            raise AssertionError(
                f"{safe_repr(op)} raised {type(e).__name__}, not a convex_lab error: {e!s:.300}"
            ) from e
        else:
            self.counts["succeeded"] += 1

    def _run(self, op: tuple[Any, ...]) -> None:
        b = self.backend
        kind = op[0]
        if kind == "insert":
            _, table, doc, raw = op
            if raw:
                INBOX.update(table=table, doc=doc)
                result = b.mutation(insert, {"raw": True})
            else:
                result = self.client.mutation(insert, {"table": table, "doc": doc})
            self._acknowledge(result, table)
            if raw and table == "free":  # what was accepted is what was given
                stored = {k: x for k, x in result["doc"].items()
                          if k not in ("_id", "_creationTime")}
                assert sort_key(stored) == sort_key(convert_document(doc))
        elif kind == "insert_validated":
            self._acknowledge(b.mutation(insert_validated, op[1]), "flat")
        elif kind == "update":
            _, verb, id_spec, fields, raw, two_args = op
            target = self._target(id_spec, two_args)
            if raw:
                INBOX.update(verb=verb, target=target, fields=fields)
                result = b.mutation(update, {"raw": True})
            else:
                result = b.mutation(update, {"verb": verb, "target": list(target),
                                             "fields": fields})
            self._acknowledge(result)
        elif kind == "delete":
            target = self._target(op[1], op[2])
            INBOX.update(target=target)
            b.mutation(delete, {})
            self.model.pop(target[-1], None)
        elif kind == "get":
            INBOX.update(target=self._target(op[1], op[2]))
            b.query(get, {})
        elif kind == "normalize":
            INBOX.update(table=op[1], text=self._id(op[2]))
            b.query(normalize, {})
        elif kind == "query":
            spec = dict(op[1])
            spec["index"], spec["range"] = spec.pop("index_range")
            if isinstance(spec["range"], list):
                spec["range"] = _build_range(spec["range"])
            terminal, arg = spec["terminal"]
            if terminal == "paginate":
                spec["terminal"] = (terminal, self._opts(arg))
            INBOX.update(query=spec)
            result = b.query(run_query, {})
            self._remember_page(result)
            if terminal == "paginate":
                self.last_page = (spec, result)
        elif kind == "continue":
            if self.last_page is None:
                return
            _, edit, use_split, as_end, num_items = op
            spec, result = self.last_page
            cursor = result["splitCursor"] if use_split and result["splitCursor"] else result[
                "continueCursor"]
            opts = {"numItems": num_items, "cursor": None if as_end else self._damage(cursor, edit)}
            if as_end:
                opts["endCursor"] = self._damage(cursor, edit)
            INBOX.update(query={**spec, "terminal": ("paginate", opts)})
            page = b.query(run_query, {})
            self._remember_page(page)
            if not as_end:
                self.last_page = ({**spec, "terminal": ("paginate", opts)}, page)
        elif kind == "paginate_args":
            self._remember_page(self.client.query(paginate_args, {"table": op[1],
                                                                  "opts": self._opts(op[2])}))
        elif kind == "import":
            _, table, docs = op
            ids = b.import_documents(table, docs)
            for doc_id in ids:
                INBOX.update(target=(table, doc_id))
                self._acknowledge(b.query(get, {}), table)

    # Durability ------------------------------------------------------------------------------
    def reopen_and_compare(self) -> None:
        self.backend.close()
        self.backend = cl.Backend(self.path, app=app)
        for table in TABLES:
            stored = dict(self._all(table))
            expected = {i: d for i, (t, d) in self.model.items() if t == table}
            assert stored.keys() == expected.keys(), (
                f"{table}: lost {sorted(expected.keys() - stored.keys())[:5]}, "
                f"unexpected {sorted(stored.keys() - expected.keys())[:5]}")
            for doc_id, doc in expected.items():
                assert sort_key(stored[doc_id]) == sort_key(doc), f"{table} {doc_id} changed"

    def _all(self, table: str) -> Iterator[tuple[str, dict[str, Any]]]:
        cursor = None
        while True:
            page = self.backend.query(page_all, {"table": table, "cursor": cursor})
            for doc in page["page"]:
                yield doc["_id"], doc
            if page["isDone"]:
                return
            cursor = page["continueCursor"]

    def close(self) -> None:
        self.backend.close()


def _fuzz(tmp_path: Path, examples: int) -> Counter[str]:
    fuzzer = Fuzzer(tmp_path / "fuzz.duckdb")

    # One backend for all examples (opening a file per example would dominate the run); the
    # model follows every acknowledged write, including those of shrinking runs.
    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.large_base_example])
    @given(st.lists(operations, min_size=1, max_size=6))
    def run(ops: list[tuple[Any, ...]]) -> None:
        for op in ops:
            fuzzer.run(op)

    try:
        run()
        fuzzer.reopen_and_compare()
    finally:
        fuzzer.close()
    counts = fuzzer.counts
    assert counts["other"] == 0
    assert counts["succeeded"] > 0 and counts["clean errors"] > 0  # both paths were exercised
    assert fuzzer.model, "no write was ever acknowledged: the generators are too hostile"
    return counts


def test_fuzz_public_api(tmp_path: Path) -> None:
    _fuzz(tmp_path, examples=200)


@pytest.mark.slow
def test_fuzz_public_api_long(tmp_path: Path) -> None:
    counts = _fuzz(tmp_path, examples=10_000)
    print(f"\nfuzz: {counts['inputs']} inputs, {counts['succeeded']} succeeded, "
          f"{counts['clean errors']} clean errors, {counts['other']} other")

"""Differential test: the store against a plain-Python model of Convex's semantics.

Random sequences of inserts, patches, replaces, deletes, multi-write transactions, index-range
queries, filters, pagination, old snapshots and (file-backed) close/reopen run against the engine
and against a model that is just a dict of documents. The model's query answer is "every matching
document, sorted by the total order of (index fields…, _creationTime, _id)" computed with
``values.sort_key`` (reference §1.2, §4.1, §4.2); everything the engine returns must equal it.
"""

from __future__ import annotations

import copy
import math
import shutil
import tempfile
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from convex_lab.schema import define_schema, define_table
from convex_lab.store.database import DatabaseReader, DatabaseWriter
from convex_lab.store.engine import Store
from convex_lab.store.keys import get_path
from convex_lab.store.transaction import Transaction
from convex_lab.validators import v
from convex_lab.values import UNDEFINED, Int64, sort_key

TABLE = "docs"
FIELDS = ("a", "b")
POOL: list[Any] = [Int64(-1), Int64(0), Int64(2), -0.0, 0.0, 1.5, math.nan, -math.inf, "", "a",
                   "b", None, True, False, [Int64(0)], {"k": None}, UNDEFINED]
SCHEMA = define_schema({
    TABLE: define_table({"a": v.optional(v.any()), "b": v.optional(v.any())})
    .index("by_a", ["a"]).index("by_a_b", ["a", "b"]),
})
USER_INDEXES = {"by_a": ("a",), "by_a_b": ("a", "b")}

values = st.sampled_from(POOL)
Doc = dict[str, Any]


def user_fields(a: Any, b: Any) -> Doc:
    return {k: x for k, x in (("a", a), ("b", b)) if x is not UNDEFINED}


# --------------------------------------------------------------------------------------------
# Query specs and the model's answer


class Spec:
    """One query: index, eq prefix, optional bounds on the next field, order, filter, limit."""

    def __init__(self, index: str, eqs: list[tuple[str, Any]], *, lower: tuple[str, Any] | None,
                 upper: tuple[str, Any] | None, bound_field: str | None, order: str,
                 filt: tuple[str, Any] | None, limit: int | None) -> None:
        self.index, self.eqs, self.lower, self.upper = index, eqs, lower, upper
        self.bound_field, self.order, self.filt, self.limit = bound_field, order, filt, limit

    def __repr__(self) -> str:
        return (f"Spec({self.index}, eqs={self.eqs}, lower={self.lower}, upper={self.upper} on "
                f"{self.bound_field}, {self.order}, filter={self.filt}, limit={self.limit})")

    def index_fields(self) -> tuple[str, ...]:
        if self.index == "by_id":
            return ("_id",)
        if self.index == "by_creation_time":
            return ("_creationTime", "_id")
        return (*USER_INDEXES[self.index], "_creationTime", "_id")

    # Engine ------------------------------------------------------------------------------
    def build(self, db: DatabaseReader) -> Any:
        def range_fn(q: Any) -> Any:
            for f, x in self.eqs:
                q = q.eq(f, x)
            if self.lower is not None:
                q = getattr(q, self.lower[0])(self.bound_field, self.lower[1])
            if self.upper is not None:
                q = getattr(q, self.upper[0])(self.bound_field, self.upper[1])
            return q

        query = db.query(TABLE).with_index(self.index, range_fn).order(self.order)
        if self.filt is not None:
            op, x = self.filt
            query = query.filter(lambda q: getattr(q, op)(q.field("b"), x))
        return query

    def run(self, db: DatabaseReader) -> list[Doc]:
        query = self.build(db)
        if self.limit is None:
            return query.collect()
        if self.limit == 1:
            first = query.first()
            return [] if first is None else [first]
        return query.take(self.limit)

    # Model -------------------------------------------------------------------------------
    def expected(self, docs: dict[str, Doc], *, unlimited: bool = False) -> list[Doc]:
        fields = self.index_fields()

        def key(doc: Doc) -> tuple[Any, ...]:
            return tuple(sort_key(get_path(doc, f)) for f in fields)

        def matches(doc: Doc) -> bool:
            for f, x in self.eqs:
                if sort_key(get_path(doc, f)) != sort_key(x):
                    return False
            if self.bound_field is not None:
                k = sort_key(get_path(doc, self.bound_field))
                for bound in (self.lower, self.upper):
                    if bound is None:
                        continue
                    op, x = bound
                    if not _COMPARE[op](k, sort_key(x)):
                        return False
            if self.filt is not None:
                op, x = self.filt
                if not _COMPARE[op](sort_key(get_path(doc, "b")), sort_key(x)):
                    return False
            return True

        out = sorted((d for d in docs.values() if matches(d)), key=key,
                     reverse=self.order == "desc")
        if self.limit is not None and not unlimited:
            out = out[: self.limit]
        return out


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b, "neq": lambda a, b: a != b, "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b, "gt": lambda a, b: a > b, "gte": lambda a, b: a >= b,
}


@st.composite
def specs(draw: Any, indexes: list[str], docs: list[Doc]) -> Spec:
    index = draw(st.sampled_from(indexes))
    eqs: list[tuple[str, Any]] = []
    bound_field: str | None = None
    if index in USER_INDEXES:
        user = USER_INDEXES[index]
        n_eq = draw(st.integers(0, len(user)))
        eqs = [(f, draw(values)) for f in user[:n_eq]]
        bound_field = user[n_eq] if n_eq < len(user) else None
        bound_values: st.SearchStrategy[Any] = values
    else:
        bound_field = "_id" if index == "by_id" else "_creationTime"
        existing = [d[bound_field] for d in docs]
        if bound_field == "_id":
            bound_values = st.sampled_from([*existing, "", "zzzz"]) if existing else \
                st.just("m")
        else:
            bound_values = st.sampled_from([*existing, 0.0, math.inf]) if existing else \
                st.just(1.0)
    lower = upper = None
    if bound_field is not None:
        if draw(st.booleans()):
            lower = (draw(st.sampled_from(["gt", "gte"])), draw(bound_values))
        if draw(st.booleans()):
            upper = (draw(st.sampled_from(["lt", "lte"])), draw(bound_values))
        if lower is None and upper is None:
            bound_field = None
    order = draw(st.sampled_from(["asc", "desc"]))
    filt = None
    if draw(st.integers(0, 3)) == 0:
        filt = (draw(st.sampled_from(["eq", "neq", "lt", "gte"])), draw(values))
    limit = draw(st.sampled_from([None, None, 1, 2, 5]))
    return Spec(index, eqs, lower=lower, upper=upper, bound_field=bound_field, order=order,
                filt=filt, limit=limit)


def assert_same(got: list[Doc], want: list[Doc], what: Any) -> None:
    assert [d["_id"] for d in got] == [d["_id"] for d in want], what
    assert sort_key(got) == sort_key(want), what


# --------------------------------------------------------------------------------------------
# The state machine


class StoreMachine(RuleBasedStateMachine):
    file_backed = False
    with_schema = True

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="convex_lab_diff_") if self.file_backed else None
        self.path = f"{self.dir}/store.duckdb" if self.dir else None
        self.store = Store(self.path)
        self.model: dict[str, Doc] = {}
        self.snapshot: tuple[Transaction, dict[str, Doc]] | None = None
        self.indexes = ["by_creation_time", "by_id"]
        if self.with_schema:
            self.indexes += list(USER_INDEXES)

    @initialize()
    def set_schema(self) -> None:
        if self.with_schema:
            self.store.set_schema(SCHEMA)

    def teardown(self) -> None:
        if self.snapshot is not None:
            self.snapshot[0].abort()
        self.store.close()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)

    def pick(self, i: int) -> str:
        ids = list(self.model)  # insertion order: independent of the random ID values
        return ids[i % len(ids)]

    # Writes -------------------------------------------------------------------------------
    @rule(a=values, b=values)
    def insert(self, a: Any, b: Any) -> None:
        def body(tx: Transaction) -> Doc:
            db = DatabaseWriter(tx)
            return db.get(db.insert(TABLE, user_fields(a, b)))

        doc = self.store.run(body)
        assert doc["_creationTime"] > max((d["_creationTime"] for d in self.model.values()),
                                          default=0.0)
        self.model[doc["_id"]] = doc

    @precondition(lambda self: self.model)
    @rule(i=st.integers(0, 999), field=st.sampled_from(FIELDS), x=values)
    def patch(self, i: int, field: str, x: Any) -> None:
        doc_id = self.pick(i)
        self.store.run(lambda tx: DatabaseWriter(tx).patch(TABLE, doc_id, {field: x}))
        self.model[doc_id] = apply_patch(self.model[doc_id], field, x)

    @precondition(lambda self: self.model)
    @rule(i=st.integers(0, 999), a=values, b=values)
    def replace(self, i: int, a: Any, b: Any) -> None:
        doc_id = self.pick(i)
        self.store.run(lambda tx: DatabaseWriter(tx).replace(doc_id, user_fields(a, b)))
        self.model[doc_id] = apply_replace(self.model[doc_id], a, b)

    @precondition(lambda self: self.model)
    @rule(i=st.integers(0, 999))
    def delete(self, i: int) -> None:
        doc_id = self.pick(i)
        self.store.run(lambda tx: DatabaseWriter(tx).delete(TABLE, doc_id))
        del self.model[doc_id]

    @rule(data=st.data(), ops=st.lists(st.tuples(st.sampled_from(["insert", "patch", "replace",
                                                                   "delete"]),
                                                  st.integers(0, 999), values, values),
                                        min_size=1, max_size=6))
    def transaction(self, data: Any, ops: list[tuple[str, int, Any, Any]]) -> None:
        """Several writes in one transaction, then a query inside it (reads own writes)."""
        tentative = dict(self.model)
        tx = self.store.begin()
        db = DatabaseWriter(tx)
        try:
            for kind, i, a, b in ops:
                ids = list(tentative)
                if kind == "insert" or not ids:
                    doc = db.get(db.insert(TABLE, user_fields(a, b)))
                    tentative[doc["_id"]] = doc
                    continue
                doc_id = ids[i % len(ids)]
                if kind == "patch":
                    field = FIELDS[i % 2]
                    db.patch(doc_id, {field: a})
                    tentative[doc_id] = apply_patch(tentative[doc_id], field, a)
                elif kind == "replace":
                    db.replace(doc_id, user_fields(a, b))
                    tentative[doc_id] = apply_replace(tentative[doc_id], a, b)
                else:
                    db.delete(doc_id)
                    del tentative[doc_id]
                    assert db.get(doc_id) is None
            spec = data.draw(specs(self.indexes, list(tentative.values())), label="inner query")
            assert_same(spec.run(db), spec.expected(tentative), spec)
        except BaseException:
            tx.abort()
            raise
        tx.commit()
        self.model = tentative

    # Reads --------------------------------------------------------------------------------
    @rule(data=st.data())
    def query(self, data: Any) -> None:
        spec = data.draw(specs(self.indexes, list(self.model.values())), label="query")
        got = self.store.run(lambda tx: spec.run(DatabaseReader(tx)), read_only=True)
        assert_same(got, spec.expected(self.model), spec)

    @rule(data=st.data(), n=st.integers(1, 4), max_rows=st.sampled_from([None, None, 3]))
    def paginate(self, data: Any, n: int, max_rows: int | None) -> None:
        spec = data.draw(specs(self.indexes, list(self.model.values())), label="paginated")
        opts: dict[str, Any] = {"numItems": n}
        if max_rows is not None:
            opts["maximumRowsRead"] = max_rows
        got: list[Doc] = []
        cursor = None
        for _ in range(200):
            page = self.store.run(
                lambda tx, c=cursor: spec.build(DatabaseReader(tx)).paginate({**opts, "cursor": c}),
                read_only=True)
            assert len(page["page"]) <= n
            got += page["page"]
            if page["isDone"]:
                break
            cursor = page["continueCursor"]
        else:
            raise AssertionError("pagination did not finish")
        assert_same(got, spec.expected(self.model, unlimited=True), spec)

    @precondition(lambda self: self.model)
    @rule(i=st.integers(0, 999))
    def get(self, i: int) -> None:
        doc_id = self.pick(i)
        got = self.store.run(lambda tx: DatabaseReader(tx).get(TABLE, doc_id), read_only=True)
        assert sort_key(got) == sort_key(self.model[doc_id])

    # Old snapshots ------------------------------------------------------------------------
    @precondition(lambda self: self.snapshot is None)
    @rule()
    def open_snapshot(self) -> None:
        self.snapshot = (self.store.begin(read_only=True), copy.deepcopy(self.model))

    @precondition(lambda self: self.snapshot is not None)
    @rule(data=st.data())
    def query_snapshot(self, data: Any) -> None:
        assert self.snapshot is not None
        tx, frozen = self.snapshot
        spec = data.draw(specs(self.indexes, list(frozen.values())), label="snapshot query")
        assert_same(spec.run(DatabaseReader(tx)), spec.expected(frozen), spec)
        for doc_id in list(self.model)[:3]:
            got = DatabaseReader(tx).get(TABLE, doc_id)
            assert sort_key(got) == sort_key(frozen.get(doc_id))

    @precondition(lambda self: self.snapshot is not None)
    @rule()
    def close_snapshot(self) -> None:
        assert self.snapshot is not None
        self.snapshot[0].commit()
        self.snapshot = None

    # Whole-state check --------------------------------------------------------------------
    @invariant()
    def everything_matches(self) -> None:
        got = self.store.run(lambda tx: DatabaseReader(tx).query(TABLE).collect(), read_only=True)
        want = sorted(self.model.values(), key=lambda d: (d["_creationTime"], d["_id"]))
        assert_same(got, want, "full scan")


def apply_patch(doc: Doc, field: str, x: Any) -> Doc:
    new = dict(doc)
    if x is UNDEFINED:
        new.pop(field, None)
    else:
        new[field] = x
    return new


def apply_replace(doc: Doc, a: Any, b: Any) -> Doc:
    return {"_id": doc["_id"], "_creationTime": doc["_creationTime"], **user_fields(a, b)}


class FileStoreMachine(StoreMachine):
    file_backed = True

    @rule()
    def reopen(self) -> None:
        if self.snapshot is not None:
            self.snapshot[0].abort()
            self.snapshot = None
        before = self.store.run(lambda tx: DatabaseReader(tx).query(TABLE).collect(),
                                read_only=True)
        self.store.close()
        self.store = Store(self.path)
        after = self.store.run(lambda tx: DatabaseReader(tx).query(TABLE).collect(),
                               read_only=True)
        assert_same(after, before, "reopen")


class SchemalessMachine(StoreMachine):
    with_schema = False


class SchemalessFileStoreMachine(FileStoreMachine):
    with_schema = False


def run(machine: type[RuleBasedStateMachine], examples: int, steps: int) -> None:
    run_state_machine_as_test(machine, settings=settings(
        max_examples=examples, stateful_step_count=steps, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))


def test_in_memory_store_matches_model() -> None:
    run(StoreMachine, 60, 40)


def test_in_memory_schemaless_store_matches_model() -> None:
    run(SchemalessMachine, 25, 30)


def test_file_store_matches_model_across_reopen() -> None:
    run(SchemalessFileStoreMachine, 20, 30)


def test_file_store_with_schema_matches_model_across_reopen() -> None:
    run(FileStoreMachine, 20, 30)

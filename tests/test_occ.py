"""Optimistic concurrency control: read sets, conflicts at commit, retries (reference §5.2)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from convex_lab.errors import OptimisticConcurrencyControlFailure
from convex_lab.schema import define_schema, define_table
from convex_lab.store.database import DatabaseReader, DatabaseWriter
from convex_lab.store.engine import Conflict, Store
from convex_lab.store.transaction import Transaction
from convex_lab.validators import v

SCHEMA = define_schema({
    "t": define_table({"n": v.float64(), "note": v.optional(v.string())}).index("by_n", ["n"]),
    "log": define_table({"msg": v.string()}),
})


@pytest.fixture
def store() -> Store:
    s = Store()
    s.set_schema(SCHEMA)
    yield s
    s.close()


def write(store: Store, body: Callable[[DatabaseWriter], Any]) -> Any:
    return store.run(lambda tx: body(DatabaseWriter(tx)))


def read(store: Store, body: Callable[[DatabaseReader], Any]) -> Any:
    return store.run(lambda tx: body(DatabaseReader(tx)), read_only=True)


def seed(store: Store, values: list[float]) -> list[str]:
    return write(store, lambda db: [db.insert("t", {"n": x}) for x in values])


def ns(store: Store) -> list[float]:
    return [d["n"] for d in read(store, lambda db: db.query("t").with_index("by_n").collect())]


def begin(store: Store) -> tuple[Transaction, DatabaseWriter]:
    tx = store.begin()
    return tx, DatabaseWriter(tx)


def test_concurrent_read_modify_write_of_one_document_conflicts(store: Store) -> None:
    (doc,) = seed(store, [0.0])
    t1, db1 = begin(store)
    t2, db2 = begin(store)
    db1.patch(doc, {"n": db1.get(doc)["n"] + 1})
    db2.patch(doc, {"n": db2.get(doc)["n"] + 1})
    t1.commit()
    with pytest.raises(Conflict) as e:
        t2.commit()
    assert e.value.table == "t"
    assert ns(store) == [1.0]  # no lost update: the loser's write is not applied


@pytest.mark.parametrize("verb", ["patch", "replace", "delete"])
def test_writes_read_their_target(store: Store, verb: str) -> None:
    # patch/replace/delete read the document first, so a blind write also conflicts
    (doc,) = seed(store, [0.0])
    t1, db1 = begin(store)
    if verb == "delete":
        db1.delete(doc)
    else:
        getattr(db1, verb)(doc, {"n": 5.0})
    write(store, lambda db: db.patch(doc, {"n": 9.0}))
    with pytest.raises(Conflict):
        t1.commit()
    assert ns(store) == [9.0]


def test_range_read_then_concurrent_insert_into_range_conflicts(store: Store) -> None:
    seed(store, [1.0, 5.0, 9.0])
    t1, db1 = begin(store)
    seen = db1.query("t").with_index("by_n", lambda q: q.gte("n", 4.0).lt("n", 8.0)).collect()
    assert [d["n"] for d in seen] == [5.0]
    db1.insert("log", {"msg": "saw one"})
    write(store, lambda db: db.insert("t", {"n": 6.0}))
    with pytest.raises(Conflict):
        t1.commit()
    assert read(store, lambda db: db.query("log").collect()) == []


def test_document_moving_out_of_a_read_range_conflicts(store: Store) -> None:
    _, five, _ = seed(store, [1.0, 5.0, 9.0])
    t1, db1 = begin(store)
    db1.query("t").with_index("by_n", lambda q: q.gte("n", 4.0).lt("n", 8.0)).collect()
    db1.insert("log", {"msg": "x"})
    write(store, lambda db: db.patch(five, {"n": 100.0}))  # old key was in the range
    with pytest.raises(Conflict):
        t1.commit()


def test_insert_outside_the_read_range_does_not_conflict(store: Store) -> None:
    seed(store, [1.0, 5.0, 9.0])
    t1, db1 = begin(store)
    db1.query("t").with_index("by_n", lambda q: q.gte("n", 4.0).lt("n", 8.0)).collect()
    db1.insert("log", {"msg": "x"})
    write(store, lambda db: db.insert("t", {"n": 8.0}))  # the upper bound is exclusive
    write(store, lambda db: db.insert("t", {"n": 3.9}))
    write(store, lambda db: db.insert("log", {"msg": "other table"}))
    t1.commit()
    assert len(read(store, lambda db: db.query("log").collect())) == 2


def test_first_reads_only_what_it_consumed(store: Store) -> None:
    seed(store, [10.0, 20.0, 30.0])
    t1, db1 = begin(store)
    got = db1.query("t").with_index("by_n", lambda q: q.gte("n", 0.0).lt("n", 1000.0)).first()
    assert got["n"] == 10.0
    db1.insert("log", {"msg": "first"})
    write(store, lambda db: db.insert("t", {"n": 500.0}))  # far away, inside the range
    write(store, lambda db: db.insert("t", {"n": 15.0}))  # after the consumed row
    t1.commit()

    t2, db2 = begin(store)
    db2.query("t").with_index("by_n", lambda q: q.gte("n", 0.0).lt("n", 1000.0)).first()
    db2.insert("log", {"msg": "second"})
    write(store, lambda db: db.insert("t", {"n": 5.0}))  # before the consumed row
    with pytest.raises(Conflict):
        t2.commit()


def test_exhausted_range_reads_the_whole_range(store: Store) -> None:
    seed(store, [10.0])
    t1, db1 = begin(store)
    assert len(db1.query("t").with_index("by_n", lambda q: q.gte("n", 0.0).lt("n", 100.0))
               .take(5)) == 1
    db1.insert("log", {"msg": "x"})
    write(store, lambda db: db.insert("t", {"n": 99.0}))
    with pytest.raises(Conflict):
        t1.commit()


def test_filtered_out_documents_are_in_the_read_set(store: Store) -> None:
    (doc,) = seed(store, [1.0])
    t1, db1 = begin(store)
    assert db1.query("t").filter(lambda q: q.eq(q.field("n"), 2.0)).collect() == []
    db1.insert("log", {"msg": "x"})
    write(store, lambda db: db.patch(doc, {"n": 2.0}))
    with pytest.raises(Conflict):
        t1.commit()


def test_point_read_is_not_touched_by_other_documents(store: Store) -> None:
    (doc,) = seed(store, [1.0])
    t1, db1 = begin(store)
    db1.delete(doc)
    t1.commit()
    t2, db2 = begin(store)
    t3, db3 = begin(store)
    assert db2.get(doc) is None
    db2.insert("log", {"msg": "saw nothing"})
    db3.insert("t", {"n": 1.0})  # another document: does not touch the point read
    t3.commit()
    t2.commit()


def test_blind_inserts_and_read_only_transactions_never_conflict(store: Store) -> None:
    (doc,) = seed(store, [1.0])
    t1, db1 = begin(store)
    t2, db2 = begin(store)
    reader = store.begin(read_only=True)
    assert DatabaseReader(reader).get(doc)["n"] == 1.0
    db1.insert("t", {"n": 2.0})
    db2.insert("t", {"n": 3.0})
    write(store, lambda db: db.patch(doc, {"n": 7.0}))
    t1.commit()
    t2.commit()
    reader.commit()
    assert sorted(ns(store)) == [2.0, 3.0, 7.0]


def test_unchanged_patch_does_not_invalidate_readers(store: Store) -> None:
    (doc,) = seed(store, [1.0])
    t1, db1 = begin(store)
    db1.get(doc)
    db1.insert("log", {"msg": "x"})
    write(store, lambda db: db.patch(doc, {"n": 1.0}))
    t1.commit()


def test_schema_push_conflicts_with_open_transactions(store: Store) -> None:
    t1, db1 = begin(store)
    db1.insert("log", {"msg": "x"})
    store.set_schema(SCHEMA)
    with pytest.raises(Conflict):
        t1.commit()


def test_conflict_is_not_swallowed_by_except_exception() -> None:
    assert not issubclass(Conflict, Exception)


def test_run_retries_and_succeeds(store: Store) -> None:
    (doc,) = seed(store, [0.0])
    attempts = []

    def body(tx: Transaction) -> float:
        db = DatabaseWriter(tx)
        n = db.get(doc)["n"]
        attempts.append(n)
        if len(attempts) == 1:  # someone else commits while we run, once
            write(store, lambda other: other.patch(doc, {"n": 100.0}))
        db.patch(doc, {"n": n + 1})
        return n + 1

    assert store.run(body) == 101.0
    assert attempts == [0.0, 100.0]  # the second run saw the other commit
    assert ns(store) == [101.0]


def test_run_gives_up_after_its_retries(store: Store) -> None:
    (doc,) = seed(store, [0.0])
    attempts = []

    def body(tx: Transaction) -> None:
        db = DatabaseWriter(tx)
        attempts.append(db.get(doc)["n"])
        write(store, lambda other: other.patch(doc, {"n": float(len(attempts))}))
        db.patch(doc, {"n": -1.0})
        db.insert("log", {"msg": "never"})

    with pytest.raises(OptimisticConcurrencyControlFailure) as e:
        store.run(body)
    assert len(attempts) == 5  # 4 retries, as Convex
    message = str(e.value)
    assert 'Documents read from or written to the table "t" changed while this mutation was ' \
           "being run and on every subsequent retry" in message
    assert "https://docs.convex.dev/error#1" in message
    assert e.value.code == "OptimisticConcurrencyControlFailure"
    assert ns(store) == [5.0]  # the interfering writes landed, ours never did
    assert read(store, lambda db: db.query("log").collect()) == []
    attempts.clear()
    with pytest.raises(OptimisticConcurrencyControlFailure):
        store.run(body, retries=1)
    assert len(attempts) == 2


def test_failed_body_is_not_retried(store: Store) -> None:
    calls = []

    def body(tx: Transaction) -> None:
        calls.append(1)
        DatabaseWriter(tx).insert("log", {"msg": "x"})
        raise ValueError("user error")

    with pytest.raises(ValueError, match="user error"):
        store.run(body)
    assert calls == [1]
    assert read(store, lambda db: db.query("log").collect()) == []

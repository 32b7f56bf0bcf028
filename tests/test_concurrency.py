"""Threads against one store: serializable transfers, consistent read-only snapshots, no lost
updates (reference §5.2; DESIGN §7)."""

from __future__ import annotations

import random
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from convex_lab.errors import OptimisticConcurrencyControlFailure
from convex_lab.store.database import DatabaseReader, DatabaseWriter
from convex_lab.store.engine import Store
from convex_lab.store.transaction import Transaction
from convex_lab.values import Int64

ACCOUNTS = 6
INITIAL = 1_000


@pytest.fixture(autouse=True)
def interleave() -> Iterator[None]:
    """Switch threads often, so transactions really overlap (the default 5 ms slice lets a
    thread finish many short transactions alone)."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(old)


def open_accounts(store: Store) -> list[str]:
    return store.run(lambda tx: [DatabaseWriter(tx).insert("accounts", {"balance": Int64(INITIAL),
                                                                        "name": f"acct{i}"})
                                 for i in range(ACCOUNTS)])


def transfer(tx: Transaction, src: str, dst: str, amount: int, tag: str) -> None:
    db = DatabaseWriter(tx)
    a = db.get(src)
    b = db.get(dst)
    db.patch(src, {"balance": a["balance"] - amount})
    db.patch(dst, {"balance": b["balance"] + amount})
    db.insert("transfers", {"src": src, "dst": dst, "amount": Int64(amount), "tag": tag})


def expected_balances(ids: list[str], log: list[dict[str, Any]]) -> dict[str, int]:
    out = dict.fromkeys(ids, INITIAL)
    for t in log:
        out[t["src"]] -= int(t["amount"])
        out[t["dst"]] += int(t["amount"])
    return out


def snapshot(store: Store) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    def body(tx: Transaction) -> Any:
        db = DatabaseReader(tx)
        return db.query("accounts").collect(), db.query("transfers").collect()

    return store.run(body, read_only=True)


@pytest.mark.parametrize("backing", ["memory", "file"])
def test_concurrent_transfers_keep_invariants(tmp_path: Path, backing: str) -> None:
    store = Store(str(tmp_path / "bank.duckdb") if backing == "file" else None)
    ids = open_accounts(store)
    threads, per_thread = 4, (150 if backing == "memory" else 40)
    succeeded: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    errors: list[BaseException] = []
    done = threading.Event()
    snapshots_checked = 0

    def worker(t: int) -> None:
        rng = random.Random(t)
        try:
            for i in range(per_thread):
                src, dst = rng.sample(ids, 2)
                tag = f"{t}:{i}"
                try:
                    amount = rng.randint(1, 50)

                    store.run(lambda tx, s=src, d=dst, tag=tag, amount=amount: transfer(
                        tx, s, d, amount, tag))
                    succeeded[tag] += 1
                except OptimisticConcurrencyControlFailure:
                    failed[tag] += 1
        except BaseException as e:  # noqa: BLE001 (reported by the main thread)
            errors.append(e)

    def auditor() -> None:
        nonlocal snapshots_checked
        try:
            while not done.is_set():
                accounts, log = snapshot(store)
                balances = {d["_id"]: int(d["balance"]) for d in accounts}
                assert sum(balances.values()) == ACCOUNTS * INITIAL
                assert balances == expected_balances(ids, log)  # a whole, consistent state
                snapshots_checked += 1
        except BaseException as e:  # noqa: BLE001 (reported by the main thread)
            errors.append(e)

    workers = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    audit = threading.Thread(target=auditor)
    audit.start()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    done.set()
    audit.join()
    assert errors == []
    assert snapshots_checked > 0

    accounts, log = snapshot(store)
    balances = {d["_id"]: d["balance"] for d in accounts}
    assert all(type(b) is Int64 for b in balances.values())
    assert sum(balances.values()) == ACCOUNTS * INITIAL
    # no lost updates: every successful transfer is logged once, every failed one not at all
    logged = Counter(t["tag"] for t in log)
    assert logged == succeeded
    assert not set(failed) & set(logged)
    assert sum(succeeded.values()) + sum(failed.values()) == threads * per_thread
    assert balances == expected_balances(ids, log)
    store.close()
    if backing == "file":
        reopened = Store(str(tmp_path / "bank.duckdb"))
        accounts2, log2 = snapshot(reopened)
        reopened.close()
        assert {d["_id"]: d["balance"] for d in accounts2} == balances
        assert Counter(t["tag"] for t in log2) == succeeded


def test_hot_counter_increments_are_not_lost() -> None:
    store = Store()
    counter = store.run(lambda tx: DatabaseWriter(tx).insert("c", {"n": Int64(0)}))
    threads, per_thread = 4, 50
    errors: list[BaseException] = []

    attempts = [0]
    barrier = threading.Barrier(threads)
    waited = threading.local()

    def bump(tx: Transaction) -> None:
        attempts[0] += 1
        db = DatabaseWriter(tx)
        n = db.get(counter)["n"]
        if not getattr(waited, "done", False):  # the first attempts all read the same value
            waited.done = True
            barrier.wait(timeout=30)
        db.patch(counter, {"n": n + 1})

    def worker() -> None:
        try:
            for _ in range(per_thread):
                store.run(bump, retries=10_000)
        except BaseException as e:  # noqa: BLE001 (reported by the main thread)
            errors.append(e)

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert errors == []
    assert attempts[0] >= threads * per_thread + threads - 1  # the first round collided
    final = store.run(lambda tx: DatabaseReader(tx).get(counter), read_only=True)
    assert final["n"] == Int64(threads * per_thread)
    assert type(final["n"]) is Int64
    store.close()


def test_point_read_is_atomic_with_a_concurrent_commit() -> None:
    """Simulates a thread switch between the snapshot check and the dict lookup in
    ``Transaction.get``: another thread commits at exactly that point."""
    store = Store()
    doc = store.run(lambda tx: DatabaseWriter(tx).insert("t", {"v": 1}))
    tx = store.begin(read_only=True)
    table = store.tables["t"]
    reader = threading.current_thread()

    class CommitDuringLookup(dict):  # type: ignore[type-arg]
        fired = False

        def get(self, key: Any, default: Any = None) -> Any:
            if not CommitDuringLookup.fired and threading.current_thread() is reader:
                CommitDuringLookup.fired = True
                other = threading.Thread(target=lambda: store.run(
                    lambda t: DatabaseWriter(t).patch(doc, {"v": 2})))
                other.start()
                other.join()
            return dict.get(self, key, default)

    table.docs = CommitDuringLookup(table.docs)
    try:
        got = DatabaseReader(tx).get(doc)
        assert CommitDuringLookup.fired
        assert got["v"] == 1.0  # the snapshot predates the patch
    finally:
        tx.abort()
        store.close()

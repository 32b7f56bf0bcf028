"""Vector search (reference §11): ctx.vector_search in actions, cosine scores, limits, filters,
skipped documents, consistency with commits, exactness against numpy, durability."""

import math

import numpy as np
import pytest

import convex_lab as cl
from convex_lab import define_schema, define_table, v
from convex_lab.errors import ConvexLabError, SchemaError


def make_app(dimensions=3) -> cl.App:
    app = cl.App()
    app.schema = define_schema({
        "foods": define_table({
            "cuisine": v.optional(v.string()), "embedding": v.any(), "n": v.optional(v.float64()),
        }).vector_index("by_embedding", vector_field="embedding", dimensions=dimensions,
                        filter_fields=["cuisine", "n"]),
    })

    @app.mutation(name="add")
    def add(ctx, doc: dict):
        return ctx.db.insert("foods", doc)

    @app.mutation(name="patch")
    def patch(ctx, id: str, fields: dict):
        ctx.db.patch(id, fields)

    @app.mutation(name="remove")
    def remove(ctx, id: str):
        ctx.db.delete(id)

    @app.action(name="similar")
    def similar(ctx, vector, limit=10, cuisine=None, cuisines=None):
        f = None
        if cuisine is not None:
            f = lambda q: q.eq("cuisine", cuisine)  # noqa: E731
        if cuisines is not None:
            f = lambda q: q.or_(*(q.eq("cuisine", c) for c in cuisines))  # noqa: E731
        return ctx.vector_search("foods", "by_embedding", vector=vector, limit=limit, filter=f)

    @app.query(name="peek")
    def peek(ctx):
        return ctx.vector_search("foods", "by_embedding", vector=[1.0, 0.0, 0.0])

    return app


@pytest.fixture
def backend():
    b = cl.Backend(app=make_app())
    yield b
    b.close()


def add(backend, embedding, cuisine=None, **more):
    doc = {"embedding": embedding, **more}
    if cuisine is not None:
        doc["cuisine"] = cuisine
    return backend.mutation("add", {"doc": doc})


def similar(backend, vector, **kw):
    return backend.action("similar", {"vector": vector, **kw})


def test_cosine_scores_best_first_ties_by_id(backend):
    a = add(backend, [1.0, 0.0, 0.0], "fr")
    b = add(backend, [2.0, 0.0, 0.0], "it")  # same direction: same score as a
    c = add(backend, [0.0, 1.0, 0.0], "fr")
    d = add(backend, [-1.0, 0.0, 0.0], "jp")
    got = similar(backend, [3.0, 0.0, 0.0])
    assert [r["_id"] for r in got] == [*sorted([a, b]), c, d]
    assert [r["_score"] for r in got] == [1.0, 1.0, 0.0, -1.0]
    assert set(got[0]) == {"_id", "_score"}


def test_limit_default_bounds_and_errors(backend):
    for i in range(12):
        add(backend, [1.0, float(i), 0.0])
    assert len(similar(backend, [1.0, 0.0, 0.0])) == 10
    assert len(similar(backend, [1.0, 0.0, 0.0], limit=3)) == 3
    with pytest.raises(ConvexLabError, match="at most 256 results, requested 257"):
        similar(backend, [1.0, 0.0, 0.0], limit=257)
    with pytest.raises(ConvexLabError, match="at least 1"):
        similar(backend, [1.0, 0.0, 0.0], limit=0)
    with pytest.raises(ConvexLabError, match="Expected a vector with dimensions 3, received 2"):
        similar(backend, [1.0, 0.0])
    with pytest.raises(ConvexLabError, match="non-empty"):
        similar(backend, [])
    for bad in (math.nan, math.inf, 2.5, "10"):
        with pytest.raises(ConvexLabError, match="limit must be an integer"):
            similar(backend, [1.0, 0.0, 0.0], limit=bad)
    with pytest.raises(ConvexLabError, match="finite numbers"):
        similar(backend, [math.nan, 0.0, 0.0])


def test_filters_eq_or_and_their_errors(backend):
    fr = add(backend, [1.0, 0.0, 0.0], "fr")
    it = add(backend, [1.0, 0.1, 0.0], "it")
    none = add(backend, [1.0, 0.2, 0.0])
    assert [r["_id"] for r in similar(backend, [1.0, 0.0, 0.0], cuisine="it")] == [it]
    got = similar(backend, [1.0, 0.0, 0.0], cuisines=["fr", "it"])
    assert [r["_id"] for r in got] == [fr, it]
    assert similar(backend, [1.0, 0.0, 0.0], cuisine="none") == []
    app = backend.app

    @app.action(name="bad")
    def bad(ctx, kind: str):
        filters = {
            "field": lambda q: q.eq("embedding", 1.0),
            "neq": lambda q: q.neq("cuisine", "fr"),
            "many": lambda q: q.or_(*(q.eq("cuisine", str(i)) for i in range(65))),
            "undefined": lambda q: q.eq("cuisine", cl.UNDEFINED),
        }
        return ctx.vector_search("foods", "by_embedding", vector=[1.0, 0.0, 0.0],
                                 filter=filters[kind])

    with pytest.raises(ConvexLabError, match="isn't indexed for filtering"):
        backend.action("bad", {"kind": "field"})
    with pytest.raises(ConvexLabError, match=r"q\.eq and q\.or_"):
        backend.action("bad", {"kind": "neq"})
    with pytest.raises(ConvexLabError, match="Max: 64 Actual: 65"):
        backend.action("bad", {"kind": "many"})
    assert [r["_id"] for r in backend.action("bad", {"kind": "undefined"})] == [none]


def test_documents_without_a_proper_vector_are_skipped(backend):
    good = add(backend, [1.0, 0.0, 0.0])
    add(backend, [1.0, 0.0])                     # wrong length
    add(backend, [1.0, 0.0, 0.0, 0.0])
    add(backend, "not a vector")
    add(backend, [cl.Int64(1), 0.0, 0.0])        # int64 is not float64
    add(backend, [float("nan"), 0.0, 0.0])
    backend.mutation("add", {"doc": {"cuisine": "fr", "embedding": None}})
    assert [r["_id"] for r in similar(backend, [1.0, 0.0, 0.0])] == [good]


def test_results_follow_every_commit_before_the_call(backend):
    a = add(backend, [1.0, 0.0, 0.0], "fr")
    b = add(backend, [0.0, 1.0, 0.0], "fr")
    assert similar(backend, [0.0, 1.0, 0.0], limit=1)[0]["_id"] == b
    backend.mutation("patch", {"id": a, "fields": {"embedding": [0.0, 2.0, 0.0]}})
    assert [r["_score"] for r in similar(backend, [0.0, 1.0, 0.0])] == [1.0, 1.0]
    backend.mutation("patch", {"id": a, "fields": {"cuisine": "it"}})
    assert [r["_id"] for r in similar(backend, [0.0, 1.0, 0.0], cuisine="it")] == [a]
    backend.mutation("remove", {"id": b})
    assert [r["_id"] for r in similar(backend, [0.0, 1.0, 0.0])] == [a]
    backend.mutation("patch", {"id": a, "fields": {"embedding": "gone"}})
    assert similar(backend, [0.0, 1.0, 0.0]) == []
    c = add(backend, [0.0, 0.0, 1.0])  # reuses a freed row
    assert [r["_id"] for r in similar(backend, [0.0, 0.0, 1.0])] == [c]


def test_only_actions_have_vector_search(backend):
    with pytest.raises(AttributeError):
        backend.query("peek", {})


def test_exact_search_matches_numpy_brute_force():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3000, 32), dtype=np.float32)
    b = cl.Backend(app=make_app(32))
    cuisines = ["fr", "it", "jp"]
    b.store.import_documents("foods", [{"embedding": row.tolist(), "cuisine": cuisines[i % 3]}
                                       for i, row in enumerate(x)])
    ids = [d["_id"] for d in b.store.tables["foods"].docs.values()]
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    for _ in range(20):
        q = rng.standard_normal(32, dtype=np.float32)
        qn = q / np.linalg.norm(q)
        scores = xn @ qn
        top = np.argsort(-scores, kind="stable")[:10]
        got = similar(b, q.tolist())
        assert [r["_id"] for r in got] == [ids[i] for i in top]
        assert np.allclose([r["_score"] for r in got], scores[top], atol=1e-6)
        allowed = np.array([i % 3 == 1 for i in range(len(x))])
        top_it = [i for i in np.argsort(-np.where(allowed, scores, -np.inf))[:10]]
        got = similar(b, q.tolist(), cuisine="it")
        assert [r["_id"] for r in got] == [ids[i] for i in top_it]
    b.close()


def test_vectors_survive_reopen(tmp_path):
    path = str(tmp_path / "v.duckdb")
    b = cl.Backend(path, app=make_app())
    a = add(b, [1.0, 0.0, 0.0])
    b.store.import_documents("foods", [{"embedding": [0.0, 1.0, 0.0]}])
    b.close()
    b = cl.Backend(path, app=make_app())
    got = similar(b, [1.0, 1.0, 0.0])
    assert len(got) == 2 and a in [r["_id"] for r in got]
    assert got[0]["_score"] == pytest.approx(2 ** -0.5)
    b.close()


def test_approximate_flag_round_trips_through_the_schema():
    t = define_table({"e": v.array(v.float64())}).vector_index(
        "by_e", vector_field="e", dimensions=4, approximate=True)
    schema = define_schema({"t": t})
    again = type(schema).from_json(schema.to_json())
    assert again.table("t").vector_indexes["by_e"]["approximate"] is True
    with pytest.raises(SchemaError):
        define_table({"e": v.array(v.float64())}).vector_index(
            "by_e", vector_field="e", dimensions=4, approximate="yes")


def _embedding_backend():
    app = cl.App()
    app.schema = define_schema({"chunks": define_table({
        "text": v.string(), "embedding": v.array(v.float64()),
    }).vector_index("by_embedding", vector_field="embedding", dimensions=128)})
    return cl.Backend(app=app)


def test_bulk_import_of_embeddings_keeps_values_sizes_and_sql():
    from convex_lab.store.transaction import measure

    b = _embedding_backend()
    rng = np.random.default_rng(2)
    rows = [{"text": f"t{i}", "embedding": rng.standard_normal(128).tolist()} for i in range(300)]
    rows.append({"text": "ints", "embedding": [1] * 128})          # converted to floats
    rows.append({"text": "nan", "embedding": [float("nan")] * 128})  # kept, not indexed
    ids = b.store.import_documents("chunks", rows)
    table = b.store.tables["chunks"]
    for doc_id, row in zip(ids, rows, strict=True):
        doc = table.docs[doc_id]
        assert doc["embedding"] == row["embedding"] or row["text"] == "nan"
        assert doc["embedding"] is not row["embedding"]  # the caller's list is not shared
    assert table.docs[ids[-2]]["embedding"] == [1.0] * 128
    assert all(type(x) is float for x in table.docs[ids[-2]]["embedding"])
    assert table.max_doc_size == max(measure(d)[0] for d in table.docs.values())
    assert len(table.vectors["by_embedding"]) == 301
    rows[0]["embedding"][0] = 99.0  # mutating the input afterwards changes nothing
    assert table.docs[ids[0]]["embedding"][0] != 99.0
    con = b.store.sql()  # waits for the write behind
    assert con.execute('SELECT count(*) FROM _convex."chunks"').fetchone()[0] == 302
    b.close()


def test_bulk_import_of_an_oversized_embedding_is_refused():
    from convex_lab.errors import LimitExceededError

    b = _embedding_backend()
    with pytest.raises(LimitExceededError, match="Value is too large"):
        b.store.import_documents("chunks", [{"text": "x", "embedding": [0.5] * 120_000}])
    assert len(b.store.tables["chunks"].docs) == 0
    b.close()



def test_approximate_index_uses_a_graph_that_follows_writes(monkeypatch):
    pytest.importorskip("usearch", reason="the usearch package is not installed")
    from convex_lab.store import vector_ann

    monkeypatch.setattr(vector_ann, "ANN_MIN", 500)
    app = cl.App()
    app.schema = define_schema({"foods": define_table({"embedding": v.array(v.float64())})
                                .vector_index("by_embedding", vector_field="embedding",
                                              dimensions=32, approximate=True)})

    @app.action(name="similar")
    def similar_(ctx, vector):
        return ctx.vector_search("foods", "by_embedding", vector=vector, limit=10)

    @app.mutation(name="add")
    def add_(ctx, embedding: list[float]):
        return ctx.db.insert("foods", {"embedding": embedding})

    @app.mutation(name="remove")
    def remove_(ctx, id: str):
        ctx.db.delete(id)

    rng = np.random.default_rng(4)
    centres = rng.standard_normal((8, 32))
    x = centres[rng.integers(0, 8, 3000)] + 0.3 * rng.standard_normal((3000, 32))
    b = cl.Backend(app=app)
    ids = b.store.import_documents("foods", [{"embedding": row.tolist()} for row in x])
    index = b.store.tables["foods"].vectors["by_embedding"]
    queries = centres[rng.integers(0, 8, 20)] + 0.3 * rng.standard_normal((20, 32))
    b.action("similar", {"vector": queries[0].tolist()})  # starts the build
    assert index.wait_for_ann(60)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    hits = 0
    for q in queries:
        got = b.action("similar", {"vector": q.tolist()})
        exact = {ids[i] for i in np.argsort(-(xn @ (q / np.linalg.norm(q))))[:10]}
        hits += len(exact & {r["_id"] for r in got})
        assert [r["_score"] for r in got] == sorted((r["_score"] for r in got), reverse=True)
    assert index.ann is not None
    assert hits / 200 >= 0.9
    new = b.mutation("add", {"embedding": queries[1].tolist()})
    assert b.action("similar", {"vector": queries[1].tolist()})[0]["_id"] == new
    b.mutation("remove", {"id": new})
    assert new not in [r["_id"] for r in b.action("similar", {"vector": queries[1].tolist()})]
    b.close()


def test_the_in_memory_mirror_compresses_small_documents_but_not_embeddings(monkeypatch):
    import threading

    from convex_lab.store.persist import MemoryPersistence

    monkeypatch.setattr(MemoryPersistence, "CHECKPOINT_ROWS", 1000)
    app = cl.App()
    app.schema = define_schema({
        "chunks": define_table({"embedding": v.array(v.float64())}),
        "notes": define_table({"text": v.string()}),
    })
    b = cl.Backend(app=app)
    rng = np.random.default_rng(5)

    def compression(table):
        b.store.flush()  # the write behind
        for t in threading.enumerate():  # a checkpoint it started
            if t.name == "convex_lab-checkpoint":
                t.join()
        rows = b.store.sql().execute(
            f"SELECT DISTINCT compression FROM pragma_storage_info('_convex.{table}') "
            "WHERE column_name = 'doc'").fetchall()
        return {r[0] for r in rows}

    b.store.import_documents("notes", [{"text": f"note number {i % 7}"} for i in range(3000)])
    assert "DICT_FSST" in compression("notes")  # checkpointed: compressed
    b.store.import_documents("chunks", [{"embedding": rng.standard_normal(768).tolist()}
                                        for _ in range(3000)])
    assert compression("chunks") == {"Uncompressed"}  # long rows: no slow compression pass
    b.close()

"""Full-text search (reference §10): tokenizer, relevance, filters, errors, limits, snapshots and
own writes, OCC and reactive re-runs, durability."""

import random
import string

import pytest

import convex_lab as cl
from convex_lab import UNDEFINED, define_schema, define_table, v
from convex_lab.errors import ConvexLabError
from convex_lab.store.database import DatabaseReader, DatabaseWriter
from convex_lab.store.engine import Conflict
from convex_lab.store.text_tokens import tokenize


def make_app() -> cl.App:
    app = cl.App()
    app.schema = define_schema({
        "messages": define_table({
            "channel": v.string(), "body": v.string(), "author": v.optional(v.string()),
        }).search_index("search_body", search_field="body", filter_fields=["channel", "author"]),
    })

    @app.mutation(name="send")
    def send(ctx, channel: str, body: str, author: str | None = None):
        doc = {"channel": channel, "body": body}
        if author is not None:
            doc["author"] = author
        return ctx.db.insert("messages", doc)

    @app.mutation(name="edit")
    def edit(ctx, id: str, body: str):
        ctx.db.patch(id, {"body": body})

    @app.query(name="search")
    def search(ctx, text: str, channel: str | None = None):
        def build(q):
            q = q.search("body", text)
            return q.eq("channel", channel) if channel is not None else q
        rows = ctx.db.query("messages").with_search_index("search_body", build).collect()
        return [r["body"] for r in rows]

    return app


@pytest.fixture
def backend():
    app = make_app()
    b = cl.Backend(app=app)
    yield b
    b.close()


def send_all(backend, rows):
    return [backend.mutation("send", dict(zip(("channel", "body"), r, strict=True)))
            for r in rows]


def search(backend, text, channel=None):
    args = {"text": text} if channel is None else {"text": text, "channel": channel}
    return backend.query("search", args)


def reader(backend, tx=None):
    tx = tx or backend.store.begin(read_only=True)
    return DatabaseReader(tx), tx


# Tokenizer -------------------------------------------------------------------------------------


def test_tokenizer_splits_on_non_alphanumerics_lowercases_and_drops_long_tokens():
    assert tokenize("Hello, WORLD! it's 2024_v2") == ["hello", "world", "it", "s", "2024", "v2"]
    assert tokenize("ΟΔΟΣ Straße") == ["οδοσ", "straße"]  # no final-sigma rule, like tantivy
    assert tokenize("a" * 31 + " " + "b" * 32) == ["a" * 31]  # 32 bytes or more: dropped
    assert tokenize("é" * 16) == []  # 32 UTF-8 bytes
    assert tokenize("Ⓐbc") == ["ⓐbc"]  # other alphabetic symbols are letters, as in Rust


def test_tokenizer_matches_tantivy_on_random_unicode_text():
    tantivy = pytest.importorskip("tantivy", reason="the tantivy package is not installed")
    analyzer = (tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
                .filter(tantivy.Filter.remove_long(32)).filter(tantivy.Filter.lowercase()).build())
    rng = random.Random(7)
    pools = [string.printable, "ÀÉÎõüßΣσςΟΔİıĳ", "हिन्दीमें", "中文日本語한국어", "ⓐⒷ①½²٣",
             "\u0301\u0345\u05b0_-·•"]
    for _ in range(2000):
        text = "".join(rng.choice(rng.choice(pools)) for _ in range(rng.randrange(1, 40)))
        assert tokenize(text) == analyzer.analyze(text), repr(text)


# Matching and ranking --------------------------------------------------------------------------


def test_terms_are_ored_and_the_last_is_a_prefix(backend):
    send_all(backend, [("a", "hello world"), ("a", "say goodbye"), ("a", "help wanted"),
                       ("a", "nothing here")])
    assert set(search(backend, "hello")) == {"hello world"}
    assert set(search(backend, "hel")) == {"hello world", "help wanted"}
    assert set(search(backend, "goodbye hel")) == {"hello world", "help wanted", "say goodbye"}
    assert search(backend, "hel goodbye") == ["say goodbye"]  # only the last term is a prefix
    assert search(backend, "") == []
    assert search(backend, "!!!") == []


def test_only_the_first_16_terms_count(backend):
    send_all(backend, [("a", "needle")])
    filler = " ".join(f"w{i}" for i in range(16))
    assert search(backend, filler + " needle") == []
    assert search(backend, "needle " + filler) == ["needle"]


def test_ranking_is_bm25_like_tantivy_then_newest_first(backend):
    tantivy = pytest.importorskip("tantivy", reason="the tantivy package is not installed")
    rng = random.Random(3)
    words = [f"{rng.choice('bcdfg')}{rng.choice('aeiou')}{rng.choice('klmnp')}{i}"
             for i in range(60)]
    weights = [1 / (i + 1) for i in range(len(words))]
    bodies = [" ".join(rng.choices(words, weights, k=rng.randrange(3, 25))) for _ in range(300)]
    backend.store.import_documents("messages", [{"channel": "a", "body": b} for b in bodies])

    builder = tantivy.SchemaBuilder()
    builder.add_text_field("body", stored=False)
    builder.add_integer_field("n", stored=True)
    schema = builder.build()
    index = tantivy.Index(schema)
    writer = index.writer()
    for i, b in enumerate(bodies):
        writer.add_document(tantivy.Document(body=b, n=i))
    writer.commit()
    index.reload()
    searcher = index.searcher()
    for query in ["bak0", "bak0 gep1", "ga", "dun5 b", "fim9 cek12 d"]:
        terms = tokenize(query)
        clauses = [(tantivy.Occur.Should, tantivy.Query.term_query(schema, "body", t))
                   for t in dict.fromkeys(terms[:-1])]
        last = terms[-1]
        expanded = sorted(t for t, _ in searcher.terms_with_prefix("body", last))[:16]
        for t in expanded:
            if t in terms[:-1]:  # already an exact term: Convex counts a term once
                continue
            q = tantivy.Query.term_query(schema, "body", t)
            clauses.append((tantivy.Occur.Should,
                            q if t == last or t in terms else tantivy.Query.boost_query(q, 0.5)))
        hits = searcher.search(tantivy.Query.boolean_query(clauses), 1000).hits
        # Same float32 BM25 scores; equal scores: the newer document first.
        scored = [(score, searcher.doc(addr)["n"][0]) for score, addr in hits]
        expected = [bodies[n] for _, n in sorted(scored, reverse=True)]
        assert search(backend, query) == expected, query


def test_eq_filters_and_undefined_matches_missing_fields(backend):
    backend.mutation("send", {"channel": "a", "body": "hello from ada", "author": "ada"})
    backend.mutation("send", {"channel": "a", "body": "hello from nobody"})
    backend.mutation("send", {"channel": "b", "body": "hello elsewhere", "author": "ada"})
    r, _ = reader(backend)

    def run(build):
        return {d["body"] for d in r.query("messages").with_search_index("search_body", build)
                .collect()}

    assert run(lambda q: q.search("body", "hello").eq("channel", "a")) == {
        "hello from ada", "hello from nobody"}
    assert run(lambda q: q.search("body", "hello").eq("author", UNDEFINED)) == {
        "hello from nobody"}
    assert run(lambda q: q.search("body", "hello").eq("channel", "a").eq("author", "ada")) == {
        "hello from ada"}
    assert run(lambda q: q.search("body", "hello").eq("channel", "zzz")) == set()


@pytest.mark.parametrize(("build", "code"), [
    (lambda q: q.eq("channel", "a"), "MissingSearchFilterError"),
    (lambda q: q.search("body", "x").search("body", "y"), "DuplicateSearchFiltersError"),
    (lambda q: q.search("channel", "x"), "IncorrectSearchField"),
    (lambda q: q.search("body", "x").eq("body", "y"), "IncorrectFilterFieldError"),
])
def test_bad_search_filters_get_convex_errors(backend, build, code):
    r, _ = reader(backend)
    with pytest.raises(ConvexLabError) as e:
        r.query("messages").with_search_index("search_body", build)
    assert e.value.code == code


def test_too_many_filter_conditions(backend):
    r, _ = reader(backend)

    def build(q):
        q = q.search("body", "x")
        for _ in range(9):
            q = q.eq("channel", "a")
        return q

    with pytest.raises(ConvexLabError) as e:
        r.query("messages").with_search_index("search_body", build)
    assert e.value.code == "TooManyFilterConditionsInSearchQueryError"
    assert "Max: 8 Actual: 9" in str(e.value)


def test_unknown_search_index_and_order_are_refused(backend):
    r, _ = reader(backend)
    with pytest.raises(ConvexLabError, match="search_index"):
        r.query("messages").with_search_index("nope", lambda q: q.search("body", "x"))
    q = r.query("messages").with_search_index("search_body", lambda q: q.search("body", "x"))
    with pytest.raises(ConvexLabError, match="relevance"):
        q.order("desc")


def test_at_most_1024_candidates(backend):
    backend.store.import_documents("messages", [{"channel": "a", "body": f"common {i}"}
                                                for i in range(1030)])
    r, _ = reader(backend)
    with pytest.raises(ConvexLabError) as e:
        r.query("messages").with_search_index("search_body",
                                              lambda q: q.search("body", "common")).collect()
    assert e.value.code == "SearchQueryScannedTooManyDocumentsError"
    assert "fetched 1024" in str(e.value)
    r, _ = reader(backend)
    got = r.query("messages").with_search_index("search_body",
                                                lambda q: q.search("body", "common")).take(5)
    assert [d["body"] for d in got] == [f"common {i}" for i in (1029, 1028, 1027, 1026, 1025)]


def test_filter_first_unique_and_pagination(backend):
    send_all(backend, [("a", f"apple {i}") for i in range(7)] + [("a", "banana")])
    r, _ = reader(backend)

    def q():
        return r.query("messages").with_search_index("search_body",
                                                     lambda q: q.search("body", "apple"))

    odd = q().filter(lambda f: f.eq(f.field("body"), "apple 3")).collect()
    assert [d["body"] for d in odd] == ["apple 3"]
    assert q().first()["body"] == "apple 6"  # equal scores: newest first
    with pytest.raises(ConvexLabError, match="unique"):
        q().unique()
    pages, cursor = [], None
    while True:
        r, _ = reader(backend)
        page = q().paginate({"numItems": 3, "cursor": cursor})
        pages.append([d["body"] for d in page["page"]])
        cursor = page["continueCursor"]
        if page["isDone"]:
            break
    assert pages == [["apple 6", "apple 5", "apple 4"], ["apple 3", "apple 2", "apple 1"],
                     ["apple 0"]]


# Transactions ----------------------------------------------------------------------------------


def test_search_sees_own_writes_and_its_snapshot_only(backend):
    [old] = send_all(backend, [("a", "first message")])
    tx = backend.store.begin()
    w = DatabaseWriter(tx)
    w.insert("messages", {"channel": "a", "body": "second message"})
    w.patch(old, {"body": "renamed note"})

    def found(db, text):
        return sorted(d["body"] for d in db.query("messages").with_search_index(
            "search_body", lambda q: q.search("body", text)).collect())

    assert found(w, "message") == ["second message"]
    assert found(w, "note") == ["renamed note"]
    backend.mutation("send", {"channel": "a", "body": "third message"})  # after tx's snapshot
    assert found(w, "message") == ["second message"]
    assert search(backend, "message") == ["third message", "first message"]
    tx.abort()


def test_occ_conflicts_only_with_matching_writes(backend):
    send_all(backend, [("a", "alpha")])
    for body, channel, conflicts in [("beta", "a", False), ("alphabet", "b", False),
                                     ("alphabet", "a", True)]:
        tx = backend.store.begin()
        w = DatabaseWriter(tx)
        w.query("messages").with_search_index(
            "search_body", lambda q: q.search("body", "alp").eq("channel", "a")).collect()
        w.insert("messages", {"channel": "z", "body": "log"})
        backend.mutation("send", {"channel": channel, "body": body})
        if conflicts:
            with pytest.raises(Conflict):
                tx.commit()
        else:
            tx.commit()


def runs_of(backend, path):
    return sum(1 for e in backend.logs() if e["function"] == path)


def test_live_search_reruns_only_for_matching_writes(backend):
    [doc] = send_all(backend, [("a", "hello world")])
    live = backend.client().subscribe("search", {"text": "wor hel", "channel": "a"})
    assert live.value == ["hello world"]
    base = runs_of(backend, "search")
    send_all(backend, [("b", "hello there"),       # other channel
                       ("a", "goodbye"),           # no term
                       ("a", "worthy hel")])       # "worthy" is not "wor"; "hel" is a prefix
    assert runs_of(backend, "search") == base + 1
    assert live.value == ["worthy hel", "hello world"]
    backend.mutation("edit", {"id": doc, "body": "nothing"})  # the old version matched
    assert runs_of(backend, "search") == base + 2
    assert live.value == ["worthy hel"]
    live.close()


def test_index_survives_reopen_and_schema_push(tmp_path):
    path = str(tmp_path / "s.duckdb")
    app = make_app()
    b = cl.Backend(path, app=app)
    send_all(b, [("a", "durable words"), ("a", "other words")])
    b.store.import_documents("messages", [{"channel": "a", "body": "bulk words"}])
    b.close()
    b = cl.Backend(path, app=app)
    assert search(b, "words") == ["bulk words", "other words", "durable words"]
    b.close()


def test_a_search_index_added_later_indexes_existing_documents():
    app = cl.App()
    app.schema = define_schema({"notes": define_table(v.any())})
    b = cl.Backend(app=app)
    b.store.import_documents("notes", [{"text": "old note"}, {"text": 5.0}, {"other": "x"}])
    app.schema = define_schema({"notes": define_table(v.any()).search_index(
        "by_text", search_field="text")})
    b.deploy(app)
    r, _ = reader(b)
    got = r.query("notes").with_search_index("by_text", lambda q: q.search("text", "note"))
    assert [d["text"] for d in got.collect()] == ["old note"]
    b.close()


def test_index_stays_consistent_through_many_updates(backend):
    rng = random.Random(5)
    words = ["red", "green", "blue", "cyan", "gold"]
    ids, current = [], {}
    for i in range(3000):
        if ids and rng.random() < 0.5:
            doc = rng.choice(ids)
            if rng.random() < 0.2:
                backend.store.run(lambda tx, d=doc: DatabaseWriter(tx).delete(d))
                ids.remove(doc)
                del current[doc]
            else:
                body = " ".join(rng.choices(words, k=3))
                backend.mutation("edit", {"id": doc, "body": body})
                current[doc] = body
        else:
            body = " ".join(rng.choices(words, k=3)) + f" n{i}"
            doc = backend.mutation("send", {"channel": "a", "body": body})
            ids.append(doc)
            current[doc] = body
    index = backend.store.tables["messages"].search["search_body"]
    assert index.num_docs == len(current)
    for word in words:
        r, _ = reader(backend)
        got = r.query("messages").with_search_index("search_body",
                                                    lambda q, w=word: q.search("body", w))
        expected = {d for d, body in current.items() if word in body.split()}
        matched = {d["_id"] for d in got.take(1024)}
        assert matched <= expected
        assert len(matched) == min(len(expected), 1024)


def test_rewritten_documents_are_compacted_away(backend):
    ids = backend.store.import_documents(
        "messages", [{"channel": "a", "body": f"draft {i}"} for i in range(2000)])

    def rewrite(tx, word):
        w = DatabaseWriter(tx)
        for i, doc in enumerate(ids):
            w.patch(doc, {"body": f"{word} {i}"})

    backend.store.run(lambda tx: rewrite(tx, "second"))
    backend.store.run(lambda tx: rewrite(tx, "final"))
    index = backend.store.tables["messages"].search["search_body"]
    assert index.dead < 2000 and index.n < 6000  # dead versions were dropped
    r, _ = reader(backend)
    assert r.query("messages").with_search_index(
        "search_body", lambda q: q.search("body", "final 7")).first()["body"] == "final 7"
    for word in ("draft", "second"):
        r, _ = reader(backend)
        assert r.query("messages").with_search_index(
            "search_body", lambda q, w=word: q.search("body", w + " x")).take(3) == []

"""Snapshot ZIPs (DESIGN §8, wire-protocol §6): Convex's layout, lossless round trips, modes,
one commit per import, and real-Convex decoding rules."""

from __future__ import annotations

import json
import math
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import convex_lab as cl
from convex_lab import Int64, v
from convex_lab.errors import ConvexLabError
from convex_lab.ids import decode_id, encode_id
from convex_lab.values import dumps_export

INT64_MAX = 2**63 - 1


def _app() -> cl.App:
    app = cl.App()
    app.schema = cl.define_schema({
        "users": cl.define_table({"name": v.string()}),
        "posts": cl.define_table({
            "author": v.id("users"), "n": v.int64(), "f": v.float64(),
            "blob": v.optional(v.bytes()), "tags": v.optional(v.array(v.string())),
        }).index("by_author", ["author"]),
    })
    return app


@pytest.fixture
def source() -> Iterator[cl.Backend]:
    backend = cl.Backend(app=_app())
    backend.import_table("users", [{"name": "ada"}, {"name": "bob"}])
    ada = next(d["_id"] for d in backend.store.tables["users"].docs.values()
               if d["name"] == "ada")
    backend.import_table("posts", [
        {"author": ada, "n": Int64(INT64_MAX), "f": math.nan, "blob": b"\x00\xff"},
        {"author": ada, "n": Int64(-(2**63)), "f": -0.0, "tags": ["a", "b"]},
        {"author": ada, "n": Int64(0), "f": math.inf},
        {"author": ada, "n": Int64(7), "f": -math.inf, "blob": b""},
        {"author": ada, "n": Int64(1), "f": 1e300},
    ])
    backend.import_table("loose", [{"x": Int64(1), "deep": [1.5, {"b": b"q", "i": Int64(3)}]},
                                   {"x": "text", "nothing": None}])
    yield backend
    backend.close()


def _docs(backend: cl.Backend, table: str) -> str:
    """Every document of a table, in a form where NaN == NaN and -0.0 != 0.0."""
    return dumps_export(sorted(backend.store.tables[table].docs.items()))


def test_export_has_convex_layout(source: cl.Backend, tmp_path: Path) -> None:
    path = tmp_path / "snap.zip"
    counts = source.export_zip(path)
    assert counts == {"users": 2, "posts": 5, "loose": 2}
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        assert names[0] == "README.md" and names[1] == "_tables/documents.jsonl"
        # small tables first (Convex's writer order), each with its generated schema
        assert names[2:] == ["loose/documents.jsonl", "loose/generated_schema.jsonl",
                             "users/documents.jsonl", "users/generated_schema.jsonl",
                             "posts/documents.jsonl", "posts/generated_schema.jsonl"]
        for info in zf.infolist():
            assert info.compress_type == zipfile.ZIP_DEFLATED
            assert (info.external_attr >> 16) & 0o777 == 0o644
        tables = [json.loads(x) for x in zf.read("_tables/documents.jsonl").splitlines()]
        assert tables == [{"name": "users", "id": 10001}, {"name": "posts", "id": 10002},
                          {"name": "loose", "id": 10003}]
        assert zf.read("posts/generated_schema.jsonl") == b'"uniform"\n'
        lines = zf.read("posts/documents.jsonl").decode().splitlines()
    rows = [json.loads(x) for x in lines]
    # table numbers stay inside the IDs
    assert {decode_id(r["_id"])[0] for r in rows} == {10002}
    by_n = {r["n"]: (r, line) for r, line in zip(rows, lines, strict=True)}
    top, line = by_n[INT64_MAX]
    assert f'"n":{INT64_MAX}' in line  # int64: a bare integer, exact
    assert top["f"] == {"$float": "AAAAAAAA+H8="}  # NaN, little-endian IEEE 754
    assert top["blob"] == {"$bytes": "AP8="}
    assert '"f":-0.0' in by_n[-(2**63)][1]  # floats always have a '.', so they stay floats
    assert isinstance(top["_creationTime"], float)


def test_round_trip_is_lossless(source: cl.Backend, tmp_path: Path) -> None:
    path = tmp_path / "snap.zip"
    source.export_zip(path)
    with cl.Backend(app=_app()) as target:
        counts = target.import_zip(path)
        assert counts == {"loose": 2, "posts": 5, "users": 2}
        for table in ("users", "posts", "loose"):
            assert _docs(target, table) == _docs(source, table)
            assert target.store.tables[table].number == source.store.tables[table].number
        post = next(d for d in target.store.tables["posts"].docs.values() if d["n"] == 0)
        assert type(post["n"]) is Int64
        loose = next(d for d in target.store.tables["loose"].docs.values() if d["x"] == 1)
        assert type(loose["x"]) is Int64 and loose["deep"][1] == {"b": b"q", "i": Int64(3)}
        # the indexes were built: an index query sees the imported documents
        ada = next(d["_id"] for d in target.store.tables["users"].docs.values()
                   if d["name"] == "ada")
        keys = list(target.store.tables["posts"].entries["by_author"])
        assert len(keys) == 5 and all(ada in k for k in keys)


def test_round_trip_through_a_file_backend(source: cl.Backend, tmp_path: Path) -> None:
    path = tmp_path / "snap.zip"
    source.export_zip(path)
    db = tmp_path / "target.duckdb"
    with cl.Backend(db, app=_app()) as target:
        target.import_zip(path)
    with cl.Backend(db, app=_app()) as reopened:  # durable, and decoded again from DuckDB
        for table in ("users", "posts", "loose"):
            assert _docs(reopened, table) == _docs(source, table)


def test_files_travel_with_the_snapshot(tmp_path: Path) -> None:
    path = tmp_path / "snap.zip"
    with cl.Backend(app=_app()) as backend:
        sid = backend.files.store_data(b"hello, files", "text/plain")
        counts = backend.export_zip(path)
    assert counts["_storage"] == 1
    with zipfile.ZipFile(path) as zf:
        assert zf.read(f"_storage/{sid}") == b"hello, files"
        meta = json.loads(zf.read("_storage/documents.jsonl"))
        assert meta["size"] == 12 and meta["contentType"] == "text/plain"
    with cl.Backend(app=_app()) as target:
        target.import_zip(path)
        assert target.files.read(sid) == b"hello, files"


def test_require_empty_refuses_and_writes_nothing(source: cl.Backend, tmp_path: Path) -> None:
    path = tmp_path / "snap.zip"
    source.export_zip(path)
    ts = source.store.ts
    with pytest.raises(ConvexLabError, match=r"mode='append'.*mode='replace'"):
        source.import_zip(path)
    assert source.store.ts == ts


def test_replace_and_append(source: cl.Backend, tmp_path: Path) -> None:
    path = tmp_path / "snap.zip"
    source.export_zip(path)
    before = _docs(source, "posts")
    source.import_table("users", [{"name": "carol"}], mode="append")
    source.import_zip(path, mode="replace")  # users gets back to the snapshot's two
    assert len(source.store.tables["users"].docs) == 2
    assert _docs(source, "posts") == before
    with pytest.raises(ConvexLabError, match="already holds"):
        source.import_zip(path, mode="append")  # same IDs again
    with pytest.raises(ConvexLabError, match="require_empty"):
        source.import_zip(path, mode="bogus")


def test_one_commit_and_all_or_nothing(source: cl.Backend, tmp_path: Path) -> None:
    path = tmp_path / "snap.zip"
    source.export_zip(path)
    with cl.Backend(app=_app()) as target:
        seen: list[set[str]] = []
        target.store.commits.subscribe(lambda c: seen.append(set(c.writes)))
        target.import_zip(path)
        assert seen == [{"users", "posts", "loose"}]  # one commit holding every table
    # a bad document in the last table read leaves every table untouched
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(path) as zf, zipfile.ZipFile(bad, "w") as out:
        for info in zf.infolist():
            data = zf.read(info)
            if info.filename == "users/documents.jsonl":
                data += b'{"name": 5}\n'
            out.writestr(info, data)
    with cl.Backend(app=_app()) as target:
        with pytest.raises(ConvexLabError, match=r"Line 2 of users/documents.jsonl") as info:
            target.import_zip(bad)
        assert "does not match the schema" in str(info.value)
        assert target.store.user_tables() == [] or all(
            not target.store.tables[t].docs for t in target.store.user_tables())


def _convex_zip(path: Path, lines: list[str], *, schema: str | None,
                number: int = 10001) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("snapshot/_tables/documents.jsonl",
                    json.dumps({"name": "items", "id": number}) + "\n")
        zf.writestr("snapshot/items/documents.jsonl", "".join(x + "\n" for x in lines))
        if schema is not None:
            zf.writestr("snapshot/items/generated_schema.jsonl", schema + "\n")


def test_real_convex_export_decoding(tmp_path: Path) -> None:
    """A Convex-written ZIP (keys in Convex's order, a leading directory): with "uniform", a
    bare integer is int64 and $-objects decode; without a generated schema every number is a
    float64 (ExportContext::Infer)."""
    doc_id = encode_id(10001, bytes(range(16)))
    line = (f'{{"_creationTime":1712345678901.123,"_id":"{doc_id}","count":3,"ratio":3.0,'
            f'"blob":{{"$bytes":"aGVsbG8="}},"big":{{"$integer":"AQAAAAAAAAA="}}}}')
    path = tmp_path / "uniform.zip"
    _convex_zip(path, [line], schema='"uniform"')
    with cl.Backend(app=cl.App()) as backend:
        backend.import_zip(path)
        (doc,) = backend.store.tables["items"].docs.values()
        assert doc["_id"] == doc_id and doc["_creationTime"] == 1712345678901.123
        assert type(doc["count"]) is Int64 and doc["count"] == 3
        assert type(doc["ratio"]) is float and doc["blob"] == b"hello"
        assert type(doc["big"]) is Int64 and doc["big"] == 1
    infer = tmp_path / "infer.zip"
    _convex_zip(infer, [f'{{"_id":"{doc_id}","count":3,"name":"x"}}'], schema=None)
    with cl.Backend(app=cl.App()) as backend:
        backend.import_zip(infer)
        (doc,) = backend.store.tables["items"].docs.values()
        assert type(doc["count"]) is float and doc["count"] == 3.0
        assert isinstance(doc["_creationTime"], float)  # none given: a fresh one


def test_ids_of_another_table_are_refused(tmp_path: Path) -> None:
    wrong = encode_id(10005, bytes(16))
    path = tmp_path / "wrong.zip"
    _convex_zip(path, [f'{{"_id":"{wrong}","x":1}}'], schema='"uniform"')
    with cl.Backend(app=cl.App()) as backend, pytest.raises(ConvexLabError,
                                                             match="table number 10001"):
        backend.import_zip(path)


def test_table_number_in_use_is_an_import_conflict(tmp_path: Path) -> None:
    doc_id = encode_id(10001, bytes(16))
    path = tmp_path / "snap.zip"
    _convex_zip(path, [f'{{"_id":"{doc_id}","x":1}}'], schema='"uniform"')
    with cl.Backend(app=cl.App()) as backend:
        backend.import_table("other", [{"y": 1.0}])  # takes number 10001
        with pytest.raises(ConvexLabError, match="already uses"):
            backend.import_zip(path)
        assert "items" not in backend.store.user_tables() or not backend.store.tables[
            "items"].docs


def test_bad_inputs_say_what_to_do(tmp_path: Path) -> None:
    with cl.Backend(app=cl.App()) as backend:
        with pytest.raises(ConvexLabError, match="No file"):
            backend.import_zip(tmp_path / "missing.zip")
        not_zip = tmp_path / "x.zip"
        not_zip.write_text("hello")
        with pytest.raises(ConvexLabError, match="not a ZIP"):
            backend.import_zip(not_zip)
        with pytest.raises(ConvexLabError, match=r"\.zip"):
            backend.export_zip(tmp_path / "snap.tar")


_DEEP = '{"a":' + "[" * 5000 + "]" * 5000 + "}\n"


@pytest.mark.parametrize(("entries", "message"), [
    ({"../evil/documents.jsonl": '{"a":1}\n'}, "not a snapshot path"),
    ({"_storage/../../evil": "x"}, "not a snapshot path"),
    ({"/abs/documents.jsonl": '{"a":1}\n'}, "not a snapshot path"),
    ({"t/documents.jsonl": _DEEP}, "nested deeper than Convex allows"),
    ({"t/documents.jsonl": _DEEP, "t/generated_schema.jsonl": '"uniform"\n'},
     "nested deeper than Convex allows"),
    ({"t/documents.jsonl": '{"a":1}\n', "t/generated_schema.jsonl": "{{{\n"},
     "is not a generated schema"),
    ({"t/documents.jsonl": '{"a":\n'}, "is not JSON lines"),
])
def test_hostile_snapshots_are_refused_with_a_reason(tmp_path: Path, entries: dict[str, str],
                                                     message: str) -> None:
    """A ZIP that is not a Convex snapshot — entries climbing out of it, values nested past
    Convex's limit, a garbage generated schema — is one convex_lab error and writes nothing."""
    path = tmp_path / "hostile.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    with cl.Backend() as backend:
        with pytest.raises(ConvexLabError, match=message):
            backend.import_zip(path)
        assert backend.store.user_tables() == []
    assert not (tmp_path.parent / "evil").exists()


@pytest.mark.parametrize("bad", [None, 123, ["a.zip"]])
def test_paths_and_table_names_of_the_wrong_type_are_clear_errors(bad: Any) -> None:
    with cl.Backend() as backend:
        with pytest.raises(ConvexLabError, match=r"path of a \.zip file"):
            backend.import_zip(bad)
        with pytest.raises(ConvexLabError, match=r"path of a \.zip file"):
            backend.export_zip(bad)
        with pytest.raises(ConvexLabError, match="A table name is a string"):
            backend.to_pandas(bad)


def test_export_is_atomic(source: cl.Backend, tmp_path: Path, monkeypatch: Any) -> None:
    from convex_lab.interop import snapshot

    path = tmp_path / "snap.zip"

    def broken(docs: Any, encoder: Any, special: Any = None) -> bytes:
        raise RuntimeError("disk full")

    monkeypatch.setattr(snapshot, "encode_lines", broken)
    with pytest.raises(RuntimeError):
        source.export_zip(path)
    assert list(tmp_path.iterdir()) == []  # no half-written snapshot left behind


def test_export_streams(source: cl.Backend, tmp_path: Path, monkeypatch: Any) -> None:
    """Documents go to the compressor a chunk at a time, never as one export-sized buffer."""
    from convex_lab.interop import snapshot

    monkeypatch.setattr(snapshot, "ENCODE_CHUNK", 2)
    sizes: list[int] = []
    real = snapshot.encode_lines

    def spy(docs: Any, encoder: Any, special: Any = None) -> bytes:
        sizes.append(len(docs))
        return real(docs, encoder, special)

    monkeypatch.setattr(snapshot, "encode_lines", spy)
    path = tmp_path / "snap.zip"
    source.export_zip(path)
    assert max(sizes) == 2 and sum(sizes) == 9
    with cl.Backend(app=_app()) as target:
        target.import_zip(path)
        assert _docs(target, "posts") == _docs(source, "posts")


def test_component_tables_use_convex_component_layout(tmp_path: Path) -> None:
    """A mounted component's tables ("<component>/<table>" in the store) are written under
    _components/<component>/ with their own _tables, as Convex does, and come back there."""
    def app() -> cl.App:
        comp = cl.define_component("counter")
        comp.schema = cl.define_schema({"counts": cl.define_table({"n": v.int64()})})
        main = cl.App()
        main.schema = cl.define_schema({"counts": cl.define_table({"label": v.string()})})
        main.use(comp)
        return main

    path = tmp_path / "snap.zip"
    with cl.Backend(app=app()) as backend:
        backend.store.run(lambda tx: tx.insert("counter/counts", {"n": Int64(5)}))
        backend.import_table("counts", [{"label": "app's own"}])
        assert backend.export_zip(path) == {"counter/counts": 1, "counts": 1}
        before = {t: _docs(backend, t) for t in ("counts", "counter/counts")}
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        assert {"_components/counter/_tables/documents.jsonl",
                "_components/counter/counts/documents.jsonl",
                "counts/documents.jsonl"} <= names
        assert b'"name":"counts"' in zf.read("_components/counter/_tables/documents.jsonl")
    with cl.Backend(app=app()) as target:
        assert target.import_zip(path) == {"counter/counts": 1, "counts": 1}
        for table, docs in before.items():
            assert _docs(target, table) == docs


def test_import_reads_in_blocks_across_line_breaks(source: cl.Backend, tmp_path: Path,
                                                   monkeypatch: Any) -> None:
    """The ZIP is read a block at a time (never whole): lines split across blocks, and a last
    line without its newline, decode the same."""
    from convex_lab.interop import snapshot

    path = tmp_path / "snap.zip"
    source.export_zip(path)
    trimmed = tmp_path / "trimmed.zip"
    with zipfile.ZipFile(path) as zf, zipfile.ZipFile(trimmed, "w") as out:
        for info in zf.infolist():
            data = zf.read(info)
            out.writestr(info, data.rstrip(b"\n") if info.filename.endswith(".jsonl") else data)
    monkeypatch.setattr(snapshot, "READ_BLOCK", 7)
    with cl.Backend(app=_app()) as target:
        target.import_zip(trimmed)
        for table in ("users", "posts", "loose"):
            assert _docs(target, table) == _docs(source, table)


def test_replace_on_a_file_backend_survives_reopening(source: cl.Backend,
                                                      tmp_path: Path) -> None:
    path = tmp_path / "snap.zip"
    source.export_zip(path)
    db = tmp_path / "target.duckdb"
    with cl.Backend(db, app=_app()) as target:
        target.import_table("users", [{"name": "zed"}])
        target.import_zip(path, mode="replace")
    with cl.Backend(db, app=_app()) as reopened:
        assert _docs(reopened, "users") == _docs(source, "users")  # zed was replaced
        assert _docs(reopened, "posts") == _docs(source, "posts")


def test_typed_tables_take_the_columnar_path_and_nulls_do_not(tmp_path: Path,
                                                              monkeypatch: Any) -> None:
    """A table typed with scalar fields is read by Arrow's JSON reader; an explicit null (which
    Arrow cannot tell from a missing field) goes the row path and gets Convex's error."""
    from convex_lab.interop import zip_columns

    def app() -> cl.App:
        a = cl.App()
        a.schema = cl.define_schema({"items": cl.define_table({
            "name": v.string(), "n": v.int64(), "x": v.optional(v.float64())})})
        return a

    taken: list[bool] = []
    real = zip_columns.arrow_load

    def spy(*args: Any, **kwargs: Any) -> Any:
        got = real(*args, **kwargs)
        taken.append(got is not None)
        return got

    monkeypatch.setattr(zip_columns, "arrow_load", spy)
    good = encode_id(10001, bytes(range(16)))
    other = encode_id(10001, bytes(range(1, 17)))
    path = tmp_path / "ok.zip"
    _convex_zip(path, [f'{{"_creationTime":1.5,"_id":"{good}","name":"a","n":{INT64_MAX}}}',
                       f'{{"_creationTime":2.5,"_id":"{other}","name":"b","n":1,"x":2.5}}'],
                schema='"uniform"')
    with cl.Backend(app=app()) as backend:
        backend.import_zip(path)
        docs = {d["name"]: d for d in backend.store.tables["items"].docs.values()}
        assert docs["a"]["n"] == INT64_MAX and type(docs["a"]["n"]) is Int64
        assert "x" not in docs["a"] and docs["b"]["x"] == 2.5
        assert docs["b"]["_creationTime"] == 2.5 and docs["a"]["_id"] == good
    assert taken == [True]
    nulls = tmp_path / "nulls.zip"
    _convex_zip(nulls, [f'{{"_creationTime":1.5,"_id":"{good}","name":"a","n":1,"x":null}}'],
                schema='"uniform"')
    with cl.Backend(app=app()) as backend, pytest.raises(ConvexLabError,
                                                         match="does not match the schema"):
        backend.import_zip(nulls)
    assert taken == [True, False]

"""Tables in and out (DESIGN §8): import_table from DataFrames, Arrow, Parquet, CSV, JSON(L) and
dicts, validated column by column with errors naming the row and field; to_arrow / to_pandas /
live.to_pandas typed, and lossless round trips."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pd = pytest.importorskip("pandas", reason="pandas is not installed (pip install pandas)")
pa = pytest.importorskip("pyarrow", reason="pyarrow is not installed")

import convex_lab as cl  # noqa: E402
from convex_lab import Int64, v  # noqa: E402
from convex_lab.errors import ConvexLabError  # noqa: E402
from convex_lab.values import dumps_export  # noqa: E402


def _app() -> cl.App:
    app = cl.App()
    app.schema = cl.define_schema({
        "people": cl.define_table({
            "name": v.string(), "age": v.int64(), "score": v.optional(v.float64()),
            "member": v.boolean(), "avatar": v.optional(v.bytes()),
        }).index("by_name", ["name"]),
        "notes": cl.define_table({"person": v.id("people"), "text": v.string(),
                                  "tags": v.optional(v.array(v.string()))}),
    })
    return app


@pytest.fixture
def backend() -> Iterator[cl.Backend]:
    with cl.Backend(app=_app()) as b:
        yield b


def _frame() -> Any:
    return pd.DataFrame({
        "name": ["ada", "bob", "cy"],
        "age": [36, 41, 2**62],
        "score": [1.5, None, -0.25],
        "member": [True, False, True],
        "avatar": [b"\x00\x01", None, b""],
    })


def _docs(backend: cl.Backend, table: str) -> str:
    return dumps_export(sorted(backend.store.tables[table].docs.items()))


def test_pandas_import_is_validated_and_typed(backend: cl.Backend) -> None:
    assert backend.import_table("people", _frame()) == 3
    docs = sorted(backend.store.tables["people"].docs.values(), key=lambda d: d["name"])
    ada, bob, cy = docs
    assert type(ada["age"]) is Int64 and cy["age"] == 2**62
    assert ada["score"] == 1.5 and "score" not in bob  # NaN/None in an optional field: absent
    assert ada["avatar"] == b"\x00\x01" and "avatar" not in bob and cy["avatar"] == b""
    assert ada["member"] is True
    # indexed: the index holds every imported document, in order
    assert [k[1] for k in backend.store.tables["people"].entries["by_name"]] == [
        "ada", "bob", "cy"]


@pytest.mark.parametrize(("change", "message"), [
    (lambda df: df.assign(name=["ada", None, "cy"]),
     'Row 1, field "name".*missing.*v.optional'),
    (lambda df: df.assign(age=[1.0, 2.5, 3.0]), 'Row 1, field "age".*2.5 is not a whole number'),
    (lambda df: df.assign(member=["yes", "no", "yes"]), 'Row 0, field "member".*true/false'),
    (lambda df: df.assign(extra=[1, 2, 3]), r"Column\(s\) \['extra'\].*not fields"),
    (lambda df: df.drop(columns=["age"]), r"requires field\(s\) \['age'\]"),
])
def test_errors_name_the_row_and_field(backend: cl.Backend, change: Any, message: str) -> None:
    ts = backend.store.ts
    with pytest.raises(ConvexLabError, match=message):
        backend.import_table("people", change(_frame()))
    assert backend.store.ts == ts  # nothing was committed
    assert len(backend.store) == 0


def test_row_numbers_count_across_chunks(backend: cl.Backend, monkeypatch: Any) -> None:
    from convex_lab.interop import tables_in

    monkeypatch.setattr(tables_in, "CHUNK_ROWS", 4)
    names = [f"p{i}" for i in range(10)]
    names[9] = None  # type: ignore[call-overload]
    frame = pd.DataFrame({"name": names, "age": range(10), "member": [True] * 10})
    with pytest.raises(ConvexLabError, match='Row 9, field "name"'):
        backend.import_table("people", frame)


def test_ids_are_checked_against_their_table(backend: cl.Backend) -> None:
    backend.import_table("people", _frame())
    ada = next(d["_id"] for d in backend.store.tables["people"].docs.values()
               if d["name"] == "ada")
    backend.import_table("notes", pd.DataFrame({"person": [ada], "text": ["hi"]}))
    note = next(iter(backend.store.tables["notes"].docs))
    with pytest.raises(ConvexLabError, match=r'Row 1, field "person".*not of \'people\''):
        backend.import_table("notes", pd.DataFrame({"person": [ada, note], "text": ["a", "b"]}),
                             mode="append")


def test_modes(backend: cl.Backend) -> None:
    backend.import_table("people", _frame())
    with pytest.raises(ConvexLabError, match="mode='append'"):
        backend.import_table("people", _frame())
    backend.import_table("people", _frame(), mode="append")
    assert len(backend.store.tables["people"].docs) == 6
    backend.import_table("people", _frame().head(1), mode="replace")
    assert [d["name"] for d in backend.store.tables["people"].docs.values()] == ["ada"]
    assert len(backend.store.tables["people"].entries["by_name"]) == 1


def test_dataframe_round_trip_is_lossless(backend: cl.Backend) -> None:
    backend.import_table("people", _frame())
    backend.import_table("loose", [
        {"n": Int64(-(2**63)), "f": math.nan, "g": -0.0, "h": math.inf, "b": b"\xff",
         "arr": [Int64(1), 2.0], "obj": {"x": None}, "mixed": 1.0, "nul": None},
        {"n": Int64(2**63 - 1), "f": -math.inf, "mixed": "s"},
    ])
    for table in ("people", "loose"):
        frame = backend.to_pandas(table)
        arrow = backend.to_arrow(table)
        for source in (frame, arrow):
            with cl.Backend(app=_app()) as other:
                other.import_table(table, source)
                assert _docs(other, table) == _docs(backend, table)  # IDs and times included


def test_to_pandas_is_typed(backend: cl.Backend) -> None:
    backend.import_table("people", _frame())
    frame = backend.to_pandas("people")
    assert list(frame.columns[:2]) == ["_id", "_creationTime"]
    assert str(frame["age"].dtype) == "int64[pyarrow]"
    assert str(frame["avatar"].dtype) == "binary[pyarrow]"
    assert str(frame["_id"].dtype).startswith("string")
    row = frame[frame["name"] == "cy"].iloc[0]
    assert row["age"] == 2**62 and row["avatar"] == b""
    assert frame[frame["name"] == "bob"]["score"].isna().all()  # a missing field is <NA>


def test_files_in(backend: cl.Backend, tmp_path: Path) -> None:
    frame = _frame().drop(columns=["avatar"])
    frame.to_parquet(tmp_path / "p.parquet")
    frame.to_csv(tmp_path / "p.csv", index=False)
    records = [{k: x for k, x in r.items() if not (isinstance(x, float) and math.isnan(x))}
               for r in frame.to_dict("records")]
    (tmp_path / "p.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (tmp_path / "p.json").write_text(json.dumps(records))
    for name in ("p.parquet", "p.csv", "p.jsonl", "p.json"):
        with cl.Backend(app=_app()) as other:
            assert other.import_table("people", tmp_path / name) == 3
            docs = {d["name"]: d for d in other.store.tables["people"].docs.values()}
            assert type(docs["cy"]["age"]) is Int64 and docs["cy"]["age"] == 2**62, name
            assert "score" not in docs["bob"] and docs["ada"]["score"] == 1.5, name


def test_csv_and_json_numbers_are_float64_without_a_schema(tmp_path: Path) -> None:
    """As `npx convex import --table`: numbers from CSV/JSON are float64 unless the schema
    says int64."""
    (tmp_path / "t.csv").write_text("a,b\n1,x\n2,y\n")
    (tmp_path / "t.jsonl").write_text('{"a": 1}\n')
    with cl.Backend(app=cl.App()) as backend:
        backend.import_table("c", tmp_path / "t.csv")
        backend.import_table("j", tmp_path / "t.jsonl")
        assert {type(d["a"]) for d in backend.store.tables["c"].docs.values()} == {float}
        assert {type(d["a"]) for d in backend.store.tables["j"].docs.values()} == {float}


def test_arrow_and_parquet_export(backend: cl.Backend, tmp_path: Path) -> None:
    backend.import_table("people", _frame())
    assert backend.to_parquet("people", tmp_path / "out.parquet") == 3
    import pyarrow.parquet as pq

    table = pq.read_table(tmp_path / "out.parquet")
    assert table.schema.field("age").type == pa.int64()
    with cl.Backend(app=_app()) as other:
        other.import_table("people", tmp_path / "out.parquet")
        assert _docs(other, "people") == _docs(backend, "people")


def test_polars(backend: cl.Backend) -> None:
    pl = pytest.importorskip("polars", reason="polars is not installed (pip install polars)")
    frame = pl.DataFrame({"name": ["a", "b"], "age": [1, 2], "member": [True, False],
                          "score": [None, 2.5]})
    backend.import_table("people", frame)
    docs = {d["name"]: d for d in backend.store.tables["people"].docs.values()}
    assert type(docs["a"]["age"]) is Int64 and "score" not in docs["a"]


def test_bad_sources(backend: cl.Backend, tmp_path: Path) -> None:
    with pytest.raises(ConvexLabError, match="DataFrame"):
        backend.import_table("people", 42)
    with pytest.raises(ConvexLabError, match=r"reads \.parquet"):
        backend.import_table("people", tmp_path / "x.xlsx")
    with pytest.raises(ConvexLabError, match="No file"):
        backend.import_table("people", tmp_path / "x.csv")
    with pytest.raises(ConvexLabError, match="Row 1 of the import"):
        backend.import_table("people", [{"name": "a", "age": 1, "member": True}, "oops"])


def test_live_to_pandas(backend: cl.Backend) -> None:
    app = backend.app

    @app.query
    def people(ctx: Any) -> Any:
        return ctx.db.query("people").collect()

    backend.import_table("people", _frame())
    live = backend.subscribe(people)
    try:
        frame = live.to_pandas()
        assert len(frame) == 3 and str(frame["age"].dtype) == "int64[pyarrow]"
        backend.import_table("people", _frame().head(1), mode="append")
        backend.refresh_live_queries()
        assert len(live.to_pandas()) == 4
    finally:
        live.close()


def test_progress_bars(backend: cl.Backend, tmp_path: Path, capsys: Any) -> None:
    backend.import_table("people", _frame())  # 3 rows: no bar by default
    assert "import people" not in capsys.readouterr().err
    backend.import_table("people", _frame(), mode="append", progress=True)
    assert "import people" in capsys.readouterr().err  # text bar outside a kernel (tqdm.auto)
    backend.export_zip(tmp_path / "s.zip", progress=True)
    assert "export s.zip" in capsys.readouterr().err
    backend.import_table("people", _frame(), mode="append", progress=False)
    assert capsys.readouterr().err == ""


def test_csv_empty_cells_of_optional_fields_are_missing(tmp_path: Path) -> None:
    """As `npx convex import --table` (remap_empty_string_by_schema): an empty CSV cell is a
    missing field when the schema makes the field optional, and "" otherwise."""
    app = cl.App()
    app.schema = cl.define_schema({"t": cl.define_table({"a": v.string(),
                                                         "b": v.optional(v.string())})})
    (tmp_path / "t.csv").write_text('a,b\n"",x\ny,""\n')
    with cl.Backend(app=app) as backend:
        backend.import_table("t", tmp_path / "t.csv")
        docs = sorted(backend.store.tables["t"].docs.values(), key=lambda d: d["a"])
        assert docs[0]["a"] == "" and docs[0]["b"] == "x"
        assert docs[1]["a"] == "y" and "b" not in docs[1]


def test_unknown_table_out_is_an_error(backend: cl.Backend) -> None:
    with pytest.raises(ConvexLabError, match="Did you mean 'people'"):
        backend.to_pandas("peopel")

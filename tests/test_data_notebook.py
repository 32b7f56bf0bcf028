"""notebooks/07-data.ipynb, executed in a real kernel: the penguins come in (and a bad row is
refused naming its row and field), queries, a live query's DataFrame and %%sql see them, the
table comes out typed, and a snapshot ZIP re-imported into a second backend gives back the same
table. tests/test_notebooks.py runs it too, for errors only."""

import ast
from pathlib import Path

import pytest
from test_notebooks import _execute, _require, _tagged_results

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "07-data.ipynb"
EXPECTED = {
    "imported": 344,
    "import-error": 'Row 1, field "year" of the import into table "penguins"',
    "count-after-error": 344,
    "heaviest": [6300.0, 6050.0, 6000.0],
    "live-after-record": [6400.0, 6300.0, 6050.0],
    "sql-counts": {"Adelie": 152, "Chinstrap": 68, "Gentoo": 125},
    "dtypes": {"_id": "string[pyarrow]", "year": "int64[pyarrow]",
               "body_mass_g": "double[pyarrow]", "sex": "string[pyarrow]"},
    "parquet-rows": 345,
    "export-counts": {"penguins": 345},
    "zip-entries": ["README.md", "_tables/documents.jsonl", "penguins/documents.jsonl",
                    "penguins/generated_schema.jsonl"],
    "same-after-reimport": True,
    "replaced-count": 345,
    "csv-year-types": ["float"],
    "cleanup": False,
}

pytestmark = pytest.mark.notebook


@pytest.fixture(scope="module")
def executed():
    _require("anywidget")
    _require("palmerpenguins")
    return _execute(NOTEBOOK)


def tagged(nb):
    return {tag: ast.literal_eval(text) for tag, text in _tagged_results(nb).items()}


def test_tagged_results(executed):
    results = tagged(executed)
    assert results == EXPECTED


def test_the_live_view_and_the_magics_show_their_work(executed):
    streams = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", [])
                      if o.output_type == "stream")
    assert "Imported 344 documents into penguins_csv" in streams
    widgets = [o for c in executed.cells for o in c.get("outputs", [])
               if o.output_type == "display_data"
               and "application/vnd.jupyter.widget-view+json" in o.data]
    assert widgets, "cl.watch(...) displays a live widget"
    assert "6400" in widgets[0].data["text/plain"]  # its saved fallback shows the last update

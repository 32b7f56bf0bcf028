"""notebooks/07-data.ipynb, executed in a real kernel: the penguins come in (and a bad row is
refused naming its row and field), queries, a live query's DataFrame and %%sql see them, the
table comes out typed, and a snapshot ZIP re-imported into a second backend gives back the same
table. tests/test_notebooks.py runs it too, for errors only."""

import ast
import importlib.util
from pathlib import Path

import pytest

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
    for module in ("nbclient", "nbformat", "ipykernel", "anywidget", "palmerpenguins"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (pip install -e '.[test]')")
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, kernel_name="python3", timeout=600, allow_errors=False,
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    return nb


def tagged(nb):
    out = {}
    for cell in nb.cells:
        for tag in cell.metadata.get("tags", []):
            for output in cell.get("outputs", []):
                if output.output_type == "execute_result":
                    out[tag] = ast.literal_eval(output.data["text/plain"])
    return out


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

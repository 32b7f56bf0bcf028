"""What a notebook cell shows when functions warn, print and log (issue 9 items 5 and 11).

Runs cells in a real ``python3`` kernel, as a person meets them: a query of a misspelt table
shows a warning with a did-you-mean in the cell's output; a function's prints, stderr and
logging go to its log entry, not to the cell; a cell's own stderr still reaches the cell.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest

pytestmark = pytest.mark.notebook

CELLS = {
    "setup": ("%load_ext convex_lab\nimport convex_lab as cl\n"
              "from convex_lab import v, define_table"),
    "schema": '%%schema\nmessages = define_table({"body": v.string()})',
    "query": '%%query\ndef typo(ctx):\n    return ctx.db.query("mesages").collect()',
    "mutation": ("%%mutation\ndef noisy(ctx):\n    import logging, sys\n    print('out')\n"
                 "    print('err', file=sys.stderr)\n    logging.warning('warned')"),
    "call-typo": "typo()",
    "call-noisy": "noisy()",
    "lines": 'cl.default_backend().logs()[-1]["lines"]',
    "cell-stderr": "import sys\nprint('from the cell', file=sys.stderr)",
}


def _run() -> dict[str, Any]:
    for module in ("nbclient", "nbformat", "ipykernel"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (pip install -e '.[test]')")
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source, id=name) for name, source in CELLS.items()]
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    return {c.id: c.outputs for c in nb.cells}


def _streams(outputs: list[Any], name: str) -> str:
    return "".join(o.text for o in outputs if o.output_type == "stream" and o.name == name)


def test_warnings_prints_and_logs_reach_the_right_place() -> None:
    out = _run()
    typo = out["call-typo"]
    warning = _streams(typo, "stderr")
    assert "UnknownTableWarning: ctx.db.query('mesages'): there is no table 'mesages'" in warning
    assert "Did you mean 'messages'?" in warning
    assert 'return ctx.db.query("mesages").collect()' in warning  # the user's own line
    assert [o.data["text/plain"] for o in typo if o.output_type == "execute_result"] == ["[]"]
    assert out["call-noisy"] == [o for o in out["call-noisy"] if o.output_type != "stream"]
    (lines,) = [o.data["text/plain"] for o in out["lines"] if o.output_type == "execute_result"]
    assert lines == "['out', '[ERROR] err', '[WARN] warned']"
    assert _streams(out["cell-stderr"], "stderr") == "from the cell\n"

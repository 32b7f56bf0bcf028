"""The browser-test infrastructure itself, with a tiny anywidget defined in the notebook.

Independent of convex_lab's widgets, so a failure here means the fixtures (JupyterLab server,
Chromium, kernel-ready wait, cell running) are broken, not a feature.
"""

from __future__ import annotations

from collections.abc import Callable

from _jlab import LabServer, NotebookPage, write_notebook

COUNTER = r'''
import anywidget, traitlets

class Counter(anywidget.AnyWidget):
    _esm = """
    function render({ model, el }) {
      const btn = document.createElement("button");
      btn.className = "e2e-counter";
      const show = () => { btn.textContent = `count is ${model.get("value")}`; };
      btn.addEventListener("click", () => {
        model.set("value", model.get("value") + 1);
        model.save_changes();
      });
      model.on("change:value", show);
      show();
      el.appendChild(btn);
    }
    export default { render };
    """
    value = traitlets.Int(0).tag(sync=True)

w = Counter(value=0)
w
'''.strip()


def test_anywidget_round_trip(
    lab: LabServer, notebook: Callable[..., NotebookPage]
) -> None:
    """A kernel-side trait change reaches the DOM, a click reaches the kernel, and the kernel
    runs the venv's convex_lab: proves server, browser, kernel wait and Shift+Enter running."""
    from playwright.sync_api import expect

    write_notebook(
        lab.root / "smoke.ipynb",
        [
            COUNTER,
            "w.value = 42",
            'import convex_lab; print("PY", w.value, convex_lab.__name__)',
        ],
    )
    nb = notebook("smoke.ipynb")
    nb.run_cell(0)
    button = nb.widget_view(0).locator("button.e2e-counter")
    expect(button).to_have_text("count is 0")
    nb.run_cell(1)
    expect(button).to_have_text("count is 42")
    button.click()
    expect(button).to_have_text("count is 43")
    nb.run_cell(2)
    expect(nb.output(2)).to_contain_text("PY 43 convex_lab")
    nb.screenshot("smoke-anywidget")
    assert not nb.page_errors(), nb.page_errors()

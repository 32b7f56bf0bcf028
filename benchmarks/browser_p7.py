"""P7: mutation → DOM latency of a live widget in a real JupyterLab (Chromium via Playwright).

    python benchmarks/browser_p7.py [--samples 30] [--warmup 3]

A notebook shows ``cl.watch(latest)`` (the last 5 messages). Each sample rewrites a cell to
``post(body="<mark>")`` and runs it with Shift+Enter; inside the page a keydown listener records
``performance.now()`` when the key is pressed and a ``MutationObserver`` on the live widget's
output records it when ``<mark>`` appears there. Ours = the difference: keypress → execute
request → the mutation commits → the live query re-runs → the widget's state update reaches the
browser and re-renders.

Anchor, measured in the same run and interleaved with ours: a plain ``print("<mark>")`` cell,
keypress → its output text in the DOM, i.e. JupyterLab's own execute round trip. The ratio is
ours / anchor (medians). Goal: p50 ≤ 100 ms.

Needs Debian's Chromium (``$CHROMIUM``, default ``/usr/bin/chromium``) and the ``playwright``
Python package (in the ``test`` extra); JupyterLab and anywidget from the ``lab`` extra. Not run
in CI. Server and kernel are started in a temporary directory and stopped at the end.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "browser"))

from _jlab import (  # noqa: E402 (the test suite's JupyterLab driver, on sys.path above)
    CHROMIUM_ARGS,
    TIMEOUT_MS,
    LabServer,
    NotebookPage,
    chromium_path,
    write_notebook,
)

GOAL_P50_MS = 100.0

CELLS = [
    "%load_ext convex_lab\nimport convex_lab as cl\nfrom convex_lab import define_table, v",
    "%%schema\nmessages = define_table({'body': v.string()})",
    "%%mutation\ndef post(ctx, body: str):\n    return ctx.db.insert('messages', {'body': body})",
    "%%query\ndef latest(ctx):\n    return ctx.db.query('messages').order('desc').take(5)",
    "post(body='first message')\ncl.watch(latest)",
    "post(body='p7-warm')",  # MUTATION_CELL: rewritten for each sample
    "print('a7-warm')",  # ANCHOR_CELL: rewritten for each sample
]
WIDGET_CELL, MUTATION_CELL, ANCHOR_CELL = 4, 5, 6

# Arm one measurement: t0 at the Shift+Enter keydown (capture phase, before JupyterLab sees it),
# t1 when `mark` first appears in the observed cell's output.
ARM_JS = """([cellIndex, mark]) => {
  const cell = window.jupyterapp.shell.currentWidget.content.widgets[cellIndex];
  const target = cell.node.querySelector('.jp-Cell-outputWrapper') || cell.node;
  const m = window.__p7 = {t0: null, t1: null};
  const seen = () => {
    if (m.t1 === null && target.textContent.includes(mark)) {
      m.t1 = performance.now();
      observer.disconnect();
    }
  };
  const observer = new MutationObserver(seen);
  observer.observe(target, {subtree: true, childList: true, characterData: true});
  const onKey = (e) => {
    if (e.key === 'Enter' && e.shiftKey && m.t0 === null) {
      m.t0 = performance.now();
      document.removeEventListener('keydown', onKey, true);
    }
  };
  document.addEventListener('keydown', onKey, true);
}"""

SET_SOURCE_JS = """([i, src]) => {
  window.jupyterapp.shell.currentWidget.content.widgets[i].model.sharedModel.setSource(src);
}"""


def missing_tools() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "the playwright Python package is not installed (pip install -e '.[test]')"
    exe = chromium_path()
    if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
        return f"no Chromium at {exe} (apt-get install chromium, or set $CHROMIUM)"
    if importlib.util.find_spec("jupyterlab") is None:
        return "jupyterlab is not installed (pip install -e '.[lab]')"
    return None


def sample(nb: NotebookPage, run_cell: int, watch_cell: int, source: str, mark: str) -> float:
    """One keypress → DOM latency in ms: run ``run_cell`` (now ``source``), watch ``mark``
    appear in ``watch_cell``'s output."""
    page = nb.page
    page.evaluate(SET_SOURCE_JS, [run_cell, source])
    page.evaluate(ARM_JS, [watch_cell, mark])
    before = nb.cell_state(run_cell)[0]
    nb.cell(run_cell).locator(".jp-InputPrompt").click()
    page.keyboard.press("Shift+Enter")
    page.wait_for_function("() => window.__p7.t1 !== null", polling="raf", timeout=TIMEOUT_MS)
    nb.wait_cell_done(run_cell, before)
    t0, t1 = page.evaluate("() => [window.__p7.t0, window.__p7.t1]")
    if t0 is None:
        raise RuntimeError("the Shift+Enter keydown was not seen by the page")
    return float(t1 - t0)


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def run(samples: int, warmup: int) -> int:
    from playwright.sync_api import sync_playwright

    base = Path(tempfile.mkdtemp(prefix="convex_lab-p7-"))
    lab = LabServer(base)
    lab.start()
    write_notebook(lab.root / "p7.ipynb", CELLS)
    ours: list[float] = []
    anchor: list[float] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS
            )
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.set_default_timeout(TIMEOUT_MS)
            nb = NotebookPage(context.new_page(), lab, base, "p7.ipynb")
            nb.open()
            for i in range(len(CELLS) - 2):
                nb.run_cell(i)
            nb.page.locator(".cl-table").first.wait_for(timeout=TIMEOUT_MS)
            for k in range(warmup + samples):
                # interleave, alternating which goes first
                pair: list[Any] = [
                    (ours, MUTATION_CELL, WIDGET_CELL, f"post(body='p7-{k}')", f"p7-{k}"),
                    (anchor, ANCHOR_CELL, ANCHOR_CELL, f"print('a7-{k}')", f"a7-{k}"),
                ]
                for out, run_cell, watch_cell, source, mark in pair[:: 1 if k % 2 else -1]:
                    ms = sample(nb, run_cell, watch_cell, source, mark)
                    if k >= warmup:
                        out.append(ms)
            errors = nb.page_errors()
            browser.close()
    finally:
        lab.stop()
        shutil.rmtree(base, ignore_errors=True)

    p50, p90 = pct(ours, 50), pct(ours, 90)
    a50, a90 = pct(anchor, 50), pct(anchor, 90)
    print(f"P7 mutation → DOM in JupyterLab on {platform.node()} ({platform.machine()}, "
          f"Python {platform.python_version()}), {time.strftime('%Y-%m-%d %H:%M:%S')}")
    print(f"{len(ours)} samples each (+{warmup} warm-up), interleaved")
    print(f"  ours   (cell runs a mutation → live widget shows the row):  p50 {p50:6.1f} ms   "
          f"p90 {p90:6.1f} ms   min {min(ours):6.1f} ms")
    print(f"  anchor (cell runs print() → its output text):               p50 {a50:6.1f} ms   "
          f"p90 {a90:6.1f} ms   min {min(anchor):6.1f} ms")
    print(f"  ratio ours/anchor: p50 {p50 / a50:.2f}×   p90 {p90 / a90:.2f}×")
    met = p50 <= GOAL_P50_MS
    print(f"  goal p50 ≤ {GOAL_P50_MS:.0f} ms: {'met' if met else 'NOT met'}")
    if errors:
        print(f"  page errors: {errors}")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=30, help="measured samples of each")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured samples first")
    args = parser.parse_args(argv)
    why = missing_tools()
    if why:
        print(f"browser_p7: cannot run: {why}.", file=sys.stderr)
        return 2
    return run(args.samples, args.warmup)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Session fixtures for the real-browser tests: one JupyterLab server, one Chromium.

- ``lab``: ``python -m jupyterlab`` (this interpreter, so the kernel imports the convex_lab under
  test) on a free 127.0.0.1 port, a random token and a temporary root dir; stopped at the end,
  its ``jupyter.log`` copied to the artifacts dir.
- ``chromium`` (per module): Playwright driving Debian's Chromium (``$CHROMIUM`` or
  ``/usr/bin/chromium``; no ``playwright install``). Named ``chromium`` so it cannot clash with
  pytest-playwright.
- ``artifacts``: ``$E2E_ARTIFACTS`` or ``<repo>/test-artifacts`` (gitignored): screenshots,
  console logs, ``jupyter.log``.
- ``notebook``: a factory that copies/writes a notebook into the server's root and opens it in a
  fresh browser context.

Every test here is marked ``browser``. If Chromium or Playwright is missing the tests are
skipped with a reason naming the missing tool; ``.ci/run`` (through ``scripts/test``) installs
both, so CI runs them.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _jlab import CHROMIUM_ARGS, TIMEOUT_MS, LabServer, NotebookPage, chromium_path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent


def _missing_tool() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed (pip install -e '.[test]')"
    exe = chromium_path()
    if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
        return f"chromium not found at {exe} (apt-get install chromium, or set $CHROMIUM)"
    return None


MISSING = _missing_tool()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.browser)
            if MISSING:
                item.add_marker(pytest.mark.skip(reason=MISSING))


@pytest.fixture(scope="session")
def artifacts() -> Path:
    path = Path(os.environ.get("E2E_ARTIFACTS") or REPO_ROOT / "test-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def lab(artifacts: Path) -> Iterator[LabServer]:
    base = Path(tempfile.mkdtemp(prefix="convex_lab-e2e-"))
    server = LabServer(base)
    try:
        server.start()
        print(f"\n[timing] jupyter lab ready in {server.startup_s:.2f}s")
        yield server
    finally:
        server.stop()
        if server.log_path.exists():
            shutil.copy(server.log_path, artifacts / "jupyter.log")
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    # P5: never two sync_playwright() at once. Module scope, not session: while Playwright's sync
    # API is up, its event loop counts as running in this thread, so the rest of the suite's
    # asyncio.run() would fail ("cannot be called from a running event loop").
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)  # P2: expect() ignores the context default timeout
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


NotebookFactory = Callable[..., NotebookPage]


@pytest.fixture
def notebook(
    lab: LabServer, chromium: Any, artifacts: Path, request: pytest.FixtureRequest
) -> Iterator[NotebookFactory]:
    """``notebook(name, source=None)``: put ``source`` (a path to copy) at ``name`` in the lab
    root if given, open it in a new 1280×900 browser context and wait for its kernel. On test
    failure a ``<test>-FAILED.png`` screenshot is kept; console logs are kept always. Kernels are
    shut down afterwards so each test starts from a fresh one."""
    opened: list[tuple[Any, NotebookPage]] = []

    def open_notebook(name: str, source: Path | None = None) -> NotebookPage:
        if source is not None:
            shutil.copy(source, lab.root / name)
        context = chromium.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(TIMEOUT_MS)
        nb = NotebookPage(context.new_page(), lab, artifacts, name)
        opened.append((context, nb))
        nb.open()
        return nb

    yield open_notebook

    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for context, nb in opened:
        label = f"{request.node.name}-{Path(nb.name).stem}"
        if failed:
            try:
                nb.screenshot(f"{label}-FAILED")
            except Exception as err:  # noqa: BLE001 (a failed screenshot must not hide the failure)
                print(f"[warn] no failure screenshot: {err}")
        nb.write_console_log(label)
        context.close()
    _shutdown_kernels(lab)


def _shutdown_kernels(lab: LabServer) -> None:
    headers = {"Authorization": f"token {lab.token}"}
    with urllib.request.urlopen(
        urllib.request.Request(f"{lab.url}/api/sessions", headers=headers), timeout=10
    ) as response:
        sessions = json.load(response)
    for session in sessions:
        request = urllib.request.Request(
            f"{lab.url}/api/sessions/{session['id']}", headers=headers, method="DELETE"
        )
        urllib.request.urlopen(request, timeout=30).close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Expose each phase's report as ``item.rep_<phase>`` (for the failure screenshot)."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report

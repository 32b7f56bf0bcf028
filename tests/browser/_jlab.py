"""Helpers for driving a real JupyterLab in Chromium (used by conftest.py and the tests).

- :class:`LabServer` starts ``python -m jupyterlab`` on a free loopback port with a random
  token, a temporary root dir and isolated ``JUPYTER_*`` / ``IPYTHONDIR`` dirs, and stops it by
  killing only its own process group (the kernels live in it too).
- :class:`NotebookPage` opens a notebook in a Playwright page and runs cells the way a user does
  (click the input prompt, Shift+Enter), waiting for each execution through the notebook model
  that ``--LabApp.expose_app_in_browser=True`` exposes as ``window.jupyterapp``.

The recipe and its pitfalls (P1…P13) are in /work/shared/reference/browser-testing.md; the
comments below name the pitfall each step avoids. Playwright is imported lazily so that this
module can be imported (and the tests skipped) where it is not installed.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

TIMEOUT_MS = int(os.environ.get("E2E_TIMEOUT_MS", "60000"))
WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"

# Playwright's launch() adds --headless, --no-sandbox and a temporary --user-data-dir itself.
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # closed network: no phoning home
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def chromium_path() -> str:
    """The Chromium to drive: ``$CHROMIUM`` or Debian's ``/usr/bin/chromium`` (never a download)."""
    return os.environ.get("CHROMIUM") or "/usr/bin/chromium"


def code_cell(source: str, cell_id: str, tags: list[str] | None = None) -> dict[str, Any]:
    """An nbformat 4.5 code cell (with an ``id``: P9, no MissingIDFieldWarning)."""
    metadata: dict[str, Any] = {"tags": tags} if tags else {}
    return {
        "cell_type": "code",
        "id": cell_id,
        "execution_count": None,
        "metadata": metadata,
        "outputs": [],
        "source": source,
    }


def write_notebook(path: Path, sources: list[str]) -> None:
    """Write a notebook of code cells with kernelspec metadata (P9: no "Select Kernel" dialog)."""
    nb = {
        "cells": [code_cell(src, f"cell-{i}") for i, src in enumerate(sources)],
        "metadata": {
            "kernelspec": {
                "display_name": "Python 3 (ipykernel)",
                "language": "python",
                "name": "python3",
            },
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(nb, indent=1))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class LabServer:
    """One JupyterLab server process; ``root`` is its (temporary) notebook directory."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.root = base / "root"
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        self.token = secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = base / "jupyter.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup_s: float | None = None
        self._log: IO[str] | None = None

    def notebook_url(self, name: str) -> str:
        # ?reset drops any saved workspace layout (P8)
        return f"{self.url}/lab/tree/{name}?reset&token={self.token}"

    def start(self, timeout_s: float = 120) -> None:
        env = dict(os.environ)
        env.update(  # P8: isolated from ~/.jupyter, ~/.local/share/jupyter, ~/.ipython
            JUPYTER_CONFIG_DIR=str(self.base / "cfg"),
            JUPYTER_DATA_DIR=str(self.base / "data"),
            JUPYTER_RUNTIME_DIR=str(self.base / "runtime"),
            IPYTHONDIR=str(self.base / "ipython"),
            JUPYTER_PLATFORM_DIRS="1",
            PYTHONUNBUFFERED="1",
            MPLBACKEND="module://matplotlib_inline.backend_inline",
        )
        labconfig = self.base / "cfg" / "labconfig"
        labconfig.mkdir(parents=True, exist_ok=True)
        # P7: no "official Jupyter news?" toast over the notebook
        (labconfig / "page_config.json").write_text(
            json.dumps(
                {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}
            )
        )
        cmd = [
            sys.executable,  # the kernelspec's "python" is this interpreter too
            "-m",
            "jupyterlab",
            "--no-browser",
            "--allow-root",  # P6
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",  # P10
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.news_url=None",
            f"--LabApp.workspaces_dir={self.base / 'workspaces'}",
            f"--LabApp.user_settings_dir={self.base / 'settings'}",
            "--LabApp.expose_app_in_browser=True",  # P1: window.jupyterapp for the kernel wait
        ]
        t0 = time.monotonic()
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            cmd,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # P10: its own process group, kernels included
        )
        status = f"{self.url}/api/status?token={self.token}"
        while time.monotonic() - t0 < timeout_s:
            if self.proc.poll() is not None:
                raise RuntimeError("jupyter lab exited:\n" + self.log_path.read_text())
            try:
                with urllib.request.urlopen(status, timeout=2) as response:
                    if response.status == 200:
                        self.startup_s = time.monotonic() - t0
                        return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise TimeoutError("jupyter lab did not answer /api/status:\n" + self.log_path.read_text())

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # our own process group only
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(15)
        if self._log is not None:
            self._log.close()
            self._log = None


# P1: JupyterLab silently drops a cell run requested before the kernel connection is up, and the
# toolbar's execution indicator already says "idle" then. Wait for the session to be ready AND the
# kernel_info reply to have arrived.
KERNEL_READY_JS = """async () => {
  const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  if (!panel || !panel.sessionContext) return false;
  await panel.sessionContext.ready;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  if (!kernel) return false;
  await kernel.info;
  return kernel.connectionStatus === 'connected' && kernel.status === 'idle';
}"""

# [executionCount, executionState, [output types]] of cell i in the current notebook's model
CELL_STATE_JS = """(i) => {
  const panel = window.jupyterapp.shell.currentWidget;
  const cell = panel.content.widgets[i];
  const model = cell.model;
  const outputs = model.outputs ? model.outputs.toJSON() : [];
  return [model.executionCount ?? null, model.executionState ?? null,
          outputs.map(o => o.output_type === 'error'
                      ? 'error: ' + o.ename + ': ' + o.evalue : o.output_type)];
}"""

CELL_SOURCES_JS = """() => window.jupyterapp.shell.currentWidget.content.widgets
  .map(c => [c.model.type, c.model.sharedModel.getSource()])"""

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class CellError(AssertionError):
    """A cell run in the browser ended with an error output."""


class NotebookPage:
    """A notebook open in JupyterLab in one Playwright page."""

    def __init__(self, page: Page, lab: LabServer, artifacts: Path, name: str) -> None:
        self.page = page
        self.lab = lab
        self.artifacts = artifacts
        self.name = name
        self.console: list[str] = []
        page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))

    # ---- locators -------------------------------------------------------------------------
    @property
    def cells(self) -> Locator:
        return self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell")

    def cell(self, i: int) -> Locator:
        return self.cells.nth(i)

    def output(self, i: int) -> Locator:
        """The output area of cell ``i``."""
        return self.cell(i).locator(".jp-OutputArea")

    def widget_view(self, i: int) -> Locator:
        """The rendered output(s) of cell ``i`` (a widget view renders without a mime-type
        attribute, so this is every output child)."""
        return self.output(i).locator(".jp-OutputArea-output")

    # ---- actions --------------------------------------------------------------------------
    def open(self) -> None:
        """Open the notebook and wait until its kernel can really take executions (P1)."""
        from playwright.sync_api import expect

        self.page.goto(self.lab.notebook_url(self.name))
        expect(self.cells.first).to_be_visible()
        self.wait_kernel_ready()

    def wait_kernel_ready(self) -> None:
        self.page.wait_for_function(KERNEL_READY_JS, polling=100, timeout=TIMEOUT_MS)

    def sources(self) -> list[tuple[str, str]]:
        """``(cell type, source)`` of every cell, from the notebook model."""
        return [tuple(x) for x in self.page.evaluate(CELL_SOURCES_JS)]  # type: ignore[misc]

    def index_of(self, cell_id: str) -> int:
        """The index of the cell whose nbformat ``id`` is ``cell_id``."""
        ids: list[str] = self.page.evaluate(
            "() => window.jupyterapp.shell.currentWidget.content.widgets.map(c => c.model.id)"
        )
        if cell_id not in ids:
            raise KeyError(f"{self.name} has no cell with id {cell_id!r} (ids: {ids})")
        return ids.index(cell_id)

    def code_cells(self) -> list[int]:
        return [i for i, (kind, _) in enumerate(self.sources()) if kind == "code"]

    def cell_state(self, i: int) -> tuple[int | None, str | None, list[str]]:
        count, state, outputs = self.page.evaluate(CELL_STATE_JS, i)
        return count, state, outputs

    def run_cell(self, i: int, *, timeout_ms: int = TIMEOUT_MS, allow_error: bool = False) -> None:
        """Select cell ``i`` (click its prompt: command mode, P13), press Shift+Enter and wait
        until the kernel replied (a new execution count, state idle). Raises :class:`CellError`
        with the error text if the cell raised, unless ``allow_error``."""
        before, _, _ = self.cell_state(i)
        self.cell(i).locator(".jp-InputPrompt").click()
        self.page.keyboard.press("Shift+Enter")
        self.wait_cell_done(i, before, timeout_ms=timeout_ms)
        if not allow_error:
            errors = [o for o in self.cell_state(i)[2] if o.startswith("error")]
            if errors:
                self.screenshot(f"{self.name}-cell{i}-ERROR")
                raise CellError(f"{self.name} cell {i} raised: {_ANSI.sub('', errors[0])}")

    def wait_cell_done(self, i: int, before: int | None, *, timeout_ms: int = TIMEOUT_MS) -> None:
        self.page.wait_for_function(
            """([i, before]) => {
              const m = window.jupyterapp.shell.currentWidget.content.widgets[i].model;
              const n = m.executionCount;
              const idle = m.executionState === undefined || m.executionState === 'idle';
              return typeof n === 'number' && n !== before && idle;
            }""",
            arg=[i, before],
            polling=50,
            timeout=timeout_ms,
        )

    def run_all_in_order(self) -> None:
        """Run every code cell top to bottom, one Shift+Enter at a time."""
        for i in self.code_cells():
            self.run_cell(i)

    def append_cell(self, source: str) -> int:
        """Add a code cell at the end (via the notebook model) and return its index."""
        index: int = self.page.evaluate(
            """(src) => {
              const nb = window.jupyterapp.shell.currentWidget.content;
              nb.model.sharedModel.addCell({cell_type: 'code', source: src});
              return nb.widgets.length - 1;
            }""",
            source,
        )
        return index

    def save(self) -> None:
        """Save the notebook through the app (Ctrl+S equivalent) and wait until it is clean."""
        self.page.evaluate(
            "async () => { await window.jupyterapp.commands.execute('docmanager:save'); }"
        )
        self.page.wait_for_function(
            "() => !window.jupyterapp.shell.currentWidget.context.model.dirty",
            polling=100,
            timeout=TIMEOUT_MS,
        )

    def run_menu(self, menu: str, item: str) -> None:
        self.page.locator(f".lm-MenuBar-itemLabel:text-is('{menu}')").click()
        self.page.locator(f".lm-Menu-itemLabel:text-is('{item}')").click()

    def screenshot(self, label: str, at_cell: int | None = None) -> Path:
        """Save ``<artifacts>/<label>.png`` of the window; ``at_cell`` scrolls that cell to the
        top first (JupyterLab paints off-screen cells lazily, so wait for two frames)."""
        if at_cell is not None:
            self.page.evaluate(
                """async (i) => {
                  const panel = window.jupyterapp.shell.currentWidget;
                  panel.content.widgets[i].node.scrollIntoView({block: 'start'});
                  for (let k = 0; k < 3; k++) await new Promise(r => requestAnimationFrame(r));
                }""",
                at_cell,
            )
            self.page.wait_for_timeout(200)
        path = self.artifacts / f"{label}.png"
        self.page.screenshot(path=str(path))
        return path

    def page_errors(self) -> list[str]:
        return [c for c in self.console if c.startswith("pageerror")]

    def write_console_log(self, label: str) -> None:
        (self.artifacts / f"{label}-console.log").write_text("\n".join(self.console))

"""``%convex export PATH`` / ``%convex import PATH [--table T] [--append | --replace]``."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("IPython", reason="IPython is not installed (pip install ipython)")

from IPython.core.interactiveshell import InteractiveShell

import convex_lab as cl
from convex_lab import functions


@pytest.fixture
def ip(monkeypatch: pytest.MonkeyPatch) -> Iterator[InteractiveShell]:
    shell = InteractiveShell.instance()
    monkeypatch.setattr(functions, "_default_app", None)  # a fresh cl.default_app()
    previous = cl.set_default_backend(None)
    shell.run_line_magic("load_ext", "convex_lab")
    try:
        yield shell
    finally:
        shell.run_line_magic("unload_ext", "convex_lab")
        ours = cl.set_default_backend(previous)
        if ours is not None:
            ours.close()


def _out(ip: InteractiveShell, source: str) -> str:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        ip.run_cell(source)
    return buffer.getvalue()


def test_export_then_import_into_a_fresh_default_backend(ip: InteractiveShell,
                                                         tmp_path: Path) -> None:
    backend = cl.default_backend()
    backend.import_table("messages", [{"author": "ada", "body": "hi"},
                                      {"author": "bob", "body": "yo"}])
    path = tmp_path / "snap.zip"
    out = _out(ip, f"%convex export {path}")
    assert out.startswith(f"Exported 2 documents from 1 table to {path}")
    assert path.is_file()
    ip.run_line_magic("convex", "reset")
    out = _out(ip, f"%convex import {path}")
    assert out.startswith(f"Imported 2 documents into 1 table from {path}")
    assert sorted(d["body"] for d in cl.default_backend().store.tables["messages"].docs.values()
                  ) == ["hi", "yo"]
    out = _out(ip, f"%convex import {path}")  # not empty any more: says what to do
    assert "mode='append'" in out and "Imported" not in out
    out = _out(ip, f"%convex import {path} --replace")
    assert "mode=replace" in out


def test_import_a_file_into_a_table(ip: InteractiveShell, tmp_path: Path) -> None:
    csv = tmp_path / "people.csv"
    csv.write_text("name,age\nada,36\nbob,41\n")
    out = _out(ip, f"%convex import {csv} --table people")
    assert out.startswith("Imported 2 documents into people")
    docs = cl.default_backend().store.tables["people"].docs.values()
    assert sorted(d["age"] for d in docs) == [36.0, 41.0]
    out = _out(ip, f"%convex import {csv} --table people --append")
    assert "mode=append" in out and len(cl.default_backend().store.tables["people"].docs) == 4


@pytest.mark.parametrize(("line", "message"), [
    ("import data.csv", "needs the table to load it into"),
    ("import snap.zip --table t", "drop --table"),
    ("import", "Usage: %convex import PATH"),
    ("import x.zip --mode sideways", "--mode takes"),
    ("export", "Usage: %convex export PATH.zip"),
    ("import x.zip --bogus", "Unknown flag '--bogus'"),
])
def test_usage_errors(ip: InteractiveShell, line: str, message: str) -> None:
    assert message in _out(ip, f"%convex {line}")

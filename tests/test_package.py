"""Package-level guarantees from DESIGN §1: a fast, Jupyter-free ``import convex_lab``.

- ``import convex_lab`` pulls in no Jupyter package and nothing heavy (DuckDB connects when a
  ``Backend`` is made, DataFrame libraries load on demand), and stays quick;
- only ``convex_lab/jupyter/`` imports IPython, ipywidgets, anywidget or traitlets;
- ``convex_lab.__all__`` is sorted and every name in it exists.
"""

import ast
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

PACKAGE_DIR = Path(__file__).resolve().parent.parent / "convex_lab"

JUPYTER_MODULES = ("IPython", "ipywidgets", "anywidget", "traitlets")
HEAVY_MODULES = ("pandas", "pyarrow", "duckdb")
IMPORT_BUDGET_S = 0.5

_PROBE = """
import json, sys, time
t0 = time.perf_counter()
import convex_lab
elapsed = time.perf_counter() - t0
loaded = sorted({name.split(".")[0] for name in sys.modules})
print(json.dumps({"elapsed": elapsed, "loaded": loaded}))
"""


def _probe_import(*, importtime: bool = False) -> dict[str, Any]:
    """Import convex_lab in a fresh interpreter; ``importtime`` adds ``-X importtime`` output."""
    flags = ["-X", "importtime"] if importtime else []
    result = subprocess.run(
        [sys.executable, *flags, "-c", _PROBE],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"`import convex_lab` failed:\n{result.stderr[-4000:]}"
    data: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    data["importtime"] = result.stderr
    return data


def _slowest_imports(importtime: str, n: int = 15) -> str:
    """The ``n`` largest cumulative entries of ``python -X importtime`` output, for messages."""
    rows = []
    for line in importtime.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((int(parts[1]), parts[2].rstrip()))
    rows.sort(reverse=True)
    return "\n".join(f"{us / 1e6:8.3f} s {name}" for us, name in rows[:n])


def test_import_loads_no_jupyter_or_heavy_modules() -> None:
    data = _probe_import(importtime=True)
    loaded = set(data["loaded"])
    unwanted = sorted(loaded.intersection(JUPYTER_MODULES + HEAVY_MODULES))
    assert not unwanted, (
        f"`import convex_lab` imported {unwanted}; import them lazily where they are used.\n"
        f"Slowest imports:\n{_slowest_imports(str(data['importtime']))}"
    )


def test_import_is_fast() -> None:
    # Best of three: the first run also pays for cold caches and writing .pyc files.
    runs = [_probe_import() for _ in range(3)]
    best = min(runs, key=lambda d: float(d["elapsed"]))
    elapsed = float(best["elapsed"])
    if elapsed >= IMPORT_BUDGET_S:
        detail = _slowest_imports(str(_probe_import(importtime=True)["importtime"]))
        pytest.fail(
            f"`import convex_lab` took {elapsed:.3f} s (budget {IMPORT_BUDGET_S} s).\n"
            f"Slowest imports:\n{detail}"
        )


def _is_type_checking_guard(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(path: Path) -> list[tuple[int, str]]:
    """Top-level package names imported by ``path`` at run time, lazy imports included.

    Imports under ``if TYPE_CHECKING:`` never run and are skipped (their ``else:`` is not).
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking_guard(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name.split(".")[0]) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
        stack.extend(ast.iter_child_nodes(node))
    return sorted(found)


def test_only_the_jupyter_package_imports_jupyter() -> None:
    # Lazy imports count too: the core must work with Jupyter not installed.
    sources = sorted(PACKAGE_DIR.rglob("*.py"))
    assert sources, f"no sources under {PACKAGE_DIR}"
    jupyter_dir = PACKAGE_DIR / "jupyter"
    offenders = [
        f"{path.relative_to(PACKAGE_DIR.parent)}:{lineno} imports {name}"
        for path in sources
        if not path.is_relative_to(jupyter_dir)
        for lineno, name in _runtime_imports(path)
        if name in JUPYTER_MODULES
    ]
    assert not offenders, "Jupyter imports outside convex_lab/jupyter/:\n" + "\n".join(offenders)


def test_all_is_sorted_and_complete() -> None:
    import convex_lab

    exported = getattr(convex_lab, "__all__", None)
    assert isinstance(exported, (list, tuple)), "convex_lab.__all__ must be a list of names"
    assert list(exported) == sorted(exported), "convex_lab.__all__ must be sorted"
    assert len(set(exported)) == len(exported), "convex_lab.__all__ has duplicates"
    missing = [name for name in exported if not hasattr(convex_lab, name)]
    assert not missing, f"names in convex_lab.__all__ that do not exist: {missing}"


API_DOC = PACKAGE_DIR.parent / "docs" / "api.md"


def _documented_names() -> list[str]:
    """The names in the "Exported names" table of docs/api.md."""
    import re

    text = API_DOC.read_text(encoding="utf-8")
    section = text.split("## Exported names", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([A-Za-z_][A-Za-z0-9_]*)` \|", section, flags=re.MULTILINE)


def test_exported_names_are_the_documented_ones_both_ways() -> None:
    """Like httpx's exported-members test: ``__all__`` is every public name of the package (bar
    submodules and ``from __future__`` features), and exactly the names docs/api.md lists."""
    import types

    import convex_lab

    public = sorted(name for name, value in vars(convex_lab).items()
                    if not name.startswith("_") and not isinstance(value, types.ModuleType)
                    and name != "annotations")
    assert sorted(convex_lab.__all__) == public
    documented = _documented_names()
    assert documented == sorted(documented), "keep docs/api.md's table sorted"
    assert documented == sorted(convex_lab.__all__)


def test_every_error_class_lives_in_errors_under_one_base() -> None:
    """Each exception class defined in the package is defined in convex_lab/errors.py and is a
    ConvexLabError or ConvexError (the OCC retry signal, a BaseException, is the one exception)."""
    offenders = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.ClassDef):
                continue
            bases = {getattr(b, "id", getattr(b, "attr", "")) for b in node.bases}
            if bases & {"Exception", "BaseException"} or any(b.endswith("Error") for b in bases):
                where = path.relative_to(PACKAGE_DIR)
                allowed = (where.as_posix() == "errors.py"
                           or (node.name == "Conflict"
                               and where.as_posix() == "store/transaction.py")
                           # internal control flow that never leaves its module:
                           or (node.name == "_NotPending" and "scheduler" in where.parts)
                           or (node.name == "_Mismatch" and where.name == "_validator_base.py"))
                if not allowed:
                    offenders.append(f"{where}:{node.lineno} {node.name}")
    assert not offenders, "error classes outside convex_lab/errors.py:\n" + "\n".join(offenders)
    from convex_lab import errors

    for name, value in vars(errors).items():
        if isinstance(value, type) and issubclass(value, BaseException) and value.__module__ == (
                "convex_lab.errors") and not issubclass(value, Warning):  # warnings: not errors
            assert issubclass(value, (errors.ConvexLabError, errors.ConvexError)), name

"""The layers of docs/architecture.md hold: no module imports a higher layer at run time.

Imports are read from the source (module level and inside functions alike, since a lazy import
runs too); imports under ``if TYPE_CHECKING:`` never run and are allowed. Notification goes up
through ``convex_lab.events.Event`` and capabilities through ``Executor.provide``, never through
an import. The table in docs/architecture.md is checked against :data:`LAYERS` here, so the
document and the rule cannot drift apart.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "convex_lab"
DOC = ROOT / "docs" / "architecture.md"

# Layer number -> (name, module patterns). A pattern is a module path relative to the package
# ("values", "store.engine") or a package with ".*" for everything in it ("store.*").
LAYERS: dict[int, tuple[str, tuple[str, ...]]] = {
    0: ("data model", ("values", "validators", "_validator_base", "_annotations", "ids",
                       "errors", "events", "clock", "_loop")),
    1: ("schema", ("schema",)),
    2: ("store", ("store.*",)),
    3: ("functions", ("functions", "context", "logs", "_runtime", "_resolve", "executor",
                      "http", "http_router")),
    4: ("engines and interop", ("scheduler.*", "search.*", "files.*", "auth.*", "interop.*")),
    5: ("components", ("components.*",)),
    6: ("deployment", ("backend", "client", "subscriptions", "live_pages")),
    7: ("servers", ("server.*",)),
    8: ("notebook", ("jupyter.*",)),
}
FACADE = ""  # convex_lab/__init__.py: wires the layers together, above all of them


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> int | None:
    if module == FACADE:
        return max(LAYERS) + 1
    for number, (_, patterns) in LAYERS.items():
        for pattern in patterns:
            if pattern.endswith(".*"):
                package = pattern[:-2]
                if module == package or module.startswith(package + "."):
                    return number
            elif module == pattern:
                return number
    return None


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def runtime_imports(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` for each convex_lab module ``path`` imports at run time."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[int, str]] = []
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name[len("convex_lab."):]) for a in node.names
                      if a.name.startswith("convex_lab.")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "convex_lab":
                # `from convex_lab import logs`: a submodule; anything else is the facade.
                for a in node.names:
                    sub = PACKAGE / a.name
                    is_module = sub.with_suffix(".py").exists() or (sub / "__init__.py").exists()
                    found.append((node.lineno, a.name if is_module else FACADE))
            elif node.module.startswith("convex_lab."):
                found.append((node.lineno, node.module[len("convex_lab."):]))
        stack.extend(ast.iter_child_nodes(node))
    return sorted(found)


SOURCES = sorted(p for p in PACKAGE.rglob("*.py") if "static" not in p.parts)


def test_every_module_has_a_layer() -> None:
    missing = [module_name(p) for p in SOURCES if layer_of(module_name(p)) is None]
    assert not missing, (f"modules without a layer (add them to LAYERS here and to the table in "
                         f"docs/architecture.md): {missing}")


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: module_name(p) or "convex_lab")
def test_no_upward_import_at_run_time(path: Path) -> None:
    source = module_name(path)
    mine = layer_of(source)
    assert mine is not None
    upward = []
    for line, target in runtime_imports(path):
        theirs = layer_of(target)
        if theirs is not None and theirs > mine:
            upward.append(f"{path.relative_to(ROOT)}:{line} imports {target or 'convex_lab'} "
                          f"(layer {theirs}, above {source}'s layer {mine})")
    assert not upward, ("upward imports (notify through an Event, plug in through "
                        "Executor.provide, or move the code down):\n" + "\n".join(upward))


def test_the_architecture_document_lists_the_same_layers() -> None:
    text = DOC.read_text(encoding="utf-8")
    rows = re.findall(r"^\| (\d+) \| ([^|]+?) \| ([^|]+?) \|", text, flags=re.MULTILINE)
    documented = {int(n): (name.strip(), tuple(re.findall(r"`([^`]+)`", mods)))
                  for n, name, mods in rows}
    assert documented == LAYERS

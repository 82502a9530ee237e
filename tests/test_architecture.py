"""The shape of the code base: small modules, no import circles, families asked, not named.

Read from the source (``ast``), not by importing it:

- no module of ``ncf/`` is over :data:`MAX_MODULE_LINES` lines, and no function over
  :data:`MAX_FUNCTION_LINES`;
- the modules of ``ncf/`` import each other without a circle, counting imports inside
  functions too (only ``if TYPE_CHECKING:`` blocks, which never run, are left out); the
  registry loads family modules by name, which is not an import of the modules it serves;
- no module imports a private name (``_foo``) from another one;
- outside the registry and the family modules (and the models they build), no code compares
  a value to a model family's name: the rest of ncf asks the family
  (:class:`ncf.family.Family`) what it needs, can and is.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from ncf import registry

PACKAGE = Path(__file__).resolve().parents[1] / "ncf"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
FAMILY_HOMES = ("registry.py", "family.py", "families/", "baselines/", "models/")


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = _modules()


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _runtime_nodes(tree: ast.AST):
    """Every node except those under ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                stack.extend(child.orelse)
                continue
            stack.append(child)


def _package_of(name: str) -> str:
    return name if MODULES[name].name == "__init__.py" else name.rpartition(".")[0]


def _imports(name: str) -> set[str]:
    """The ncf modules ``name`` imports at run time (module or function level)."""
    found: set[str] = set()
    for node in _runtime_nodes(_tree(MODULES[name])):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = _package_of(name).split(".")
                base = ".".join(anchor[: len(anchor) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_import_circles():
    graph = {name: _imports(name) for name in MODULES}
    # A package's __init__ re-exporting its own modules is not a circle between them.
    for name, targets in graph.items():
        if MODULES[name].name == "__init__.py":
            targets -= {t for t in targets if t.startswith(name + ".")}
    graph = {
        name: {t for t in targets if not name.startswith(t + ".")}
        for name, targets in graph.items()
    }
    assert _cycles(graph) == []


def test_no_private_name_is_imported_across_modules():
    found = []
    for name, path in MODULES.items():
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ncf"):
                found += [
                    f"{name}: {node.module}.{a.name}"
                    for a in node.names
                    if a.name.startswith("_") and not a.name.endswith("__")
                ]
    assert found == []


def test_modules_and_functions_are_small():
    big = []
    for name, path in MODULES.items():
        tree = _tree(path)
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_MODULE_LINES:
            big.append(f"{name}: {lines} lines")
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    big.append(f"{name}.{node.name}: {length} lines")
    assert big == []


ABOUT_A_MODEL = ("type", "kind", "family", "head", "name")  # what a family name is compared to


def _family_names(node: ast.AST) -> set[str]:
    values = node.elts if isinstance(node, ast.Tuple | ast.List | ast.Set) else [node]
    names = set(registry.names())
    return {v.value for v in values if isinstance(v, ast.Constant) and v.value in names}


def _compares_a_family_name(node: ast.Compare) -> bool:
    """``x.model.type == "history"``, ``kind in ("itemknn", "userknn")`` and the like."""
    sides = [node.left, *node.comparators]
    for i, side in enumerate(sides):
        others = " ".join(ast.unparse(s) for j, s in enumerate(sides) if j != i)
        if _family_names(side) and any(word in others for word in ABOUT_A_MODEL):
            return True
    return False


@pytest.mark.parametrize("name", [n for n, p in MODULES.items()
                                  if not str(p.relative_to(PACKAGE)).startswith(FAMILY_HOMES)])  # fmt: skip
def test_no_family_name_is_compared_outside_the_family_modules(name):
    compared = []
    for node in ast.walk(_tree(MODULES[name])):
        if isinstance(node, ast.Compare) and _compares_a_family_name(node):
            compared.append(f"line {node.lineno}: {ast.unparse(node)}")
    assert compared == [], "ask the family (ncf.registry.family) instead"

"""The layers of docs/architecture.md hold: imports only point down, and no module cycle hides
anywhere (imports under TYPE_CHECKING or inside functions count too)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Higher imports lower; never the other way. Same rank: allowed, as long as there is no cycle.
RANKS = {
    "bot.__main__": 7, "bot.process": 7,
    "bot.listeners": 6,
    "bot.usecases": 5,
    "bot.agent": 4,
    "bot.pipeline": 3,
    "bot.toolkit": 2, "bot.config": 2, "bot.errors": 2,
    "storage": 1,
}


def rank(module: str) -> int | None:
    for prefix, value in sorted(RANKS.items(), key=lambda item: -len(item[0])):
        if module == prefix or module.startswith(prefix + "."):
            return value
    return None


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    found = {}
    for package in ("bot", "storage"):
        for path in (ROOT / package).rglob("*.py"):
            found[module_name(path)] = path
    return found


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """Project modules `path` imports, wherever the import statement is."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    resolved = set()
    for name in names:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        if name:
            resolved.add(name)
    return resolved


MODULES = project_modules()
GRAPH = {name: imports_of(path, MODULES) - {name} for name, path in MODULES.items()}


def test_every_module_has_a_layer() -> None:
    assert [name for name in MODULES if rank(name) is None] in ([], ["bot"])


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_only_point_down(module: str) -> None:
    own = rank(module)
    if own is None:
        return
    upward = sorted(other for other in GRAPH[module]
                    if (rank(other) or 0) > own)
    assert upward == [], f"{module} (rank {own}) imports a higher layer: {upward}"


def test_the_product_never_imports_the_sandbox_or_the_tests() -> None:
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            targets = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                       else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not [t for t in targets if t.split(".")[0] in ("sandbox", "tests", "bench")], \
                name


def test_no_import_cycles() -> None:
    cycles = []
    state: dict[str, int] = {}  # 1 visiting, 2 done
    stack: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        stack.append(name)
        for other in sorted(GRAPH[name]):
            if state.get(other) == 1:
                cycles.append([*stack[stack.index(other):], other])
            elif other not in state:
                visit(other)
        stack.pop()
        state[name] = 2

    for name in sorted(GRAPH):
        if name not in state:
            visit(name)
    assert cycles == []

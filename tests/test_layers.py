"""The package's floors (docs/architecture.md): every module is on one floor and imports only from
its own floor or the floors below, so a change low down is seen by what is above, never the other
way round. The table in the doc is the one the test reads: a new module goes into it."""

from __future__ import annotations

import ast
import graphlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "gitswarm"
DOC = ROOT / "docs" / "architecture.md"


def floors() -> dict[str, int]:
    """module -> floor, from the doc's table rows `| N | name | `mod`, `mod` ... | what it knows |`."""
    out: dict[str, int] = {}
    for line in DOC.read_text().splitlines():
        row = re.match(r"\|\s*(\d+)\s*\|[^|]*\|([^|]*)\|", line)
        if row:
            for name in re.findall(r"`([a-z_.]+)`", row.group(2)):
                assert name not in out, f"docs/architecture.md lists {name} twice"
                out[name] = int(row.group(1))
    return out


def modules() -> dict[str, Path]:
    """Every module of the package by its dotted name below gitswarm (agents.command, roles...),
    the eval suites' example repositories left out."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).with_suffix("")
        if rel.parts[0] == "evalsuites" or rel.parts == ("__main__",) or rel.parts == ("__init__",):
            continue
        parts = rel.parts[:-1] if rel.parts[-1] == "__init__" else rel.parts
        out[".".join(parts)] = path
    return out


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that `name` imports (at the top or inside a function)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    tree = ast.parse(path.read_text())
    typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                   and "TYPE_CHECKING" in ast.unparse(block.test) for part in block.body for n in ast.walk(part)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue  # under TYPE_CHECKING: never imported when the code runs
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[:len(package) - node.level + 1]
            stem = base + (node.module.split(".") if node.module else [])
            named = [(".".join(stem + [a.name]), ".".join(stem)) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("gitswarm."):
            module = node.module.removeprefix("gitswarm.")
            named = [(f"{module}.{a.name}", module) for a in node.names]
        elif isinstance(node, ast.Import):
            named = [(a.name.removeprefix("gitswarm."),) * 2 for a in node.names if a.name.startswith("gitswarm.")]
        else:
            continue
        for module, parent in named:  # `from . import git` names a module; `from .task import Task` its module
            target = module if module in known else parent
            if target in known and target != name:
                found.add(target)
    return found


def test_every_module_is_on_a_floor():
    table, mods = floors(), modules()
    missing = sorted(set(mods) - set(table))
    gone = sorted(set(table) - set(mods))
    assert not missing, f"modules not in docs/architecture.md's table (add each to its floor): {missing}"
    assert not gone, f"docs/architecture.md lists modules that no longer exist: {gone}"


def test_imports_go_down_only():
    table, mods = floors(), modules()
    wrong = []
    for name, path in sorted(mods.items()):
        for target in sorted(imports(name, path, set(mods))):
            if table.get(target, -1) > table.get(name, 99):
                wrong.append(f"{name} (floor {table[name]}) imports {target} (floor {table[target]})")
    assert not wrong, "imports that go up a floor:\n" + "\n".join(wrong)


def test_no_import_cycle():
    mods = modules()
    graph = {name: imports(name, path, set(mods)) for name, path in mods.items()}
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as e:
        raise AssertionError(f"an import cycle: {' -> '.join(e.args[1])}") from None

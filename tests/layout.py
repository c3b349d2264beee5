"""The code's layout (#28): the import graph of the project's packages (cycles, imports that run back up), the files each
control is named in, and the largest files. ``python -m tests.layout`` prints it; tests/unit/test_layout.py holds the line.

An import of ``a.b.c`` runs ``a`` and ``a.b`` first (their ``__init__``), so it counts as an import of them too: a package
whose ``__init__`` imports a module that imports back into the package is a circle, though no two files name each other.
Imports under ``if __name__ == "__main__":`` (a module run as a script) and ``if TYPE_CHECKING:`` never run on import.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
#: Where each top-level package lives: the functions' code under lambdas/, the rest at the root.
ROOTS = {"governor": REPO / "lambdas", "ship_logs": REPO / "lambdas", "shared": REPO / "lambdas", "fleet": REPO / "lambdas",
         "stacks": REPO, "cli": REPO, "localaws": REPO}
#: What each package may import of the others: the floors, lowest first. The functions' code imports nothing of the tools
#: around it; the stacks read the functions' configuration; the CLI and localaws drive both.
MAY_IMPORT: Mapping[str, frozenset[str]] = {
    "shared": frozenset(),
    "governor": frozenset({"shared"}),
    "ship_logs": frozenset({"shared"}),
    "fleet": frozenset({"shared"}),
    "stacks": frozenset({"shared", "governor", "ship_logs", "fleet"}),
    "cli": frozenset({"shared", "governor", "ship_logs", "fleet", "stacks"}),
    "localaws": frozenset({"shared", "governor", "ship_logs", "fleet", "stacks"}),
}
#: Inside a package: its handlers are the top floor (nothing else of the package imports them; the tools around may).
TOP_FLOORS = ("governor.handlers",)
#: Names that are one control's alone, to count the files each control is spread over.
CONTROL_NAMES = {
    "retention": r"PutRetentionPolicy|put_retention_policy|RETENTION_SET|retention_statements|SET_RETENTION",
    "shipping": r"PutSubscriptionFilter|put_subscription_filter|SUBSCRIBED\b|subscription_statements|Action\.SUBSCRIBE\b",
    "deletionProtection": r"deletion_protection|deletionProtection|DeletionProtection|DELETION_PROTECTION",
    "kmsKeyArn": r"kms_key|kmsKey|KmsKey|KMS_KEY",
    "dataProtection": r"data_protection|dataProtection|DataProtection|DATA_PROTECTION",
    "fieldIndexes": r"field_index|fieldIndex|FieldIndex|FIELD_INDEX|IndexPolic|index_polic",
}


def modules() -> dict[str, Path]:
    found = {}
    for package, root in ROOTS.items():
        for path in (root / package).rglob("*.py"):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _runs_on_import(tree: ast.Module) -> Iterable[ast.AST]:
    """Every node but those under ``if __name__ == "__main__":`` and ``if TYPE_CHECKING:``."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If):
            test = ast.unparse(node.test)
            if test in ('__name__ == "__main__"', "__name__ == '__main__'", "TYPE_CHECKING", "typing.TYPE_CHECKING"):
                stack.extend(node.orelse)
                continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def import_graph() -> dict[str, set[str]]:
    """Module -> the project's modules importing it runs (its parents' ``__init__`` included)."""
    found = modules()
    graph: dict[str, set[str]] = {name: set() for name in found}
    for name, path in found.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in _runs_on_import(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    target = node.module or ""
                candidates = [target, *(f"{target}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Import):
                candidates = [alias.name for alias in node.names]
            else:
                continue
            for candidate in candidates:
                parts = candidate.split(".")
                for depth in range(1, len(parts) + 1):  # a.b.c runs a and a.b first
                    imported = ".".join(parts[:depth])
                    if imported in found and imported != name and not name.startswith(imported + "."):
                        graph[name].add(imported)
    return graph


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The circles of the graph (strongly connected components of more than one module), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(graph[module]):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for module in sorted(graph):
        if module not in index:
            visit(module)
    return sorted(found)


def upward(graph: Mapping[str, set[str]]) -> list[str]:
    """Imports that run back up: a package importing one above its floor, or a module below the handlers importing them."""
    found = []
    for module, imported in sorted(graph.items()):
        top = module.split(".")[0]
        for target in sorted(imported):
            target_top = target.split(".")[0]
            if target_top != top and target_top not in MAY_IMPORT[top]:
                found.append(f"{module} -> {target}")
            elif top == target_top and any(target.startswith(floor) and not module.startswith(floor) for floor in TOP_FLOORS):
                found.append(f"{module} -> {target}")
    return found


def files_per_control() -> dict[str, list[str]]:
    """The files of the functions' code, the stacks and the CLI that name each control."""
    paths = [p for p in (*(REPO / "lambdas").rglob("*.py"), *(REPO / "stacks").rglob("*.py"), *(REPO / "cli").rglob("*.py"))]
    return {control: sorted(str(p.relative_to(REPO)) for p in paths if re.search(pattern, p.read_text()))
            for control, pattern in CONTROL_NAMES.items()}


def largest(n: int = 8) -> list[tuple[str, int]]:
    paths = [*(REPO / "lambdas").rglob("*.py"), *(REPO / "stacks").rglob("*.py"), *(REPO / "cli").rglob("*.py"), *(REPO / "localaws").rglob("*.py")]
    sizes = [(str(p.relative_to(REPO)), len(p.read_text().splitlines())) for p in paths]
    return sorted(sizes, key=lambda s: -s[1])[:n]


def main() -> None:
    graph = import_graph()
    print(f"modules: {len(graph)}, imports between them: {sum(map(len, graph.values()))}")
    print("circles:", cycles(graph) or "none")
    print("imports that run back up:", upward(graph) or "none")
    print("files naming each control (lambdas/, stacks/, cli/):")
    for control, files in files_per_control().items():
        print(f"  {control:<20} {len(files):>3}  {' '.join(files)}")
    print("largest files (lines):")
    for path, lines in largest():
        print(f"  {lines:>5}  {path}")


if __name__ == "__main__":
    main()

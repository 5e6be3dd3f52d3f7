"""Print the import circles among the bot's own modules (``bot``, ``handlers``, ``nlp``, ``knowledge``).

Every import counts: at the top of a module, under ``if TYPE_CHECKING``, or inside a function. An
import inside a function still ties the two modules together (neither can be read, moved or tested
without the other); it only hides the circle from Python at start-up.

    .venv/bin/python scripts/import_cycles.py      # one line per circle; exit status 1 when there is one

A circle is printed as its modules in import order, the first repeated at the end
(``handlers.base -> handlers.dialog -> handlers.base``): one shortest circle per group of modules that
import each other, then, for a larger group, its other members. This is not a layer check
(``tests/test_layers.py`` has that); it reads the source and imports nothing.
"""

from __future__ import annotations

import ast
import sys
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "handlers", "nlp", "knowledge")

Graph = dict[str, set[str]]


def module_name(path: Path, root: Path = ROOT) -> str:
    """``handlers/base.py`` → ``handlers.base``; ``bot/storage/__init__.py`` → ``bot.storage``."""
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Every module of the packages, by dotted name."""
    return {module_name(p, root): p for package in PACKAGES for p in sorted((root / package).rglob("*.py"))}


def _absolute(node: ast.ImportFrom, importer: str, is_package: bool) -> str:
    """The module a ``from … import`` names, relative imports made absolute."""
    if node.level == 0:
        return node.module or ""
    base = importer.split(".")
    base = base[: len(base) - node.level + (1 if is_package else 0)]
    return ".".join(base + ([node.module] if node.module else []))


def imported(path: Path, importer: str, known: Iterable[str]) -> set[str]:
    """The modules of ``known`` that the module at ``path`` imports, anywhere in its source.

    ``from a import b`` imports the module ``a.b`` when there is one, else (a name defined in ``a``)
    the module ``a``.
    """
    known = set(known)
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(node, importer, path.name == "__init__.py")
            found |= {f"{source}.{a.name}" if f"{source}.{a.name}" in known else source for a in node.names}
    return (found & known) - {importer}


def graph(root: Path = ROOT) -> Graph:
    """Module → the modules it imports (of the four packages only)."""
    found = modules(root)
    return {name: imported(path, name, found) for name, path in found.items()}


def groups(g: Graph) -> list[list[str]]:
    """The groups of modules that import each other, directly or round about (strongly connected
    components of more than one module; Tarjan's algorithm), each sorted, in name order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(g[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            members = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                members.append(w)
                if w == v:
                    break
            if len(members) > 1:
                found.append(sorted(members))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return sorted(found)


def shortest_circle(g: Graph, members: list[str]) -> list[str]:
    """A shortest circle through the group's modules, from its first module (breadth first)."""
    inside = set(members)
    best: list[str] = []
    for start in members:
        came_from: dict[str, str] = {}
        queue = deque([start])
        while queue:
            v = queue.popleft()
            if start in g[v]:
                path = [v]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                circle = list(reversed(path)) + [start]
                if not best or len(circle) < len(best):
                    best = circle
                break
            for w in sorted(g[v] & inside):
                if w not in came_from and w != start:
                    came_from[w] = v
                    queue.append(w)
    return best


def circles(root: Path = ROOT) -> Iterator[str]:
    """One line per group of modules that import each other."""
    g = graph(root)
    for members in groups(g):
        circle = shortest_circle(g, members)
        others = sorted(set(members) - set(circle))
        yield " -> ".join(circle) + (f"  (with {', '.join(others)})" if others else "")


def main() -> int:
    found = list(circles())
    for line in found:
        print(line)
    print(f"{len(found)} import circle(s)", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())

"""The layers point one way: channels → core → handlers → knowledge, with the text processing
(``nlp``) beside knowledge. A module of a lower layer that imported a higher one would make a
newcomer read the whole tree to follow one message; these tests name the import at fault."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# What each package (or module) may not import: the layers above it (docs/architecture.md).
WIRING = ("bot.server", "bot.bootstrap", "bot.cli")
LANES = ("bot.turns", "bot.intake", "bot.runner", "bot.outbox")  # the two lanes of a turn, above the core
FORBIDDEN = {
    "handlers": ("bot",),
    "knowledge": ("bot", "handlers"),
    "nlp": ("bot", "handlers"),
    "bot/storage": ("bot.core", *LANES, "bot.channels", *WIRING),
    "bot/core.py": (*LANES, "bot.channels", *WIRING),
    "bot/turns.py": ("bot.channels", *WIRING),
    "bot/intake.py": ("bot.core", "bot.runner", "bot.turns", "bot.channels", *WIRING),
    "bot/runner.py": ("bot.intake", "bot.turns", "bot.channels", *WIRING),
    "bot/outbox.py": ("bot.core", "bot.intake", "bot.runner", "bot.turns", "bot.channels", *WIRING),
    "bot/turn_codec.py": ("bot.core", *LANES, "bot.channels", *WIRING),
    "bot/channels": WIRING,
}


def _below(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, module, names) of every import in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module, [alias.name for alias in node.names]))
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_lower_layer_never_imports_a_higher_one(package):
    where = ROOT / package
    faults = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in (sorted(where.rglob("*.py")) if where.is_dir() else [where])
        for line, module, _ in _imports(path)
        if _below(module, FORBIDDEN[package])
    ]
    assert not faults, faults


def test_no_module_imports_another_modules_private_names():
    faults = [
        f"{path.relative_to(ROOT)}:{line} imports {name} from {module}"
        for package in ("bot", "handlers", "knowledge", "nlp")
        for path in sorted((ROOT / package).rglob("*.py"))
        for line, module, names in _imports(path)
        if module.split(".")[0] in ("bot", "handlers", "knowledge", "nlp")
        for name in names
        if name.startswith("_")
    ]
    assert not faults, faults


def test_no_import_cycles():
    """No two modules of ``bot``, ``handlers``, ``nlp`` and ``knowledge`` import each other, round about
    or not, at the top or inside a function (``scripts/import_cycles.py`` prints the circles)."""
    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "import_cycles.py")], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0 and not run.stdout, run.stdout + run.stderr

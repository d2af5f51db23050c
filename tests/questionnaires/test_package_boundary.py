"""questionnaires knows the clinical content only: it imports neither plugin nor handlers."""

from __future__ import annotations

import ast
from pathlib import Path

import questionnaires

PACKAGE = Path(questionnaires.__file__).parent


def imported_top_levels(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_no_module_imports_plugin_or_handlers():
    modules = sorted(PACKAGE.rglob("*.py"))

    assert len(modules) > 10
    for module in modules:
        assert not imported_top_levels(module) & {"plugin", "handlers"}, module

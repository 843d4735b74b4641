import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(p for p in (ROOT / "gan_core").rglob("*.py") if p.name != "__main__.py")


def module_name(path: Path) -> str:
    """gan_core/runs/store.py -> 'runs.store'; a package's __init__.py is the package ('cli', '' for gan_core)."""
    parts = list(path.relative_to(ROOT / "gan_core").with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = sorted(module_name(p) for p in SOURCES)


@pytest.mark.slow
def test_gan_core_never_imports_streamlit():
    code = ("import sys, importlib\n"
            f"for m in {MODULES!r}: importlib.import_module('gan_core.' + m if m else 'gan_core')\n"
            "print('streamlit' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n.split(".")[0] == "streamlit" for n in names), path


def test_public_functions_have_hints_and_a_docstring():
    missing = []
    for path in SOURCES:
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                if ast.get_docstring(node) is None or node.returns is None:
                    missing.append(f"{module_name(path)}:{node.name}")
    assert missing == []


def test_no_pickle_loading_in_the_product():
    for path in SOURCES + [ROOT / "app.py", ROOT / "ui.py", *(ROOT / "pages").glob("*.py")]:
        text = path.read_text()
        assert "pickle.load" not in text and "import pickle" not in text, path
        assert "torch.load(" not in text or "weights_only=True" in text, path


def gan_core_imports(source: str, package: str = "", modules: set[str] | None = None) -> set[str]:
    """The gan_core modules a file in `package` ('' = gan_core itself, 'runs' = gan_core.runs) imports, from every
    import statement in it, those inside functions (imported late) included: a late import still makes a cycle,
    it only hides it until run time. With `modules`, each name maps to the longest known module it starts with."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):  # `from . import x`, `from ..x import y`: relative to the package
            if node.level:
                up = package.split(".") if package else []
                up = up[:len(up) - (node.level - 1)]
                base = ".".join(["gan_core", *up] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            names = [f"{base}.{a.name}" for a in node.names]  # `from gan_core import x` names module x
        else:
            continue
        for n in names:
            if not n.startswith("gan_core."):
                continue
            name = n.removeprefix("gan_core.")
            if modules is None:
                found.add(name.split(".")[0])
                continue
            while name and name not in modules:  # `from .store import Store` is module runs.store
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def import_graph() -> dict[str, set[str]]:
    """{gan_core module: the other gan_core modules it imports}, modules named as in MODULES ('runs.store')."""
    known = set(MODULES) - {""}
    graph = {}
    for path in SOURCES:
        m = module_name(path)
        package = m if path.name == "__init__.py" else m.rpartition(".")[0]
        graph[m] = gan_core_imports(path.read_text(), package, known)
    # a package's own __init__ (gan_core.runs) is imported by every module in it: not an edge of the design
    return {m: (found & graph.keys()) - {m} - {p for p in found if m.startswith(p + ".")} for m, found in graph.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import cycle, one per group of modules that reach each other, as [a, b, ..., a]; [] when none."""
    def reach(m: str) -> set[str]:
        seen, todo = set(), [m]
        while todo:
            for n in graph[todo.pop()] - seen:
                seen.add(n)
                todo.append(n)
        return seen
    below = {m: reach(m) for m in graph}
    found, done = [], set()
    for m in sorted(graph):
        if m in below[m] and m not in done:
            group = {n for n in below[m] if m in below[n]}
            done |= group
            paths = {n: [m, n] for n in graph[m] & group}  # breadth-first back to m: the shortest loop
            while m not in paths:
                paths = {n: p + [n] for p in paths.values() for n in sorted(graph[p[-1]] & group)} | paths
            found.append(paths[m])
    return found


def test_gan_core_imports_sees_every_form():
    source = ("from __future__ import annotations\nimport os, gan_core.a\nfrom . import b\nfrom .c import x\n"
              "from gan_core import d\nfrom gan_core.e import y\nfrom torch import nn\n"
              "def late():\n    from .f import z\n")
    assert gan_core_imports(source) == {"a", "b", "c", "d", "e", "f"}


def test_cycles_reports_each_loop():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"e"}, "e": {"d"}, "f": {"a"}}) == [
        ["a", "b", "c", "a"], ["d", "e", "d"]]
    assert cycles({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []


def test_gan_core_imports_resolves_subpackages():
    source = "from ..config import X\nfrom . import store\nfrom ..web.charts import f\nfrom .. import data\n"
    known = {"config", "runs.store", "web.charts", "data", "runs"}
    assert gan_core_imports(source, "runs", known) == {"config", "runs.store", "web.charts", "data"}


def test_the_gan_itself_imports_nothing_above_it():
    """The flat modules (the GAN: config, data, models, losses, trainer ...) stand alone: the run store, the web
    helpers, the tools and the CLI build on them, never the other way round."""
    graph = import_graph()
    flat = {m for m in graph if "." not in m and m not in ("", "runs", "web", "tools", "cli")}
    upward = {m: sorted(n for n in graph[m] if n not in flat) for m in sorted(flat)}
    assert {m: n for m, n in upward.items() if n} == {}


def test_gan_core_import_graph_has_no_cycle():
    found = cycles(import_graph())
    assert found == [], "gan_core modules import each other: " + "; ".join(" → ".join(c) for c in found)


MAX_FUNCTION_LINES = 60
ARGPARSE_CALLS = {"add_parser", "add_argument", "add_subparsers", "add_argument_group", "add_mutually_exclusive_group"}


def argparse_builder(path: Path, node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """A verb group's `register(subparsers)` in gan_core/cli/ that builds argparse parsers: a list of flags, long by
    nature, so it may pass MAX_FUNCTION_LINES."""
    calls = {n.func.attr for n in ast.walk(node) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)}
    return path.parent == ROOT / "gan_core" / "cli" and node.name == "register" and bool(calls & ARGPARSE_CALLS)


def long_functions(path: Path) -> list[str]:
    """'path:line name (n lines)' for each function in the file over MAX_FUNCTION_LINES, from its def line to its
    last line (decorators not counted), nested functions on their own too; argparse builders aside."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not argparse_builder(path, node):
            n = node.end_lineno - node.lineno + 1
            if n > MAX_FUNCTION_LINES:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({n} lines)")
    return found


def test_no_function_over_60_lines():
    """A function a reader takes in at once: at most 60 lines in gan_core/ and pages/."""
    paths = sorted([*(ROOT / "gan_core").rglob("*.py"), *(ROOT / "pages").glob("*.py")])
    found = [f for path in paths for f in long_functions(path)]
    assert found == [], "over 60 lines:\n" + "\n".join(found)


def test_argparse_builder_is_only_a_cli_register():
    source = "def register(sub):\n    p = sub.add_parser('x')\n    p.add_argument('--y')\n"
    node = ast.parse(source).body[0]
    assert argparse_builder(ROOT / "gan_core" / "cli" / "train.py", node)
    assert not argparse_builder(ROOT / "gan_core" / "trainer.py", node)
    not_a_parser = ast.parse("def register(x):\n    x()\n").body[0]
    assert not argparse_builder(ROOT / "gan_core" / "cli" / "train.py", not_a_parser)

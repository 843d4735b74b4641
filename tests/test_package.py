import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted(p.stem for p in (ROOT / "gan_core").glob("*.py") if p.stem != "__main__")


@pytest.mark.slow
def test_gan_core_never_imports_streamlit():
    code = ("import sys, importlib\n"
            f"for m in {MODULES!r}: importlib.import_module('gan_core.' + m if m != '__init__' else 'gan_core')\n"
            "print('streamlit' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    for path in (ROOT / "gan_core").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n.split(".")[0] == "streamlit" for n in names), path


def test_public_functions_have_hints_and_a_docstring():
    missing = []
    for path in (ROOT / "gan_core").glob("*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                if ast.get_docstring(node) is None or node.returns is None:
                    missing.append(f"{path.name}:{node.name}")
    assert missing == []


def test_no_pickle_loading_in_the_product():
    for path in list((ROOT / "gan_core").glob("*.py")) + [ROOT / "app.py", *(ROOT / "pages").glob("*.py")]:
        text = path.read_text()
        assert "pickle.load" not in text and "import pickle" not in text, path
        assert "torch.load(" not in text or "weights_only=True" in text, path


def gan_core_imports(source: str) -> set[str]:
    """The gan_core modules a file imports, from every import statement in it, those inside functions (imported
    late) included: a late import still makes a cycle, it only hides it until run time."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):  # `from . import x`, `from .x import y`: relative to gan_core
            base = "gan_core" + (f".{node.module}" if node.module else "") if node.level else node.module or ""
            names = [base] + [f"{base}.{a.name}" for a in node.names]  # `from gan_core import x` names a module
        else:
            continue
        found |= {n.split(".")[1] for n in names if n.startswith("gan_core.")}
    return found


def import_graph() -> dict[str, set[str]]:
    """{gan_core module: the other gan_core modules it imports}."""
    graph = {m: gan_core_imports((ROOT / "gan_core" / f"{m}.py").read_text()) for m in MODULES}
    return {m: (found & graph.keys()) - {m} for m, found in graph.items()}


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


def test_gan_core_import_graph_has_no_cycle():
    found = cycles(import_graph())
    assert found == [], "gan_core modules import each other: " + "; ".join(" → ".join(c) for c in found)

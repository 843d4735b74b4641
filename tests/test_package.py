import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted(p.stem for p in (ROOT / "gan_core").glob("*.py") if p.stem != "__main__")


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

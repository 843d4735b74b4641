"""The README's Layout map stays true: it names every module under gan_core/ and pages/, each in its own folder's part
of the map, names no module that is gone, and the test files it points to are there."""
import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# A part of the map begins where it names a folder with its trailing slash: `pages/`, `gan_core/web/`, and plain
# `gan_core/` for the flat GAN. The part before the first folder is the top level (app.py, ui.py).
FOLDER = re.compile(r"(?<![\w/.])(pages/|gan_core/(?:\w+/)?)")
MODULE = re.compile(r"(?<![\w/.])(\w+)\.py\b")
# Folders the map must draw: pages/ and every folder of gan_core that holds Python modules.
FOLDERS = sorted({"pages/"} | {p.parent.relative_to(ROOT).as_posix() + "/" for p in (ROOT / "gan_core").rglob("*.py")})


def layout_section() -> str:
    """README.md's "## Layout" section, up to the next section."""
    text = (ROOT / "README.md").read_text()
    return text.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]


def map_parts(section: str) -> dict[str, set[str]]:
    """{folder: the module names (no .py) written as `name.py` in that folder's part of the section's first code
    block}; '' is the top level, before the first folder."""
    block = section.split("```", 2)[1]
    starts = [(0, "")] + [(m.start(), m.group(1)) for m in FOLDER.finditer(block)]
    parts: dict[str, set[str]] = {}
    for (start, folder), (end, _) in zip(starts, starts[1:] + [(len(block), "")]):
        parts.setdefault(folder, set()).update(MODULE.findall(block[start:end]))
    return parts


def modules(folder: str) -> set[str]:
    """The modules in `folder` ('' = the repository's top level), by name."""
    return {p.stem for p in (ROOT / folder).glob("*.py")}


def test_map_parts_reads_each_folder_apart():
    block = ("```\napp.py ─▶ ui.py\npages/ home.py · runs.py\ngan_core/runs/ store.py, raw/.gz\n"
             "python -m gan_core ─▶ gan_core/cli/ runs.py\ngan_core/ config.py\n```\n")
    assert map_parts(block) == {"": {"app", "ui"}, "pages/": {"home", "runs"}, "gan_core/runs/": {"store"},
                                "gan_core/cli/": {"runs"}, "gan_core/": {"config"}}


def test_layout_map_names_every_module():
    """Each module under gan_core/ and pages/ is named in its folder's part of the map (a package's __init__ and
    __main__ may go unnamed); app.py and ui.py are named at the top."""
    parts = map_parts(layout_section())
    unnamed = {folder: sorted(m for m in modules(folder) - parts.get(folder, set()) if not m.startswith("__"))
               for folder in FOLDERS}
    unnamed[""] = sorted({"app", "ui"} - parts.get("", set()))
    assert {folder: names for folder, names in unnamed.items() if names} == {}


def test_layout_map_names_only_modules_that_exist():
    parts = map_parts(layout_section())
    assert set(parts) - {""} <= set(FOLDERS), "the map draws a folder that holds no module"
    gone = {folder: sorted(names - modules(folder)) for folder, names in parts.items()}
    assert {folder: names for folder, names in gone.items() if names} == {}


def test_layout_test_paths_exist():
    """Every `tests/...` path the section names is there; `<page>` stands for each page, so tests/app/ has one
    module per page; `*` patterns match something. (`<module>` is a convention, not a promise for every module.)"""
    missing = []
    for path in re.findall(r"`(tests/[^`\s]*)`", layout_section()):
        if "<page>" in path:
            missing += [p for p in (path.replace("<page>", page) for page in modules("pages"))
                        if not (ROOT / p).exists()]
        elif "*" in path:
            missing += [] if list(ROOT.glob(path)) else [path]
        elif "<" not in path and not (ROOT / path).exists():
            missing.append(path)
    assert missing == []


def test_every_page_is_one_main():
    """As the map says: each page defines main() and its script ends by calling it."""
    not_main = []
    for path in sorted((ROOT / "pages").glob("*.py")):
        body = ast.parse(path.read_text()).body
        defines = any(isinstance(n, ast.FunctionDef) and n.name == "main" for n in body)
        last = body[-1] if body else None
        calls = (isinstance(last, ast.Expr) and isinstance(last.value, ast.Call)
                 and isinstance(last.value.func, ast.Name) and last.value.func.id == "main")
        if not (defines and calls):
            not_main.append(path.name)
    assert not_main == []

"""The tree shows the architecture (DESIGN, "The layout"): folders per wire and per part of the
core, and who may import whom. Read from the source with `ast`, so it holds for every module.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("channels", "classifier", "intake", "storage")
# intake's shared leaves: every other module of intake sits in a folder of its own.
INTAKE_LEAVES = {"config", "errors", "messages", "ratelimit", "redact"}


def modules(package: str) -> list[Path]:
    return sorted(p for p in (ROOT / package).rglob("*.py") if "__pycache__" not in p.parts)


def dotted(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module of ours that `path` imports (at any depth of the file)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] in PACKAGES}


def all_modules() -> list[Path]:
    return [path for package in PACKAGES for path in modules(package)]


def test_no_module_sits_loose_at_the_top_of_channels() -> None:
    loose = [p.name for p in (ROOT / "channels").glob("*.py") if p.name != "__init__.py"]
    assert loose == []


def test_intake_keeps_only_its_shared_leaves_beside_its_folders() -> None:
    leaves = {p.stem for p in (ROOT / "intake").glob("*.py") if p.name != "__init__.py"}
    assert leaves <= INTAKE_LEAVES
    assert len(leaves) <= 8


@pytest.mark.parametrize("package", PACKAGES)
def test_no_folder_holds_a_family_of_prefixed_files(package: str) -> None:
    folders = {p.parent for p in (ROOT / package).rglob("*") if p.is_file()}
    for folder in folders:
        names = [p.name for p in folder.iterdir() if p.is_file() and "_" in p.stem]
        prefixes = Counter(name.split("_")[0] for name in names)
        families = {prefix: n for prefix, n in prefixes.items() if n >= 3 and prefix}
        assert families == {}, f"{folder.relative_to(ROOT)}: {families}"


@pytest.mark.parametrize("path", all_modules(), ids=dotted)
def test_imports_follow_the_house_rules(path: Path) -> None:
    """channels: never storage; classifier: nothing of ours; storage: no channel, no
    classifier, of intake only its leaf types; intake outside its cli: no channel."""
    module = dotted(path)
    ours = imports_of(path)
    top = module.split(".")[0]
    if top == "channels":
        assert not {m for m in ours if m.startswith("storage")}
    elif top == "classifier":
        assert not {m for m in ours if not m.startswith("classifier")}
    elif top == "storage":
        assert not {m for m in ours if m.startswith(("channels", "classifier"))}
        leaves = {f"intake.{leaf}" for leaf in INTAKE_LEAVES}
        intake = {m for m in ours if m.startswith("intake")}
        assert {m.rsplit(".", 1)[0] if m not in leaves else m for m in intake} <= leaves
    elif not module.startswith("intake.cli") and module != "intake":
        assert not {m for m in ours if m.startswith("channels")}


def test_every_folder_is_a_package_with_a_docstring() -> None:
    for package in PACKAGES:
        for folder in (ROOT / package).rglob("*"):
            if not folder.is_dir() or {"__pycache__", "migrations"} & set(folder.parts):
                continue  # Alembic's script folder is read by path, not imported
            if not any(folder.glob("*.py")):
                continue  # templates, static files, rules, presets data
            init = folder / "__init__.py"
            assert init.exists(), folder
            assert ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))), init

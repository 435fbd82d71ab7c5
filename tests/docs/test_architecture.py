"""docs/architecture.md stays true: its "may import" table is what the code imports, its "(no boto3)" and
"(no Twilio)" notes hold, and it and the README's layout name every function and core module."""

import ast
import re
from pathlib import Path

import pytest

from sink_dev.paths import ROOT

ARCHITECTURE = (ROOT / "docs" / "architecture.md").read_text()
README = (ROOT / "README.md").read_text()
PROJECT = {"twilio_sink", "sink_cli", "sink_ops", "sink_local", "sink_dev", "sink_bench", "tests"}
# The third-party packages whose use marks a role: AWS calls, AWS stood in, Twilio.
WATCHED = PROJECT | {"boto3", "botocore", "moto", "twilio"}
CORE = ROOT / "layers" / "core" / "twilio_sink"


def may_import() -> dict[str, set[str]]:
    """Folder → the watched packages its row allows, read from the table under "Around the core"."""
    section = ARCHITECTURE[ARCHITECTURE.index("## Around the core"):]
    rows = re.findall(r"^\| `([\w/]+/)` \| [^|]+ \| ([^|]+) \|$", section, flags=re.MULTILINE)
    return {folder: set(re.findall(r"`(\w+)`", allowed)) for folder, allowed in rows}


def imported(path: Path) -> set[str]:
    """The top-level packages a module imports, at any depth of its code (lazy imports too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def own_package(folder: str) -> str:
    return folder.rstrip("/").rsplit("/", 1)[-1]


TABLE = may_import()


def test_the_table_covers_every_folder_of_code_outside_the_tests():
    tool_packages = {f"tools/{p.name}/" for p in (ROOT / "tools").iterdir() if (p / "__init__.py").exists()}
    assert set(TABLE) == {"functions/", "layers/core/twilio_sink/"} | tool_packages
    for allowed in TABLE.values():
        assert allowed <= WATCHED, allowed - WATCHED


@pytest.mark.parametrize("folder", sorted(TABLE))
def test_each_folder_imports_exactly_what_its_row_allows(folder):
    used: dict[str, set[str]] = {}
    for module in sorted((ROOT / folder).rglob("*.py")):
        for package in imported(module) & WATCHED - {own_package(folder)}:
            used.setdefault(package, set()).add(str(module.relative_to(ROOT)))
    forbidden = {package: sorted(modules) for package, modules in used.items() if package not in TABLE[folder]}
    assert not forbidden, f"{folder} imports what docs/architecture.md does not allow it: {forbidden}"
    assert TABLE[folder] <= set(used), f"docs/architecture.md allows {folder} what it never imports: {TABLE[folder] - set(used)}"


def test_the_modules_noted_without_boto3_or_twilio_import_neither():
    notes = re.findall(r"`(\w+\.py)` \(no (boto3|Twilio)\)", ARCHITECTURE)
    assert {note for _, note in notes} == {"boto3", "Twilio"}
    banned = {"boto3": {"boto3", "botocore"}, "Twilio": {"twilio"}}
    for name, note in notes:
        assert not imported(CORE / name) & banned[note], f"{name} imports {note}"
    # the store knows no Twilio family either: it is handed items, never events
    store = (CORE / "store.py").read_text()
    assert not re.search(r"^\s*from \.(families|registry)\b", store, flags=re.MULTILINE)


def names(text: str, module: str) -> bool:
    """Whether `text` names the module: by its name, and a subpackage's also by its folder (`reconcile/`),
    as its path or as a file under the folder's entry (the README's tree)."""
    folder, _, name = module.rpartition("/")
    return bool(re.search(rf"\b{re.escape(name)}\b", text)) and (not folder or f"{folder}/" in text)


def test_the_architecture_and_the_readme_name_every_function_and_core_module():
    functions = sorted(p.name for p in (ROOT / "functions").iterdir() if (p / "app.py").exists())
    # Top-level modules by name, a subpackage's by its path (`reconcile/run.py`); the families have their
    # own generated table (docs/families.md).
    modules = sorted(p.relative_to(CORE).as_posix() for p in CORE.rglob("*.py")
                     if p.name != "__init__.py" and p.parent.name != "families")
    assert len(functions) == 3
    for doc, text in (("docs/architecture.md", ARCHITECTURE), ("README.md", README)):
        missing = [name for name in functions + modules if not names(text, name)]
        assert not missing, f"{doc} does not name {missing}"
        tools = [p.name for p in (ROOT / "tools").iterdir() if (p / "__init__.py").exists()]
        assert all(f"{tool}/" in text for tool in tools), doc

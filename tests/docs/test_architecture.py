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


# Attributes only the status table's items have (contract 2): a module that reads one by its key is
# reading an item. `version` is left out: API Gateway's events have one too.
ITEM_ONLY = {"pk", "sk", "order_key", "claims", "updated_at", "unsettled", "check_after", "expires_at", "received_at"}
# The one owner (state.py names the attributes, store.py moves the items), and what plays or measures
# DynamoDB's own part: the bench's stand-in and its index-load count, and the local stack's raw reader
# for the tests (the contract seen from outside).
ITEM_READERS = {"layers/core/twilio_sink/state.py", "layers/core/twilio_sink/store.py",
                "tools/sink_bench/fake_aws.py", "tools/sink_bench/index_load.py", "tools/sink_local/stack.py"}


def item_key_reads(path: Path) -> list[str]:
    """`x["claims"]`, `x.get("claims")`: every read of an item-only attribute by its key, as `line: key`."""
    reads = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
            named = node.slice
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
              and node.args):
            named = node.args[0]
        else:
            continue
        if isinstance(named, ast.Constant) and named.value in ITEM_ONLY:
            reads.append(f"{node.lineno}: {named.value}")
    return reads


def test_no_module_but_the_persistence_layer_reads_the_items_attributes():
    product = [path for folder in ("functions", "layers", "tools") for path in sorted((ROOT / folder).rglob("*.py"))]
    found = {str(path.relative_to(ROOT)): reads for path in product
             if str(path.relative_to(ROOT)) not in ITEM_READERS and (reads := item_key_reads(path))}
    assert not found, f"use state.EntityState (through store.StatusStore) instead: {found}"


def test_the_item_key_check_finds_a_read(tmp_path):
    module = tmp_path / "reader.py"
    module.write_text('state = {}\nprint(state["claims"], state.get("check_after"), state["status"])\n')
    assert item_key_reads(module) == ["2: claims", "2: check_after"]


def core_rooms() -> dict[str, set[str]]:
    """Each core module (a subpackage counts as one: `families/`, `reconcile/`) → the rooms it imports."""
    def room(relative: Path) -> str:
        return f"{relative.parts[0]}/" if len(relative.parts) > 1 else relative.name

    rooms: dict[str, set[str]] = {}
    for path in sorted(CORE.rglob("*.py")):
        relative = path.relative_to(CORE)
        if relative == Path("__init__.py"):
            continue
        here = room(relative)
        package = relative.parent.parts  # where a relative import starts
        targets = rooms.setdefault(here, set())
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = list(package[:len(package) - (node.level - 1)])
                names = [*base, *node.module.split(".")] if node.module else base
                modules = [names] if node.module else [[*names, alias.name] for alias in node.names]
                for parts in modules:
                    target = Path(*parts)
                    found = target.with_suffix(".py") if (CORE / target.with_suffix(".py")).exists() else target
                    if str(found) not in (".", "__init__.py"):
                        targets.add(room(found))
        targets.discard(here)
    return rooms


def floors(rooms: dict[str, set[str]]) -> dict[str, int]:
    """Floor 1 imports nothing of the core; every other room stands one above the highest it imports."""
    placed: dict[str, int] = {}

    def floor(name: str, path: tuple[str, ...] = ()) -> int:
        assert name not in path, f"a circle of imports: {' -> '.join((*path, name))}"
        if name not in placed:
            placed[name] = 1 + max((floor(other, (*path, name)) for other in rooms[name]), default=0)
        return placed[name]

    for name in rooms:
        floor(name)
    return placed


def test_the_floors_in_the_architecture_are_the_cores_imports():
    documented = {name: int(number) for number, names in re.findall(r"^\| (\d+) \| ([^|]+) \|", ARCHITECTURE, re.M)
                  for name in re.findall(r"`([\w./]+)`", names)}
    assert documented == floors(core_rooms())


def test_a_circle_of_imports_is_found(tmp_path):
    with pytest.raises(AssertionError, match="a circle of imports: a -> b -> a"):
        floors({"a": {"b"}, "b": {"a"}})

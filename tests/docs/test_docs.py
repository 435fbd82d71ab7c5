"""The docs say only what is true: links resolve, contract numbers match the code's citations, every
command and make target named exists, every default, output, alarm count and teardown fact
quoted from template.yaml is what the template says, every name placed in a module is defined there,
and the configuration and reconciliation tables are what the code reads and maps.
"""

import re
import tomllib
from pathlib import Path

import pytest

from sink_cli.main import COMMANDS
from sink_dev.paths import ROOT
from sink_dev.template import load_template

DOCS = [ROOT / "README.md", ROOT / "events" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TEMPLATE = load_template()
PARAMETERS = TEMPLATE["Parameters"]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def text(path: Path) -> str:
    return path.read_text()


def everything() -> str:
    return "\n".join(text(path) for path in DOCS)


def anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    found = set()
    for heading in re.findall(r"^#+ (.+)$", text(path), flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", "")).replace(" ", "-")
        found.add(slug)
    return found


def test_the_readme_reads_in_one_sitting():
    assert len(text(ROOT / "README.md").splitlines()) <= 200


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_resolves(doc):
    for target in LINK.findall(text(doc)):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        resolved = (doc.parent / path).resolve() if path else doc
        assert resolved.exists(), f"{doc.name}: {target} does not exist"
        if anchor:
            assert anchor in anchors(resolved), f"{doc.name}: no heading for #{anchor} in {resolved.name}"


def test_every_contract_the_code_cites_has_its_numbered_heading():
    headings = re.findall(r"^## Contract (\d) — ", text(ROOT / "docs" / "contracts.md"), flags=re.MULTILINE)
    assert headings == ["1", "2", "3", "4", "5"]
    sources = [p for folder in ("layers", "functions", "tools", "tests") for p in (ROOT / folder).rglob("*.py")]
    cited = {n for p in sources for n in re.findall(r"\bcontract[ -](\d+)", p.read_text(), flags=re.IGNORECASE)}
    assert cited and cited <= set(headings)


def test_every_make_target_and_command_named_in_the_docs_exists():
    makefile = text(ROOT / "Makefile")
    targets = {t for line in re.findall(r"^([\w .-]+):(?!=)", makefile, flags=re.MULTILINE) for t in line.split()}
    named = set(re.findall(r"\bmake ([a-z][\w-]*)", everything()))
    assert named and named <= targets, named - targets
    commands = set(re.findall(r"\btwilio-sink ([a-z][\w-]*)", everything()))
    assert commands and commands <= set(COMMANDS), commands - set(COMMANDS)


def test_every_stack_name_in_an_example_is_the_default_one():
    config = tomllib.loads(text(ROOT / "samconfig.toml"))
    default = config["default"]["global"]["parameters"]["stack_name"]
    names = set(re.findall(r"--stack(?:-name)?[ =]([a-z][\w-]*)", everything()))
    assert names == {default}


def test_the_parameter_table_quotes_every_default_of_the_template():
    rows = re.findall(r"^\| `(\w+)` \| ([^|]+) \|", text(ROOT / "docs" / "operations.md"), flags=re.MULTILINE)
    quoted = {name: value.strip() for name, value in rows if name in PARAMETERS}
    assert set(quoted) == set(PARAMETERS)
    for name, value in quoted.items():
        default = PARAMETERS[name].get("Default")
        expected = "(required)" if default is None else f'`{default}`' if str(default) else '`""`'
        assert value == expected, name


def test_every_default_quoted_in_prose_is_the_templates():
    quoted = re.findall(r"`(\w+)` \(default ([\d,.]+)", everything())
    assert quoted
    for name, value in quoted:
        assert float(value.replace(",", "")) == float(PARAMETERS[name]["Default"]), name


def test_the_outputs_listed_are_the_templates():
    section = text(ROOT / "docs" / "operations.md").split("The stack's outputs list", 1)[1].split("\n\n", 1)[0]
    assert set(re.findall(r"`(\w+)`", section)) == set(TEMPLATE["Outputs"])


def test_the_alarm_count_quoted_is_the_templates():
    alarms = [r for r in TEMPLATE["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    counts = re.findall(r"\*\*Alarms\*\* \((\d+)\)|the (\d+) CloudWatch alarms", text(ROOT / "docs" / "operations.md"))
    assert counts and {int(a or b) for a, b in counts} == {len(alarms)}


def test_teardown_keeps_the_table_and_only_the_table():
    resources = TEMPLATE["Resources"]
    retained = {name for name, r in resources.items() if r.get("DeletionPolicy") == "Retain"}
    assert retained == {"StatusTable"}
    assert PARAMETERS["TableDeletionProtection"]["Default"] == "true"
    protection = resources["StatusTable"]["Properties"]["DeletionProtectionEnabled"]
    assert protection == {"Fn::If": ["ProtectTable", True, False]}
    # the log groups are the stack's own (so deleted with it), the layer versions too
    groups = {r["Properties"]["LogGroupName"]["Fn::Sub"] for r in resources.values()
              if r["Type"] == "AWS::Logs::LogGroup" and "LogGroupName" in r["Properties"]}
    assert {"/aws/lambda/${StreamConsumerFunction}", "/aws/lambda/${WebhookFunction}"} <= groups
    assert resources["CoreLayer"]["Properties"]["RetentionPolicy"] == "Delete"


def test_the_queues_keep_messages_the_14_days_the_docs_say():
    for name in ("DeadLetterQueue", "StreamFailureQueue"):
        assert TEMPLATE["Resources"][name]["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert "keep messages 14 days" in text(ROOT / "docs" / "guarantees.md")


def test_the_numbers_quoted_from_the_core_are_the_cores():
    from twilio_sink import claims, dead_letters, envelope, notify, pipeline, signature, store

    docs = everything()
    assert pipeline.WORKERS == 32 and "32 I/O threads" in docs and "32 at a time" in docs
    assert store.BATCH_GET_LIMIT == 100 and "one `BatchGetItem` per 100 entities" in docs
    assert store.BATCH_WRITE_LIMIT == 25 and "`BatchWriteItem`, 25 per request" in docs
    assert claims.CLOCK_SKEW_SECONDS == 2 and "2 s for clocks that disagree" in docs
    assert notify.PUBLISH_BATCH_LIMIT == 10 and "packed ten per request" in docs
    assert signature.SECRET_MAX_AGE_SECONDS == 300 and "5 minutes" in docs
    assert envelope.MAX_EVENT_BYTES == 64_000 and "over 64,000 bytes" in docs
    assert dead_letters.MAX_RAW_CHARS == 100_000 and "cut at 100,000 characters" in docs


class Parsed(Exception):
    """Raised instead of running a command once its own parser accepted the command line."""


def command_lines() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", everything(), flags=re.DOTALL)
    return [line.strip().removeprefix(".venv/bin/") for block in blocks for line in block.splitlines()
            if line.strip().startswith(("twilio-sink ", ".venv/bin/twilio-sink "))]


@pytest.mark.parametrize("line", command_lines())
def test_every_command_line_in_the_docs_is_accepted_by_its_parser(line, monkeypatch):
    import argparse
    import importlib
    import shlex

    name, *argv = shlex.split(line, comments=True)[1:]
    original = argparse.ArgumentParser.parse_args

    def parse_only(self, args=None, namespace=None):
        raise Parsed(original(self, args, namespace))  # a usage error exits 2 before this

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_only)
    with pytest.raises(Parsed):
        importlib.import_module(COMMANDS[name][0]).main(argv)


SEARCHED = [ROOT / folder for folder in ("layers", "functions", "tools", "tests")]


def module_file(named: str) -> Path | None:
    """The file a doc means by `named`: a path from the root, else the one module of that name in the code."""
    if (ROOT / named).is_file():
        return ROOT / named
    found = {p for folder in SEARCHED for p in folder.rglob(Path(named).name) if p.as_posix().endswith("/" + named)}
    assert len(found) <= 1, f"`{named}` could be any of {sorted(map(str, found))}"
    return found.pop() if found else None


def defined(path: Path) -> set[str]:
    """Every name a module defines: its functions, classes and assignments, at any depth (class attributes too)."""
    import ast

    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for target in targets for n in ast.walk(target) if isinstance(n, ast.Name)}
    return names


def placed_names() -> list[tuple[str, str]]:
    """(name, module) for each "`NAME` in `module.py`", and each "`module.NAME`" of a core module, the docs say."""
    docs = everything()
    core = ROOT / "layers" / "core" / "twilio_sink"
    placed = re.findall(r"`(\w+)`(?: class)? in `([\w./]+\.py)`", docs)
    placed += [(name, f"{module}.py") for module, name in re.findall(r"`(\w+)\.(\w+)(?:\([^`]*\))?`", docs)
               if name != "py" and (core / f"{module}.py").is_file()]
    return sorted(set(placed))


def test_every_name_the_docs_place_in_a_module_is_defined_there():
    placed = placed_names()
    assert placed
    wrong = [f"`{name}` in `{module}`" for name, module in placed
             if (path := module_file(module)) is None or name not in defined(path)]
    assert not wrong, f"the docs place these where they are not: {wrong}"


def test_the_configuration_the_docs_list_is_what_the_functions_read_and_the_template_sets():
    from twilio_sink.config import Settings

    bullet = text(ROOT / "docs" / "operations.md").split("- **Configuration**:", 1)[1].split("\n- ", 1)[0]
    shared, _, rest = " ".join(bullet.split()).partition("; for the stream consumer also")
    consumer, _, rest = rest.partition("; for the webhook also")
    webhook, _, reconciler = rest.partition("; for the reconciler")
    listed = {part: set(re.findall(r"`([A-Z][A-Z0-9_]+)`", words)) for part, words in
              (("Globals", shared), ("StreamConsumerFunction", consumer), ("WebhookFunction", webhook),
               ("ReconcilerFunction", reconciler))}
    read = {field.alias for field in Settings.model_fields.values()}
    assert set().union(*listed.values()) == read
    for part, names in listed.items():
        where = TEMPLATE["Globals"]["Function"] if part == "Globals" else TEMPLATE["Resources"][part]["Properties"]
        assert names == set(where["Environment"]["Variables"]) & read, part


def mapping(cell: str) -> dict[str, str]:
    """Twilio's words → the family's, read from a cell such as "`a`, `b` → `c`; `d`; `e` → `f` (notes)":
    words before an arrow become its target, words without one stay themselves; a word directly followed
    by another one (`campaign_status` `VERIFIED`) names the field, not a status."""
    words: dict[str, str] = {}
    for group in re.sub(r"\([^)]*\)", "", cell).split(";"):
        pending: list[str] = []
        for word, arrow, target in re.findall(r"`([\w-]+)`(?! `)|(→) `([\w-]+)`", group):
            if arrow:
                words |= dict.fromkeys(pending, target)
                pending = []
            else:
                pending.append(word)
        words |= {word: word for word in pending}
    return words


def test_the_reconciliation_table_maps_twilios_statuses_as_each_resource_does():
    from twilio_sink.reconcile.resources import RESOURCES

    section = text(ROOT / "docs" / "operations.md").split("## Reconciliation and backfill", 1)[1]
    rows = dict(re.findall(r"^\| `([\w-]+)` \(`\w+`\) \| [^|]+ \| ([^|]+) \| [^|]+ \|$", section, flags=re.MULTILINE))
    assert set(rows) == {family.name for family in RESOURCES}
    for family, resource in RESOURCES.items():
        cell = rows[family.name]
        if cell.startswith("the same, but no "):  # the row above, less the words named
            same = mapping(rows["comms-messages"])
            cell_words = mapping(cell.removeprefix("the same, but no "))
            documented = {twilio: word for twilio, word in same.items() if word not in cell_words}
        else:
            documented = mapping(cell.removeprefix("the same words: "))
        assert documented == resource.STATUSES, family.name

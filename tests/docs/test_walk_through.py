"""docs/families.md's "Adding a family" is complete: every step, done in a copy of the checkout, leaves the
tests it affects passing (a step the walk-through forgets shows up here as a failing test in the copy)."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from sink_dev.paths import ROOT

WALK_THROUGH = (ROOT / "docs" / "families.md").read_text().split("## Adding a family", 1)[1]
# What a new family touches: the sample and contract checks, the registry, the docs' tables, the
# families' own tests, the reconciler's list of families, and a sample through both doors.
AFFECTED = ["tests/unit", "tests/docs/test_docs.py", "tests/docs/test_generated.py",
            "tests/reconcile/test_template.py::test_every_family_is_reconciled_or_listed_as_not_reconcilable",
            "tests/integration/test_catalog.py"]


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", WALK_THROUGH, flags=re.S)


def copy_of_the_checkout(target: Path) -> Path:
    """The checkout's files as git sees them (committed or not, never ignored ones) under `target`."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def run(copy: Path, *args: str) -> subprocess.CompletedProcess:
    """Python in the copy: its own core and tools come first on the path, before the editable install."""
    env = os.environ | {"PYTHONPATH": os.pathsep.join(str(copy / p) for p in ("layers/core", "tools", "."))}
    return subprocess.run([sys.executable, *args], cwd=copy, env=env, capture_output=True, text=True, timeout=600)


def test_every_step_of_adding_a_family_leaves_the_affected_tests_passing(tmp_path):
    module, lifecycle_cases = blocks("python")
    sample, outcome = (json.loads(block) for block in blocks("json"))
    copy = copy_of_the_checkout(tmp_path / "checkout")
    core = copy / "layers" / "core" / "twilio_sink"

    # 1. the module
    (core / "families" / "notifications.py").write_text(module)
    # 2. one line in FAMILIES, and its import
    registry = (core / "registry.py").read_text()
    registry = re.sub(r"(from \.families\.\w+ import \w+\n)(?!from \.families)",
                      r"\1from .families.notifications import Notifications\n", registry, count=1)
    registry, added = re.subn(r"(FAMILIES: tuple\[Family, \.\.\.\] = \(\n(?:    .*\n)+?)\)", r"\1    Notifications(),\n)",
                              registry, count=1)
    assert added == 1
    (core / "registry.py").write_text(registry)
    # 3. the sample and its outcome
    samples_file = copy / "events" / "samples" / "cloudevents.json"
    samples_file.write_text(json.dumps([*json.loads(samples_file.read_text()), sample], indent=2) + "\n")
    expected_file = copy / "events" / "samples" / "expected.json"
    expected = json.loads(expected_file.read_text())
    expected["per_event"] |= outcome["per_event"]
    expected["final"] += outcome["final"]
    expected_file.write_text(json.dumps(expected, indent=1) + "\n")
    # 4. the generated events and table, and its precedence cases
    for command in ("events", "families"):
        done = run(copy, "-m", "sink_cli.main", command)
        assert done.returncode == 0, done.stdout + done.stderr
    with (copy / "tests" / "unit" / "test_precedence.py").open("a") as cases:
        cases.write("\n\n" + lifecycle_cases)
    # 5. listed as not reconcilable
    operations = copy / "docs" / "operations.md"
    text, listed = re.subn(r"\*\*Not reconcilable\*\*: ", "**Not reconcilable**: `notifications` (Notify), ",
                           operations.read_text(), count=1)
    assert listed == 1
    operations.write_text(text)

    # The copy runs its own code, and the family is there
    where = run(copy, "-c", "import twilio_sink.registry as r; print(r.__file__, len(r.FAMILIES))")
    assert where.stdout.split() == [str(core / "registry.py"), str(len(_families()) + 1)], where.stderr
    assert "| `notifications` | `notification` |" in (copy / "docs" / "families.md").read_text()
    # 6. the tests the new family affects pass
    tests = run(copy, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow", *AFFECTED)
    assert tests.returncode == 0, tests.stdout[-6000:] + tests.stderr[-2000:]
    assert "test_notifications_the_later_outcome_wins_in_any_order" in run(
        copy, "-m", "pytest", "--collect-only", "-q", "tests/unit/test_precedence.py").stdout


def _families() -> tuple:
    from twilio_sink.registry import FAMILIES

    return FAMILIES

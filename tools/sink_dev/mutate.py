"""`make mutate`: the mutation score of the rules, written to docs/generated/mutation.json and docs/testing.md.

    .venv-mutmut/bin/python -m sink_dev.mutate            # run mutmut, then write the results
    .venv-mutmut/bin/python -m sink_dev.mutate --children 1

mutmut 3 names a mutant by its module path relative to where it runs, and the core's package sits
under layers/core/, so the run happens in a workspace (.mutate/) holding `twilio_sink/` at its top
with copies of what the unit tests read. Only the rules are mutated; only the unit tests run (the
fast ones: each mutant runs the tests that reach its function). Not part of `make test`: too slow.
"""

import argparse
import datetime
import json
import platform
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from sink_dev.generated import update_block
from sink_dev.paths import ROOT

WORKSPACE = ROOT / ".mutate"
RESULTS = ROOT / "docs" / "generated" / "mutation.json"
DOC = ROOT / "docs" / "testing.md"
CORE = ROOT / "layers" / "core" / "twilio_sink"
# The rules: precedence, the families, the registry, the envelope and the time and JSON it parses,
# the signature check.
RULES = ["twilio_sink/precedence.py", "twilio_sink/families/*", "twilio_sink/registry.py",
         "twilio_sink/envelope.py", "twilio_sink/times.py", "twilio_sink/json_text.py", "twilio_sink/signature.py"]
TESTS = "tests/unit"
READ_BY_TESTS = ["tests", "tools", "functions", "events", "docs", "template.yaml"]
TARGET = 0.90
CONFIG = f"""\
[tool.pytest.ini_options]
pythonpath = [".", "tools"]
addopts = "-p no:cacheprovider"

[tool.mutmut]
source_paths = ["twilio_sink"]
only_mutate = {json.dumps(RULES)}
also_copy = {json.dumps(READ_BY_TESTS[1:])}
pytest_add_cli_args_test_selection = ["{TESTS}"]
"""
KILLED = {"killed", "timeout", "caught by type check", "segfault"}


def prepare() -> None:
    """A fresh workspace: mutmut caches results by source, so stale ones must never be reused."""
    shutil.rmtree(WORKSPACE, ignore_errors=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(CORE, WORKSPACE / "twilio_sink", ignore=ignore)
    for name in READ_BY_TESTS:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, WORKSPACE / name, ignore=ignore)
        else:
            shutil.copy2(source, WORKSPACE / name)
    (WORKSPACE / "pyproject.toml").write_text(CONFIG)


def run(children: int) -> None:
    mutmut = Path(sys.executable).with_name("mutmut")
    subprocess.run([str(mutmut), "run", "--max-children", str(children)], cwd=WORKSPACE, check=True)


def statuses() -> dict[str, str]:
    mutmut = Path(sys.executable).with_name("mutmut")
    out = subprocess.run([str(mutmut), "results", "--all", "true"], cwd=WORKSPACE, check=True,
                         capture_output=True, text=True).stdout
    return dict(re.findall(r"^\s*(\S+): (.+?)\s*$", out, flags=re.MULTILINE))


def diff(name: str) -> str:
    mutmut = Path(sys.executable).with_name("mutmut")
    out = subprocess.run([str(mutmut), "show", name], cwd=WORKSPACE, capture_output=True, text=True).stdout
    return "\n".join(line for line in out.splitlines() if re.match(r"^[-+](?![-+])", line))


def summarise(found: dict[str, str]) -> dict:
    counts = Counter(found.values())
    killed = sum(n for status, n in counts.items() if status in KILLED)
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "mutmut": _version(),
        "mutated": RULES,
        "tests": TESTS,
        "total": len(found),
        "killed": killed,
        "score": round(killed / len(found), 4) if found else 0.0,
        "target": TARGET,
        "by_status": dict(sorted(counts.items())),
        "survivors": [{"mutant": name, "status": status, "diff": diff(name)}
                      for name, status in sorted(found.items()) if status not in KILLED],
    }


def _version() -> str:
    from importlib.metadata import version

    return version("mutmut")


def render(results: dict) -> str:
    """The docs block: the score against the target, and where each survivor is."""
    verdict = "met" if results["score"] >= results["target"] else "**missed**"
    lines = [
        f"Last run: {results['date']}, Python {results['python']}, mutmut {results['mutmut']}, "
        f"tests `{results['tests']}`.",
        "",
        f"**{results['killed']} of {results['total']} mutants killed: {100 * results['score']:.1f} %** "
        f"(target ≥ {100 * results['target']:.0f} %: {verdict}). By status: "
        + ", ".join(f"{status} {count}" for status, count in results["by_status"].items()) + ".",
    ]
    if results["survivors"]:
        by_function = Counter(_function(s["mutant"]) for s in results["survivors"])
        lines += ["", "| function | surviving mutants |", "|---|---:|"]
        lines += [f"| `{name}` | {count} |" for name, count in sorted(by_function.items())]
    return "\n".join(lines)


def _function(mutant: str) -> str:
    return re.sub(r"__mutmut_\d+$", "", mutant).replace("xǁ", "").replace("ǁ", ".").replace(".x_", ".")


def write(results: dict) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    update_block(DOC, "mutation", render(results))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--children", type=int, default=2, help="mutants tested at once (the machine is shared)")
    parser.add_argument("--no-run", action="store_true", help="only rewrite the results from the last run")
    args = parser.parse_args(argv)
    if not args.no_run:
        prepare()
        run(args.children)
    results = summarise(statuses())
    write(results)
    print(render(results))
    return 0 if results["score"] >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())

"""The CloudWatch dashboard: `dashboard.json` is the one to read and edit; template.yaml carries a
compact copy in its `DashboardBody` (CloudFormation cannot read a local file). Run this module after
editing dashboard.json; the template tests fail while the two differ.

dashboard.json is the body of an `!Sub`: `${Name}` is a parameter or resource. A placeholder that must
be a JSON number in the dashboard is written as a string there and listed in NUMBERS.
"""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "dashboard.json"
TEMPLATE = ROOT / "template.yaml"
BODY_LINE = "      DashboardBody: !Sub "
NUMBERS = ("${IteratorAgeAlarmMilliseconds}",)


def compact_body(dashboard: Path = DASHBOARD) -> str:
    text = json.dumps(json.loads(dashboard.read_text()), separators=(",", ":"), ensure_ascii=False)
    for placeholder in NUMBERS:
        text = text.replace(f'"{placeholder}"', placeholder)
    return text


def rendered(template_text: str, body: str) -> str:
    """The template text with its DashboardBody line replaced by `body` (YAML single-quoted)."""
    lines = template_text.splitlines(keepends=True)
    (index,) = [i for i, line in enumerate(lines) if line.startswith(BODY_LINE)]
    quoted = "'" + body.replace("'", "''") + "'"
    lines[index] = f"{BODY_LINE}{quoted}\n"
    return "".join(lines)


def main(argv: list[str] | None = None) -> int:
    check = "--check" in (argv if argv is not None else sys.argv[1:])
    current = TEMPLATE.read_text()
    wanted = rendered(current, compact_body())
    if current == wanted:
        return 0
    if check:
        print("template.yaml's DashboardBody differs from dashboard.json: run python -m scripts.dashboard",
              file=sys.stderr)
        return 1
    TEMPLATE.write_text(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main())

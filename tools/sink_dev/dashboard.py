"""`twilio-sink dashboard`: copy dashboard.json into template.yaml's DashboardBody.

dashboard.json is the one to read and edit; the template carries a compact copy in its `DashboardBody`
(CloudFormation cannot read a local file). Run this after editing dashboard.json; the template tests
fail while the two differ.

dashboard.json is the body of an `!Sub`: `${Name}` is a parameter or resource. A placeholder that must
be a JSON number in the dashboard is written as a string there and listed in NUMBERS.
"""

import argparse
import json
import sys
from pathlib import Path

from sink_dev.paths import ROOT, TEMPLATE

DASHBOARD = ROOT / "dashboard.json"
BODY_LINE = "      DashboardBody: !Sub "
NUMBERS = ("${IteratorAgeAlarmMilliseconds}", "${DeliveryFailureAlarmPercent}")


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
    parser = argparse.ArgumentParser(prog="twilio-sink dashboard", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only compare: exit 1 if the template differs")
    args = parser.parse_args(argv)
    current = TEMPLATE.read_text()
    wanted = rendered(current, compact_body())
    if current == wanted:
        return 0
    if args.check:
        print("template.yaml's DashboardBody differs from dashboard.json: run twilio-sink dashboard", file=sys.stderr)
        return 1
    TEMPLATE.write_text(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main())

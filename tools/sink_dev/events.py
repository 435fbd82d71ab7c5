"""Generate the sample Lambda events under events/ from THE sample payloads.

    twilio-sink events           # (re)write events/kinesis/*.json and events/webhook/*.json
    twilio-sink events --check   # exit 1, listing what differs, instead of writing

Everything comes from `events/samples/cloudevents.json`, deterministically: no randomness, no clock.
Per sample, `events/kinesis/<name>.json` is a Lambda Kinesis event holding the CloudEvent as Twilio's
Kinesis sink writes it (`data` as a JSON-encoded string), and `events/webhook/<name>.json` is an API
Gateway HTTP API (payload 2.0) event holding a signed Twilio webhook delivery (a JSON array of
CloudEvents). `all.json` in each directory holds every sample, in the samples' order.

The builders are `sink_dev.samples`; this module only writes and checks the files.
"""

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from sink_dev.paths import EVENTS, ROOT
from sink_dev.samples import (
    FIRST_SEQUENCE_NUMBER,
    kinesis_event,
    load_samples,
    sample_names,
    webhook_body,
    webhook_event,
)

KINESIS_DIR = EVENTS / "kinesis"
WEBHOOK_DIR = EVENTS / "webhook"


def generated_files(samples: list[dict] | None = None) -> dict[Path, str]:
    """Every file this script owns, with the exact text it should hold."""
    samples = load_samples() if samples is None else samples
    files: dict[Path, str] = {}
    for index, (name, sample) in enumerate(zip(sample_names(samples), samples)):
        files[KINESIS_DIR / f"{name}.json"] = _pretty(kinesis_event([sample], FIRST_SEQUENCE_NUMBER + index))
        files[WEBHOOK_DIR / f"{name}.json"] = _pretty(webhook_event(webhook_body([sample])))
    files[KINESIS_DIR / "all.json"] = _pretty(kinesis_event(samples))
    files[WEBHOOK_DIR / "all.json"] = _pretty(webhook_event(webhook_body(samples)))
    return files


def stale_files(expected: dict[Path, str]) -> list[Path]:
    """JSON files in the generated directories that no sample produces any more."""
    present = [path for folder in (KINESIS_DIR, WEBHOOK_DIR) if folder.is_dir() for path in folder.glob("*.json")]
    return sorted(path for path in present if path not in expected)


def check(samples: list[dict] | None = None) -> list[str]:
    """What differs between events/ and what the samples generate (empty when up to date)."""
    expected = generated_files(samples)
    problems = []
    for path, text in expected.items():
        if not path.exists():
            problems.append(f"missing: {_rel(path)}")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"differs: {_rel(path)}")
    problems += [f"stale: {_rel(path)}" for path in stale_files(expected)]
    return problems


def write(samples: list[dict] | None = None) -> list[Path]:
    """Write every generated file, remove stale ones; returns the files whose content changed."""
    expected = generated_files(samples)
    changed = []
    for path, text in expected.items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    for path in stale_files(expected):
        path.unlink()
        changed.append(path)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="twilio-sink events", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 listing files that differ, write nothing")
    args = parser.parse_args(argv)
    if args.check:
        problems = check()
        for problem in problems:
            print(problem)
        if problems:
            print("events/ is out of date: run `twilio-sink events` (or `make events`)")
            return 1
        print("events/ is up to date")
        return 0
    changed = write()
    print(f"{len(changed)} file(s) written or removed under events/" if changed else "events/ already up to date")
    for path in changed:
        print(f"  {_rel(path)}")
    return 0


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())

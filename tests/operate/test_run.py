"""`make run` (= `twilio-sink run`) as a new user runs it: a real local stack in its own processes, the
samples through the stream and then again through the webhook, the printed results checked against
events/samples/expected.json.
"""

import json
import re
import subprocess
import sys

from sink_dev.paths import EVENTS, ROOT
from sink_dev.samples import load_samples
from twilio_sink.registry import FAMILIES


def test_make_run_prints_the_expected_table_notifications_and_no_dead_letters():
    done = subprocess.run([sys.executable, "-m", "sink_cli.main", "run"], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    final = json.loads((EVENTS / "samples" / "expected.json").read_text())["final"]
    table = out.split(f"Status table ({len(final)} entities):\n", 1)[1].split("\n\n", 1)[0]
    rows = {tuple(line.split()[:3]) for line in table.splitlines()[1:]}
    assert rows == {(state["entity"], state["id"], state["status"]) for state in final}
    # the stream spreads one entity's events over its shards, so how many were stale varies between
    # runs; but every entity's final status was announced, and nothing else was
    count, listing = re.search(r"Notifications published to SNS \((\d+)\):\n(.*?)\n\n", out, re.DOTALL).groups()
    notes = [re.match(r"\s*(\S+)\s+(\S+)\s+.*→ (\S+)$", line).groups() for line in listing.splitlines()]
    assert len(notes) == int(count) and len(final) <= len(notes) <= len(load_samples())
    assert {(state["entity"], state["id"], state["status"]) for state in final} <= set(notes)
    assert {(entity, entity_id) for entity, entity_id, _ in notes} == {(s["entity"], s["id"]) for s in final}
    # the webhook gets every event again: each answered 200 with nothing applied
    answers = re.findall(r"^  (\S+\.json) +(\d+) (\{.*\})$", out, flags=re.MULTILINE)
    assert len(answers) == len([p for p in (EVENTS / "webhook").glob("*.json") if p.name != "all.json"])
    for name, status, answer in answers:
        assert status == "200" and json.loads(answer)["applied"] == 0, name
    assert "Dead letters: 0" in out
    # then the reconciler, once, against the Twilio stand-in: every entity the events left unsettled is
    # asked about (as its own account: the samples have two) and corrected to what the stand-in says
    unsettled = int(re.search(r"→ reconciler: (\d+) entities left unsettled", out)[1])
    counts = json.loads(re.search(r"^  one run: (\{.*\})$", out, re.MULTILINE)[1])
    assert unsettled >= 1 and counts == {"checked": unsettled, "corrected": unsettled, "not_found": 0, "unreachable": 0}
    corrected, corrections = re.search(r"Corrections the reconciler published \((\d+)\):\n(.*?)\n\n", out, re.DOTALL).groups()
    assert int(corrected) == unsettled
    changes = notes + [re.match(r"\s*(\S+)\s+(\S+)\s+.*→ (\S+)$", line).groups() for line in corrections.splitlines()]
    # the delivery-health report counts each final status announced once (the events' and the
    # reconciler's), although every event arrived through both doors (the webhook's copies applied nothing)
    health = out.split("Delivery health, all accounts,", 1)[1]
    outcomes = re.search(r"Outcomes \(final statuses applied\):\n(.*?)\n\n", health, re.DOTALL).group(1)
    counted = sum(int(line.split()[-1]) for line in outcomes.splitlines())
    finals = {entity: set().union(*(f.final for f in FAMILIES if f.entity == entity)) for entity, _, _ in changes}
    assert counted == len([change for change in changes if change[2] in finals[change[0]]]) > 0
    codes = re.search(r"Error codes of undelivered and failed messages:\n(.*?)\n\n", health, re.DOTALL).group(1)
    failing = [change for change in changes if change[0] == "message" and change[2] in ("undelivered", "failed")]
    assert sum(int(line.split()[-1]) for line in codes.splitlines()) == len(failing)

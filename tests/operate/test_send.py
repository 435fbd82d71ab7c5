"""`twilio-sink send` and `twilio-sink status` against a served local stack, as docs/local.md shows them:
the samples through the webhook (and as a printed curl command, run), then onto the stream, then read
back with `status show` and `status list`.
"""

import json
import shlex
import subprocess

from sink_dev.paths import EVENTS
from sink_local import send
from sink_ops import status
from tests.operate.test_serve import served, show  # noqa: F401 - the fixture

SAMPLES = EVENTS / "samples" / "cloudevents.json"
FINAL = json.loads((EVENTS / "samples" / "expected.json").read_text())["final"]


def listed(state_file, capsys, *options) -> set[tuple[str, str, str]]:
    assert status.main(["--state-file", str(state_file), "list", *options]) == 0
    return {tuple(line.split()[:3]) for line in capsys.readouterr().out.splitlines()[2:]}


def test_send_through_both_doors_then_read_the_table_back(served, capsys, tmp_path):
    state, state_file, _ = served
    # the samples as one signed webhook delivery: every event applied, the table at its final states
    assert send.main(["--state-file", str(state_file), "webhook", str(SAMPLES)]) == 0
    out = capsys.readouterr().out
    assert " 200 " in out and json.loads(out.split(" 200 ", 1)[1])["applied"] == len(json.loads(SAMPLES.read_text()))
    assert listed(state_file, capsys) == {(s["entity"], s["id"], s["status"]) for s in FINAL}
    assert listed(state_file, capsys, "--entity", "phone_number") == {
        (s["entity"], s["id"], s["status"]) for s in FINAL if s["entity"] == "phone_number"}

    # --curl prints a command that, run as printed, is a valid delivery (duplicates now: nothing applied)
    assert send.main(["--state-file", str(state_file), "webhook", str(EVENTS / "webhook" / "message-queued.json"),
                      "--curl"]) == 0
    command = capsys.readouterr().out.strip()
    assert command.startswith("curl ") and "X-Twilio-Signature: " in command
    answer = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=60, check=True).stdout
    counts = json.loads(answer)
    assert counts["applied"] == 0 and counts["stale"] + counts["duplicate"] == 1 and counts["failed"] == 0

    # the same samples on the stream: one record each, all duplicates by now, the table unchanged
    assert send.main(["--state-file", str(state_file), "kinesis", str(SAMPLES)]) == 0
    assert capsys.readouterr().out.count(" shardId-") == len(json.loads(SAMPLES.read_text()))
    code, text = show(state_file, "message", "MM413175a99a98b0a98bf7c43d5a9738d3", capsys)
    assert code == 0 and text.startswith("message MM413175a99a98b0a98bf7c43d5a9738d3: read")
    assert status.main(["--state-file", str(state_file), "show", "brand", "BN-not-there"]) == 1

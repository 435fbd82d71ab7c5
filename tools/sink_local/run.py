"""`twilio-sink run`: start the local stack (`twilio-sink serve`), replay events/ through both doors, print, stop.

No AWS account is needed. The sample events go onto the local Kinesis stream (the consumer gets them
in Lambda-shaped batches), then the same events again as signed deliveries to the local webhook, one
per file in events/webhook/ (re-signed for the local URL: the signature covers the URL Twilio calls).
Then the reconciler, once, against a stand-in of Twilio's REST API (sink_local/twilio_api.py) that says
every entity the events left unsettled reached its final status: as if their thresholds had passed, it
asks about each and corrects it. Prints the status table the events left, the notifications subscribers
received, the reconciler's corrections, any dead letters, and the delivery health report
(`twilio-sink report`) over the functions' metrics: each outcome once, although every event arrived
through both doors.
"""

import argparse
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sink_dev.paths import EVENTS
from sink_dev.samples import load_samples
from sink_local import emf
from sink_local.send import post, put_records, signed_delivery
from sink_local.serve import CONSUMER, LocalServer
from sink_local.twilio_api import ACCOUNT, TwilioApi
from sink_ops import report
from sink_ops.status import states_table
from twilio_sink.sids import MESSAGE_SID
from twilio_sink.state import EntityState
from twilio_sink.store import StatusStore

CONSUMER_WAIT_SECONDS = 120
# moto's GetMetricData computes no percentiles: the local report shows what it can.
LOCAL_LATENCY_STATS = ("SampleCount", "Average", "Maximum")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="twilio-sink run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--verbose", action="store_true", help="print every webhook request and Kinesis batch")
    args = parser.parse_args(argv)
    say = print if args.verbose else (lambda line: print(line) if line.startswith("→") else None)
    # Ephemeral ports, no state file: a run never collides with a `twilio-sink serve` in another terminal.
    began = datetime.now(UTC) - timedelta(seconds=1)
    with LocalServer(port=0, aws_port=0, state_file=None, say=say, twilio_api_port=0) as server:
        state = server.describe()
        samples = load_samples()
        print(f"→ Kinesis: PutRecords of {len(samples)} sample events on {state['stream_name']}")
        put = put_records(state, samples)
        positions: dict[str, str] = {}
        for record in put:
            positions[record["ShardId"]] = max(positions.get(record["ShardId"], "0"), record["SequenceNumber"], key=int)
        deadline = time.monotonic() + CONSUMER_WAIT_SECONDS
        while not server.poller.done_with(positions):
            if time.monotonic() > deadline:
                print(f"error: the consumer did not finish within {CONSUMER_WAIT_SECONDS}s; see {state['logs']}",
                      file=sys.stderr)
                return 1
            time.sleep(0.2)
        print(f"  the stream consumer processed them ({len(positions)} shards)")

        print("→ webhook: the same events again, one signed delivery per file in events/webhook/")
        for path in sorted((EVENTS / "webhook").glob("*.json")):
            if path.name == "all.json":
                continue
            events = json.loads(json.loads(path.read_text())["body"])
            body, url, signature = signed_delivery(events, state["public_url"], state["auth_token"])
            status, answer = post(state["webhook_url"], url, body, signature)
            print(f"  {path.name:<48} {status} {answer}")

        # What the events made of the table and announced; the reconciler's corrections come after.
        states = StatusStore(server.stack.table_name, server.stack.ddb).states()
        notes = server.stack.notifications()
        corrections = reconcile(server)

        print(f"\nStatus table ({len(states)} entities):")
        print("  " + states_table(states).replace("\n", "\n  "))
        print(f"\nNotifications published to SNS ({len(notes)}):")
        for note in notes:
            print(f"  {note['entity']:<13} {note['id']:<36} {note['previous_status'] or '—'} → {note['status']}")
        print(f"\nCorrections the reconciler published ({len(corrections)}):")
        for note in corrections:
            print(f"  {note['entity']:<13} {note['id']:<36} {note['previous_status'] or '—'} → {note['status']}")
        letters = server.stack.dead_letters()
        print(f"\nDead letters: {len(letters)}")
        for letter in letters:
            print(f"  {letter['reason']}: {letter['detail']}")
        print("\n" + delivery_health(server, state, began))
        print("\n→ stopping the local stack")
    return 0


# What the stand-in says about an entity the events left unsettled: its family's final status.
FINAL = {"message": "delivered", "call": "completed", "brand": "APPROVED", "campaign": "VERIFIED",
         "tollfree_verification": "TWILIO_APPROVED"}


def reconcile(server: LocalServer) -> list[dict]:
    """Runs the reconciler once over every unsettled entity; the corrections it published."""
    stack, api = server.stack, server.twilio_api
    assert api is not None and server.reconciler is not None
    table = StatusStore(stack.table_name, stack.ddb)
    unsettled = [state for state in table.states() if state.check_after]
    print(f"→ reconciler: {len(unsettled)} entities left unsettled by their events; the Twilio stand-in "
          f"({api.base_url}) says each reached its final status")
    now = datetime.now(UTC)
    for state in unsettled:
        tell(api, state, now)
        # As if the family's threshold had passed: due now.
        table.reschedule_check(state.pk, state.version, "2000-01-01T00:00:00.000000Z")
    counts = server.reconciler.invoke({"source": "aws.events", "detail-type": "Scheduled Event"})
    print(f"  one run: {json.dumps(counts)}")
    return stack.notifications()


def tell(api: TwilioApi, state: EntityState, now: datetime) -> None:
    """Registers Twilio's (final) resource for an unsettled entity with the stand-in."""
    entity, sid = state.winner.entity, state.winner.id
    data = json.loads(state.winner.data)
    account = state.account_sid or ACCOUNT
    status = FINAL[entity]
    if entity == "message":
        sid = sid if MESSAGE_SID.fullmatch(sid) else str(data.get("downstream_id") or "")
        api.message(sid, status, now, account=account)
    elif entity == "call":
        api.call(sid, status, now, account=account)
    elif entity == "brand":
        api.brand(sid, status, now, account=account)
    elif entity == "campaign":  # Twilio's US A2P resource of the campaign's messaging service (a QE…)
        api.campaign("QE" + sid[2:], data.get("messagingservicesid", ""), status, now, account=account,
                     tcr_id=data.get("externalcampaignid") or "CDEMO01", brand=data.get("brandsid") or "")
    elif entity == "tollfree_verification":
        api.tollfree_verification(sid, status, now, account=account)


def delivery_health(server: LocalServer, state: dict, began: datetime) -> str:
    """The report over this run's metrics: the functions' EMF lines, put into the stand-in's CloudWatch
    as CloudWatch Logs would put them (the log files also hold earlier runs: only this run's count)."""
    since = began.timestamp() * 1000
    records = [record for record in emf.records_in(Path(path) for path in state["logs"].values())
               if record["_aws"]["Timestamp"] >= since]
    cloudwatch = server.stack.client("cloudwatch")
    emf.put(cloudwatch, records)
    namespace = server.stack.function_environment(CONSUMER)["POWERTOOLS_METRICS_NAMESPACE"]
    figures = report.gather(cloudwatch, namespace, began, datetime.now(UTC), None, LOCAL_LATENCY_STATS)
    return report.render(figures)


if __name__ == "__main__":
    sys.exit(main())

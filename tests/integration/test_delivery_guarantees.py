"""Property test of the delivery guarantees under duplicates, any order, concurrency and faults.

Hypothesis generates event histories: several entities' lifecycles, each event delivered 1-3 times,
shuffled, split into Kinesis batches and webhook bodies, with poison of every cheap kind mixed in.
Then a fault plan over the numbered AWS calls of the core (tests/reliability/harness.py): throttling,
5xx, timeouts, and crashes (an exception, out of memory or a Lambda timeout: the same to the caller)
before or after any call took effect - so at every point between receiving and answering; and
cut-ins, where another delivery's attempt runs entirely between two calls of this one (two stream
batches at once, ParallelizationFactor > 1, or the webhook and the stream together).

The real handlers run against moto (records really written to a Kinesis stream) while the harness
plays Lambda (retry from the lowest failed record, bisect on a crash, OnFailure metadata after the
retries are exhausted) and Twilio (the whole body again on 5xx/429/no answer, never after 200 or
another 4xx). Afterwards `redrive` turns the OnFailure metadata back into records. A simple model
then checks every guarantee:
1. every entity's final status is contract 2's winner, and every event is in its history;
2. every change a state write made durable was published at least once, and no claim is
   left unpublished;
3. with no fault: each change published exactly once, in precedence order, and no claim left unpublished;
4. every poison record delivered is a dead letter with its reason; no good event is one;
5. the delivery-health outcomes count each final change published at least once and at most as
   often as it was published; with no fault, exactly once.

GUARANTEE_EXAMPLES sets the number of histories (default 500, derandomized: the same in CI); the test prints
how many were fault-free and how many faulted, and fails when either is under MIN_SHARE of them.
"""

import os
from collections import Counter

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sink_local.stack import Stack
from sink_ops import redrive
from tests.conftest import SHOWN
from tests.reliability.harness import (
    FAULT_KINDS,
    STREAM_NAME,
    StreamDelivery,
    WebhookDelivery,
    b64,
    put_on_stream,
    redrive_args,
    run_all,
    world,  # noqa: F401 - the fixture
)
from tests.support import factories as f
from tests.support.expectations import emitted, metric_totals, unpublished_claims
from twilio_sink.registry import family_of

LIFECYCLE_RANK = {"queued": 0, "sent": 1, "delivered": 2, "undelivered": 2, "failed": 2, "read": 3}
BRAND_KINDS = {"brand-unverified": "unverified", "brand-registered": "registered", "brand-failure": "failed"}
# Poison kinds: (name, reason, deliverable through the webhook). Oversized is left to the targeted tests (slow).
POISON_KINDS = [("not_utf8", "undecodable", False), ("not_json", "not_json", False),
                ("foreign_account", "foreign_account", True), ("invalid_payload", "invalid_payload", True),
                ("not_cloudevent", "not_cloudevent", True)]
EXAMPLES = int(os.environ.get("GUARANTEE_EXAMPLES", "500"))
MIN_SHARE = 0.2  # of EXAMPLES, for fault-free and for faulted histories each


# ---- the model: precedence computed independently of the code under test ---------------------

def precedence(event: dict) -> tuple:
    kind = event["type"].rsplit(".", 1)[-1]
    if event["type"].startswith(f.MESSAGE):
        return (int(event["data"]["attempt"]), LIFECYCLE_RANK[kind], event["time"], event["id"])
    return (event["time"], event["data"]["updateddate"], 0, event["id"])


def entity_key(event: dict) -> str:
    data = event["data"]
    return f"message#{data['message_id']}" if "message_id" in data else f"brand#{data['brandsid']}"


def status_of(event: dict) -> str:
    kind = event["type"].rsplit(".", 1)[-1]
    return kind if event["type"].startswith(f.MESSAGE) else BRAND_KINDS[kind]


def poison(kind: str, number: int) -> tuple[dict | bytes, str, str]:
    """A poison item, its reason, and a text its dead letter's `raw` must contain."""
    marker = f"POISON{number}"
    if kind == "not_utf8":
        raw = b"\x80" + marker.encode()
        return raw, "undecodable", b64(raw)
    if kind == "not_json":
        return b"{" + marker.encode(), "not_json", marker
    if kind == "foreign_account":
        event = f.message("queued", marker=marker) | {"source": f"/2010-04-01/Accounts/AC{'e' * 32}/Messages/x"}
        return event, "foreign_account", marker
    if kind == "invalid_payload":
        return f.message("queued", message_id="", marker=marker), "invalid_payload", marker
    return {"marker": marker}, "not_cloudevent", marker


# ---- strategies --------------------------------------------------------------------------------

@st.composite
def events(draw):
    out = []
    for n in range(draw(st.integers(1, 2))):
        for status in draw(st.lists(st.sampled_from(sorted(LIFECYCLE_RANK)), min_size=1, max_size=4, unique=True)):
            out.append(f.message(status, message_id=f"MM{n}", attempt=str(draw(st.integers(1, 2))),
                                 seconds=draw(st.integers(0, 3))))
    for kind in draw(st.lists(st.sampled_from(sorted(BRAND_KINDS)), max_size=3, unique=True)):
        out.append(f.brand(kind, seconds=draw(st.integers(0, 3)), updateddate=draw(st.integers(0, 2))))
    return out


@st.composite
def histories(draw):
    originals = draw(events())
    copies = [e for e in originals for _ in range(draw(st.integers(1, 3)))]
    kinds = draw(st.lists(st.sampled_from([k for k, _, _ in POISON_KINDS]), max_size=2))
    poisons = [poison(kind, n) for n, kind in enumerate(kinds)]
    arrivals = draw(st.permutations(copies + [item for item, _, _ in poisons]))
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(arrivals) - 1)), max_size=3)))
    parts = [arrivals[a:b] for a, b in zip([0, *cuts], [*cuts, len(arrivals)]) if arrivals[a:b]]
    sinks = [draw(st.sampled_from(["kinesis", "webhook"])) for _ in parts]
    # Call numbers stay within what a history makes (about 5-25 calls), crashes weighted up: every
    # crash point should be hit in a few percent of the histories.
    kinds = st.sampled_from(FAULT_KINDS + ["crash_before", "crash_after"] * 2)
    faults = draw(st.dictionaries(st.integers(0, 14), kinds, max_size=3))
    # A cut-in: delivery j starts right before/after call k (of whichever delivery makes it).
    cut_ins = draw(st.dictionaries(st.integers(0, 10), st.tuples(st.sampled_from(["before", "after"]),
                                                                 st.integers(0, 3)), max_size=2))
    return originals, list(zip(sinks, parts)), poisons, faults, cut_ins


def test_guarantees_hold_for_any_history(world, capsys, record_property):
    # Exactly-once is only checked on fault-free histories and the rest only means something under
    # faults: the test says how many of each it ran, and fails when either kind is too rare.
    tally = Counter()

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                     HealthCheck.data_too_large])
    @given(history=histories())
    def one_history(history):
        tally["faulted" if run_history(world, history, capsys) else "fault-free"] += 1

    one_history()
    # shown in every run, not only on failure (tests/conftest.py prints it at the end)
    record_property(SHOWN, f"histories: {tally['fault-free']} fault-free (exactly once checked), {tally['faulted']} faulted")
    minimum = MIN_SHARE * EXAMPLES
    assert tally["fault-free"] >= minimum and tally["faulted"] >= minimum, (
        f"fewer than {minimum:.0f} histories of a kind: {dict(tally)}")


def run_history(world, history, capsys) -> bool:
    """Deliver one history with its faults, redrive, check every guarantee; whether a fault occurred."""
    originals, parts, poisons, fault_plan, cut_plan = history
    world.reset()
    capsys.readouterr()
    deliveries = []
    delivered_poison = []
    for sink, items in parts:
        if sink == "kinesis":
            records = put_on_stream(world.kinesis, STREAM_NAME, items)
            deliveries.append(StreamDelivery(world.consumer, world.context, records, world.send_on_failure))
            delivered_poison += [p for p in poisons if any(p[0] is item for item in items)]
        else:
            body = [item for item in items if isinstance(item, dict)]  # raw bytes cannot sit in a JSON array
            if body:
                deliveries.append(WebhookDelivery(world.webhook, world.context, body))
                delivered_poison += [p for p in poisons if any(p[0] is item for item in body)]
    cut_ins = {call: (when, deliveries[j % len(deliveries)]) for call, (when, j) in cut_plan.items()}
    world.faults.reset(fault_plan, cut_ins)

    run_all(world.faults, deliveries)
    world.faults.active = False
    exhausted = sum(getattr(d, "exhausted", 0) for d in deliveries)
    args = redrive_args()
    summary = redrive.redrive(world.resources, args, out=open(os.devnull, "w"))  # noqa: SIM115
    assert summary.kept == 0 and summary.messages == exhausted, "redrive left stream failures behind"

    # Twilio sends an event again only after a failed or timed-out request: two webhook requests with
    # one event at once mean the first timed out (a fault), and may both publish it.
    resent = any(isinstance(host, WebhookDelivery) and isinstance(guest, WebhookDelivery)
                 and {e.get("id") for e in host.events} & {e.get("id") for e in guest.events}
                 for host, guest in world.faults.overlaps)
    faulty = bool(world.faults.fired) or exhausted > 0 or resent
    label_coverage(world.faults, exhausted, faulty)
    notes = world.stack.notifications()
    check(originals, ScannedOnce(world.stack), notes, delivered_poison, world.applied, faulty,
          concurrent=bool(world.faults.overlaps))
    check_outcomes(notes, emitted(capsys), faulty)
    return faulty


def label_coverage(faults, exhausted, faulty) -> None:
    """What each history exercised (pytest --hypothesis-show-statistics prints the shares)."""
    for fired in sorted(set(faults.fired)):
        event(fired.split(" on ")[0] if fired.split()[0] in ("throttle", "server_error", "timeout") else fired)
    for host, guest in faults.overlaps:
        event("overlap: " + " inside ".join(type(d).__name__ for d in (guest, host)))
    if exhausted:
        event("retries exhausted: OnFailure, then redrive")
    if not faulty:
        event("fault-free (exactly once checked)")


class ScannedOnce:
    """The stack's table readers over one scan: the checks read the table as it is after the history
    many times (states, each entity's history, the claims), and each scan of moto's table costs more
    than most histories' deliveries."""

    def __init__(self, stack: Stack):
        self._items = stack.items()
        self.dead_letters = stack.dead_letters  # a queue, drained once

    def items(self) -> list[dict]:
        return self._items

    states = Stack.states
    history = Stack.history


def check(originals, stack, notes, delivered_poison, applied, faulty, concurrent):
    states, letters = stack.states(), stack.dead_letters()
    by_entity: dict[str, list[dict]] = {}
    for original in originals:
        by_entity.setdefault(entity_key(original), []).append(original)
    # 1. the final status is the model's winner, whatever the interleaving; every event is kept
    assert set(states) == set(by_entity)
    for pk, events_of_entity in by_entity.items():
        winner = max(events_of_entity, key=precedence)
        assert (states[pk]["event_id"], states[pk]["status"]) == (winner["id"], status_of(winner)), pk
        history = {item["event_id"] for item in stack.history(pk)}
        assert history == {e["id"] for e in events_of_entity}, pk
    # 2. every durable change was published at least once; no claim is stuck unpublished
    published = [n["event_id"] for n in notes]
    assert set(applied) <= set(published), "an applied change was never published"
    for pk, claims in unpublished_claims(stack).items():
        stuck = claims - set(published)
        assert not stuck, f"{pk}: claims never published: {stuck}"
        assert claims == set() or faulty, pk
    # 3. without faults: each change exactly once; in precedence order per entity unless two invocations
    #    overlapped (each publishes its own changes in order; SNS keeps no order between publishers)
    if not faulty:
        assert Counter(published) == Counter(applied), "a notification was published twice or without a change"
    if not faulty and not concurrent:
        originals_by_id = {e["id"]: e for e in originals}
        for pk in by_entity:
            keys = [precedence(originals_by_id[n["event_id"]]) for n in notes if f"{n['entity']}#{n['id']}" == pk]
            assert keys == sorted(keys), pk
    # 4. every poison record delivered is a dead letter with its reason (retries may send one twice)
    for _, reason, marker in delivered_poison:
        assert any(letter["reason"] == reason and marker in letter["raw"] for letter in letters), (reason, marker)
    good_ids = {e["id"] for e in originals}
    assert not [letter for letter in letters if letter.get("event_id") in good_ids], "a good event was dead-lettered"


def check_outcomes(notes: list[dict], records: list[dict], faulty: bool) -> None:
    """5. Outcomes are counted by the run that publishes: once per final change, whatever the retries.

    A run that crashes between SNS accepting a notification and printing its count leaves the count
    to the retry that publishes again, so under faults a change may be published more often than
    counted, never less than once.
    """
    counted = Counter({dict(key)["status"] + "|" + dict(key)["family"]: n
                       for key, n in metric_totals(records, "Outcomes").items() if "account" not in dict(key)})
    final = [n for n in notes if n["status"] in family_of(n["event_type"]).final]
    published = Counter(f"{n['status']}|{family_of(n['event_type']).name}" for n in final)
    distinct = Counter(f"{n['status']}|{family_of(n['event_type']).name}" for n in {n["event_id"]: n for n in final}.values())
    if not faulty:
        assert counted == published == distinct, "an outcome was counted other than once"
    for outcome in counted.keys() | published.keys():
        assert distinct[outcome] <= counted[outcome] <= published[outcome], (outcome, counted, published)

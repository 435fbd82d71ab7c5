"""`twilio-sink backfill`: bring the messages and calls of a time window (an outage) to what Twilio's REST API says.

For every account with an API key in the stack's TwilioApiKeysSecret (or the one given), lists the
messages sent and the calls started in [--since, --until) from Twilio's REST API and, for each whose
stored status differs or that the sink never heard of, applies Twilio's status through the core
pipeline, as the scheduled reconciler does: a synthetic event (history source `backfill`, time =
Twilio's date_updated) that never regresses what events moved further, published once like any
change. `--dry-run` lists what would change and writes nothing.
"""

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from tqdm import tqdm

from sink_ops import locate, recovery
from twilio_sink import aws
from twilio_sink.envelope import to_cloudevent
from twilio_sink.families.base import Family
from twilio_sink.families.calls import Calls
from twilio_sink.families.messages import Messages
from twilio_sink.observability import metrics
from twilio_sink.precedence import Change, plan
from twilio_sink.reconcile.client import LIST_PAGE_SIZE, Twilio, Unreachable, pages, parse_api_keys
from twilio_sink.reconcile.corrections import apply, synthetic_event
from twilio_sink.reconcile.resources import resource_of
from twilio_sink.registry import family_of, route
from twilio_sink.store import StatusStore

# Corrections applied together: one pipeline batch.
BATCH = 100
# Twilio's requests may take their time, but a backfill is not bounded by a Lambda timeout.
NO_DEADLINE_SECONDS = 7 * 24 * 3600


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 time: {text!r}") from None
    return moment.replace(tzinfo=moment.tzinfo or UTC).astimezone(UTC)


def list_messages(twilio: Twilio, account_sid: str, since: datetime, until: datetime,
                  deadline: float) -> Iterator[list[Any]]:
    """Every Message resource of the account sent in [since, until), a page at a time.

    Twilio filters `DateSent` by whole GMT days (`DateSent>`: on or after a day, `DateSent<`: on or
    before one): the listing asks for every day the window touches, once, and keeps what was sent in it.
    """
    client = twilio.client(account_sid)
    first, last = since.date().isoformat(), (until - timedelta(microseconds=1)).date().isoformat()
    listed = pages(twilio, lambda: client.messages.page(date_sent_after=first, date_sent_before=last,
                                                         page_size=LIST_PAGE_SIZE), deadline)
    return ([message for message in page if message.date_sent and since <= message.date_sent < until]
            for page in listed)


def list_calls(twilio: Twilio, account_sid: str, since: datetime, until: datetime,
               deadline: float) -> Iterator[list[Any]]:
    """Every Call resource of the account started in [since, until), a page at a time (a call still
    queued has no start time yet: the reconciler asks about it).

    Twilio filters `StartTime` by GMT days too (`StartTime>`: on or after a day, `StartTime<`: before
    one): the days the window touches, kept to the calls started in it.
    """
    client = twilio.client(account_sid)
    first = since.date().isoformat()
    after_last = ((until - timedelta(microseconds=1)).date() + timedelta(days=1)).isoformat()
    listed = pages(twilio, lambda: client.calls.page(start_time_after=first, start_time_before=after_last,
                                                      page_size=LIST_PAGE_SIZE), deadline)
    return ([call for call in page if call.start_time and since <= call.start_time < until] for page in listed)


@dataclass(frozen=True)
class Listing:
    """What backfill lists for one entity: Twilio's listing, and the family and payload of an entity
    the sink never heard of."""

    pages: Callable[[Twilio, str, datetime, datetime, float], Iterator[list[Any]]]
    family: Family
    payload: Callable[[str, str], dict[str, Any]]  # (sid, account) -> the new entity's stored payload

    @property
    def entity(self) -> str:
        return self.family.entity


LISTINGS = (
    Listing(list_messages, Messages(), lambda sid, account: {"message_id": sid, "account_sid": account}),
    Listing(list_calls, Calls(), lambda sid, account: {"sid": sid}),
)


def backfill_window(twilio: Twilio, store: StatusStore, listing: Listing, account_sid: str, since: datetime,
                    until: datetime, deadline: float) -> Iterator[tuple[str, dict[str, Any] | None]]:
    """Every entity of the listing in [since, until): its pk, and the synthetic event that brings it
    to Twilio's status when the stored one differs or the sink never heard of it (else None).
    """
    for page in listing.pages(twilio, account_sid, since, until, deadline):
        stored = store.load_states([f"{listing.entity}#{answer.sid}" for answer in page])
        for answer in page:
            pk = f"{listing.entity}#{answer.sid}"
            state = stored.get(pk)
            # An entity keeps the family (and payload) that wrote it; one the sink never heard of takes the listing's.
            family = family_of(state.winner.event_type) if state else listing.family
            resource = resource_of(family)
            # None: a family with nothing to reconcile (an inbound message is `received` from its first event).
            truth = resource.truth(answer) if resource else None
            if not resource or not truth or not truth.status or (state and state.status == truth.status):
                yield pk, None
                continue
            data = json.loads(state.winner.data) if state else listing.payload(answer.sid, account_sid)
            yield pk, synthetic_event(resource, answer.sid, data, truth)


def preview(store: StatusStore, events: list[dict[str, Any]]) -> list[tuple[Change, str | None]]:
    """What applying `events` would change, against the stored states, writing nothing (a dry run)."""
    changes: dict[str, list[Change]] = {}
    for event in events:
        change = replace(route(to_cloudevent(event)), corrects=True)
        changes.setdefault(change.pk, []).append(change)
    stored = store.load_states(changes)
    return [applied for pk, group in changes.items() for applied in plan(stored.get(pk), group).applied]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="twilio-sink backfill", description=__doc__.split("\n\n")[1].replace("\n", " "),
        epilog="Exit status: 0 when every message and call of the window is as Twilio says (or would be, in a dry run), "
               "1 when Twilio or AWS failed for some, 2 on a usage error.")
    recovery.add_resource_options(parser)
    parser.add_argument("--api-keys-secret-arn", help="the stack's TwilioApiKeysSecretArn (default: from --stack)")
    parser.add_argument("--since", type=_moment, required=True, help="start of the window, ISO-8601 (UTC if no zone)")
    parser.add_argument("--until", type=_moment, default=None, help="end of the window, excluded (default: now)")
    parser.add_argument("--account", action="append", default=[],
                        help="only this account SID (repeatable; default: every account of the secret)")
    parser.add_argument("--twilio-api-base-url", default="",
                        help="ask this stand-in of Twilio's REST API instead of Twilio (local runs and tests; "
                             "https://<product>.twilio.com/<path> becomes <URL>/<product>/<path>)")
    parser.add_argument("--dry-run", action="store_true", help="list what would change; write and publish nothing")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    until = args.until or datetime.now(UTC)
    if args.since >= until:
        print("backfill: --since must be before --until", file=sys.stderr)
        return 2
    try:
        resources = recovery.resolve(args, ("table_name",) if args.dry_run else
                                     ("table_name", "topic_arn", "dead_letter_queue_url", "history_retention_days"))
        secret_arn = args.api_keys_secret_arn or (locate.outputs(args.stack).get("TwilioApiKeysSecretArn")
                                                  if args.stack else None)
    except (recovery.UsageError, locate.StackNotFound) as error:
        print(f"backfill: {error}", file=sys.stderr)
        return 2
    if not secret_arn:
        print("backfill: unknown API keys secret: give --stack or --api-keys-secret-arn", file=sys.stderr)
        return 2
    try:
        keys = parse_api_keys(aws.client("secretsmanager").get_secret_value(SecretId=secret_arn)["SecretString"])
    except aws.AWS_ERRORS as error:
        print(f"backfill: cannot read the API keys secret: {error}", file=sys.stderr)
        return 1
    accounts = args.account or sorted(keys)
    if not accounts:
        print("backfill: the API keys secret holds no account (see TwilioApiKeysSecret's description)", file=sys.stderr)
        return 1
    with recovery.quiet_core():
        return _backfill(resources, Twilio(keys, base_url=args.twilio_api_base_url), accounts, args.since, until, args.dry_run)


def _backfill(resources: recovery.Resources, twilio: Twilio, accounts: list[str], since: datetime, until: datetime,
              dry_run: bool) -> int:
    store = StatusStore(resources.table_name, aws.client("dynamodb"))
    core = None if dry_run else recovery.pipeline(resources)
    deadline = time.monotonic() + NO_DEADLINE_SECONDS
    listed: Counter = Counter()
    changed = failed = 0
    print(f"Backfilling messages sent and calls started from {since:%Y-%m-%dT%H:%M:%SZ} to {until:%Y-%m-%dT%H:%M:%SZ} "
          f"({'dry run: nothing is written' if dry_run else 'applying'})")
    # disable=None: the bar shows on a terminal only, so logs and tests read the report lines alone.
    bar = tqdm(unit="entity", file=sys.stderr, disable=None, leave=False)
    for account in accounts:
        events: list[dict] = []
        # Each listing on its own: Twilio failing for the calls leaves the messages' corrections to apply.
        for listing in LISTINGS:
            try:
                for _, event in backfill_window(twilio, store, listing, account, since, until, deadline):
                    listed[listing.entity] += 1
                    bar.update()
                    if event:
                        events.append(event)
            except Unreachable as error:
                print(f"  {account}: Twilio did not answer for the {listing.entity}s ({error}); the window is "
                      "incomplete", file=sys.stderr)
                failed += 1
            except aws.AWS_ERRORS as error:
                print(f"  {account}: AWS error reading the table ({error})", file=sys.stderr)
                failed += 1
        for start in range(0, len(events), BATCH):
            batch = events[start:start + BATCH]
            if dry_run:
                for change, previous in preview(store, batch):
                    print(f"  would change {change.pk}: {previous or '(none)'} -> {change.status}")
                    changed += 1
                continue
            try:
                outcome = apply(core, batch, "backfill")
                metrics.clear_metrics()  # outside Lambda nothing ships them to CloudWatch
            except aws.AWS_ERRORS as error:
                print(f"  AWS error applying corrections ({error})", file=sys.stderr)
                failed += len(batch)
                continue
            changed += outcome.counts["applied"]
            failed += len(outcome.failed) + len(outcome.dead_letters)
    bar.close()
    verb = "would change" if dry_run else "changed"
    print(f"Done: {listed['message']} message(s) and {listed['call']} call(s) listed, {changed} {verb}, "
          f"{failed} failed.")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

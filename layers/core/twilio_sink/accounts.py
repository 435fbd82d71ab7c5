"""Which Twilio account an event belongs to, and whether this stack accepts it.

Anyone who learns the stream-writer role and its external id, or who holds a Twilio account, can
make Twilio deliver *their* events to this stack: the signature and the role prove only that Twilio
sent them. So every event must name one of the accepted accounts (`TWILIO_ACCOUNT_SIDS`); an event
naming another account, two different accounts, or none at all is a dead letter, never applied.

The account is read from the envelope's `source` (`/2010-04-01/Accounts/AC…/Messages/…`) or the
payload's account field; the families will each declare theirs (issue 11), until then the field
names Twilio uses across the catalog are listed here.
"""

import re
from collections.abc import Set
from typing import Any

from .envelope import CloudEvent, Poison, PoisonReason
from .observability import MetricUnit, metrics

ACCOUNT_SID = re.compile(r"AC[0-9a-f]{32}")
_SOURCE_ACCOUNT = re.compile(r"/Accounts/(AC[0-9a-f]{32})(?:/|$)")
# Communications API: account_sid; A2P: accountsid; Programmable Messaging, Voice, Verify: accountSid.
PAYLOAD_ACCOUNT_FIELDS = ("account_sid", "accountsid", "accountSid", "AccountSid")
# Twilio's sink test event names the account by its `id` (and `source` is just "Sink").
SINK_TEST_TYPE = "com.twilio.eventstreams.test-event"


def accounts_named(event: CloudEvent) -> set[str]:
    """Every account the event names (normally one; none or several make it foreign)."""
    named: set[str] = set()
    found = _SOURCE_ACCOUNT.search(event.source)
    if found:
        named.add(found.group(1))
    for name in PAYLOAD_ACCOUNT_FIELDS:
        value: Any = event.data.get(name)
        if value is not None:
            # A field that is there but is no SID cannot vouch for anything: count it as a different account.
            named.add(value if isinstance(value, str) and ACCOUNT_SID.fullmatch(value) else "(not an account SID)")
    if event.type == SINK_TEST_TYPE and ACCOUNT_SID.fullmatch(event.id):
        named.add(event.id)
    return named


def check_account(event: CloudEvent, accepted: Set[str]) -> None:
    """Raise `Poison` (foreign_account) unless the event names exactly one account, an accepted one."""
    named = accounts_named(event)
    if len(named) == 1 and named <= accepted:
        return
    metrics.add_metric(name="ForeignAccountEvents", unit=MetricUnit.Count, value=1)
    # The SIDs are not repeated: the dead letter's raw event holds them, and logs should not.
    if not named:
        detail = "the event names no account (source or account field)"
    elif len(named) > 1:
        detail = "the event's source and payload name different accounts"
    else:
        detail = "the event's account is not one this stack accepts (TwilioAccountSids)"
    raise Poison(PoisonReason.FOREIGN_ACCOUNT, detail)


def parse_account_sids(text: str) -> frozenset[str]:
    """The comma-separated SIDs of the template's TwilioAccountSids parameter; anything else fails."""
    sids = frozenset(part.strip() for part in text.split(",") if part.strip())
    wrong = [sid for sid in sids if not ACCOUNT_SID.fullmatch(sid)]
    if wrong:
        raise ValueError(f"{len(wrong)} value(s) are not account SIDs (AC followed by 32 lowercase hex digits)")
    return sids

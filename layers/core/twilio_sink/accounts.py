"""Whether this stack accepts the Twilio account an event belongs to.

Anyone who learns the stream-writer role and its external id, or who holds a Twilio account, can
make Twilio deliver *their* events to this stack: the signature and the role prove only that Twilio
sent them. So every event must name one of the accepted accounts (`TWILIO_ACCOUNT_SIDS`); an event
naming another account, two different accounts, or none at all is a dead letter, never applied.
Where an event names its account is its family's to say (`Family.accounts_named`): the state item
records the account from the same reading.
"""

from collections.abc import Sequence, Set

from .envelope import Poison, PoisonReason
from .families.base import ACCOUNT_SID
from .observability import MetricUnit, metrics


def check_account(named: Sequence[str], accepted: Set[str]) -> None:
    """Raise `Poison` (foreign_account) unless the accounts an event names are one, an accepted one."""
    if len(set(named)) == 1 and named[0] in accepted:
        return
    metrics.add_metric(name="ForeignAccountEvents", unit=MetricUnit.Count, value=1)
    # The SIDs are not repeated: the dead letter's raw event holds them, and logs should not.
    if not named:
        detail = "the event names no account (source or account field)"
    elif len(set(named)) > 1:
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

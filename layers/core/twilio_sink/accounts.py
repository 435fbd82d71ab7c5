"""Whose events this stack accepts, and whose account an event belongs to.

Anyone who learns the stream-writer role and its external id, or who holds a Twilio account, can
make Twilio deliver *their* events to this stack: the signature and the role prove only that Twilio
sent them. So an event that names an account not accepted (`TWILIO_ACCOUNT_SIDS`), or two different
accounts, is a dead letter, never applied. An event that names none is not foreign (tolerant reader:
several of Twilio's payloads and sources carry no account): it belongs to the account the door vouches
for — on the webhook the account whose token verified the delivery, on Kinesis the only accepted
account — unless the operator chose to refuse such stream events.
Where an event names its account is its family's to say (`Family.accounts_named`): the state item
records the account from the same reading.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from .observability import MetricUnit, metrics
from .poison import Poison, PoisonReason
from .sids import NOT_AN_ACCOUNT_SID


@dataclass(frozen=True)
class AccountRule:
    """What one door accepts: the accounts an event may name, and whose an event naming none is."""

    accepted: frozenset[str]
    # The account an event naming none belongs to; None: it is applied with no account recorded.
    unnamed_owner: str | None
    refuse_unnamed: bool = False  # the strict stream setting: an event naming no account is foreign

    @classmethod
    def webhook(cls, accepted: Sequence[str], signed_by: str | None) -> "AccountRule":
        """A delivery signed with one subaccount's own token carries only that account's events; one
        signed with the main token (`auth_token`, the first of `accepted`) those of every accepted account."""
        if signed_by is not None:
            return cls(frozenset(accepted) & {signed_by}, signed_by)
        return cls(frozenset(accepted), accepted[0])

    @classmethod
    def stream(cls, accepted: Sequence[str], events_without_account: str = "accept") -> "AccountRule":
        """Only Twilio, through the role with the secret external id, writes the stream: an event naming no
        account is ours; whose is known only when one account is accepted."""
        owner = accepted[0] if len(accepted) == 1 else None
        return cls(frozenset(accepted), owner, refuse_unnamed=events_without_account == "refuse")

    def owner(self, named: Sequence[str]) -> str | None:
        """The account the event belongs to; raises `Poison` (foreign_account) when it is not ours."""
        sids = set(named) - {NOT_AN_ACCOUNT_SID}
        if not named:
            if self.refuse_unnamed:
                _refuse("the event names no account (source or account field), and this stack refuses such "
                        "stream events (StreamEventsWithoutAccount=refuse)")
            if self.unnamed_owner is not None and self.unnamed_owner not in self.accepted:
                _refuse("the event names no account, and the token that signed it is of an account this stack "
                        "does not accept (TwilioAccountSids)")
            # Counted: a graph of how much traffic is attributed rather than named.
            metrics.add_metric(name="EventsWithoutAccount", unit=MetricUnit.Count, value=1)
            return self.unnamed_owner
        if len(set(named)) > 1:
            _refuse("the event's source and payload name different accounts")
        if not sids or next(iter(sids)) not in self.accepted:
            # The SIDs are not repeated: the dead letter's raw event holds them, and logs should not.
            _refuse("the event's account is not one this stack accepts (TwilioAccountSids)")
        return next(iter(sids))


def _refuse(detail: str) -> None:
    metrics.add_metric(name="ForeignAccountEvents", unit=MetricUnit.Count, value=1)
    raise Poison(PoisonReason.FOREIGN_ACCOUNT, detail)

"""Histories of entities with events dropped on purpose, and Twilio's truth about each of them."""

import random
from dataclasses import dataclass, field
from datetime import timedelta

from tests.support import factories
from tests.support.fake_twilio import ACCOUNT, FakeTwilio

SERVICE = "MG" + "5" * 32


def message_sid(n: int) -> str:
    return f"SM{n:032x}"


@dataclass
class Histories:
    delivered: list[dict] = field(default_factory=list)  # the events that reached the sink, in order
    truth: dict[str, str] = field(default_factory=dict)  # pk -> Twilio's status (family words)
    last_arrived: dict[str, str] = field(default_factory=dict)  # pk -> status of the last event that arrived


def with_drops(fake: FakeTwilio, messages: int = 24, seed: int = 14) -> Histories:
    """Messages (queued, sent, a final status), brands and campaigns, a share of their events dropped.

    The first event of each entity always arrives (an entity the sink never heard of is backfill's
    job); each later one is dropped with probability 1/2. Event times are whole seconds, as Twilio's
    date_updated is.
    """
    rng = random.Random(seed)
    out = Histories()
    for n in range(messages):
        sid, final = message_sid(n), ("delivered", "undelivered", "failed")[n % 3]
        start = n * 10
        lifecycle = [("queued", start), ("sent", start + 1), (final, start + 2)]
        kept = [lifecycle[0]] + [step for step in lifecycle[1:] if rng.random() < 0.5]
        for status, second in kept:
            out.delivered.append(factories.message(status, sid, second, account_sid=ACCOUNT))
        out.truth[f"message#{sid}"] = final
        out.last_arrived[f"message#{sid}"] = kept[-1][0]
        fake.message(sid, final, factories.BASE_TIME + timedelta(seconds=start + 2))
    brands = {"BN" + "1" * 32: ("APPROVED", "registered"), "BN" + "2" * 32: ("FAILED", "failed"),
              "BN" + "3" * 32: ("PENDING", "unverified")}
    for i, (sid, (twilio_status, status)) in enumerate(brands.items()):
        out.delivered.append(factories.cloudevent(factories.A2P + "brand-registration.brand-unverified",
                                                  {"brandsid": sid, "updateddate": 1, "accountsid": ACCOUNT}, 1000 + i))
        out.truth[f"brand#{sid}"] = status
        out.last_arrived[f"brand#{sid}"] = "unverified"
        fake.brand(sid, twilio_status, factories.BASE_TIME + timedelta(seconds=2000 + i))
    campaigns = {"QE" + "1" * 32: ("VERIFIED", "approved"), "QE" + "2" * 32: ("FAILED", "failed")}
    for i, (sid, (twilio_status, status)) in enumerate(campaigns.items()):
        out.delivered.append(factories.cloudevent(
            factories.A2P + "campaign-registration.campaign-submitted",
            {"campaignsid": sid, "messagingservicesid": SERVICE, "accountsid": ACCOUNT}, 1100 + i))
        out.truth[f"campaign#{sid}"] = status
        out.last_arrived[f"campaign#{sid}"] = "submitted"
        fake.campaign(sid, SERVICE, twilio_status, factories.BASE_TIME + timedelta(seconds=2100 + i))
    return out

"""Histories of entities with events dropped on purpose, and Twilio's truth about each of them."""

import random
from dataclasses import dataclass, field
from datetime import timedelta

from sink_local.twilio_api import ACCOUNT, TwilioApi
from tests.support import factories

SERVICE = "MG" + "5" * 32
CALL = "com.twilio.voice.status-callback.call."
PM = "com.twilio.messaging.message."
TOLLFREE = factories.A2P + "toll-free-verification."


def message_sid(n: int) -> str:
    return f"SM{n:032x}"


def call_sid(n: int) -> str:
    return f"CA{n:032x}"


def campaign_sid(n: int) -> str:
    return f"CM{n:032x}"


def tollfree_sid(n: int) -> str:
    return f"HH{n:032x}"


def call_event(suffix: str, sid: str, status: str, seconds: float) -> dict:
    """A status callback event as Twilio sends it: the call's SID and status are the callback's parameters."""
    return factories.cloudevent(CALL + suffix, {"sid": sid, "request": {
        "method": "POST", "url": "https://example.com/status",
        "parameters": {"CallSid": sid, "CallStatus": status, "AccountSid": ACCOUNT}}}, seconds)


def pm_event(status: str, sid: str, seconds: float) -> dict:
    """A Programmable Messaging status event (`messageStatus` UPPERCASE, camelCase keys)."""
    return factories.cloudevent(PM + status, {"messageSid": sid, "messageStatus": status.upper(),
                                              "accountSid": ACCOUNT}, seconds)


def tollfree_event(suffix: str, sid: str, seconds: float) -> dict:
    return factories.cloudevent(TOLLFREE + suffix, {"tollfreeverificationsid": sid, "accountsid": ACCOUNT}, seconds)


@dataclass
class Histories:
    delivered: list[dict] = field(default_factory=list)  # the events that reached the sink, in order
    truth: dict[str, str] = field(default_factory=dict)  # pk -> Twilio's status (family words)
    last_arrived: dict[str, str] = field(default_factory=dict)  # pk -> status of the last event that arrived


def with_drops(fake: TwilioApi, messages: int = 24, seed: int = 14) -> Histories:
    """Messages of both APIs (queued, sent, a final status), calls (initiated, ringing, maybe answered,
    an end), brands, campaigns and toll-free verifications, a share of their events dropped.

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
    # The events name a campaign by its `CM…`; Twilio's US A2P resource of its messaging service (one
    # per service) by a `QE…`: the reconciler finds it by listing the service's.
    campaigns = {campaign_sid(1): ("VERIFIED", "approved"), campaign_sid(2): ("FAILED", "failed")}
    for i, (sid, (twilio_status, status)) in enumerate(campaigns.items()):
        service, brand = SERVICE[:-1] + str(i), "BN" + str(i) * 32
        out.delivered.append(factories.cloudevent(
            factories.A2P + "campaign-registration.campaign-submitted",
            {"campaignsid": sid, "brandsid": brand, "messagingservicesid": service, "accountsid": ACCOUNT}, 1100 + i))
        out.truth[f"campaign#{sid}"] = status
        out.last_arrived[f"campaign#{sid}"] = "submitted"
        fake.campaign("QE" + sid[2:], service, twilio_status, factories.BASE_TIME + timedelta(seconds=2100 + i),
                      brand=brand)
    for n in range(messages // 2):  # Programmable Messaging: the same Message resource, its own payload
        sid, final = message_sid(1000 + n), ("delivered", "undelivered", "failed")[n % 3]
        start = 3000 + n * 10
        lifecycle = [("queued", start), ("sent", start + 1), (final, start + 2)]
        kept = [lifecycle[0]] + [step for step in lifecycle[1:] if rng.random() < 0.5]
        out.delivered += [pm_event(status, sid, second) for status, second in kept]
        out.truth[f"message#{sid}"] = final
        out.last_arrived[f"message#{sid}"] = kept[-1][0]
        fake.message(sid, final, factories.BASE_TIME + timedelta(seconds=start + 2))
    # Every end of a call, most without their own type (Twilio reports them with the `completed` callback).
    for n, end in enumerate(("completed", "busy", "no-answer", "failed", "canceled", "completed", "busy", "completed")):
        sid, start = call_sid(n), 4000 + n * 10
        lifecycle = [("initiated", "initiated", start), ("ringing", "ringing", start + 1)]
        lifecycle += [("answered", "in-progress", start + 2)] if end == "completed" else []
        lifecycle += [("completed", end, start + 3)]
        kept = [lifecycle[0]] + [step for step in lifecycle[1:] if rng.random() < 0.5]
        out.delivered += [call_event(suffix, sid, status, second) for suffix, status, second in kept]
        out.truth[f"call#{sid}"] = end
        out.last_arrived[f"call#{sid}"] = kept[-1][1]
        fake.call(sid, end, factories.BASE_TIME + timedelta(seconds=start + 3),
                  started=factories.BASE_TIME + timedelta(seconds=start))
    tollfree = {tollfree_sid(1): ("TWILIO_APPROVED", "approved"), tollfree_sid(2): ("TWILIO_REJECTED", "rejected"),
                tollfree_sid(3): ("IN_REVIEW", "pending_review")}
    for i, (sid, (twilio_status, status)) in enumerate(tollfree.items()):
        out.delivered.append(tollfree_event("requested", sid, 5000 + i))
        out.truth[f"tollfree_verification#{sid}"] = status
        out.last_arrived[f"tollfree_verification#{sid}"] = "requested"
        fake.tollfree_verification(sid, twilio_status, factories.BASE_TIME + timedelta(seconds=6000 + i))
    return out

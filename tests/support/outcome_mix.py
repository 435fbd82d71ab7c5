"""A known mix of delivery outcomes for two accounts, delivered the way it happens: over the webhook and
the stream, with duplicates through the other door, stale events, and reconciler corrections.

What it must count (tests/integration/test_delivery_outcomes.py, tests/operate/test_report.py):
comms-messages delivered 3 (MM1, MM6, MM7 by a correction), undelivered 1 (30007), failed 2 (MM4 with
an undocumented code, MM5 with none), read 1; message-status failed 1 (30034, account B); brands
failed 1, campaigns failed 1; compliance setbacks: a brand, a campaign, a toll-free verification.
"""

from sink_dev.samples import SAMPLE_ACCOUNT_SID, SAMPLE_SUBACCOUNT_SID
from tests.support import factories
from tests.support.factories import A2P, MESSAGE, at, cloudevent
from tests.support.sinks import consume, failed_sequences, post

A, B = SAMPLE_ACCOUNT_SID, SAMPLE_SUBACCOUNT_SID
STATUS = "com.twilio.messaging.message."  # Programmable Messaging


def of(account: str, event: dict) -> dict:
    event["source"] = f"/2010-04-01/Accounts/{account}/Messages/{event['id']}.json"
    return event


def message(status: str, sid: str, seconds: float, account: str = A, **data) -> dict:
    return of(account, factories.message(status, sid, seconds, **data))


def programmable(status: str, sid: str, seconds: float, account: str, **data) -> dict:
    payload = {"messageSid": sid, "messageStatus": status.upper(), "accountSid": account, **data}
    return of(account, cloudevent(STATUS + status, payload, seconds))


def correction(status: str, sid: str, seconds: float) -> dict:
    """What the reconciler applies: names no account (the stored state does)."""
    return {"specversion": "1.0", "type": MESSAGE + status, "source": "reconciler", "id": f"RC{sid}{status}",
            "time": at(seconds), "datacontenttype": "application/json", "data": {"message_id": sid, "attempt": "1"}}


def deliver(consumer, webhook, context) -> None:
    """Deliver the mix through both doors and the reconciler (`without_deadline` expected)."""
    from twilio_sink.pipeline import default_pipeline
    from twilio_sink.reconcile.corrections import apply

    m1 = [message("sent", "MM1", 1), message("delivered", "MM1", 4)]
    m2 = [message("sent", "MM2", 1), message("undelivered", "MM2", 3, error_code="30007")]
    m3 = [programmable("sent", "SM3", 1, B), programmable("failed", "SM3", 2, B, errorCode=30034)]
    m4 = message("failed", "MM4", 5, B, error_code="12345")  # a code outside the documented list
    m5 = [message("queued", "MM5", 0), message("failed", "MM5", 2)]  # no code; never `sent`
    m6 = [message("delivered", "MM6", 3), message("read", "MM6", 9)]
    m6_late_sent = message("sent", "MM6", 1)  # stale
    m7_sent = message("sent", "MM7", 1)
    brand = factories.brand("brand-failure")
    campaign = cloudevent(A2P + "campaign-registration.campaign-failure", {"campaignsid": "CM1"}, 2)
    tollfree = cloudevent(A2P + "toll-free-verification.rejected", {"tollfreeverificationsid": "HH1"}, 2)

    assert post(webhook, context, [m1[0], m2[0], m3[0], m5[0], m6[0], brand])[0] == 200
    batch = [m1[1], m2[1], m3[1], m4, m5[1], m6[1], tollfree, campaign, m7_sent]
    assert failed_sequences(consume(consumer, context, batch)) == []
    # Duplicates through the other door, and a stale event
    assert post(webhook, context, [m1[1], m6_late_sent, m2[1], brand])[0] == 200
    assert failed_sequences(consume(consumer, context, [m3[1], m6[0], m1[0]], first_sequence=100)) == []
    # The reconciler corrects one message Twilio's events never finished, and confirms another
    assert not apply(default_pipeline(), [correction("delivered", "MM7", 10), correction("delivered", "MM1", 12)],
                     "reconciler").failed

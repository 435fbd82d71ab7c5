"""What is asked of Twilio about each reconciled family, how its answer reads, and how a correction says it.

One `Resource` class per reconciled family, naming its family: the REST resource it fetches, Twilio's
statuses in the family's words (`STATUSES`), the payload fields an answer gives (`truth`), and the
type and payload of the family's event that sets Twilio's status (`correction`). `RESOURCES` holds
one of each, keyed by the family's class.

Every endpoint, SID prefix and field name here is the installed `twilio` package's (its resource
classes under twilio/rest/); tests/reconcile ask a stand-in that refuses what Twilio refuses.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from ..families.base import Family
from ..families.brands import Brands
from ..families.calls import BY_TYPE as CALL_TYPES
from ..families.calls import ENDS, PREFIXES, Calls
from ..families.campaigns import Campaigns
from ..families.message_status import MessageStatuses
from ..families.messages import Messages
from ..families.tollfree import TollFreeVerifications
from ..sids import MESSAGE_SID
from .client import LIST_PAGE_SIZE, NotFound, Twilio, pages

# Where the `twilio` package asks (a `Truth` names the resource that answered): the 2010 API, Messaging v1.
API = "https://api.twilio.com/2010-04-01"
MESSAGING = "https://messaging.twilio.com/v1"


@dataclass(frozen=True)
class Truth:
    """Twilio's answer about one entity, in the family's words."""

    status: str | None  # None: Twilio's status has no word in the family (nothing to correct)
    updated: datetime  # Twilio's date_updated: the synthetic event's time, so its order key
    url: str  # the REST resource that answered: the synthetic event's `source`
    data: dict[str, Any] = field(default_factory=dict)  # payload fields taken from the answer


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class Resource(ABC):
    """How one family's entities are looked up, and how Twilio's answer becomes one of the family's events."""

    family: ClassVar[type[Family]]
    STATUSES: ClassVar[dict[str, str]]  # Twilio's status -> the family's word; one missing here: nothing to correct

    @abstractmethod
    def fetch(self, twilio: Twilio, entity_id: str, data: dict[str, Any], account_sid: str | None,
              deadline: float) -> Truth:
        """Ask Twilio, as `account_sid` (the one the sink recorded), about the entity whose stored payload is `data`."""

    @abstractmethod
    def truth(self, answer: Any) -> Truth:
        """A fetched (or listed) instance of the resource, in the family's words."""

    def correction(self, status: str, stored: dict[str, Any], answered: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """The type and payload of an event of the family that sets `status` (the synthetic event): the
        stored payload with the answer's fields over it, in the family's shape.

        By default the type that declares `status`; a family whose status is read from the payload, or
        whose payload restates it, says so in its resource, so that routing the event sets exactly `status`.
        """
        event_type = next(t for t, declared in self.family.types.items() if declared.status == status)
        return event_type, stored | answered


class MessageResource(Resource):
    """Communications API messages, through the Message resource (2010 API, `SM…`/`MM…`; its SID: the
    message id, else downstream_id)."""

    family: ClassVar[type[Family]] = Messages  # widened: MessageStatusResource names its own
    STATUSES = {
        "accepted": "queued", "scheduled": "queued", "queued": "queued", "sending": "queued", "sent": "sent",
        "delivered": "delivered", "undelivered": "undelivered", "failed": "failed", "read": "read",
        "receiving": "received", "received": "received",
        # `partially_delivered` and `canceled` have no word in the family: nothing to correct.
    }
    ACCOUNT_FIELD = "account_sid"  # the payload's names: the correction is in the family's own shape
    ERROR_FIELD = "error_code"

    def fetch(self, twilio: Twilio, entity_id: str, data: dict[str, Any], account_sid: str | None,
              deadline: float) -> Truth:
        sid = entity_id if MESSAGE_SID.fullmatch(entity_id) else str(data.get("downstream_id") or "")
        if not MESSAGE_SID.fullmatch(sid):
            raise NotFound("no Message SID (SM…/MM…) to ask Twilio about")
        client = twilio.client(account_sid)
        message = twilio.call(lambda: client.messages(sid).fetch(), deadline)
        return self.truth(message)

    def truth(self, message: Any) -> Truth:
        # The account, from Twilio's answer: every event must name an accepted one (accounts.py).
        data = {self.ACCOUNT_FIELD: message.account_sid}
        if message.error_code:
            data[self.ERROR_FIELD] = str(message.error_code)
        return Truth(self.STATUSES.get(message.status), message.date_updated,
                     f"{API}/Accounts/{message.account_sid}/Messages/{message.sid}.json", data)


class MessageStatusResource(MessageResource):
    """Programmable Messaging's status events: the same Message resource, in their payload's names.

    Outbound only: an inbound message is its own family's, `received` from its first event.
    """

    family = MessageStatuses
    STATUSES = {twilio: word for twilio, word in MessageResource.STATUSES.items() if word != "received"}
    ACCOUNT_FIELD = "accountSid"
    ERROR_FIELD = "errorCode"

    def correction(self, status: str, stored: dict[str, Any], answered: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        # The payload restates the status twice, as its type (`eventName`) and in UPPERCASE: a correction
        # must carry the superseded one in neither.
        event_type, data = super().correction(status, stored, answered)
        return event_type, data | {"eventName": event_type, "messageStatus": status.upper()}


class CallResource(Resource):
    """Voice calls, through the Call resource (2010 API, `CA…`): its statuses are the family's words.

    `initiated` is a callback's word only; Twilio's answer goes into the callback's parameters.
    """

    family = Calls
    STATUSES = {status: status for status in
                ("queued", "ringing", "in-progress", "completed", "busy", "failed", "no-answer", "canceled")}

    def fetch(self, twilio: Twilio, entity_id: str, data: dict[str, Any], account_sid: str | None,
              deadline: float) -> Truth:
        client = twilio.client(account_sid)
        call = twilio.call(lambda: client.calls(entity_id).fetch(), deadline)
        return self.truth(call)

    def truth(self, call: Any) -> Truth:
        return Truth(self.STATUSES.get(call.status), call.date_updated,
                     f"{API}/Accounts/{call.account_sid}/Calls/{call.sid}.json",
                     {"CallSid": call.sid, "AccountSid": call.account_sid})

    def correction(self, status: str, stored: dict[str, Any], answered: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        # The status is the callback's CallStatus: the answer's fields are parameters too. Twilio reports
        # every end of a call (busy, no-answer…) with the `completed` callback, and `queued` comes before
        # the first callback: those take the `completed` and `initiated` types.
        request = stored.get("request") or {}
        parameters = (request.get("parameters") or {}) | answered | {"CallStatus": status}
        suffix = next((s for s, word in CALL_TYPES.items() if word == status),
                      "completed" if status in ENDS else "initiated")
        return PREFIXES[0] + suffix, stored | {"request": request | {"parameters": parameters}}


class BrandResource(Resource):
    """A2P brands, through the BrandRegistration resource (Messaging v1 `a2p/BrandRegistrations`, `BN…`)."""

    family = Brands
    STATUSES = {"APPROVED": "registered", "FAILED": "failed"}  # PENDING, IN_REVIEW…: still waiting
    # How the events spell the status in `brandstatus` (seed 003's samples): a correction says the same.
    EVENT_WORDS = {"APPROVED": "registered", "FAILED": "registration_failed"}

    def fetch(self, twilio: Twilio, entity_id: str, data: dict[str, Any], account_sid: str | None,
              deadline: float) -> Truth:
        client = twilio.client(account_sid)
        return self.truth(twilio.call(lambda: client.messaging.v1.brand_registrations(entity_id).fetch(), deadline))

    def truth(self, brand: Any) -> Truth:
        return Truth(self.STATUSES.get(brand.status), brand.date_updated,
                     f"{MESSAGING}/a2p/BrandRegistrations/{brand.sid}",
                     {"accountsid": brand.account_sid, "brandstatus": self.EVENT_WORDS.get(brand.status, brand.status),
                      "updateddate": epoch_ms(brand.date_updated)})


class CampaignResource(Resource):
    """A2P campaigns, through their messaging service's US A2P resource (Messaging v1
    `Services/{MG…}/Compliance/Usa2p`).

    That resource's SID is a `QE…` and its `campaign_id` is The Campaign Registry's id (the approved
    event's `externalcampaignid`): the events' `campaignsid` (`CM…`) names neither, so Twilio cannot
    be asked about it directly. A messaging service holds at most one A2P campaign: the service's
    listing (asked once per run) holds it. The one whose TCR id is the stored `externalcampaignid`
    when the sink knows it, else the one of the stored brand; none (or two) is not found.
    """

    family = Campaigns
    # `campaign_status` (Twilio: "IN_PROGRESS, VERIFIED, FAILED"; PENDING before review starts). Any
    # other word (a suspension, say) has no event type in the family that would mean the same: nothing
    # is corrected.
    STATUSES = {"VERIFIED": "approved", "FAILED": "failed", "IN_PROGRESS": "submitted", "PENDING": "submitted"}
    # How the events spell it in `campaignregistrationstatus` (seed 003's samples): a correction says the same.
    EVENT_WORDS = {"VERIFIED": "success", "FAILED": "failure", "IN_PROGRESS": "pending", "PENDING": "pending"}

    def fetch(self, twilio: Twilio, entity_id: str, data: dict[str, Any], account_sid: str | None,
              deadline: float) -> Truth:
        service = data.get("messagingservicesid")
        if not service:
            raise NotFound("no messagingservicesid: Twilio's campaign resource lives under its messaging service")
        client = twilio.client(account_sid)
        listing = client.messaging.v1.services(service).us_app_to_person
        campaigns = twilio.once(("Usa2p", client.account_sid, service), lambda: [
            campaign for page in pages(twilio, lambda: listing.page(page_size=LIST_PAGE_SIZE), deadline)
            for campaign in page])
        tcr_id, brand = data.get("externalcampaignid"), data.get("brandsid")
        found = [campaign for campaign in campaigns
                 if (campaign.campaign_id == tcr_id if tcr_id else brand in (None, campaign.brand_registration_sid))]
        if len(found) != 1:
            raise NotFound(f"{len(found)} A2P campaigns of messaging service {service} match {entity_id}")
        return self.truth(found[0])

    def truth(self, campaign: Any) -> Truth:
        status = campaign.campaign_status or ""
        data = {"accountsid": campaign.account_sid, "campaignregistrationstatus": self.EVENT_WORDS.get(status, status),
                "updateddate": epoch_ms(campaign.date_updated)}
        if campaign.campaign_id:
            data["externalcampaignid"] = campaign.campaign_id
        return Truth(self.STATUSES.get(campaign.campaign_status or ""), campaign.date_updated,
                     f"{MESSAGING}/Services/{campaign.messaging_service_sid}/Compliance/Usa2p/{campaign.sid}", data)


class TollFreeResource(Resource):
    """Toll-free verifications, through the TollfreeVerification resource (Messaging v1
    `Tollfree/Verifications`, `HH…`)."""

    family = TollFreeVerifications
    STATUSES = {
        "PENDING_REVIEW": "pending_review", "TWILIO_APPROVED": "approved", "TWILIO_REJECTED": "rejected",
        # Being reviewed is still awaiting Twilio's decision: the family has one word for that, and its
        # events announce no review start that a correction could stand for.
        "IN_REVIEW": "pending_review",
    }

    def fetch(self, twilio: Twilio, entity_id: str, data: dict[str, Any], account_sid: str | None,
              deadline: float) -> Truth:
        client = twilio.client(account_sid)
        return self.truth(twilio.call(lambda: client.messaging.v1.tollfree_verifications(entity_id).fetch(), deadline))

    def truth(self, verification: Any) -> Truth:
        # The events spell Twilio's word in lower case (`twilio_approved`).
        return Truth(self.STATUSES.get(verification.status or ""), verification.date_updated,
                     f"{MESSAGING}/Tollfree/Verifications/{verification.sid}",
                     {"accountsid": verification.account_sid, "verificationstatus": (verification.status or "").lower(),
                      "processeddate": epoch_ms(verification.date_updated)})


# Every reconciled family's resource, by the family's class. A family with a `quiet_after` needs one
# (tests/reconcile/test_template.py); adding it is a Resource class above and its line here.
RESOURCES: dict[type[Family], Resource] = {resource.family: resource for resource in (
    MessageResource(),
    MessageStatusResource(),
    CallResource(),
    BrandResource(),
    CampaignResource(),
    TollFreeResource(),
)}


def resource_of(family: Family) -> Resource | None:
    """The family's resource; None for a family with nothing to reconcile."""
    return RESOURCES.get(type(family))

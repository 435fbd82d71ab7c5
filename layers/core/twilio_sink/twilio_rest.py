"""Twilio's REST API, asked for the truth about an entity: API keys per account, clients, backoff.

What each reconcilable family asks (which resource, how Twilio's status reads in the family's
words) is one `Resource` below; reconcile.py decides what an answer means for the stored state.
Nothing here knows the status table.
"""

import json
import random
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from requests import RequestException
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import HttpClient, TwilioHttpClient
from twilio.rest import Client

# Twilio asks clients to retry these with backoff; any other error will not be fixed by asking again.
RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_ATTEMPTS = 4
FIRST_DELAY_SECONDS = 0.5
REQUEST_TIMEOUT_SECONDS = 5
MESSAGE_SID = re.compile(r"(SM|MM)[0-9a-fA-F]{32}")


class NotFound(Exception):
    """Twilio has no such resource (404): deleted, or never one Twilio can be asked about."""


class Unreachable(Exception):
    """No usable answer: no API key for the account, refused, or 429/5xx/network errors past the retries."""


@dataclass(frozen=True)
class ApiKey:
    sid: str
    secret: str


def parse_api_keys(secret_string: str) -> dict[str, ApiKey]:
    """The TwilioApiKeysSecret: {"AC…": {"api_key_sid": "SK…", "api_key_secret": "…"}, …}.

    Anything else (the template's placeholder) means no account is configured: every check is then
    unreachable, and counted, rather than failing the run.
    """
    try:
        accounts = json.loads(secret_string)
    except ValueError:
        return {}
    if not isinstance(accounts, dict):
        return {}
    return {
        account: ApiKey(entry["api_key_sid"], entry["api_key_secret"])
        for account, entry in accounts.items()
        if account.startswith("AC") and isinstance(entry, dict)
        and isinstance(entry.get("api_key_sid"), str) and isinstance(entry.get("api_key_secret"), str)
    }


@dataclass(frozen=True)
class Truth:
    """Twilio's answer about one entity, in the family's words."""

    status: str | None  # None: Twilio's status has no word in the family (nothing to correct)
    updated: datetime  # Twilio's date_updated: the synthetic event's time, so its order key
    data: dict[str, Any] = field(default_factory=dict)  # payload fields taken from the answer


class Twilio:
    """One client per account, every request retried with backoff on 429 and 5xx, never past a deadline."""

    def __init__(self, keys: dict[str, ApiKey], http_client: HttpClient | None = None,
                 sleep: Callable[[float], None] | None = None):
        self.keys = keys
        self.http_client = http_client
        self.sleep = sleep or time.sleep
        self._clients: dict[str, Client] = {}

    def client(self, account_sid: str | None) -> Client:
        if not account_sid and len(self.keys) == 1:
            account_sid = next(iter(self.keys))
        key = self.keys.get(account_sid or "")
        if key is None or not account_sid:
            raise Unreachable(f"no API key for account {account_sid or '(unknown)'} in the API keys secret")
        if account_sid not in self._clients:
            self._clients[account_sid] = Client(
                key.sid, key.secret, account_sid,
                http_client=self.http_client or TwilioHttpClient(timeout=REQUEST_TIMEOUT_SECONDS))
        return self._clients[account_sid]

    def call[T](self, request: Callable[[], T], deadline: float) -> T:
        """`request()`, retried on 429/5xx/network errors with exponential backoff and full jitter."""
        for attempt in range(MAX_ATTEMPTS):
            try:
                return request()
            except TwilioRestException as error:
                status: int | None = error.status
            except TwilioException as error:  # a list page's non-200 carries the response, not a status
                response = error.args[1] if len(error.args) > 1 else None
                status = getattr(response, "status_code", None)
            except RequestException:
                status = None  # no answer at all: retried like a 5xx
            if status == 404:
                raise NotFound("404 from Twilio")
            if status is not None and status not in RETRIED_STATUSES:
                raise Unreachable(f"HTTP {status} from Twilio")
            delay = random.uniform(0, FIRST_DELAY_SECONDS * 2**attempt)
            if attempt + 1 == MAX_ATTEMPTS or time.monotonic() + delay + REQUEST_TIMEOUT_SECONDS > deadline:
                break
            self.sleep(delay)
        raise Unreachable(f"no answer from Twilio after {attempt + 1} attempt(s) (last: {status or 'network error'})")


# ---- what each family asks ----------------------------------------------------------------------------


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class Resource(ABC):
    """How one family's entities are looked up: the REST resource and its status in the family's words."""

    STATUSES: dict[str, str]  # Twilio's status -> the family's word; one missing here: nothing to correct

    @abstractmethod
    def fetch(self, twilio: Twilio, entity_id: str, data: dict[str, Any], deadline: float) -> Truth:
        """Ask Twilio about the entity whose stored payload is `data`."""

    @abstractmethod
    def truth(self, answer: Any) -> Truth:
        """A fetched (or listed) instance of the resource, in the family's words."""


class MessageResource(Resource):
    """Communications API messages, through the Message resource (its SID: the message id, else downstream_id)."""

    STATUSES = {
        "accepted": "queued", "scheduled": "queued", "queued": "queued", "sending": "queued", "sent": "sent",
        "delivered": "delivered", "undelivered": "undelivered", "failed": "failed", "read": "read",
        "receiving": "received", "received": "received",
        # `partially_delivered` and `canceled` have no word in the family: nothing to correct.
    }
    ACCOUNT_FIELD = "account_sid"  # the payload's names: the correction is in the family's own shape
    ERROR_FIELD = "error_code"

    def fetch(self, twilio: Twilio, entity_id: str, data: dict[str, Any], deadline: float) -> Truth:
        sid = entity_id if MESSAGE_SID.fullmatch(entity_id) else str(data.get("downstream_id") or "")
        if not MESSAGE_SID.fullmatch(sid):
            raise NotFound("no Message SID (SM…/MM…) to ask Twilio about")
        client = twilio.client(data.get(self.ACCOUNT_FIELD))
        message = twilio.call(lambda: client.messages(sid).fetch(), deadline)
        return self.truth(message)

    def truth(self, message: Any) -> Truth:
        # The account, from Twilio's answer: every event must name an accepted one (accounts.py).
        data = {self.ACCOUNT_FIELD: message.account_sid}
        if message.error_code:
            data[self.ERROR_FIELD] = str(message.error_code)
        return Truth(self.STATUSES.get(message.status), message.date_updated, data)


class MessageStatusResource(MessageResource):
    """Programmable Messaging's status events: the same Message resource, in their payload's names.

    Outbound only: an inbound message is its own family's, `received` from its first event.
    """

    STATUSES = {twilio: word for twilio, word in MessageResource.STATUSES.items() if word != "received"}
    ACCOUNT_FIELD = "accountSid"
    ERROR_FIELD = "errorCode"


class CallResource(Resource):
    """Voice calls, through the Call resource (2010 API): its statuses are the family's words.

    `initiated` is a callback's word only; Twilio's answer goes into the callback's parameters.
    """

    STATUSES = {status: status for status in
                ("queued", "ringing", "in-progress", "completed", "busy", "failed", "no-answer", "canceled")}

    def fetch(self, twilio: Twilio, entity_id: str, data: dict[str, Any], deadline: float) -> Truth:
        parameters = (data.get("request") or {}).get("parameters") or {}
        client = twilio.client(parameters.get("AccountSid"))
        call = twilio.call(lambda: client.calls(entity_id).fetch(), deadline)
        return self.truth(call)

    def truth(self, call: Any) -> Truth:
        return Truth(self.STATUSES.get(call.status), call.date_updated,
                     {"CallSid": call.sid, "AccountSid": call.account_sid})


class BrandResource(Resource):
    STATUSES = {"APPROVED": "registered", "FAILED": "failed"}  # PENDING, IN_REVIEW…: still waiting

    def fetch(self, twilio: Twilio, entity_id: str, data: dict[str, Any], deadline: float) -> Truth:
        client = twilio.client(data.get("accountsid"))
        return self.truth(twilio.call(lambda: client.messaging.v1.brand_registrations(entity_id).fetch(), deadline))

    def truth(self, brand: Any) -> Truth:
        return Truth(self.STATUSES.get(brand.status), brand.date_updated,
                     {"accountsid": brand.account_sid, "brandstatus": brand.status,
                      "updateddate": epoch_ms(brand.date_updated)})


class CampaignResource(Resource):
    """A2P campaigns: the UsAppToPerson resource, under the campaign's messaging service."""

    STATUSES = {"VERIFIED": "approved", "FAILED": "failed", "IN_PROGRESS": "submitted", "PENDING": "submitted"}

    def fetch(self, twilio: Twilio, entity_id: str, data: dict[str, Any], deadline: float) -> Truth:
        service = data.get("messagingservicesid")
        if not service:
            raise NotFound("no messagingservicesid: Twilio's campaign resource lives under its messaging service")
        client = twilio.client(data.get("accountsid"))
        return self.truth(twilio.call(
            lambda: client.messaging.v1.services(service).us_app_to_person(entity_id).fetch(), deadline))

    def truth(self, campaign: Any) -> Truth:
        return Truth(self.STATUSES.get(campaign.campaign_status or ""), campaign.date_updated,
                     {"accountsid": campaign.account_sid, "campaignregistrationstatus": campaign.campaign_status,
                      "updateddate": epoch_ms(campaign.date_updated)})


class TollFreeResource(Resource):
    """Toll-free verifications, through the TollfreeVerification resource (Messaging v1)."""

    STATUSES = {
        "PENDING_REVIEW": "pending_review", "TWILIO_APPROVED": "approved", "TWILIO_REJECTED": "rejected",
        # Being reviewed is still awaiting Twilio's decision: the family has one word for that, and its
        # events announce no review start that a correction could stand for.
        "IN_REVIEW": "pending_review",
    }

    def fetch(self, twilio: Twilio, entity_id: str, data: dict[str, Any], deadline: float) -> Truth:
        client = twilio.client(data.get("accountsid"))
        return self.truth(twilio.call(lambda: client.messaging.v1.tollfree_verifications(entity_id).fetch(), deadline))

    def truth(self, verification: Any) -> Truth:
        return Truth(self.STATUSES.get(verification.status or ""), verification.date_updated,
                     {"accountsid": verification.account_sid, "verificationstatus": verification.status,
                      "processeddate": epoch_ms(verification.date_updated)})


def list_messages(twilio: Twilio, account_sid: str, since: datetime, until: datetime,
                  deadline: float) -> Iterator[list[Any]]:
    """Every Message resource of the account sent in [since, until), a page at a time."""
    client = twilio.client(account_sid)
    return _pages(twilio, lambda: client.messages.page(date_sent_after=since, date_sent_before=until, page_size=100),
                  deadline)


def list_calls(twilio: Twilio, account_sid: str, since: datetime, until: datetime,
               deadline: float) -> Iterator[list[Any]]:
    """Every Call resource of the account started in [since, until), a page at a time (a call still
    queued has no start time yet: the reconciler asks about it)."""
    client = twilio.client(account_sid)
    return _pages(twilio, lambda: client.calls.page(start_time_after=since, start_time_before=until, page_size=100),
                  deadline)


def _pages(twilio: Twilio, first: Callable[[], Any], deadline: float) -> Iterator[list[Any]]:
    page = twilio.call(first, deadline)
    while page is not None:
        yield list(page)
        page = twilio.call(page.next_page, deadline)

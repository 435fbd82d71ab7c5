"""Twilio's REST API, asked for the truth about an entity: API keys per account, clients, backoff.

What each reconcilable family asks (which resource, how Twilio's status reads in the family's
words) is one `Resource` below; reconcile.py decides what an answer means for the stored state.
Nothing here knows the status table.
"""

import json
import random
import re
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from requests import RequestException
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import HttpClient, TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

# Twilio asks clients to retry these with backoff; any other error will not be fixed by asking again.
RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_ATTEMPTS = 4
FIRST_DELAY_SECONDS = 0.5
REQUEST_TIMEOUT_SECONDS = 5
MESSAGE_SID = re.compile(r"(SM|MM)[0-9a-fA-F]{32}")
LIST_PAGE_SIZE = 100


class NotFound(Exception):
    """Twilio has no such resource (404): deleted, or never one Twilio can be asked about."""


class Unreachable(Exception):
    """No usable answer: no API key for the account, refused, or 429/5xx/network errors past the retries."""


class NoApiKey(Unreachable):
    """The API keys secret holds no key for the entity's account (or the account is not known)."""

    def __init__(self, account_sid: str | None):
        super().__init__(f"no API key for account {account_sid or '(unknown)'} in the API keys secret")
        self.account_sid = account_sid


class RateLimited(Exception):
    """Twilio answered 429; `retry_after` is its Retry-After header in seconds, when it sent one."""

    def __init__(self, retry_after: float | None):
        super().__init__(f"HTTP 429 from Twilio (Retry-After: {retry_after})")
        self.retry_after = retry_after


class SinkHttpClient(TwilioHttpClient):
    """The `twilio` package's own http client, with two additions.

    A 429 raises `RateLimited` with its Retry-After (the package's exceptions drop the headers). With
    a `base_url` (TWILIO_API_BASE_URL: a local stand-in of Twilio's API, never set in AWS), every
    `https://<product>.twilio.com/<path>` is requested as `<base_url>/<product>/<path>`, so one
    endpoint serves the 2010 API (`api`) and the v1 products (`messaging`).
    """

    def __init__(self, base_url: str = "", timeout: float = REQUEST_TIMEOUT_SECONDS):
        super().__init__(timeout=timeout)
        self.base_url = base_url.rstrip("/")

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        if self.base_url:
            parts = urlsplit(url)
            product = (parts.hostname or "").split(".")[0]
            url = f"{self.base_url}/{product}{parts.path}" + (f"?{parts.query}" if parts.query else "")
        response = super().request(method, url, *args, **kwargs)
        if response.status_code == 429:
            raise RateLimited(_seconds((response.headers or {}).get("Retry-After")))
        return response


def _seconds(header: str | None) -> float | None:
    """Retry-After in seconds (Twilio sends delta-seconds); None when absent or not a number."""
    try:
        return max(0.0, float(header)) if header is not None else None
    except ValueError:
        return None


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
    """One client per account, every request retried with backoff on 429 and 5xx, never past a deadline.

    One instance per run (or backfill): `once` keeps what a run asked for its whole length.
    """

    def __init__(self, keys: dict[str, ApiKey], base_url: str = "", http_client: HttpClient | None = None,
                 sleep: Callable[[float], None] | None = None):
        self.keys = keys
        self.http_client = http_client or SinkHttpClient(base_url)
        self.sleep = sleep or time.sleep
        self._clients: dict[str, Client] = {}
        self._answers: dict[Any, Any] = {}
        self._locks: dict[Any, threading.Lock] = {}
        self._lock = threading.Lock()

    def client(self, account_sid: str | None) -> Client:
        if not account_sid and len(self.keys) == 1:
            account_sid = next(iter(self.keys))
        key = self.keys.get(account_sid or "")
        if key is None or not account_sid:
            raise NoApiKey(account_sid)
        with self._lock:
            if account_sid not in self._clients:
                self._clients[account_sid] = Client(key.sid, key.secret, account_sid, http_client=self.http_client)
            return self._clients[account_sid]

    def once[T](self, key: Any, compute: Callable[[], T]) -> T:
        """`compute()` the first time `key` is asked in this run, its answer every other time (a failure
        is not kept: the next entity asks again). Concurrent askers of one key wait for the first."""
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._answers:
                self._answers[key] = compute()
            return self._answers[key]

    def call[T](self, request: Callable[[], T], deadline: float) -> T:
        """`request()`, retried on 429/5xx/network errors with exponential backoff and full jitter; a
        429's Retry-After is waited for when the deadline allows it, else the entity is left for later."""
        for attempt in range(MAX_ATTEMPTS):
            status: int | None
            retry_after: float | None = None
            try:
                return request()
            except RateLimited as error:
                status, retry_after = 429, error.retry_after
            except TwilioRestException as error:
                status = error.status
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
            if retry_after is not None:
                delay = max(delay, retry_after)  # Twilio said when: not sooner
            if attempt + 1 == MAX_ATTEMPTS or time.monotonic() + delay + REQUEST_TIMEOUT_SECONDS > deadline:
                break
            self.sleep(delay)
        raise Unreachable(f"no answer from Twilio after {attempt + 1} attempt(s) (last: {status or 'network error'})")


# ---- what each family asks ----------------------------------------------------------------------------


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class Resource(ABC):
    """How one family's entities are looked up: the REST resource and its status in the family's words.

    Every endpoint, SID prefix and field name here is the installed `twilio` package's (its resource
    classes under twilio/rest/); tests/reconcile ask a stand-in that refuses what Twilio refuses.
    """

    STATUSES: dict[str, str]  # Twilio's status -> the family's word; one missing here: nothing to correct

    @abstractmethod
    def fetch(self, twilio: Twilio, entity_id: str, data: dict[str, Any], account_sid: str | None,
              deadline: float) -> Truth:
        """Ask Twilio, as `account_sid` (the one the sink recorded), about the entity whose stored payload is `data`."""

    @abstractmethod
    def truth(self, answer: Any) -> Truth:
        """A fetched (or listed) instance of the resource, in the family's words."""


class MessageResource(Resource):
    """Communications API messages, through the Message resource (2010 API, `SM…`/`MM…`; its SID: the
    message id, else downstream_id)."""

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
        return Truth(self.STATUSES.get(message.status), message.date_updated, data)


class MessageStatusResource(MessageResource):
    """Programmable Messaging's status events: the same Message resource, in their payload's names.

    Outbound only: an inbound message is its own family's, `received` from its first event.
    """

    STATUSES = {twilio: word for twilio, word in MessageResource.STATUSES.items() if word != "received"}
    ACCOUNT_FIELD = "accountSid"
    ERROR_FIELD = "errorCode"


class CallResource(Resource):
    """Voice calls, through the Call resource (2010 API, `CA…`): its statuses are the family's words.

    `initiated` is a callback's word only; Twilio's answer goes into the callback's parameters.
    """

    STATUSES = {status: status for status in
                ("queued", "ringing", "in-progress", "completed", "busy", "failed", "no-answer", "canceled")}

    def fetch(self, twilio: Twilio, entity_id: str, data: dict[str, Any], account_sid: str | None,
              deadline: float) -> Truth:
        client = twilio.client(account_sid)
        call = twilio.call(lambda: client.calls(entity_id).fetch(), deadline)
        return self.truth(call)

    def truth(self, call: Any) -> Truth:
        return Truth(self.STATUSES.get(call.status), call.date_updated,
                     {"CallSid": call.sid, "AccountSid": call.account_sid})


class BrandResource(Resource):
    """A2P brands, through the BrandRegistration resource (Messaging v1 `a2p/BrandRegistrations`, `BN…`)."""

    STATUSES = {"APPROVED": "registered", "FAILED": "failed"}  # PENDING, IN_REVIEW…: still waiting
    # How the events spell the status in `brandstatus` (seed 003's samples): a correction says the same.
    EVENT_WORDS = {"APPROVED": "registered", "FAILED": "registration_failed"}

    def fetch(self, twilio: Twilio, entity_id: str, data: dict[str, Any], account_sid: str | None,
              deadline: float) -> Truth:
        client = twilio.client(account_sid)
        return self.truth(twilio.call(lambda: client.messaging.v1.brand_registrations(entity_id).fetch(), deadline))

    def truth(self, brand: Any) -> Truth:
        return Truth(self.STATUSES.get(brand.status), brand.date_updated,
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
            campaign for page in _pages(twilio, lambda: listing.page(page_size=LIST_PAGE_SIZE), deadline)
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
        return Truth(self.STATUSES.get(campaign.campaign_status or ""), campaign.date_updated, data)


class TollFreeResource(Resource):
    """Toll-free verifications, through the TollfreeVerification resource (Messaging v1
    `Tollfree/Verifications`, `HH…`)."""

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
                     {"accountsid": verification.account_sid, "verificationstatus": (verification.status or "").lower(),
                      "processeddate": epoch_ms(verification.date_updated)})


def list_messages(twilio: Twilio, account_sid: str, since: datetime, until: datetime,
                  deadline: float) -> Iterator[list[Any]]:
    """Every Message resource of the account sent in [since, until), a page at a time.

    Twilio filters `DateSent` by whole GMT days (`DateSent>`: on or after a day, `DateSent<`: on or
    before one): the listing asks for every day the window touches, once, and keeps what was sent in it.
    """
    client = twilio.client(account_sid)
    first, last = since.date().isoformat(), (until - timedelta(microseconds=1)).date().isoformat()
    pages = _pages(twilio, lambda: client.messages.page(date_sent_after=first, date_sent_before=last,
                                                          page_size=LIST_PAGE_SIZE), deadline)
    return ([message for message in page if message.date_sent and since <= message.date_sent < until]
            for page in pages)


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
    pages = _pages(twilio, lambda: client.calls.page(start_time_after=first, start_time_before=after_last,
                                                       page_size=LIST_PAGE_SIZE), deadline)
    return ([call for call in page if call.start_time and since <= call.start_time < until] for page in pages)


def _pages(twilio: Twilio, first: Callable[[], Any], deadline: float) -> Iterator[list[Any]]:
    page = twilio.call(first, deadline)
    while page is not None:
        yield list(page)
        page = twilio.call(page.next_page, deadline)

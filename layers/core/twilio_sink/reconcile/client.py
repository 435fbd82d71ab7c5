"""Twilio's REST API as the reconciler (and `backfill`) ask it: API keys per account, one client per
account, every request retried with backoff and never past a deadline.

What is asked per family is in resources.py; nothing here knows a family or the status table.
"""

import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
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


def pages(twilio: Twilio, first: Callable[[], Any], deadline: float) -> Iterator[list[Any]]:
    """A listing's pages in turn, `first()` asking for the first, each request retried like any other."""
    page = twilio.call(first, deadline)
    while page is not None:
        yield list(page)
        page = twilio.call(page.next_page, deadline)

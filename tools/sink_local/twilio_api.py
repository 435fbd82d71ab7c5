"""A stand-in of the part of Twilio's REST API the reconciler and backfill ask, on 127.0.0.1.

Real HTTP, in the shapes the `twilio` package parses: the Message and Call resources (2010 API, RFC 2822
dates, `next_page_uri` pagination, `DateSent`/`StartTime` filters by whole GMT days), A2P brand
registrations, the messaging services' US A2P campaigns (`Compliance/Usa2p`, listed with `meta`
pagination) and toll-free verifications (v1, ISO dates), and Twilio's error bodies. It refuses what
Twilio refuses: an unknown API key or secret (401), another account's path (401: the key is not that
account's), a SID of the wrong kind (a campaign asked by its `CM…` rather than its `QE…`: 404),
another account's resource (404), a date filter that is not a day (400).

It serves `/<product>/<path>` for `https://<product>.twilio.com/<path>`: what the reconciler asks with
TWILIO_API_BASE_URL (template parameter TwilioApiBaseUrl) set to `base_url`, and `twilio-sink backfill
--twilio-api-base-url`. Never in the layer: local runs and tests only.
"""

import base64
import json
import re
import threading
from collections import Counter, defaultdict
from datetime import UTC, date, datetime
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from sink_dev.samples import SAMPLE_ACCOUNT_SID

ACCOUNT = SAMPLE_ACCOUNT_SID  # the local stack's accepted account (TwilioAccountSids)
API_KEY_SID = "SK" + "1" * 32
API_KEY_SECRET = "api-key-secret"
# What each resource's SID starts with, as Twilio's API definition gives it.
SID = {kind: re.compile(prefix + r"[0-9a-fA-F]{32}") for kind, prefix in (
    ("messages", "(SM|MM)"), ("calls", "CA"), ("brands", "BN"), ("campaigns", "QE"), ("services", "MG"),
    ("tollfree", "HH"), ("accounts", "AC"))}
FINISHED_CALL = ("completed", "busy", "failed", "no-answer", "canceled")


def rfc2822(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC), usegmt=False).replace("-0000", "+0000")


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class TwilioApi:
    """The stand-in; `with TwilioApi() as api:` serves it on a free port until the block ends."""

    def __init__(self, page_size: int = 2, port: int = 0):
        self.page_size = page_size
        # API key SID -> (secret, account): the account a request authenticated as.
        self.keys: dict[str, tuple[str, str]] = {API_KEY_SID: (API_KEY_SECRET, ACCOUNT)}
        self.messages: dict[str, dict] = {}  # sid -> resource
        self.brands: dict[str, dict] = {}
        self.campaigns: dict[str, dict] = {}
        self.calls: dict[str, dict] = {}
        self.tollfree: dict[str, dict] = {}
        # Answers given before the real one, per path (or "*" for any): a list of HTTP statuses.
        self.faults: dict[str, list[int]] = defaultdict(list)
        self.retry_after: str | None = "1"  # the Retry-After header of a 429
        self.requests: list[tuple[str, str]] = []  # (path with query, the account it authenticated as, or "")
        self.listed: Counter[str] = Counter()  # how many times each SID was on a list page
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        # shutdown() waits for the serving loop's next poll: every 50 ms rather than the default 500 ms
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    # ---- the resources ---------------------------------------------------------------------------

    def api_key(self, sid: str, secret: str, account: str) -> None:
        self.keys[sid] = (secret, account)

    def message(self, sid: str, status: str, updated: datetime, sent: datetime | None = None,
                account: str = ACCOUNT, error_code: int | None = None) -> None:
        uri = f"/2010-04-01/Accounts/{account}/Messages/{sid}.json"
        self.messages[sid] = {
            "account_sid": account, "api_version": "2010-04-01", "body": "hello", "date_created": rfc2822(sent or updated),
            "date_sent": rfc2822(sent or updated), "date_updated": rfc2822(updated), "direction": "outbound-api",
            "error_code": error_code, "error_message": None, "from": "+15555550100",
            "messaging_service_sid": None, "num_media": "0", "num_segments": "1", "price": None,
            "price_unit": "USD", "sid": sid, "status": status, "to": "+15555550199", "uri": uri,
            "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
        }

    def brand(self, sid: str, status: str, updated: datetime, account: str = ACCOUNT) -> None:
        self.brands[sid] = {
            "sid": sid, "account_sid": account, "customer_profile_bundle_sid": "BU" + "0" * 32,
            "a2p_profile_bundle_sid": "BU" + "1" * 32, "date_created": iso(updated), "date_updated": iso(updated),
            "brand_type": "STANDARD", "status": status, "tcr_id": "BXXXXXX", "failure_reason": None,
            "errors": [], "url": f"https://messaging.twilio.com/v1/a2p/BrandRegistrations/{sid}",
            "brand_score": 42, "brand_feedback": None, "identity_status": "VERIFIED", "russell_3000": False,
            "government_entity": False, "tax_exempt_status": None, "skip_automatic_sec_vet": False,
            "mock": False, "links": {},
        }

    def campaign(self, sid: str, service: str, status: str, updated: datetime, account: str = ACCOUNT,
                 tcr_id: str | None = "CABCDEF", brand: str = "BN" + "0" * 32) -> None:
        """A US A2P resource (`QE…`) of messaging service `service`; `tcr_id` its Campaign Registry id."""
        self.campaigns[sid] = {
            "sid": sid, "account_sid": account, "brand_registration_sid": brand,
            "messaging_service_sid": service, "description": "reminders", "message_samples": ["hi"],
            "us_app_to_person_usecase": "MIXED", "has_embedded_links": False, "has_embedded_phone": False,
            "campaign_status": status, "campaign_id": tcr_id, "is_externally_registered": False,
            "rate_limits": {}, "message_flow": "opt-in", "opt_in_message": None, "opt_out_message": None,
            "help_message": None, "opt_in_keywords": None, "opt_out_keywords": None, "help_keywords": None,
            "date_created": iso(updated), "date_updated": iso(updated),
            "url": f"https://messaging.twilio.com/v1/Services/{service}/Compliance/Usa2p/{sid}", "mock": False,
            "errors": [],
        }

    def call(self, sid: str, status: str, updated: datetime, started: datetime | None = None,
             account: str = ACCOUNT) -> None:
        uri = f"/2010-04-01/Accounts/{account}/Calls/{sid}.json"
        self.calls[sid] = {
            "sid": sid, "account_sid": account, "date_created": rfc2822(started or updated),
            "date_updated": rfc2822(updated), "parent_call_sid": None, "to": "+15555550199",
            "to_formatted": "(555) 555-0199", "from": "+15555550100", "from_formatted": "(555) 555-0100",
            "phone_number_sid": "PN" + "0" * 32, "status": status, "start_time": rfc2822(started or updated),
            "end_time": rfc2822(updated) if status in FINISHED_CALL else None,
            "duration": "12", "price": None, "price_unit": "USD", "direction": "outbound-api", "answered_by": None,
            "api_version": "2010-04-01", "forwarded_from": None, "group_sid": None, "caller_name": None,
            "queue_time": "0", "trunk_sid": None, "uri": uri,
            "subresource_uris": {"notifications": uri.replace(".json", "/Notifications.json"),
                                 "recordings": uri.replace(".json", "/Recordings.json")},
        }

    def tollfree_verification(self, sid: str, status: str, updated: datetime, account: str = ACCOUNT) -> None:
        self.tollfree[sid] = {
            "sid": sid, "account_sid": account, "customer_profile_sid": "BU" + "0" * 32,
            "trust_product_sid": "BU" + "1" * 32, "date_created": iso(updated), "date_updated": iso(updated),
            "regulated_item_sid": None, "business_name": "Owl, Inc.", "business_country": "US",
            "notification_email": "ops@example.com", "use_case_categories": ["TWO_FACTOR_AUTHENTICATION"],
            "use_case_summary": "codes", "production_message_sample": "Your code is 1234",
            "opt_in_image_urls": [], "opt_in_type": "VERBAL", "message_volume": "10",
            "tollfree_phone_number_sid": "PN" + "2" * 32, "tollfree_phone_number": "+18005550100",
            "status": status, "url": f"https://messaging.twilio.com/v1/Tollfree/Verifications/{sid}",
            "rejection_reason": "Opt-in unclear" if status == "TWILIO_REJECTED" else None,
            "error_code": 30445 if status == "TWILIO_REJECTED" else None, "edit_expiration": None,
            "edit_allowed": status == "TWILIO_REJECTED", "resource_links": {}, "external_reference_id": None,
        }

    # ---- the server ------------------------------------------------------------------------------

    def __enter__(self) -> "TwilioApi":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def fetched(self, fragment: str) -> int:
        return sum(1 for path, _ in self.requests if fragment in path)

    def _account(self, authorization: str) -> str | None:
        """The account an `Authorization: Basic` header authenticates as; None when it does not."""
        scheme, _, encoded = authorization.partition(" ")
        try:
            sid, _, secret = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            return None
        known = self.keys.get(sid)
        return known[1] if scheme == "Basic" and known and known[0] == secret else None

    def _answer(self, path: str, query: dict[str, list[str]], account: str | None) -> tuple[int, dict]:
        with self.lock:
            for key in (path, "*"):
                if self.faults.get(key):
                    status = self.faults[key].pop(0)
                    return status, _error(status, path)
        if account is None:
            return 401, _error(401, path)
        parts = path.strip("/").split("/")
        if parts[:3] == ["api", "2010-04-01", "Accounts"] and len(parts) >= 5:
            if parts[3] != account:  # Twilio: an API key reads its own account's resources only
                return 401, _error(401, path)
            kind = parts[4].removesuffix(".json").lower()  # Messages.json, Calls.json, Messages/SM….json
            if len(parts) == 5 and kind in ("messages", "calls"):
                listing = (("messages", self.messages, "DateSent", "date_sent", True) if kind == "messages"
                           else ("calls", self.calls, "StartTime", "start_time", False))
                return self._page(*listing, account, path, query)
            if len(parts) == 6 and kind in ("messages", "calls"):
                sid = parts[5].removesuffix(".json")
                return self._one(kind, sid, self.messages if kind == "messages" else self.calls, account, path)
        if parts[:2] == ["messaging", "v1"]:
            rest = parts[2:]
            if rest[:2] == ["Tollfree", "Verifications"] and len(rest) == 3:
                return self._one("tollfree", rest[2], self.tollfree, account, path)
            if rest[:2] == ["a2p", "BrandRegistrations"] and len(rest) == 3:
                return self._one("brands", rest[2], self.brands, account, path)
            if rest[:1] == ["Services"] and rest[2:4] == ["Compliance", "Usa2p"] and SID["services"].fullmatch(rest[1]):
                in_service = {sid: c for sid, c in self.campaigns.items() if c["messaging_service_sid"] == rest[1]}
                if len(rest) == 5:
                    return self._one("campaigns", rest[4], in_service, account, path)
                if len(rest) == 4:
                    return 200, self._v1_page(in_service, account, path, query)
        return 404, _error(404, path)

    def _one(self, kind: str, sid: str, resources: dict[str, dict], account: str, path: str) -> tuple[int, dict]:
        found = resources.get(sid) if SID[kind].fullmatch(sid) else None
        return (200, found) if found and found["account_sid"] == account else (404, _error(404, path))

    def _page(self, key: str, resources: dict[str, dict], filter_name: str, field: str, inclusive_before: bool,
              account: str, path: str, query: dict[str, list[str]]) -> tuple[int, dict]:
        """A 2010 API list page: `key` the records' key, `field` filtered by whole GMT days.

        `<filter_name>>`: on or after the day; `<filter_name><`: on or before it for messages'
        `DateSent`, before it for calls' `StartTime` (as Twilio documents each).
        """
        bounds = {}
        for op in (">", "<"):
            given = query.get(f"{filter_name}{op}", [""])[0]
            if given:
                try:
                    bounds[op] = date.fromisoformat(given) if len(given) == 10 else None
                except ValueError:
                    bounds[op] = None
                if bounds[op] is None:
                    return 400, _error(400, path, f"{filter_name}{op} must be a date, YYYY-MM-DD: {given}")
        since, until = bounds.get(">"), bounds.get("<")

        def inside(record: dict) -> bool:
            if not record[field]:
                return False
            day = parsedate_to_datetime(record[field]).astimezone(UTC).date()
            return ((since is None or day >= since)
                    and (until is None or day < until or (inclusive_before and day == until)))

        listed = sorted((r for r in resources.values() if r["account_sid"] == account and inside(r)),
                        key=lambda r: r["sid"])
        # Twilio caps a page (at 1,000); this stand-in caps lower, so that small windows take several pages.
        size = min(int(query.get("PageSize", [str(self.page_size)])[0]), self.page_size)
        number = int(query.get("Page", ["0"])[0])
        chunk = listed[number * size:(number + 1) * size]
        self.listed.update(record["sid"] for record in chunk)
        uri = path.removeprefix("/api")
        has_next = (number + 1) * size < len(listed)
        filters = "".join(f"&{filter_name}{op}={value.isoformat()}" for op, value in bounds.items())
        return 200, {
            key: chunk, "page": number, "page_size": size, "start": number * size, "end": number * size + len(chunk),
            "uri": f"{uri}?PageSize={size}&Page={number}{filters}",
            "first_page_uri": f"{uri}?PageSize={size}&Page=0{filters}",
            "previous_page_uri": f"{uri}?PageSize={size}&Page={number - 1}{filters}" if number else None,
            "next_page_uri": f"{uri}?PageSize={size}&Page={number + 1}&PageToken=PA{number + 1}{filters}"
            if has_next else None,
        }

    def _v1_page(self, resources: dict[str, dict], account: str, path: str, query: dict[str, list[str]]) -> dict:
        """A v1 list page (`meta` with absolute page URLs), as the Usa2p listing answers."""
        listed = sorted((r for r in resources.values() if r["account_sid"] == account), key=lambda r: r["sid"])
        size = min(int(query.get("PageSize", [str(self.page_size)])[0]), self.page_size)
        number = int(query.get("Page", ["0"])[0])
        url = "https://messaging.twilio.com" + path.removeprefix("/messaging")
        has_next = (number + 1) * size < len(listed)
        chunk = listed[number * size:(number + 1) * size]
        self.listed.update(record["sid"] for record in chunk)
        return {
            "compliance": chunk,
            "meta": {"page": number, "page_size": size, "key": "compliance",
                     "first_page_url": f"{url}?PageSize={size}&Page=0",
                     "previous_page_url": f"{url}?PageSize={size}&Page={number - 1}" if number else None,
                     "url": f"{url}?PageSize={size}&Page={number}",
                     "next_page_url": f"{url}?PageSize={size}&Page={number + 1}&PageToken=PA{number + 1}"
                     if has_next else None},
        }

    def _handler(self):
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                parts = urlsplit(self.path)
                account = api._account(self.headers.get("Authorization", ""))
                api.requests.append((self.path, account or ""))
                status, body = api._answer(parts.path, parse_qs(parts.query), account)
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                if status == 429 and api.retry_after is not None:
                    self.send_header("Retry-After", api.retry_after)
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        return Handler


def _error(status: int, path: str, message: str | None = None) -> dict:
    """Twilio's error body: 20003 for 401, 20404 for 404, 20429 for 429, the status otherwise."""
    code = {401: 20003, 404: 20404, 429: 20429}.get(status, status)
    words = {401: "Authenticate", 404: f"The requested resource {path} was not found", 429: "Too Many Requests",
             400: "Bad request"}
    return {"code": code, "message": message or words.get(status, "Service unavailable"),
            "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status}

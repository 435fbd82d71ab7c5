"""A local fake of the part of Twilio's REST API the reconciler and backfill ask, on 127.0.0.1.

Real HTTP, answered in the shapes the `twilio` package parses: the Message and Call resources (2010
API, RFC 2822 dates, `next_page_uri` pagination), A2P brand registrations, campaigns and toll-free
verifications (v1, ISO dates), Twilio's error bodies for 404 (deleted), 429 and 5xx. The `twilio` client's requests reach it through its own
http-client seam: `LoopbackHttpClient` sends `https://<domain>.twilio.com/...` to `/<domain>/...` here.
"""

import json
import threading
from collections import defaultdict
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from twilio.http.http_client import TwilioHttpClient

from sink_dev.samples import SAMPLE_ACCOUNT_SID

ACCOUNT = SAMPLE_ACCOUNT_SID  # the local stack's accepted account (TwilioAccountSids)


def rfc2822(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC), usegmt=False).replace("-0000", "+0000")


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeTwilio:
    def __init__(self, page_size: int = 2):
        self.page_size = page_size
        self.messages: dict[str, dict] = {}  # sid -> resource
        self.brands: dict[str, dict] = {}
        self.campaigns: dict[str, dict] = {}
        self.calls: dict[str, dict] = {}
        self.tollfree: dict[str, dict] = {}
        # Answers given before the real one, per path (or "*" for any): a list of HTTP statuses.
        self.faults: dict[str, list[int]] = defaultdict(list)
        self.requests: list[tuple[str, str]] = []  # (path, Authorization header)
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # ---- the resources ---------------------------------------------------------------------------

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

    def campaign(self, sid: str, service: str, status: str, updated: datetime, account: str = ACCOUNT) -> None:
        self.campaigns[sid] = {
            "sid": sid, "account_sid": account, "brand_registration_sid": "BN" + "0" * 32,
            "messaging_service_sid": service, "description": "reminders", "message_samples": ["hi"],
            "us_app_to_person_usecase": "MIXED", "has_embedded_links": False, "has_embedded_phone": False,
            "campaign_status": status, "campaign_id": "CABCDEF", "is_externally_registered": False,
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
            "end_time": rfc2822(updated) if status in ("completed", "busy", "failed", "no-answer", "canceled") else None,
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

    def __enter__(self) -> "FakeTwilio":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def http_client(self) -> "LoopbackHttpClient":
        return LoopbackHttpClient(self.base_url)

    def fetched(self, fragment: str) -> int:
        return sum(1 for path, _ in self.requests if fragment in path)

    def _answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, dict]:
        with self.lock:
            for key in (path, "*"):
                if self.faults.get(key):
                    status = self.faults[key].pop(0)
                    return status, _error(status, path)
        parts = path.strip("/").split("/")
        if parts[0] == "api" and parts[-1] == "Messages.json":
            return 200, self._page("messages", self.messages, "DateSent", "date_sent", parts[3], path, query)
        if parts[0] == "api" and parts[-1] == "Calls.json":
            return 200, self._page("calls", self.calls, "StartTime", "start_time", parts[3], path, query)
        if parts[0] == "api" and parts[-2] == "Messages":
            found = self.messages.get(parts[-1].removesuffix(".json"))
        elif parts[0] == "api" and parts[-2] == "Calls":
            found = self.calls.get(parts[-1].removesuffix(".json"))
        elif parts[:4] == ["messaging", "v1", "Tollfree", "Verifications"]:
            found = self.tollfree.get(parts[-1])
        elif parts[:3] == ["messaging", "v1", "a2p"]:
            found = self.brands.get(parts[-1])
        elif parts[:3] == ["messaging", "v1", "Services"]:
            found = self.campaigns.get(parts[-1])
            found = found if found and found["messaging_service_sid"] == parts[3] else None
        else:
            found = None
        return (200, found) if found else (404, _error(404, path))

    def _page(self, key: str, resources: dict[str, dict], filter_name: str, field: str, account: str, path: str,
              query: dict[str, list[str]]) -> dict:
        """A 2010 API list page: `key` the records' key, filtered on `field` by `<filter_name>>`/`<`."""
        since, until = query.get(f"{filter_name}>", [""])[0], query.get(f"{filter_name}<", [""])[0]
        listed = sorted(
            (r for r in resources.values() if r["account_sid"] == account
             and (not since or _parse(r[field]) >= _parse_iso(since))
             and (not until or _parse(r[field]) < _parse_iso(until))),
            key=lambda r: r["sid"])
        # Twilio caps a page (at 1,000); this fake caps lower, so that small windows take several pages.
        size = min(int(query.get("PageSize", [str(self.page_size)])[0]), self.page_size)
        number = int(query.get("Page", ["0"])[0])
        chunk = listed[number * size:(number + 1) * size]
        uri = path.removeprefix("/api")
        has_next = (number + 1) * size < len(listed)
        filters = "".join(f"&{filter_name}{op}={value}" for op, value in ((">", since), ("<", until)) if value)
        return {
            key: chunk, "page": number, "page_size": size, "start": number * size, "end": number * size + len(chunk),
            "uri": f"{uri}?PageSize={size}&Page={number}",
            "first_page_uri": f"{uri}?PageSize={size}&Page=0{filters}",
            "previous_page_uri": f"{uri}?PageSize={size}&Page={number - 1}{filters}" if number else None,
            "next_page_uri": f"{uri}?PageSize={size}&Page={number + 1}&PageToken=PA{number + 1}{filters}"
            if has_next else None,
        }

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                parts = urlsplit(self.path)
                fake.requests.append((parts.path, self.headers.get("Authorization", "")))
                status, body = fake._answer(parts.path, parse_qs(parts.query))
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                if status == 429:
                    self.send_header("Retry-After", "1")
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        return Handler


class LoopbackHttpClient(TwilioHttpClient):
    """The `twilio` package's own http client, with every Twilio domain mapped onto the fake."""

    def __init__(self, base_url: str):
        super().__init__(timeout=5)
        self.base_url = base_url

    def request(self, method, url, *args, **kwargs):
        parts = urlsplit(url)
        domain = parts.hostname.split(".")[0]  # api.twilio.com -> api, messaging.twilio.com -> messaging
        local = f"{self.base_url}/{domain}{parts.path}" + (f"?{parts.query}" if parts.query else "")
        return super().request(method, local, *args, **kwargs)


def _error(status: int, path: str) -> dict:
    words = {404: f"The requested resource {path} was not found", 429: "Too Many Requests"}
    return {"code": 20000 + status, "message": words.get(status, "Service unavailable"),
            "more_info": f"https://www.twilio.com/docs/errors/{20000 + status}", "status": status}


def _parse(rfc: str) -> datetime:
    from email.utils import parsedate_to_datetime

    return parsedate_to_datetime(rfc)


def _parse_iso(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)

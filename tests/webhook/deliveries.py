"""Twilio webhook deliveries as API Gateway presents them, for every deployment shape.

Each request is signed by the `twilio` package's own code over the URL Twilio calls: the sink URL
(as the operator gave it to Twilio) with `bodySHA256=<hex>` appended to its query.
"""

import base64
import hashlib
from dataclasses import dataclass, replace
from urllib.parse import parse_qsl, urlsplit

from twilio.request_validator import RequestValidator

from sink_dev.samples import LOCAL_TEST_AUTH_TOKEN, TWILIO_SOURCE_IP

EXECUTE_API = "abc123defg.execute-api.us-east-1.amazonaws.com"
CUSTOM_DOMAIN = "hooks.example.com"


@dataclass(frozen=True)
class Deployment:
    """Where the webhook is deployed: the URL Twilio calls and the path API Gateway puts in the event."""

    name: str
    api: str  # "http" (payload 2.0) or "rest" (payload 1.0)
    sink_url: str  # the destination given to Twilio (may hold a query of its own)
    stage: str
    event_path: str  # HTTP API rawPath, or REST API requestContext.path
    rest_path: str = "/events"  # REST API `path` (no stage)
    public_base_url: str = ""  # PUBLIC_BASE_URL the operator sets (custom domains)


DEPLOYMENTS = [
    Deployment("http-default-stage", "http", f"https://{EXECUTE_API}/events", "$default", "/events"),
    Deployment("http-named-stage", "http", f"https://{EXECUTE_API}/prod/events", "prod", "/prod/events"),
    Deployment("http-with-port-443", "http", f"https://{EXECUTE_API}:443/events", "$default", "/events"),
    Deployment("http-custom-domain", "http", f"https://{CUSTOM_DOMAIN}/events", "$default", "/events",
               public_base_url=f"https://{CUSTOM_DOMAIN}"),
    Deployment("http-custom-domain-base-path-kept", "http", f"https://{CUSTOM_DOMAIN}/twilio/events", "$default",
               "/twilio/events", public_base_url=f"https://{CUSTOM_DOMAIN}/twilio"),
    Deployment("http-custom-domain-base-path-dropped", "http", f"https://{CUSTOM_DOMAIN}/twilio/events", "prod",
               "/prod/events", public_base_url=f"https://{CUSTOM_DOMAIN}/twilio"),
    Deployment("http-custom-domain-port-443", "http", f"https://{CUSTOM_DOMAIN}:443/twilio/events", "$default",
               "/twilio/events", public_base_url=f"https://{CUSTOM_DOMAIN}/twilio"),
    Deployment("http-query-as-sent", "http", f"https://{EXECUTE_API}/events?tenant=acme&tag=b&tag=a&tag=b"
               "&note=caf%C3%A9%20%2B%26%3D%2F&empty=", "$default", "/events"),
    Deployment("rest-stage", "rest", f"https://{EXECUTE_API}/prod/events", "prod", "/prod/events"),
    Deployment("rest-with-port-443", "rest", f"https://{EXECUTE_API}:443/prod/events", "prod", "/prod/events"),
    Deployment("rest-custom-domain-base-path", "rest", f"https://{CUSTOM_DOMAIN}/twilio/events", "prod",
               "/twilio/events", rest_path="/twilio/events", public_base_url=f"https://{CUSTOM_DOMAIN}/twilio"),
    Deployment("rest-query-rfc3986", "rest", f"https://{EXECUTE_API}/prod/events?tenant=acme&tag=a&tag=b"
               "&note=caf%C3%A9%20%2B%26%3D%2F", "prod", "/prod/events"),
    Deployment("rest-query-typed-by-hand", "rest", f"https://{EXECUTE_API}/prod/events?at=10:30&list=a,b"
               "&next=/x/y", "prod", "/prod/events"),
    Deployment("rest-query-form-style", "rest", f"https://{EXECUTE_API}/prod/events?who=a+b", "prod",
               "/prod/events"),
]
BY_NAME = {deployment.name: deployment for deployment in DEPLOYMENTS}
DEFAULT = BY_NAME["http-default-stage"]


def called_url(deployment: Deployment, body: bytes) -> str:
    """What Twilio requests: the sink URL with bodySHA256 appended to its query."""
    separator = "&" if "?" in deployment.sink_url else "?"
    return f"{deployment.sink_url}{separator}bodySHA256={hashlib.sha256(body).hexdigest()}"


def signature(url: str, token: str = LOCAL_TEST_AUTH_TOKEN, algorithm: str | None = None) -> str:
    return RequestValidator(token).compute_signature(url, {}, algorithm)


def event_for(deployment: Deployment, body: bytes | str, token: str = LOCAL_TEST_AUTH_TOKEN,
              algorithm: str | None = None, settings_header: str | None = None,
              base64_body: bool | None = None) -> dict:
    """The Lambda event API Gateway hands the webhook for a delivery of `body`, signed with `token`."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    url = called_url(deployment, raw)
    headers = {
        "content-type": "application/json",
        "user-agent": "Twilio-Event-Streams/1.0",
        "x-twilio-signature": signature(url, token, algorithm),
    }
    if settings_header:
        headers["x-twilio-webhooks-signature-settings"] = settings_header
    if base64_body is None:
        try:
            raw.decode("utf-8")
            base64_body = False
        except UnicodeDecodeError:
            base64_body = True
    text = base64.b64encode(raw).decode("ascii") if base64_body else raw.decode("utf-8")
    split = urlsplit(url)
    if deployment.api == "http":
        return _http_api_event(deployment, split, headers, text, base64_body)
    return _rest_api_event(deployment, split, headers, text, base64_body)


def with_public_base_url(deployment: Deployment, public_base_url: str) -> Deployment:
    return replace(deployment, public_base_url=public_base_url)


def _http_api_event(deployment: Deployment, split, headers: dict, body: str, is_base64: bool) -> dict:
    return {
        "version": "2.0",
        "routeKey": "POST /events",
        "rawPath": deployment.event_path,
        "rawQueryString": split.query,
        "headers": headers | {"host": split.hostname},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123defg",
            "domainName": split.hostname,
            "domainPrefix": split.hostname.split(".", 1)[0],
            "http": {"method": "POST", "path": deployment.event_path, "protocol": "HTTP/1.1",
                     "sourceIp": TWILIO_SOURCE_IP, "userAgent": headers["user-agent"]},
            "requestId": "req-http",
            "routeKey": "POST /events",
            "stage": deployment.stage,
            "time": "16/Jun/2025:17:10:01 +0000",
            "timeEpoch": 1750093801000,
        },
        "body": body,
        "isBase64Encoded": is_base64,
    }


def _rest_api_event(deployment: Deployment, split, headers: dict, body: str, is_base64: bool) -> dict:
    # REST API hands the query over decoded, grouped by name, in first-appearance order.
    multi: dict[str, list[str]] = {}
    for name, value in parse_qsl(split.query, keep_blank_values=True):
        multi.setdefault(name, []).append(value)
    return {
        "resource": "/events",
        "path": deployment.rest_path,
        "httpMethod": "POST",
        "headers": {name.title(): value for name, value in headers.items()} | {"Host": split.hostname},
        "multiValueHeaders": {name.title(): [value] for name, value in headers.items()},
        "queryStringParameters": {name: values[-1] for name, values in multi.items()} or None,
        "multiValueQueryStringParameters": multi or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123defg",
            "domainName": split.hostname,
            "httpMethod": "POST",
            "identity": {"sourceIp": TWILIO_SOURCE_IP, "userAgent": headers["user-agent"]},
            "path": deployment.event_path,
            "protocol": "HTTP/1.1",
            "requestId": "req-rest",
            "requestTimeEpoch": 1750093801000,
            "resourcePath": "/events",
            "stage": deployment.stage,
        },
        "body": body,
        "isBase64Encoded": is_base64,
    }

"""API Gateway HTTP API, locally: an HTTP server on 127.0.0.1 that turns each request on the template's
routes into a payload-2.0 event exactly as API Gateway builds it, invokes the function, and answers
with what it returned. Routes are matched as API Gateway matches them: `METHOD /path`, then
`ANY /path`, then the `$default` route (the one an HttpApi event without Method and Path makes);
a request none matches gets API Gateway's own 404.

The signature Twilio sends covers the URL Twilio called. Locally that is `http://127.0.0.1:<port>/events`
(or a tunnel's public URL): the webhook function learns it from PUBLIC_BASE_URL, the template's own
setting for URLs that differ from the execute-api one.
"""

import base64
import json
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

from sink_local.functions import FunctionError
from sink_local.stack import ACCOUNT_ID

API_ID = "local"
# API Gateway passes these bodies as text; any other body is base64-encoded.
TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript")
MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit


def http_api_event(method: str, target: str, headers: list[tuple[str, str]], body: bytes, source_ip: str,
                   route_key: str) -> dict:
    """The payload-2.0 event API Gateway HTTP API builds for a request (`target` as sent: path?query)."""
    path, _, query = target.partition("?")
    merged: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        name = name.lower()
        if name == "cookie":
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
            continue
        merged[name] = f"{merged[name]},{value}" if name in merged else value
    domain = merged.get("host", "127.0.0.1").rsplit(":", 1)[0]
    now = datetime.now(UTC)
    content_type = merged.get("content-type", "")
    event = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": query,
        "headers": merged,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": API_ID,
            "domainName": domain,
            "domainPrefix": domain.split(".", 1)[0],
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": source_ip,
                     "userAgent": merged.get("user-agent", "")},
            "requestId": base64.b64encode(uuid.uuid4().bytes[:11]).decode("ascii"),
            "routeKey": route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        # Decoded, repeated names joined with commas, as API Gateway does.
        params: dict[str, str] = {}
        for name, value in parse_qsl(query, keep_blank_values=True):
            params[name] = f"{params[name]},{value}" if name in params else value
        event["queryStringParameters"] = params
    if body:
        text = None
        if content_type.lower().startswith(TEXT_TYPES):
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                text = None
        if text is None:
            event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode("ascii"), True
        else:
            event["body"] = text
    return event


def http_response(result) -> tuple[int, dict[str, str], bytes]:
    """What API Gateway answers for a payload-2.0 function result."""
    if not isinstance(result, dict) or "statusCode" not in result:
        # A result without statusCode is taken as a JSON body with 200.
        return 200, {"content-type": "application/json"}, json.dumps(result).encode()
    headers = {k.lower(): str(v) for k, v in (result.get("headers") or {}).items()}
    body = result.get("body") or ""
    raw = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode("utf-8")
    return int(result["statusCode"]), headers, raw


DEFAULT_ROUTE = "$default"


class HttpApi:
    """Serves the routes of the template's HTTP API on 127.0.0.1 (route keys: `POST /events`, `$default`)."""

    def __init__(self, routes: list[str], invoke: Callable[[dict], dict | None], port: int = 0,
                 on_request: Callable[[dict, int, bytes], None] | None = None):
        self.routes = routes
        # The URL to give Twilio: the first route with a path.
        self.path = next(route.split(" ", 1)[1] for route in self.routes if route != DEFAULT_ROUTE)
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802 - http.server's naming
                api.handle(self)

            do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_POST  # noqa: N815 - routed like any

            def log_message(self, *args):  # the caller prints one line per request instead
                pass

        self.invoke = invoke
        self.on_request = on_request or (lambda event, status, body: None)
        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        # stop() waits for the serving loop's next poll: every 50 ms rather than the default 500 ms
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, name="http-api",
                                        daemon=True)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        path = request.path.partition("?")[0]
        length = int(request.headers.get("content-length") or 0)
        if length > MAX_BODY_BYTES:
            return self._send(request, HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {}, b'{"message":"Request Entity Too Large"}')
        body = request.rfile.read(length) if length else b""
        route_key = self.route_key(request.command, path)
        if route_key is None:
            return self._send(request, HTTPStatus.NOT_FOUND, {}, b'{"message":"Not Found"}')
        event = http_api_event(request.command, request.path, list(request.headers.items()), body,
                               request.client_address[0], route_key)
        try:
            status, headers, raw = http_response(self.invoke(event))
        except FunctionError:
            status, headers, raw = 500, {}, b'{"message":"Internal Server Error"}'
        self.on_request(event, status, raw)
        self._send(request, status, headers, raw)

    def route_key(self, method: str, path: str) -> str | None:
        for key in (f"{method} {path}", f"ANY {path}"):
            if key in self.routes:
                return key
        return DEFAULT_ROUTE if DEFAULT_ROUTE in self.routes else None

    @staticmethod
    def _send(request: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes) -> None:
        request.send_response(status)
        headers = {"content-type": "application/json"} | headers
        for name, value in headers.items():
            request.send_header(name, value)
        request.send_header("content-length", str(len(body)))
        request.send_header("apigw-requestid", uuid.uuid4().hex[:16])
        request.end_headers()
        request.wfile.write(body)

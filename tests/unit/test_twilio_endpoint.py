"""The reconciler's http client: Twilio's own endpoints by default, a stand-in's with TWILIO_API_BASE_URL,
and a 429's Retry-After kept for the retry loop (reconcile/client.py's SinkHttpClient)."""

import pytest
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response

from twilio_sink.reconcile.client import RateLimited, SinkHttpClient


@pytest.fixture
def sent(monkeypatch):
    """The URLs the package's own client was asked for, answered `answer`."""
    urls: list[str] = []
    answer = {"response": Response(200, "{}", {})}

    def request(self, method, url, *args, **kwargs):
        urls.append(url)
        return answer["response"]

    monkeypatch.setattr(TwilioHttpClient, "request", request)
    return urls, answer


@pytest.mark.parametrize(("base_url", "url", "expected"), [
    ("", "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json?PageSize=2",
     "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json?PageSize=2"),
    ("http://127.0.0.1:8089/", "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json?PageSize=2",
     "http://127.0.0.1:8089/api/2010-04-01/Accounts/AC1/Messages.json?PageSize=2"),
    ("http://twilio.local/stand-in", "https://messaging.twilio.com/v1/Tollfree/Verifications/HH1",
     "http://twilio.local/stand-in/messaging/v1/Tollfree/Verifications/HH1"),
])
def test_a_base_url_maps_every_twilio_product_under_it(base_url, url, expected, sent):
    urls, _ = sent
    SinkHttpClient(base_url).request("GET", url)
    assert urls == [expected]


@pytest.mark.parametrize(("header", "seconds"), [("7", 7.0), ("0.5", 0.5), (None, None), ("Wed, 21 Oct", None)])
def test_a_429_raises_with_its_retry_after(header, seconds, sent):
    _, answer = sent
    answer["response"] = Response(429, "{}", {"Retry-After": header} if header else {})
    with pytest.raises(RateLimited) as raised:
        SinkHttpClient().request("GET", "https://api.twilio.com/2010-04-01/Accounts/AC1/Calls/CA1.json")
    assert raised.value.retry_after == seconds

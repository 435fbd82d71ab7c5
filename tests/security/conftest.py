"""The security suite asserts what the webhook answers to each attack, not how fast: on a loaded
machine the webhook's own deadline (4.5 s in tests) would turn some answers into 503 "retry". The
deadline has its own tests (tests/integration/test_webhook.py); here it is set out of reach."""

import pytest


@pytest.fixture(autouse=True)
def _no_deadline(monkeypatch):
    from twilio_sink import config, webhook

    monkeypatch.setattr(webhook, "settings", lambda: config.settings().model_copy(update={"webhook_deadline_seconds": 60.0}))

"""Concurrent invocations on one entity: conditional writes keep the winner and never regress."""

from tests.support import factories as f
from tests.support.sinks import consume, post


def test_a_write_that_lost_the_race_replans_on_the_winners_state(stack, consumer, webhook, context, monkeypatch):
    # Given the consumer read "no state" for MM1, but a webhook delivery of `delivered` lands
    # between its read and its write
    from twilio_sink.pipeline import default_pipeline

    store = default_pipeline().store
    real_load = store.load_states

    def load_then_race(pks):
        states = real_load(pks)
        monkeypatch.setattr(store, "load_states", real_load)
        assert post(webhook, context, [delivered])[0] == 200
        return states

    delivered = f.message("delivered", seconds=2)
    monkeypatch.setattr(store, "load_states", load_then_race)
    # When the consumer applies queued, sent
    response = consume(consumer, context, [f.message("queued", seconds=0), f.message("sent", seconds=1)])
    # Then its conditional write failed, it re-planned on `delivered`, and nothing regressed
    assert response == {"batchItemFailures": []}
    state = stack.states()["message#MM1"]
    assert state["status"] == "delivered" and state["version"] == 1
    assert [n["status"] for n in stack.notifications()] == ["delivered"]


def test_a_stale_read_cannot_regress_a_newer_state(stack, consumer, context, monkeypatch):
    # Given MM1 is at `read` but the consumer is handed an old snapshot saying `queued`
    consume(consumer, context, [f.message("queued", seconds=0)])
    from twilio_sink.pipeline import default_pipeline

    store = default_pipeline().store
    old = store.load_states(["message#MM1"])
    consume(consumer, context, [f.message("read", seconds=9)], first_sequence=10)
    stack.notifications()
    monkeypatch.setattr(store, "load_states", lambda pks: old)
    # When `sent` arrives
    response = consume(consumer, context, [f.message("sent", seconds=1)], first_sequence=20)
    # Then the write's condition refuses it and the re-plan finds it stale
    assert response == {"batchItemFailures": []}
    assert stack.states()["message#MM1"]["status"] == "read"
    assert stack.notifications() == []



def test_every_write_of_claims_moves_updated_at(stack, webhook, context, fail):
    delivery = [f.message("queued")]
    # A delivery whose publish fails: its state write, then its claims released (a write of claims alone)
    fail("sns", "publish_batch", times=1)
    assert post(webhook, context, delivery)[0] == 503
    released = stack.states()["message#MM1"]
    [claim] = released["claims"].values()
    assert claim.endswith("|0")
    # Twilio's retry takes the released claim over and publishes it: a state write of claims alone
    status, answer = post(webhook, context, delivery)
    assert status == 200 and answer["duplicate"] == 1
    taken = stack.states()["message#MM1"]
    assert taken["version"] == released["version"] + 1
    assert taken["updated_at"] > released["updated_at"]


def test_a_claims_release_says_when_it_was_written(stack, webhook, context, fail, monkeypatch):
    from twilio_sink import pipeline

    written = {}
    real = pipeline.Pipeline._write_states

    def remember(self, *args):
        results = real(self, *args)
        written["updated_at"] = stack.states()["message#MM1"]["updated_at"]
        return results

    monkeypatch.setattr(pipeline.Pipeline, "_write_states", remember)
    fail("sns", "publish_batch", times=1)
    assert post(webhook, context, [f.message("queued")])[0] == 503
    assert stack.states()["message#MM1"]["updated_at"] > written["updated_at"]  # the release's own time

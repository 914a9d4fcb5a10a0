"""The Stripe emulator through the official `stripe` SDK and real webhook endpoints."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import stripe

from harness.emulator import DeliverySettings, EmulatorConfig, EmulatorThread
from harness.target.emulator_client import EmulatorControlError
from harness.waiting import wait_until
from tests.support import SECRET, EmulatorWorld, Received, WebhookSink

KEY = "sk_test_tokenproof"
FAST = DeliverySettings(retry_delays_s=(0.02, 0.05, 0.1), attempt_timeout_s=5)


class World(EmulatorWorld):
    def __init__(self, emulator: EmulatorThread, sink: WebhookSink) -> None:
        super().__init__(emulator, sink, KEY)

    def create(self, **params: Any) -> stripe.PaymentIntent:
        # Card only, as a service that takes cards does it: no return_url needed.
        merged: Any = {
            "amount": 999,
            "currency": "usd",
            "confirm": True,
            "payment_method_types": ["card"],
            **params,
        }
        return self.client.v1.payment_intents.create(params=merged)


@contextlib.contextmanager
def _running(sink: WebhookSink, delivery: DeliverySettings = FAST) -> Iterator[World]:
    """An emulator delivering to `sink`, with its clients; all stopped on the way out."""
    config = EmulatorConfig(webhook_url=sink.url, webhook_secret=SECRET, delivery=delivery)
    with sink, EmulatorThread(config) as emulator:
        world = World(emulator, sink)
        try:
            yield world
        finally:
            world.control.close()


@pytest.fixture
def world() -> Iterator[World]:
    with _running(WebhookSink()) as w:
        yield w


def _types_for(received: list[Received], intent_id: str) -> list[str]:
    out = []
    for r in received:
        obj = r.body["data"]["object"]
        if obj.get("id") == intent_id or obj.get("payment_intent") == intent_id:
            out.append(r.type)
    return out


def test_card_purchase_succeeds_and_sends_signed_events(world: World) -> None:
    intent = world.create(payment_method="pm_card_visa", metadata={"userId": "u1"})
    assert intent.status == "succeeded"
    assert intent.metadata["userId"] == "u1"
    assert str(intent.client_secret).startswith(intent.id + "_secret_")
    received = world.sink.wait_for(lambda r: len(r) >= 3, "three events")
    assert all(r.verified for r in received)
    assert sorted(r.type for r in received) == [
        "charge.succeeded",
        "payment_intent.created",
        "payment_intent.succeeded",
    ]
    event = next(r.body for r in received if r.type == "payment_intent.succeeded")
    assert event["object"] == "event" and event["livemode"] is False
    assert event["data"]["object"]["id"] == intent.id
    assert event["request"]["idempotency_key"]


async def test_async_client_purchase(world: World) -> None:
    http_client = stripe.HTTPXClient()
    client = stripe.StripeClient(
        KEY,
        base_addresses={"api": world.emulator.url},
        max_network_retries=2,
        http_client=http_client,
    )
    params: Any = {
        "amount": 499,
        "currency": "usd",
        "payment_method": "pm_card_visa",
        "payment_method_types": ["card"],
    }
    try:
        intent = await client.v1.payment_intents.create_async(params=params)
        assert intent.status == "requires_confirmation"
        confirmed = await client.v1.payment_intents.confirm_async(intent.id)
        assert confirmed.status == "succeeded"
        fetched = await client.v1.payment_intents.retrieve_async(intent.id)
        assert fetched.amount_received == 499
    finally:
        await http_client.close_async()  # type: ignore[no-untyped-call]


def test_module_level_calls(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stripe, "api_key", KEY)
    monkeypatch.setattr(stripe, "api_base", world.emulator.url)
    intent = stripe.PaymentIntent.create(amount=100, currency="usd")
    assert intent.status == "requires_payment_method"
    canceled = stripe.PaymentIntent.cancel(intent.id)
    assert canceled.status == "canceled"
    listed = stripe.PaymentIntent.list(limit=5)
    assert [i.id for i in listed.data] == [intent.id]


@pytest.mark.parametrize(
    ("method", "decline_code"),
    [
        ("pm_card_chargeDeclined", "generic_decline"),
        ("pm_card_chargeDeclinedInsufficientFunds", "insufficient_funds"),
    ],
)
def test_declines_are_card_errors(world: World, method: str, decline_code: str) -> None:
    with pytest.raises(stripe.CardError) as info:
        world.create(payment_method=method)
    error = info.value
    assert error.http_status == 402
    assert error.code == "card_declined"
    assert error.error is not None and error.error.decline_code == decline_code
    intent = error.error.payment_intent
    assert intent is not None and intent.status == "requires_payment_method"
    assert intent.payment_method is None
    # Deliveries run concurrently: wait for the one that matters, not a count.
    received = world.sink.wait_for(
        lambda r: "payment_intent.payment_failed" in [x.type for x in r], "payment_failed"
    )
    assert "payment_intent.payment_failed" in [r.type for r in received]


def test_three_ds_authenticated(world: World) -> None:
    intent = world.create(payment_method="pm_card_threeDSecure2Required", return_url="https://x/y")
    assert intent.status == "requires_action"
    assert intent.next_action is not None and intent.next_action.type == "redirect_to_url"
    world.control.customer(intent.id, "authenticate")
    assert world.client.v1.payment_intents.retrieve(intent.id).status == "succeeded"
    # Deliveries run concurrently, as Stripe's do: every event arrives, in no
    # promised order (a charge event may overtake the intent's own).
    expected = {
        "payment_intent.created",
        "payment_intent.requires_action",
        "payment_intent.succeeded",
    }
    received = world.sink.wait_for(
        lambda r: expected <= set(_types_for(r, intent.id)), "the intent's three events"
    )
    assert _types_for(received, intent.id).count("payment_intent.succeeded") == 1


def test_three_ds_failed_and_abandoned(world: World) -> None:
    failed = world.create(payment_method="pm_card_authenticationRequired")
    assert failed.next_action is not None and failed.next_action.type == "use_stripe_sdk"
    world.control.customer(failed.id, "fail")
    after = world.client.v1.payment_intents.retrieve(failed.id)
    assert after.status == "requires_payment_method"
    assert after.last_payment_error is not None
    assert after.last_payment_error.code == "payment_intent_authentication_failure"
    abandoned = world.create(payment_method="pm_card_threeDSecure2Required")
    world.control.customer(abandoned.id, "abandon")
    assert world.client.v1.payment_intents.retrieve(abandoned.id).status == "canceled"
    with pytest.raises(EmulatorControlError, match="requires_action"):
        world.control.customer(abandoned.id, "authenticate")


def test_cancel_of_succeeded_intent_is_refused(world: World) -> None:
    intent = world.create(payment_method="pm_card_visa")
    with pytest.raises(stripe.InvalidRequestError) as info:
        world.client.v1.payment_intents.cancel(intent.id)
    assert info.value.code == "payment_intent_unexpected_state"


def test_idempotent_replay_and_mismatch(world: World) -> None:
    params: Any = {"amount": 999, "currency": "usd", "payment_method": "pm_card_visa"}
    options: Any = {"idempotency_key": "k-1"}
    first = world.client.v1.payment_intents.create(params=params, options=options)
    again = world.client.v1.payment_intents.create(params=params, options=options)
    assert again.id == first.id
    assert again.last_response is not None
    assert again.last_response.headers.get("Idempotent-Replayed") == "true"
    changed: Any = dict(params, amount=1000)
    with pytest.raises(stripe.IdempotencyError):
        world.client.v1.payment_intents.create(
            params=changed,
            options=options,
        )
    assert len(world.control.state()["intents"]) == 1


def test_same_key_in_flight_gets_409(world: World) -> None:
    world.control.add_fault("latency", latency_s=0.5, times=1)
    headers = {"Authorization": f"Bearer {KEY}", "Idempotency-Key": "busy"}
    body = {"amount": "999", "currency": "usd"}

    async def race() -> list[int]:
        async with httpx.AsyncClient(base_url=world.emulator.url) as http:
            slow = asyncio.create_task(http.post("/v1/payment_intents", data=body, headers=headers))
            # The slow one holds the key once the emulator has logged it.
            await asyncio.to_thread(
                wait_until,
                lambda: bool(world.control.state()["idempotency_keys"]),
                within=10,
                what="first request holds the key",
            )
            fast = await http.post("/v1/payment_intents", data=body, headers=headers)
            return [(await slow).status_code, fast.status_code]

    slow_status, fast_status = asyncio.run(race())
    assert (slow_status, fast_status) == (200, 409)
    assert len(world.control.state()["intents"]) == 1


def test_sdk_retry_after_dropped_response_reuses_key(world: World) -> None:
    world.control.add_fault("commit_then_drop", path="^/v1/payment_intents$", times=1)
    intent = world.create(payment_method="pm_card_visa")
    state = world.control.state()
    assert [i["id"] for i in state["intents"]] == [intent.id]
    posts = [r for r in state["requests"] if r["method"] == "POST"]
    assert len(posts) == 2
    assert posts[0]["idempotency_key"] == posts[1]["idempotency_key"]
    assert posts[0].get("dropped") and posts[1].get("replayed")


def test_dropped_as_500_then_replayed(world: World) -> None:
    world.control.add_fault("commit_then_drop", drop="500", times=1)
    intent = world.create(payment_method="pm_card_visa")
    assert intent.status == "succeeded"
    assert len(world.control.state()["intents"]) == 1


def test_rate_limit_is_not_retried_by_the_sdk(world: World) -> None:
    world.control.add_fault("error", status=429, times=1)
    with pytest.raises(stripe.RateLimitError):
        world.create(payment_method="pm_card_visa")
    assert world.control.state()["intents"] == []
    assert world.create(payment_method="pm_card_visa").status == "succeeded"


@pytest.mark.parametrize("status", [500, 503])
def test_error_fault_runs_nothing_and_sdk_retries(world: World, status: int) -> None:
    world.control.add_fault("error", status=status, times=1)
    intent = world.create(payment_method="pm_card_visa")
    state = world.control.state()
    assert [r["status"] for r in state["requests"]] == [status, 200]
    assert [i["id"] for i in state["intents"]] == [intent.id]
    # Stripe's words are logged with the error, for tokenproof to know them as
    # internal text when a service passes them on in a 5xx.
    assert state["requests"][0].get("error_message") == "An unknown error occurred"


def test_fault_matches_payment_method_and_metadata(world: World) -> None:
    world.control.add_fault("error", status=503, payment_method="pm_card_mastercard")
    world.control.add_fault("error", status=503, metadata={"userId": "bad"})
    assert world.create(payment_method="pm_card_visa").status == "succeeded"
    no_retry = stripe.StripeClient(KEY, base_addresses={"api": world.emulator.url})
    mastercard: Any = {"amount": 999, "currency": "usd", "payment_method": "pm_card_mastercard"}
    with pytest.raises(stripe.APIError):
        no_retry.v1.payment_intents.create(params=mastercard)
    flagged: Any = {"amount": 999, "currency": "usd", "metadata": {"userId": "bad"}}
    with pytest.raises(stripe.APIError):
        no_retry.v1.payment_intents.create(params=flagged)


def test_stripe_shaped_errors_for_bad_requests(world: World) -> None:
    with httpx.Client(base_url=world.emulator.url) as http:
        no_auth = http.post("/v1/payment_intents", data={"amount": "100", "currency": "usd"})
        assert no_auth.status_code == 401
        assert no_auth.json()["error"]["type"] == "invalid_request_error"
        auth = {"Authorization": f"Bearer {KEY}"}
        missing = http.get("/v1/nothing", headers=auth)
        assert missing.status_code == 404 and "error" in missing.json()
        for data in (
            {"amount": "12abc", "currency": "usd"},
            {"amount": "10", "currency": "usd"},
            {"currency": "usd"},
            {"amount": "100", "currency": "usd", "bogus": "1"},
            {"amount": "100", "currency": "usd", "payment_method": "pm_nope"},
        ):
            bad = http.post("/v1/payment_intents", data=data, headers=auth)
            assert bad.status_code == 400, data
            assert bad.json()["error"]["type"] == "invalid_request_error"
        unknown = http.get("/v1/payment_intents/pi_missing", headers=auth)
        assert unknown.status_code == 404
        assert unknown.json()["error"]["code"] == "resource_missing"
    assert world.control.state()["intents"] == []


# -- delivery control ---------------------------------------------------------------


def test_non_2xx_is_retried_until_accepted() -> None:
    respond = lambda n, r: 500 if n < 2 else 200  # noqa: E731
    with _running(WebhookSink(respond=respond)) as world:
        world.control.add_delivery_rule("immediate", event_type="payment_intent.created")
        world.client.v1.payment_intents.create(params={"amount": 100, "currency": "usd"})
        world.control.wait_settled()
        statuses = [a["status"] for a in world.control.state()["deliveries"]]
    assert statuses == [500, 500, 200]


def test_before_response_delivers_first(world: World) -> None:
    world.control.add_delivery_rule("before_response", event_type="payment_intent.succeeded")
    intent = world.create(payment_method="pm_card_visa")
    # No waiting: the event was answered before the API call returned.
    assert "payment_intent.succeeded" in _types_for(world.sink.received, intent.id)


def test_before_response_waits_only_so_long_for_a_service_that_cannot_answer() -> None:
    """A service serving one request at a time cannot take the webhook while its
    purchase waits on Stripe: the API answers after `before_response_within_s`
    and the webhook, still in flight, is delivered once the service takes it."""
    free = threading.Event()  # set: the service's one thread is free again
    settings = DeliverySettings(
        retry_delays_s=(0.02,), attempt_timeout_s=10, before_response_within_s=0.3
    )
    with _running(WebhookSink(hold=free), settings) as world:
        world.control.add_delivery_rule("before_response", event_type="payment_intent.succeeded")
        intent = world.create(amount=100, payment_method="pm_card_visa")
        answered_first = "payment_intent.succeeded" in world.sink.types()
        free.set()
        world.control.wait_settled()
        delivered = [
            (d["event_type"], d["status"])
            for d in world.control.state()["deliveries"]
            if d["event_type"] == "payment_intent.succeeded"
        ]
    assert intent.status == "succeeded" and not answered_first
    assert delivered == [("payment_intent.succeeded", 200)]


def test_hold_and_release(world: World) -> None:
    world.control.add_delivery_rule("hold", event_type="payment_intent.succeeded")
    intent = world.create(payment_method="pm_card_visa")
    world.control.wait_settled()
    assert "payment_intent.succeeded" not in world.sink.types()
    assert world.control.settled()["held"] == 1
    assert world.control.release(intent_id=intent.id) == 1
    world.sink.wait_for(
        lambda r: "payment_intent.succeeded" in [x.type for x in r], "released event"
    )


def test_delay_delivers_later(world: World) -> None:
    world.control.add_delivery_rule("delay", event_type="payment_intent.succeeded", delay_s=0.3)
    world.create(payment_method="pm_card_visa")
    assert "payment_intent.succeeded" not in world.sink.types()
    world.sink.wait_for(lambda r: "payment_intent.succeeded" in [x.type for x in r], "delayed")


def test_duplicates_share_the_event_id(world: World) -> None:
    world.control.add_delivery_rule("duplicate", event_type="payment_intent.succeeded", copies=3)
    world.create(payment_method="pm_card_visa")
    world.control.wait_settled()
    ids = [r.event_id for r in world.sink.received if r.type == "payment_intent.succeeded"]
    assert len(ids) == 3 and len(set(ids)) == 1


def test_parallel_copies_are_in_flight_together() -> None:
    hold = threading.Event()
    with _running(WebhookSink(respond=lambda n, r: 200, hold=hold)) as world:
        control = world.control
        control.add_delivery_rule("parallel", event_type="payment_intent.created", copies=3)
        control.add_delivery_rule("hold", event_type="payment_intent.*")
        world.client.v1.payment_intents.create(params={"amount": 100, "currency": "usd"})

        # Three attempts started while none has been answered: they overlap.
        def started() -> int:
            return len([a for a in control.state()["deliveries"] if a["status"] is None])

        wait_until(lambda: started() == 3, within=10, what="three attempts in flight")
        hold.set()
        control.wait_settled()
        assert len(world.sink.received) == 3


def test_reorder_delivers_later_event_first(world: World) -> None:
    world.control.add_delivery_rule("reorder", event_type="payment_intent.*", window=2)
    intent = world.create(payment_method="pm_card_visa")
    world.control.wait_settled()
    # charge.succeeded is outside the rule and may arrive anywhere between them.
    pi_types = [t for t in _types_for(world.sink.received, intent.id) if t.startswith("payment_")]
    assert pi_types == ["payment_intent.succeeded", "payment_intent.created"]


def test_first_attempt_dropped_then_retried(world: World) -> None:
    world.control.add_delivery_rule("drop_first", event_type="payment_intent.succeeded")
    world.create(payment_method="pm_card_visa")
    world.control.wait_settled()
    attempts = [
        a
        for a in world.control.state()["deliveries"]
        if a["event_type"] == "payment_intent.succeeded"
    ]
    assert [a["dropped"] for a in attempts] == [True, False]
    assert attempts[1]["status"] == 200


@pytest.mark.parametrize(("mode", "message"), [("forge", "No signatures"), ("stale", "Timestamp")])
def test_bad_signatures_are_rejected_by_the_sdk(world: World, mode: str, message: str) -> None:
    world.control.add_delivery_rule(mode, event_type="payment_intent.succeeded")
    world.create(payment_method="pm_card_visa")
    world.control.wait_settled()
    copies = [r for r in world.sink.received if r.type == "payment_intent.succeeded"]
    assert [r.verified for r in copies] == [False, True]
    assert copies[0].error is not None and message in copies[0].error


def test_forged_event_for_declined_intent(world: World) -> None:
    with pytest.raises(stripe.CardError) as info:
        world.create(payment_method="pm_card_chargeDeclined")
    assert info.value.error is not None and info.value.error.payment_intent is not None
    result = world.control.forge(info.value.error.payment_intent.id)
    assert [a["status"] for a in result["attempts"]] == [400]


def test_control_rejects_bad_rules(world: World) -> None:
    cases: list[tuple[str, dict[str, Any]]] = [
        ("teleport", {}),
        ("delay", {"delay_s": "soon"}),
        ("delay", {"delay_s": -1}),
        ("duplicate", {"copies": 2, "bogus": 1}),
        ("duplicate", {"copies": 0}),
        ("duplicate", {"times": "twice"}),
        ("delay", {"probability": 1.5}),
        ("hold", {"event_type": 7}),
    ]
    for mode, fields in cases:
        with pytest.raises(EmulatorControlError):
            world.control.add_delivery_rule(mode, **fields)
    bad_faults: list[tuple[str, dict[str, Any]]] = [
        ("explode", {}),
        ("error", {"status": 200}),
        ("error", {"times": "abc"}),
        ("error", {"should_retry": "no"}),
        ("error", {"drop": "maybe"}),
        ("latency", {"latency_s": True}),
    ]
    for kind, fields in bad_faults:
        with pytest.raises(EmulatorControlError):
            world.control.add_fault(kind, **fields)
    state = world.control.state()
    assert state["delivery_rules"] == [] and state["fault_rules"] == []


def test_error_fault_can_tell_the_sdk_not_to_retry(world: World) -> None:
    """Stripe-Should-Retry: false makes stripe-python give up after one attempt,
    though the client is set to retry (and retries the same 500 without it)."""
    world.control.add_fault("error", status=500, should_retry=False)
    with pytest.raises(stripe.APIError):
        world.create(payment_method="pm_card_visa")
    assert len(world.control.state()["requests"]) == 1
    world.control.clear_faults()
    world.control.add_fault("error", status=500)
    with pytest.raises(stripe.APIError):
        world.create(payment_method="pm_card_visa")
    assert len(world.control.state()["requests"]) > 2


def test_reset_forgets_state_and_restarts_ids(world: World) -> None:
    first = world.create(payment_method="pm_card_visa").id
    world.control.wait_settled()
    world.control.reset()
    assert world.control.state()["intents"] == []
    assert world.create(payment_method="pm_card_visa").id == first


def test_state_scoped_by_metadata_prefix(world: World) -> None:
    mine = world.create(payment_method="pm_card_visa", metadata={"userId": "run1-fan"})
    world.create(payment_method="pm_card_visa", metadata={"userId": "run2-fan"})
    world.control.wait_settled()
    scoped = world.control.state(metadata_prefix=("userId", "run1-"))
    assert [i["id"] for i in scoped["intents"]] == [mine.id]
    assert {c["payment_intent"] for c in scoped["charges"]} == {mine.id}
    event_ids = {e["id"] for e in scoped["events"]}
    assert len(event_ids) == 3
    assert all(
        mine.id in (e["data"]["object"]["id"], e["data"]["object"].get("payment_intent"))
        for e in scoped["events"]
    )
    assert {d["event_id"] for d in scoped["deliveries"]} == event_ids
    assert [r["intent_id"] for r in scoped["requests"]] == [mine.id]
    assert len(scoped["idempotency_keys"]) == 1
    everything = world.control.state()
    assert len(everything["intents"]) == 2 and len(everything["events"]) == 6


def test_compact_state_holds_what_a_verdict_reads(world: World) -> None:
    mine = world.create(payment_method="pm_card_visa", metadata={"userId": "run1-fan"})
    world.create(payment_method="pm_card_visa", metadata={"userId": "run2-fan"})
    world.control.wait_settled()
    full = world.control.state(metadata_prefix=("userId", "run1-"))
    compact = world.control.state(metadata_prefix=("userId", "run1-"), compact=True)
    assert set(compact) == {"intents", "events", "deliveries", "requests", "deliveries_in_progress"}
    (intent,) = compact["intents"]
    assert intent == {k: full["intents"][0][k] for k in intent} and intent["id"] == mine.id
    assert set(intent) == {"id", "status", "amount", "currency", "metadata"}
    assert [e["id"] for e in compact["events"]] == [e["id"] for e in full["events"]]
    assert all(set(e) == {"id", "type", "data"} for e in compact["events"])
    acknowledged = [
        d for d in full["deliveries"] if d["status"] == 200 and d["signature"] == "valid"
    ]
    assert compact["deliveries"] == acknowledged and acknowledged
    assert compact["requests"] == []  # none was answered with an error


def test_requests_since_a_mark_count_only_the_unanswered_after_it(world: World) -> None:
    world.create(payment_method="pm_card_visa")
    mark = world.control.request_mark()
    assert mark == len(world.control.state()["requests"]) and mark > 0
    assert world.control.unanswered_since(mark) == 0
    world.control.add_fault("latency", latency_s=1.0, times=1)
    slow = threading.Thread(target=world.create, kwargs={"payment_method": "pm_card_visa"})
    slow.start()
    try:
        wait_until(
            lambda: world.control.unanswered_since(mark) == 1,
            within=10,
            what="the slow request is counted while Stripe holds it",
        )
        assert world.control.unanswered_since(mark + 1) == 0  # the mark bounds the count
    finally:
        slow.join(timeout=30)
    assert world.control.unanswered_since(mark) == 0
    assert world.control.request_mark() == mark + 1


@pytest.mark.parametrize(
    ("path", "params", "words"),
    [
        ("/_control/state", {"metadata_key": "userId"}, "metadata_prefix"),
        ("/_control/state", {"compact": "yes"}, "compact is 0 or 1"),
        ("/_control/requests", {"since": "-1"}, "since is a request number"),
    ],
)
def test_a_bad_inspection_query_is_a_400_that_says_why(
    world: World, path: str, params: dict[str, str], words: str
) -> None:
    with httpx.Client(base_url=world.emulator.url) as http:
        answer = http.get(path, params=params)
    assert answer.status_code == 400
    assert words in answer.json()["error"]


def test_an_idle_sdk_connection_outlives_uvicorns_five_seconds(world: World) -> None:
    """Stripe SDKs keep idle connections longer than uvicorn's default 5 s (Go's
    90 s, Node's agents until the server closes): reused after 5.5 s idle, the
    connection must still answer, not reset under the service's SDK."""
    host, port = world.emulator.url.removeprefix("http://").split(":")
    # http.client keeps one socket and does not reconnect on its own: a closed
    # connection is RemoteDisconnected, not a silent new one.
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        statuses = []
        for gap_s in (0.0, 5.5):
            # The idle gap is the subject here, not a wait for a condition.
            time.sleep(gap_s)
            conn.request("GET", "/_control/health")
            response = conn.getresponse()
            response.read()
            statuses.append(response.status)
            sock = conn.sock
            assert sock is not None, "the emulator asked to close the connection"
    finally:
        conn.close()
    assert statuses == [200, 200]

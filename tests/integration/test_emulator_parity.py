"""Where a service could tell the emulator from Stripe's test mode (issue #17), each
checked through the official stripe-python SDK against the emulator over loopback."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import stripe

from harness.emulator import DeliverySettings, EmulatorConfig, EmulatorThread
from harness.target.emulator_client import EmulatorClient
from harness.waiting import wait_until
from tests.support import SECRET, EmulatorWorld, WebhookSink

KEY = "sk_test_parity"
FAST = DeliverySettings(retry_delays_s=(0.02, 0.05, 0.1), attempt_timeout_s=5)
RETURN = "https://shop.test/return"


class World(EmulatorWorld):
    def __init__(self, emulator: EmulatorThread, sink: WebhookSink) -> None:
        super().__init__(emulator, sink, KEY)

    def intents(self) -> Any:
        return self.client.v1.payment_intents

    def pay(self, **params: Any) -> stripe.PaymentIntent:
        merged: Any = {"amount": 999, "currency": "usd", "confirm": True, "return_url": RETURN}
        intent: stripe.PaymentIntent = self.intents().create(params={**merged, **params})
        return intent

    def event_types(self, intent_id: str) -> list[str]:
        self.control.wait_settled()
        return [
            e["type"]
            for e in self.control.state()["events"]
            if intent_id in (e["data"]["object"]["id"], e["data"]["object"].get("payment_intent"))
        ]


@pytest.fixture
def world() -> Iterator[World]:
    config = EmulatorConfig(webhook_secret=SECRET, delivery=FAST, api_key=KEY)
    with WebhookSink() as sink, EmulatorThread(config) as emulator:
        w = World(emulator, sink)
        w.control.add_endpoint(sink.url, SECRET)
        yield w
        w.control.close()


# -- 1. pagination ----------------------------------------------------------------------------


def test_auto_paging_iter_yields_each_of_250_intents_once(world: World) -> None:
    made = [
        world.intents().create(params={"amount": 100 + i, "currency": "usd"}).id for i in range(250)
    ]
    listed = world.intents().list(params={"limit": 100})
    assert listed.has_more and len(listed.data) == 100
    seen = [i.id for i in listed.auto_paging_iter()]
    assert seen == list(reversed(made))  # each once, newest first
    second = world.intents().list(params={"limit": 100, "starting_after": listed.data[-1].id})
    assert second.data[0].id == made[149] and second.has_more
    last = world.intents().list(params={"limit": 100, "starting_after": made[50]})
    assert [i.id for i in last.data] == list(reversed(made[:50])) and not last.has_more
    # ending_before pages towards newer objects; the SDK walks back in reverse.
    before = world.intents().list(params={"limit": 3, "ending_before": made[10]})
    assert [i.id for i in before.data] == [made[13], made[12], made[11]] and before.has_more
    backwards = [i.id for i in before.auto_paging_iter()]
    assert backwards == made[11:]
    with pytest.raises(stripe.InvalidRequestError) as info:
        world.intents().list(params={"starting_after": "pi_nope"})
    assert info.value.http_status == 404 and info.value.code == "resource_missing"


def test_events_and_charges_paginate_too(world: World) -> None:
    paid = [world.pay(payment_method="pm_card_visa").id for _ in range(12)]
    charges = world.client.v1.charges.list(params={"limit": 5})
    assert len([c.id for c in charges.auto_paging_iter()]) == 12
    events = world.client.v1.events.list(params={"limit": 7, "type": "payment_intent.succeeded"})
    ids = [e.data.object["id"] for e in events.auto_paging_iter()]
    assert ids == list(reversed(paid))
    mine = world.client.v1.charges.list(params={"payment_intent": paid[3]})
    assert [c.payment_intent for c in mine.data] == [paid[3]]


# -- 2. return_url --------------------------------------------------------------------------


def test_server_side_confirm_needs_a_return_url(world: World) -> None:
    params: Any = {"amount": 999, "currency": "usd", "confirm": True}
    params["payment_method"] = "pm_card_visa"
    options: Any = {"idempotency_key": "needs-return-url"}
    with pytest.raises(stripe.InvalidRequestError) as info:
        world.intents().create(params=params, options=options)
    assert info.value.http_status == 400
    assert "A `return_url` must be specified" in str(info.value.user_message)
    assert world.control.state()["intents"] == []  # nothing created
    # Nothing saved under the key either: corrected, the same key runs.
    fixed = world.intents().create(params={**params, "return_url": RETURN}, options=options)
    assert fixed.status == "succeeded"
    assert fixed.automatic_payment_methods is not None
    assert fixed.automatic_payment_methods.allow_redirects == "always"
    # No redirects allowed, or card only: no return_url needed.
    never = {**params, "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"}}
    assert world.intents().create(params=never).status == "succeeded"
    card_only = {**params, "payment_method_types": ["card"]}
    assert world.intents().create(params=card_only).status == "succeeded"
    # The same rule on /confirm.
    pending = world.intents().create(
        params={"amount": 999, "currency": "usd", "payment_method": "pm_card_visa"}
    )
    with pytest.raises(stripe.InvalidRequestError):
        world.intents().confirm(pending.id)
    assert world.intents().confirm(pending.id, params={"return_url": RETURN}).status == "succeeded"


def test_before_2023_08_16_no_automatic_payment_methods(world: World) -> None:
    old = stripe.StripeClient(
        KEY, base_addresses={"api": world.emulator.url}, stripe_version="2023-08-15"
    )
    params: Any = {"amount": 999, "currency": "usd", "confirm": True}
    params["payment_method"] = "pm_card_visa"
    intent = old.v1.payment_intents.create(params=params)
    assert intent.status == "succeeded" and intent.automatic_payment_methods is None
    assert intent.last_response is not None
    assert intent.last_response.headers["Stripe-Version"] == "2023-08-15"


# -- 3. off_session ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method", ["pm_card_authenticationRequired", "pm_card_threeDSecure2Required"]
)
def test_off_session_3ds_card_fails_with_authentication_required(world: World, method: str) -> None:
    with pytest.raises(stripe.CardError) as info:
        world.pay(payment_method=method, off_session=True)
    error = info.value
    assert error.http_status == 402 and error.code == "authentication_required"
    assert error.error is not None and error.error.decline_code == "authentication_required"
    intent = error.error.payment_intent
    assert intent is not None and intent.status == "requires_payment_method"
    assert intent.last_payment_error is not None
    assert intent.last_payment_error.code == "authentication_required"
    assert world.event_types(intent.id) == [
        "payment_intent.created",
        "charge.failed",
        "payment_intent.payment_failed",
    ]
    # On session the same card asks for 3-D Secure instead.
    assert world.pay(payment_method=method).status == "requires_action"


# -- 4. expand and the Charge ----------------------------------------------------------------


def test_expand_latest_charge_gives_a_full_charge(world: World) -> None:
    intent = world.pay(payment_method="pm_card_visa", expand=["latest_charge.balance_transaction"])
    charge = intent.latest_charge
    assert isinstance(charge, stripe.Charge)
    assert charge.status == "succeeded" and charge.paid and charge.captured
    assert charge.payment_method_details is not None
    assert charge.payment_method_details.card is not None
    assert charge.payment_method_details.card.last4 == "4242"
    assert charge.outcome is not None and charge.outcome.type == "authorized"
    txn = charge.balance_transaction
    assert isinstance(txn, stripe.BalanceTransaction)
    assert txn.amount == 999 and txn.net == 999 - txn.fee
    fetched = world.intents().retrieve(intent.id, params={"expand": ["latest_charge"]})
    assert isinstance(fetched.latest_charge, stripe.Charge)
    plain = world.intents().retrieve(intent.id)
    assert plain.latest_charge == charge.id
    listed = world.intents().list(params={"expand": ["data.latest_charge"]})
    assert isinstance(listed.data[0].latest_charge, stripe.Charge)
    same = world.client.v1.charges.retrieve(charge.id, params={"expand": ["payment_intent"]})
    assert isinstance(same.payment_intent, stripe.PaymentIntent)
    before = len(world.control.state()["intents"])
    with pytest.raises(stripe.InvalidRequestError, match="cannot be expanded"):
        world.pay(payment_method="pm_card_visa", expand=["amount"])
    assert len(world.control.state()["intents"]) == before  # refused before it ran


# -- 5. endpoints ----------------------------------------------------------------------------


def test_events_can_be_fetched_again(world: World) -> None:
    intent = world.pay(payment_method="pm_card_visa")
    world.control.wait_settled()
    delivered = next(r.body for r in world.sink.received if r.type == "payment_intent.succeeded")
    fetched = world.client.v1.events.retrieve(delivered["id"])
    assert fetched.type == "payment_intent.succeeded"
    assert fetched.data.object["id"] == intent.id
    assert fetched.data.object["status"] == "succeeded"
    with pytest.raises(stripe.InvalidRequestError) as info:
        world.client.v1.events.retrieve("evt_nope")
    assert info.value.http_status == 404


def test_update_intent(world: World) -> None:
    intent = world.intents().create(
        params={"amount": 999, "currency": "usd", "metadata": {"a": "1", "b": "2"}}
    )
    updated = world.intents().update(
        intent.id, params={"amount": 1500, "metadata": {"b": "", "c": "3"}}
    )
    assert updated.amount == 1500 and updated.metadata.to_dict() == {"a": "1", "c": "3"}
    paid = world.pay(payment_method="pm_card_visa")
    assert world.intents().update(paid.id, params={"metadata": {"x": "y"}}).metadata["x"] == "y"
    with pytest.raises(stripe.InvalidRequestError) as info:
        world.intents().update(paid.id, params={"amount": 5000})
    assert info.value.code == "payment_intent_unexpected_state"


def test_manual_capture(world: World) -> None:
    held = world.pay(payment_method="pm_card_visa", capture_method="manual")
    assert held.status == "requires_capture" and held.amount_capturable == 999
    assert held.amount_received == 0
    charge = world.client.v1.charges.retrieve(str(held.latest_charge))
    assert charge.status == "succeeded" and not charge.captured
    captured = world.intents().capture(held.id, params={"amount_to_capture": 600})
    assert captured.status == "succeeded" and captured.amount_received == 600
    charge = world.client.v1.charges.retrieve(str(held.latest_charge))
    assert charge.captured and charge.amount_captured == 600
    assert world.event_types(held.id) == [
        "payment_intent.created",
        "charge.succeeded",
        "payment_intent.amount_capturable_updated",
        "charge.captured",
        "payment_intent.succeeded",
    ]
    with pytest.raises(stripe.InvalidRequestError) as info:
        world.intents().capture(held.id)
    assert info.value.code == "payment_intent_unexpected_state"


def test_refunds(world: World) -> None:
    paid = world.pay(payment_method="pm_card_visa", metadata={"userId": "u1"})
    part = world.client.v1.refunds.create(params={"payment_intent": paid.id, "amount": 300})
    assert part.status == "succeeded" and part.amount == 300 and part.charge == paid.latest_charge
    rest = world.client.v1.refunds.create(params={"charge": str(paid.latest_charge)})
    assert rest.amount == 699
    charge = world.client.v1.charges.retrieve(str(paid.latest_charge))
    assert charge.refunded and charge.amount_refunded == 999
    with pytest.raises(stripe.InvalidRequestError) as info:
        world.client.v1.refunds.create(params={"payment_intent": paid.id})
    assert info.value.code == "charge_already_refunded"
    assert world.event_types(paid.id)[-4:] == [
        "charge.refunded",
        "refund.created",
        "charge.refunded",
        "refund.created",
    ]
    listed = world.client.v1.refunds.list(params={"payment_intent": paid.id})
    assert [r.id for r in listed.data] == [rest.id, part.id]
    assert world.client.v1.refunds.retrieve(part.id).amount == 300
    # The intent stays succeeded, as at Stripe.
    assert world.intents().retrieve(paid.id).status == "succeeded"


# -- 6. charge.failed -----------------------------------------------------------------------


def test_decline_sends_charge_failed(world: World) -> None:
    with pytest.raises(stripe.CardError) as info:
        world.pay(payment_method="pm_card_chargeDeclined")
    error = info.value.error
    assert error is not None and error.payment_intent is not None and error.charge
    types = world.event_types(error.payment_intent.id)
    assert types == ["payment_intent.created", "charge.failed", "payment_intent.payment_failed"]
    charge = world.client.v1.charges.retrieve(str(error.charge))
    assert charge.status == "failed" and charge.failure_code == "card_declined"
    assert charge.outcome is not None and charge.outcome.reason == "generic_decline"


# -- 7. state machine ------------------------------------------------------------------------


def test_confirm_from_requires_action_with_a_new_method(world: World) -> None:
    challenged = world.pay(payment_method="pm_card_threeDSecure2Required")
    assert challenged.status == "requires_action"
    paid = world.intents().confirm(
        challenged.id, params={"payment_method": "pm_card_visa", "return_url": RETURN}
    )
    assert paid.status == "succeeded" and paid.next_action is None


def test_unexpected_state_errors_embed_the_intent(world: World) -> None:
    paid = world.pay(payment_method="pm_card_visa")
    with pytest.raises(stripe.InvalidRequestError) as canceled:
        world.intents().cancel(paid.id)
    with pytest.raises(stripe.InvalidRequestError) as confirmed:
        world.intents().confirm(paid.id, params={"return_url": RETURN})
    for info in (canceled, confirmed):
        assert info.value.code == "payment_intent_unexpected_state"
        assert info.value.error is not None and info.value.error.payment_intent is not None
        assert info.value.error.payment_intent.id == paid.id
        assert info.value.error.payment_intent.status == "succeeded"


# -- 8. a key in flight ----------------------------------------------------------------------


def test_concurrent_same_key_gets_409_while_the_first_runs() -> None:
    """Stripe takes time to answer; with that time modelled, a second request with
    the key arriving meanwhile gets the 409 (a client without retries sees it)."""
    # Long enough that the second request surely arrives while the first runs,
    # however loaded the machine; the first answers once it has passed.
    config = EmulatorConfig(api_latency_s=3.0)
    with EmulatorThread(config) as emulator:
        client = stripe.StripeClient(KEY, base_addresses={"api": emulator.url})
        params: Any = {"amount": 999, "currency": "usd"}
        options: Any = {"idempotency_key": "one-key"}
        outcomes: list[Any] = []

        def call() -> None:
            try:
                outcomes.append(client.v1.payment_intents.create(params=params, options=options))
            except stripe.StripeError as exc:
                outcomes.append(exc)

        control = EmulatorClient(emulator.url)
        first = threading.Thread(target=call)
        first.start()
        wait_until(
            lambda: bool(control.state()["idempotency_keys"]),
            within=10,
            what="the first request holds the key",
        )
        call()
        first.join(10)
        errors = [o for o in outcomes if isinstance(o, stripe.StripeError)]
        assert len(outcomes) == 2 and len(errors) == 1
        # stripe-python raises a plain APIError for a 409; the code says which.
        error = errors[0]
        assert isinstance(error, stripe.APIError) and error.http_status == 409
        body: Any = error.json_body
        assert body["error"]["code"] == "idempotency_key_in_use"
        assert len(control.state()["intents"]) == 1
        control.close()


def test_key_is_held_until_the_response_is_saved(world: World) -> None:
    """A before_response delivery the endpoint has not answered keeps the request
    in flight, and its key with it."""
    hold = threading.Event()
    with WebhookSink(hold=hold) as slow:
        world.control.add_endpoint(slow.url, SECRET)
        world.control.add_delivery_rule("before_response", event_type="payment_intent.created")
        headers = {"Authorization": f"Bearer {KEY}", "Idempotency-Key": "held"}
        body = {"amount": "999", "currency": "usd"}
        answers: list[int] = []
        with httpx.Client(base_url=world.emulator.url, timeout=20) as http:
            first = threading.Thread(
                target=lambda: answers.append(
                    http.post("/v1/payment_intents", data=body, headers=headers).status_code
                )
            )
            first.start()
            wait_until(
                lambda: bool(world.control.state()["deliveries"]),
                within=10,
                what="the before_response delivery starts",
            )
            second = http.post("/v1/payment_intents", data=body, headers=headers)
            assert second.status_code == 409
            assert second.json()["error"]["code"] == "idempotency_key_in_use"
            hold.set()
            first.join(20)
            assert answers == [200]
            replay = http.post("/v1/payment_intents", data=body, headers=headers)
            assert replay.headers["Idempotent-Replayed"] == "true"


# -- 9. auth ------------------------------------------------------------------------------


def test_only_the_expected_key_is_accepted(world: World) -> None:
    other = stripe.StripeClient("sk_test_someone_else", base_addresses={"api": world.emulator.url})
    with pytest.raises(stripe.AuthenticationError) as info:
        other.v1.payment_intents.list()
    assert info.value.http_status == 401
    assert "Invalid API Key provided" in str(info.value.user_message)
    with httpx.Client(base_url=world.emulator.url) as http:
        basic = base64.b64encode(f"{KEY}:".encode()).decode()
        assert http.get(
            "/v1/payment_intents", headers={"Authorization": f"Basic {basic}"}
        ).is_success
        none = http.get("/v1/payment_intents")
        assert none.status_code == 401
        assert none.json()["error"]["message"].startswith("You did not provide an API key")


def test_any_test_key_without_api_key() -> None:
    with EmulatorThread(EmulatorConfig()) as emulator:
        for key, ok in (("sk_test_a1", True), ("rk_test_b2", True), ("sk_live_c3", False)):
            client = stripe.StripeClient(key, base_addresses={"api": emulator.url})
            if ok:
                assert client.v1.payment_intents.list().data == []
            else:
                with pytest.raises(stripe.AuthenticationError):
                    client.v1.payment_intents.list()


# -- 10. the rest ------------------------------------------------------------------------------


def test_validation_error_is_not_saved_under_the_key(world: World) -> None:
    options: Any = {"idempotency_key": "first-try-bad"}
    with pytest.raises(stripe.InvalidRequestError):
        world.intents().create(
            params={"amount": 999, "currency": "usd", "bogus": 1}, options=options
        )
    good = world.intents().create(params={"amount": 999, "currency": "usd"}, options=options)
    assert good.amount == 999
    assert world.control.state()["idempotency_keys"][0]["status"] == 200


@pytest.mark.parametrize(
    ("currency", "amount", "ok"),
    [
        ("usd", 40, False),
        ("gbp", 40, True),
        ("gbp", 20, False),
        ("jpy", 50, True),
        ("jpy", 49, False),
        ("eur", 50, True),
    ],
)
def test_minimum_amount_per_currency(world: World, currency: str, amount: int, ok: bool) -> None:
    params: Any = {"amount": amount, "currency": currency}
    if ok:
        assert world.intents().create(params=params).currency == currency
    else:
        with pytest.raises(stripe.InvalidRequestError) as info:
            world.intents().create(params=params)
        assert info.value.code == "amount_too_small"


def test_unknown_currency_is_refused(world: World) -> None:
    with pytest.raises(stripe.InvalidRequestError, match="Invalid currency: xyz"):
        world.intents().create(params={"amount": 999, "currency": "xyz"})
    assert world.control.state()["intents"] == []


def test_stripe_version_is_echoed(world: World) -> None:
    client = stripe.StripeClient(
        KEY, base_addresses={"api": world.emulator.url}, stripe_version="2024-06-20"
    )
    intent = client.v1.payment_intents.create(params={"amount": 999, "currency": "usd"})
    assert intent.last_response is not None
    assert intent.last_response.headers["Stripe-Version"] == "2024-06-20"
    with httpx.Client(base_url=world.emulator.url) as http:
        bad = http.get(
            "/v1/payment_intents",
            headers={"Authorization": f"Bearer {KEY}", "Stripe-Version": "yesterday"},
        )
    assert bad.status_code == 400 and "Invalid Stripe API version" in bad.text

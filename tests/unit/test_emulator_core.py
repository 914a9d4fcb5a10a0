"""Emulator logic without HTTP: forms, idempotency, state machine, delivery rules."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from harness.emulator.clock import IdSource, ManualClock
from harness.emulator.core import Emulator, RequestContext
from harness.emulator.delivery import DeliveryRule, SendResult, sign
from harness.emulator.errors import StripeError
from harness.emulator.faults import FaultRule
from harness.emulator.forms import parse_form
from harness.emulator.idempotency import IdempotencyStore, SavedResponse
from harness.emulator.listing import Collection, check_paths, page

# A card-only intent: no automatic payment methods, so no return_url is needed.
CARD = {"payment_method_types": ["card"]}


def test_form_nesting_and_lists() -> None:
    parsed = parse_form(
        b"amount=100&metadata[userId]=42&expand[0]=latest_charge&expand[1]=x&confirm=true"
    )
    assert parsed == {
        "amount": "100",
        "metadata": {"userId": "42"},
        "expand": ["latest_charge", "x"],
        "confirm": "true",
    }


@pytest.mark.parametrize("body", [b"a=1&a[b]=2", b"\xff=1", b"a[b]=1&a=2"])
def test_malformed_forms_are_stripe_errors(body: bytes) -> None:
    with pytest.raises(StripeError) as info:
        parse_form(body)
    assert info.value.status == 400


def test_idempotency_store_replays_rejects_and_expires() -> None:
    store = IdempotencyStore()
    assert store.begin("k", "fp", now=0) is None
    with pytest.raises(StripeError) as busy:
        store.begin("k", "fp", now=1)
    assert busy.value.status == 409
    store.finish("k", SavedResponse(200, {"id": "pi_1"}))
    saved = store.begin("k", "fp", now=2)
    assert saved is not None and saved.body == {"id": "pi_1"}
    with pytest.raises(StripeError) as mismatch:
        store.begin("k", "other", now=3)
    assert mismatch.value.type == "idempotency_error" and mismatch.value.status == 400
    assert store.begin("k", "other", now=24 * 3600 + 10) is None  # pruned after 24 h


def test_ids_are_reproducible_from_the_seed() -> None:
    assert IdSource(7).new("pi") == IdSource(7).new("pi")
    assert IdSource(7).new("pi") != IdSource(8).new("pi")


def test_signature_format() -> None:
    assert sign(b"{}", "whsec_x", 1700000000).startswith("t=1700000000,v1=")


def _emulator(clock: ManualClock, sent: list[str]) -> Emulator:
    async def sender(
        url: str, body: bytes, headers: dict[str, str], timeout_s: float
    ) -> SendResult:
        sent.append(body.decode())
        return SendResult(200)

    emulator = Emulator(sender=sender, clock=clock, seed=1)
    emulator.add_endpoint("http://sink", "whsec_x")
    return emulator


def test_state_machine_paths() -> None:
    emulator = _emulator(ManualClock(), [])
    ctx = RequestContext()
    ok = emulator.create_intent(
        {
            **CARD,
            "amount": "999",
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "confirm": "true",
        },
        ctx,
    )
    assert ok.body["status"] == "succeeded"
    assert [e.type for e in ok.events] == [
        "payment_intent.created",
        "charge.succeeded",
        "payment_intent.succeeded",
    ]
    declined = emulator.create_intent(
        {
            **CARD,
            "amount": "999",
            "currency": "usd",
            "payment_method": "pm_card_chargeDeclined",
            "confirm": "true",
        },
        ctx,
    )
    assert declined.status == 402
    assert declined.body["error"]["payment_intent"]["status"] == "requires_payment_method"
    three_ds = emulator.create_intent(
        {
            **CARD,
            "amount": "999",
            "currency": "usd",
            "payment_method": "pm_card_threeDSecureRequiredChargeDeclined",
            "confirm": "true",
        },
        ctx,
    )
    assert three_ds.body["status"] == "requires_action"
    after = emulator.authenticate(three_ds.body["id"])
    assert after.body["status"] == "requires_payment_method"
    assert [e.type for e in after.events] == ["charge.failed", "payment_intent.payment_failed"]


def test_delay_rule_waits_for_emulator_time() -> None:
    clock, sent = ManualClock(), list[str]()

    async def scenario() -> None:
        emulator = _emulator(clock, sent)
        emulator.dispatcher.add_rule(DeliveryRule(mode="delay", delay_s=60))
        outcome = emulator.create_intent({"amount": "100", "currency": "usd"}, RequestContext())
        await emulator.dispatcher.dispatch(outcome.events)
        for _ in range(5):
            await asyncio.sleep(0)
        assert sent == []
        clock.advance(60)
        for _ in range(5):
            await asyncio.sleep(0)
        assert len(sent) == 1

    asyncio.run(scenario())


def test_pages_follow_cursors_both_ways() -> None:
    items: Collection[dict[str, Any]] = Collection()
    for n in range(7):
        items.add(f"x{n}", {"id": f"x{n}", "n": n})

    def ids(params: dict[str, Any], matches: Callable[[dict[str, Any]], bool] = bool) -> Any:
        body = page(items, params, url="/v1/x", kind="x", matches=matches, render=dict)
        return [i["id"] for i in body["data"]], body["has_more"]

    assert ids({"limit": "3"}) == (["x6", "x5", "x4"], True)
    assert ids({"limit": "3", "starting_after": "x4"}) == (["x3", "x2", "x1"], True)
    assert ids({"limit": "3", "starting_after": "x1"}) == (["x0"], False)
    assert ids({"limit": "2", "ending_before": "x2"}) == (["x4", "x3"], True)
    assert ids({"limit": "9", "ending_before": "x2"}) == (["x6", "x5", "x4", "x3"], False)
    assert ids({"limit": "2", "starting_after": "x6"}, lambda i: i["n"] % 2 == 0) == (
        ["x4", "x2"],
        True,
    )
    for bad in ({"limit": "0"}, {"limit": "101"}, {"starting_after": "x1", "ending_before": "x2"}):
        with pytest.raises(StripeError) as info:
            ids(bad)
        assert info.value.status == 400 and not info.value.saved
    with pytest.raises(StripeError) as missing:
        ids({"starting_after": "nope"})
    assert missing.value.status == 404


@pytest.mark.parametrize(
    ("kind", "path", "ok"),
    [
        ("payment_intent", "latest_charge", True),
        ("payment_intent", "latest_charge.balance_transaction", True),
        ("list:payment_intent", "data.latest_charge", True),
        ("payment_intent", "amount", False),
        ("payment_intent", "latest_charge.nothing", False),
        ("list:payment_intent", "latest_charge", False),
    ],
)
def test_expand_paths_are_checked_up_front(kind: str, path: str, ok: bool) -> None:
    if ok:
        check_paths(kind, [path])
    else:
        with pytest.raises(StripeError, match="cannot be expanded"):
            check_paths(kind, [path])


def test_validation_errors_save_nothing_and_create_nothing() -> None:
    emulator = _emulator(ManualClock(), [])
    for params in (
        {"amount": "999", "currency": "usd", "confirm": "true", "payment_method": "pm_card_visa"},
        {"amount": "999", "currency": "usd", "confirm": "true"},
        {"amount": "999", "currency": "zzz"},
        {"amount": "10", "currency": "eur"},
    ):
        with pytest.raises(StripeError) as info:
            emulator.create_intent(params, RequestContext())
        assert info.value.status == 400 and not info.value.saved
    assert len(emulator.intents) == 0 and len(emulator.events) == 0
    before = RequestContext(api_version="2023-08-15")
    old = {"amount": "999", "currency": "usd", "confirm": "true", "payment_method": "pm_card_visa"}
    assert emulator.create_intent(old, before).body["status"] == "succeeded"


def test_charges_and_intents_are_listed_by_customer() -> None:
    emulator = _emulator(ManualClock(), [])
    for customer in ("cus_a", "cus_b"):
        emulator.create_intent(
            {
                **CARD,
                "amount": "999",
                "currency": "usd",
                "customer": customer,
                "payment_method": "pm_card_visa",
                "confirm": "true",
            },
            RequestContext(),
        )
    for listing in (emulator.list_charges, emulator.list_intents):
        listed = listing({"customer": "cus_a"}).body["data"]
        assert [c["customer"] for c in listed] == ["cus_a"]
        assert len(listing({}).body["data"]) == 2


@pytest.mark.parametrize(
    ("rule", "body"),
    [
        (DeliveryRule, b'{"mode": "delay", "id": "rule_1"}'),
        (DeliveryRule, b'{"mode": "delay", "matched": 5}'),
        (FaultRule, b'{"kind": "error", "fired": 1}'),
    ],
)
def test_a_rule_body_may_not_set_what_the_emulator_keeps(rule: type, body: bytes) -> None:
    from pydantic import TypeAdapter, ValidationError

    with pytest.raises(ValidationError, match="Unexpected keyword argument"):
        TypeAdapter(rule).validate_json(body)

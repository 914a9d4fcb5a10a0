"""webhooks: every number, order, timing and forgery of Stripe deliveries. After
each, reconciliation: every succeeded PaymentIntent credited exactly once."""

from __future__ import annotations

import json
import time

import httpx

from harness.api import Run
from harness.emulator import sign
from harness.run.scenario import fan, scenario


def _forged_attempts_accepted(run: Run) -> list[dict[str, object]]:
    deliveries = run.stripe.state()["deliveries"]
    return [
        d
        for d in deliveries
        if d["signature"] != "valid" and d["status"] is not None and d["status"] < 400
    ]


@scenario("webhooks", users=[fan("fan")])
async def duplicates(run: Run) -> None:
    """payment_intent.succeeded delivered three times, one after another: one credit.
    Catches webhook handlers without idempotency (webhook-not-idempotent)."""
    run.stripe.add_delivery_rule("duplicate", event_type="payment_intent.succeeded", copies=3)
    await run.purchase("fan", 500)


@scenario("webhooks", users=[fan("fan")])
async def parallel_deliveries(run: Run) -> None:
    """Eight copies of one succeeded event in flight at the same time: one credit.
    A check-then-insert without a lock credits several."""
    run.stripe.add_delivery_rule("parallel", event_type="payment_intent.succeeded", copies=8)
    await run.gather(*(run.purchase("fan", 100) for _ in range(3)))


@scenario("webhooks", users=[fan("fan")])
async def reordered(run: Run) -> None:
    """payment_intent.succeeded delivered before payment_intent.created: credited once."""
    run.stripe.add_delivery_rule("reorder", event_type="payment_intent.*", window=2)
    await run.purchase("fan", 100)


@scenario("webhooks", users=[fan("fan")])
async def failed_after_succeeded(run: Run) -> None:
    """A (validly signed) payment_failed arrives after succeeded for the same intent:
    the credit stays, nothing is taken back or credited twice."""
    answer = await run.purchase("fan", 100)
    # "After" means after the service acted on the success: a queue worker may
    # credit well after its 2xx, and a failure processed first is no test at all.
    await run.settled()
    pi = (answer.body or {}).get("paymentIntent", {}).get("id")
    if run.expect(isinstance(pi, str), "purchase-ok", f"purchase answered {answer.status}"):
        assert isinstance(pi, str)
        run.stripe.forge(
            pi,
            type="payment_intent.payment_failed",
            status="requires_payment_method",
            signature="valid",
        )


@scenario("webhooks", users=[fan("fan")])
async def delayed(run: Run) -> None:
    """The succeeded event arrives 0.5 s late, after the purchase answered: credited."""
    run.stripe.add_delivery_rule("delay", event_type="payment_intent.succeeded", delay_s=0.5)
    await run.purchase("fan", 100)


@scenario("webhooks", users=[fan("fan")])
async def before_the_purchase_answer(run: Run) -> None:
    """succeeded is delivered (and answered) before Stripe answers the create call, so
    before the purchase row exists: it must still be credited exactly once. Catches
    handlers that drop events for unknown rows (early-webhook-dropped)."""
    run.stripe.add_delivery_rule("before_response", event_type="payment_intent.succeeded")
    await run.gather(*(run.purchase("fan", 100) for _ in range(3)))


@scenario("webhooks", users=[fan("fan")])
async def first_attempt_lost(run: Run) -> None:
    """The first delivery attempt never arrives; Stripe's retry must be credited."""
    run.stripe.add_delivery_rule("drop_first", event_type="payment_intent.succeeded")
    await run.purchase("fan", 100)


@scenario("webhooks", users=[fan("fan")])
async def forged_and_stale_signatures(run: Run) -> None:
    """Copies with a forged signature and a stale timestamp come first: they must be
    refused (4xx); the genuine event that follows is credited once."""
    run.stripe.add_delivery_rule("forge", event_type="payment_intent.succeeded", times=1)
    await run.purchase("fan", 100)
    run.stripe.wait_settled()
    run.stripe.add_delivery_rule("stale", event_type="payment_intent.succeeded", times=1)
    await run.purchase("fan", 500)
    run.stripe.wait_settled()
    accepted = _forged_attempts_accepted(run)
    run.expect(
        not accepted,
        "forgery-refused",
        f"{len(accepted)} badly signed deliveries were accepted",
        attempts=accepted,
    )


@scenario("webhooks", users=[fan("fan")])
async def forged_success_for_a_declined_charge(run: Run) -> None:
    """An attacker posts payment_intent.succeeded for an intent that was declined, with
    a bad signature: refused, nothing credited. Catches unsigned-webhook."""
    await run.purchase("fan", 1000, method="pm_card_chargeDeclined")
    # The contract does not make a 402 name the intent: ask Stripe which it was.
    declined = [i["id"] for i in await run.intents_of("fan")]
    run.require(bool(declined), "the declined purchase created no PaymentIntent to forge for")
    for signature in ("forged", "stale"):
        result = run.stripe.forge(declined[0], signature=signature)
        statuses = [a["status"] for a in result["attempts"]]
        run.expect(
            all(s is not None and 400 <= s < 500 for s in statuses),
            "forgery-refused",
            f"a {signature} event was answered {statuses}",
        )


@scenario("webhooks", users=[fan("fan")])
async def unknown_payment_intent(run: Run) -> None:
    """A genuine event for an intent no purchase made (no metadata): accepted (2xx, so
    Stripe stops retrying) and nothing changes."""
    async with httpx.AsyncClient() as client:
        http = await client.post(
            f"{run.target.emulator_url}/v1/payment_intents",
            data={
                "amount": "999",
                "currency": "usd",
                "payment_method": "pm_card_visa",
                "confirm": "true",
                "payment_method_types[0]": "card",  # card only: Stripe wants no return_url
            },
            headers={"Authorization": "Bearer sk_test_tokenproof"},
        )
    run.require(http.status_code == 200, f"the emulator refused a create: {http.text}")
    run.stripe.wait_settled()
    pi = http.json().get("id")
    attempts = [
        d for d in run.stripe.state()["deliveries"] if d["event_type"] == "payment_intent.succeeded"
    ]
    ours = [
        a
        for a in attempts
        if a["event_id"]
        in {e["id"] for e in run.stripe.state()["events"] if e["data"]["object"].get("id") == pi}
    ]
    run.expect(
        bool(ours) and all(a["status"] is not None and a["status"] < 500 for a in ours),
        "unknown-intent-handled",
        "an event for an unknown intent was not answered < 500",
        attempts=ours,
    )
    await run.balance("fan")


@scenario("webhooks", users=[fan("fan")])
async def malformed_bodies(run: Run) -> None:
    """Garbage at the webhook, signed and unsigned: 400, never 5xx, nothing changes."""
    secret = run.target.webhook_secret
    bodies = [
        b"",
        b"not json",
        b"[]",
        b'{"id": 5}',
        b'{"type": "payment_intent.succeeded"}',
        json.dumps(
            {"id": "evt_x", "type": "payment_intent.succeeded", "data": {"object": "nope"}}
        ).encode(),
    ]
    for body in bodies:
        for signed in (False, True):
            headers = {"Content-Type": "application/json"}
            if signed:
                headers["Stripe-Signature"] = sign(body, secret, int(time.time()))
            answer = await run.send(
                "webhook",
                None,
                content=body,
                headers=headers,
                args={"body": body.decode(), "signed": signed},
            )
            run.expect(
                400 <= answer.status < 500,
                "malformed-webhook-refused",
                f"webhook body {body[:40]!r} (signed={signed}) answered {answer.status}",
            )

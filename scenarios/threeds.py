"""threeds: purchases that need the customer to authenticate (3-D Secure)."""

from __future__ import annotations

from harness.api import Run
from harness.run.scenario import fan, scenario

THREE_DS = "pm_card_threeDSecure2Required"


def _intent_id(body: object) -> str | None:
    if isinstance(body, dict):
        intent = body.get("paymentIntent")
        ident = intent.get("id") if isinstance(intent, dict) else None
        if isinstance(ident, str):
            return ident
    return None


async def _start(run: Run, method: str = THREE_DS, tokens: int = 500) -> str | None:
    answer = await run.purchase("fan", tokens, method=method)
    pi = _intent_id(answer.body)
    run.expect(
        answer.status == 200
        and pi is not None
        and answer.body["paymentIntent"]["status"] == "requires_action",
        "three-ds-pending",
        f"a 3DS purchase answered {answer.status} {answer.body}",
    )
    return pi


@scenario("threeds", users=[fan("fan")])
async def authenticated(run: Run) -> None:
    """requires_action, the customer authenticates, the webhook credits once."""
    if pi := await _start(run):
        run.stripe.customer(pi, "authenticate")


@scenario("threeds", users=[fan("fan")])
async def abandoned(run: Run) -> None:
    """The customer walks away; the intent is canceled and nothing is credited.
    Catches services that credit at purchase time (credit-on-purchase)."""
    if pi := await _start(run):
        run.stripe.customer(pi, "abandon")


@scenario("threeds", users=[fan("fan")])
async def failed_authentication(run: Run) -> None:
    """Authentication fails (payment_failed): nothing is credited."""
    if pi := await _start(run):
        run.stripe.customer(pi, "fail")


@scenario("threeds", users=[fan("fan")])
async def authenticated_then_declined(run: Run) -> None:
    """The bank declines after authentication: payment_failed, nothing credited."""
    if pi := await _start(run, method="pm_card_threeDSecureRequiredChargeDeclined"):
        run.stripe.customer(pi, "authenticate")


@scenario("threeds", users=[fan("fan")])
async def authenticated_with_duplicate_webhooks(run: Run) -> None:
    """Authentication, then payment_intent.succeeded delivered three times in a row and
    four times at once: credited exactly once."""
    run.stripe.add_delivery_rule("duplicate", event_type="payment_intent.succeeded", copies=3)
    if pi := await _start(run):
        run.stripe.customer(pi, "authenticate")
    run.stripe.wait_settled()
    run.stripe.clear_delivery_rules()
    run.stripe.add_delivery_rule("parallel", event_type="payment_intent.succeeded", copies=4)
    if pi := await _start(run, tokens=100):
        run.stripe.customer(pi, "authenticate")

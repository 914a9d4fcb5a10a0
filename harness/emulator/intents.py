"""The PaymentIntent state machine: create, update, confirm, capture, cancel, 3-D Secure."""

from __future__ import annotations

from typing import Any

from harness.emulator import money
from harness.emulator import params as p
from harness.emulator.errors import StripeError
from harness.emulator.resources import (
    CANCELABLE,
    CAPTURABLE,
    CONFIRMABLE,
    TEST_CARDS,
    UPDATABLE,
    Event,
    Outcome,
    PaymentIntent,
    RequestContext,
    TestCard,
    payment_method_json,
)
from harness.emulator.world import World

CONFIRM_PARAMS = frozenset(
    {
        "payment_method",
        "return_url",
        "expand",
        "off_session",
        "use_stripe_sdk",
        "capture_method",
        "receipt_email",
        "setup_future_usage",
    }
)
CREATE_PARAMS = CONFIRM_PARAMS | {
    "amount",
    "currency",
    "confirm",
    "metadata",
    "confirmation_method",
    "description",
    "payment_method_types",
    "customer",
    "automatic_payment_methods",
    "statement_descriptor",
}
# Any status may change these; the others only before the payment is settled.
ALWAYS_UPDATABLE = frozenset({"metadata", "description", "receipt_email", "expand"})
UPDATE_PARAMS = ALWAYS_UPDATABLE | {
    "amount",
    "currency",
    "payment_method",
    "payment_method_types",
    "capture_method",
    "setup_future_usage",
    "statement_descriptor",
    "customer",
}
CANCEL_PARAMS = frozenset({"cancellation_reason", "expand"})
CAPTURE_PARAMS = frozenset({"amount_to_capture", "expand", "metadata", "statement_descriptor"})
CANCELLATION_REASONS = ("duplicate", "fraudulent", "requested_by_customer", "abandoned")
CAPTURE_METHODS = ("automatic", "automatic_async", "manual")
MISSING_METHOD = (
    "You cannot confirm this PaymentIntent because it's missing a payment method. You can "
    "either update the PaymentIntent with a payment method and then confirm it again, or "
    "confirm it again directly with a payment method."
)
AUTHENTICATION_REQUIRED = (
    "authentication_required",
    "authentication_required",
    "Your card was declined. This transaction requires authentication.",
)


def create(em: World, params: dict[str, Any], ctx: RequestContext) -> Outcome:
    """Everything is validated before the intent exists: a refused create leaves nothing."""
    p.reject_unknown(params, CREATE_PARAMS)
    currency = p.currency(params.get("currency"))
    amount = p.amount(params.get("amount"), currency)
    confirm = p.boolean(params.get("confirm", "false"), "confirm")
    method = p.optional_str(params, "payment_method")
    if method is not None:
        _card(method)
    types = p.string_list(params.get("payment_method_types"), "payment_method_types")
    automatic = p.automatic_methods(params.get("automatic_payment_methods"), types, ctx.api_version)
    return_url = p.optional_str(params, "return_url")
    off_session = p.off_session(params)
    if confirm:
        if method is None:
            raise StripeError.invalid_param(MISSING_METHOD, code="payment_intent_unexpected_state")
        p.require_return_url(automatic, return_url)
    ident = em.ids.new("pi")
    intent = PaymentIntent(
        id=ident,
        amount=amount,
        currency=currency,
        created=int(em.clock.now()),
        client_secret=f"{ident}_secret_{em.ids.token()}",
        metadata={k: v for k, v in p.metadata(params.get("metadata")).items() if v},
        description=p.optional_str(params, "description"),
        payment_method=method,
        return_url=return_url,
        confirmation_method=p.choice(params, "confirmation_method", ("automatic", "manual"))
        or "automatic",
        capture_method=p.choice(params, "capture_method", CAPTURE_METHODS) or "automatic_async",
        automatic_payment_methods=automatic,
        payment_method_types=types or ["card"],
        receipt_email=p.optional_str(params, "receipt_email"),
        setup_future_usage=p.choice(params, "setup_future_usage", ("on_session", "off_session")),
        statement_descriptor=p.optional_str(params, "statement_descriptor"),
        customer=p.optional_str(params, "customer"),
    )
    em.intents.add(ident, intent)
    em.set_status(intent, "requires_confirmation" if method else "requires_payment_method")
    events = [em.event("payment_intent.created", intent, ctx)]
    if confirm and method is not None:
        return _attempt(em, intent, method, ctx, events, off_session=off_session)
    return Outcome(200, intent.to_json(), events)


def update(em: World, ident: str, params: dict[str, Any], ctx: RequestContext) -> Outcome:
    p.reject_unknown(params, UPDATE_PARAMS)
    intent = em.intent(ident)
    restricted = sorted(set(params) - ALWAYS_UPDATABLE)
    if restricted and intent.status not in UPDATABLE:
        raise StripeError.invalid_request(
            f"This PaymentIntent's {restricted[0]} could not be updated because it has a "
            f"status of {intent.status}. You may only update the {restricted[0]} of a "
            f"PaymentIntent with one of the following statuses: {', '.join(UPDATABLE)}.",
            code="payment_intent_unexpected_state",
            extra={"payment_intent": intent.to_json()},
        )
    currency = p.currency(params["currency"]) if "currency" in params else intent.currency
    amount = intent.amount
    if "amount" in params or "currency" in params:
        amount = p.amount(params.get("amount", str(intent.amount)), currency)
    method = p.optional_str(params, "payment_method")
    if method is not None:
        _card(method)
    metadata = p.metadata(params.get("metadata"))
    intent.amount, intent.currency = amount, currency
    _merge_metadata(intent.metadata, metadata)
    for name in ("description", "receipt_email", "statement_descriptor", "customer"):
        if name in params:
            setattr(intent, name, p.optional_str(params, name))
    if "capture_method" in params:
        intent.capture_method = p.choice(params, "capture_method", CAPTURE_METHODS) or "automatic"
    if method is not None:
        intent.payment_method = method
        if intent.status in ("requires_payment_method", "requires_action"):
            intent.next_action = None
            em.set_status(intent, "requires_confirmation")
    return Outcome(200, intent.to_json())


def _merge_metadata(current: dict[str, str], given: dict[str, str]) -> None:
    for key, value in given.items():
        if value:
            current[key] = value
        else:
            current.pop(key, None)  # an empty value unsets the key, as at Stripe


def confirm(em: World, ident: str, params: dict[str, Any], ctx: RequestContext) -> Outcome:
    p.reject_unknown(params, CONFIRM_PARAMS)
    intent = em.intent(ident)
    off_session = p.off_session(params)
    given = p.optional_str(params, "payment_method")
    if given is not None:
        _card(given)
    if intent.status not in CONFIRMABLE:
        raise _unexpected_state(intent, "confirm")
    method = given or intent.payment_method
    if method is None:
        raise StripeError.invalid_param(MISSING_METHOD, code="payment_intent_unexpected_state")
    return_url = p.optional_str(params, "return_url")
    p.require_return_url(intent.automatic_payment_methods, return_url)
    if "capture_method" in params:
        intent.capture_method = p.choice(params, "capture_method", CAPTURE_METHODS) or "automatic"
    intent.return_url = return_url
    return _attempt(em, intent, method, ctx, [], off_session=off_session)


def capture(em: World, ident: str, params: dict[str, Any], ctx: RequestContext) -> Outcome:
    p.reject_unknown(params, CAPTURE_PARAMS)
    intent = em.intent(ident)
    if intent.status not in CAPTURABLE:
        raise _unexpected_state(intent, "capture")
    amount = intent.amount_capturable
    if params.get("amount_to_capture") is not None:
        amount = p.integer(params["amount_to_capture"], "amount_to_capture")
        if not 1 <= amount <= intent.amount_capturable:
            raise StripeError.invalid_param(
                f"The amount to capture ({amount}) must be greater than 0 and at most the "
                f"amount capturable ({intent.amount_capturable}).",
                param="amount_to_capture",
                code="amount_too_large",
            )
    charge = money.capture_charge(em, intent, amount)
    intent.amount_capturable, intent.amount_received = 0, amount
    em.set_status(intent, "succeeded")
    events = [
        em.event("charge.captured", intent, ctx, data_object=charge),
        em.event("payment_intent.succeeded", intent, ctx),
    ]
    return Outcome(200, intent.to_json(), events)


def cancel(em: World, ident: str, params: dict[str, Any], ctx: RequestContext) -> Outcome:
    p.reject_unknown(params, CANCEL_PARAMS)
    reason = p.choice(params, "cancellation_reason", CANCELLATION_REASONS)
    intent = em.intent(ident)
    if intent.status not in CANCELABLE:
        raise _unexpected_state(intent, "cancel")
    events = _cancel(em, intent, reason, ctx)
    return Outcome(200, intent.to_json(), events)


# -- the customer's side of 3-D Secure -------------------------------------------------------


def authenticate(em: World, ident: str) -> Outcome:
    intent = _awaiting_action(em, ident)
    card = TEST_CARDS[intent.card or "pm_card_visa"]
    ctx = RequestContext(api_version=em.api_version)
    if card.outcome == "three_ds_then_decline":
        assert card.decline_code is not None and card.message is not None
        failure = ("card_declined", card.decline_code, card.message)
        events = _decline(em, intent, card, failure, ctx, three_d_secure=True)
    else:
        events = _succeed(em, intent, card, ctx, three_d_secure=True)
    return Outcome(200, intent.to_json(), events)


def fail_authentication(em: World, ident: str) -> Outcome:
    intent = _awaiting_action(em, ident)
    intent.payment_method = None
    intent.next_action = None
    intent.last_payment_error = {
        "code": "payment_intent_authentication_failure",
        "message": "The provided PaymentMethod has failed authentication. You can provide "
        "payment_method_data or a new PaymentMethod to attempt to fulfill this "
        "PaymentIntent again.",
        "type": "invalid_request_error",
    }
    em.set_status(intent, "requires_payment_method")
    ctx = RequestContext(api_version=em.api_version)
    event = em.event("payment_intent.payment_failed", intent, ctx)
    return Outcome(200, intent.to_json(), [event])


def abandon(em: World, ident: str) -> Outcome:
    intent = _awaiting_action(em, ident)
    events = _cancel(em, intent, "abandoned", RequestContext(api_version=em.api_version))
    return Outcome(200, intent.to_json(), events)


# -- internals -----------------------------------------------------------------------------


def _attempt(
    em: World,
    intent: PaymentIntent,
    method: str,
    ctx: RequestContext,
    events: list[Event],
    *,
    off_session: bool,
) -> Outcome:
    """One payment attempt with `method`: succeeded, 3-D Secure, or a 402 decline."""
    card = _card(method)
    intent.payment_method = method
    intent.last_payment_error = None
    intent.next_action = None
    failure: tuple[str, str, str] | None = None
    if card.outcome == "succeed":
        events += _succeed(em, intent, card, ctx)
    elif card.outcome in ("three_ds", "three_ds_then_decline") and not off_session:
        intent.card = method
        intent.next_action = _next_action(intent)
        em.set_status(intent, "requires_action")
        events.append(em.event("payment_intent.requires_action", intent, ctx))
    else:
        # Off session nobody can authenticate: Stripe declines at once.
        if card.outcome == "decline":
            assert card.decline_code is not None and card.message is not None
            failure = ("card_declined", card.decline_code, card.message)
        else:
            failure = AUTHENTICATION_REQUIRED
        events += _decline(em, intent, card, failure, ctx)
    if failure is None:
        return Outcome(200, intent.to_json(), events)
    error = StripeError(
        402,
        "card_error",
        failure[2],
        code=failure[0],
        decline_code=failure[1],
        extra={
            "charge": intent.latest_charge,
            "payment_intent": intent.to_json(),
            "payment_method": payment_method_json(method, intent.created),
        },
    )
    return Outcome(402, error.body(), events)


def _succeed(
    em: World,
    intent: PaymentIntent,
    card: TestCard,
    ctx: RequestContext,
    *,
    three_d_secure: bool = False,
) -> list[Event]:
    manual = intent.capture_method == "manual"
    charge = money.new_charge(em, intent, card, captured=not manual, three_d_secure=three_d_secure)
    intent.next_action = None
    if manual:
        intent.amount_capturable = intent.amount
        em.set_status(intent, "requires_capture")
        follow = "payment_intent.amount_capturable_updated"
    else:
        intent.amount_received = intent.amount
        em.set_status(intent, "succeeded")
        follow = "payment_intent.succeeded"
    return [
        em.event("charge.succeeded", intent, ctx, data_object=charge),
        em.event(follow, intent, ctx),
    ]


def _decline(
    em: World,
    intent: PaymentIntent,
    card: TestCard,
    failure: tuple[str, str, str],
    ctx: RequestContext,
    *,
    three_d_secure: bool = False,
) -> list[Event]:
    code, decline_code, message = failure
    charge = money.new_charge(em, intent, card, failure=failure, three_d_secure=three_d_secure)
    intent.next_action = None
    intent.last_payment_error = {
        "charge": charge["id"],
        "code": code,
        "decline_code": decline_code,
        "doc_url": f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}",
        "message": message,
        "payment_method": payment_method_json(str(intent.payment_method), intent.created),
        "type": "card_error",
    }
    intent.payment_method = None
    em.set_status(intent, "requires_payment_method")
    return [
        em.event("charge.failed", intent, ctx, data_object=charge),
        em.event("payment_intent.payment_failed", intent, ctx),
    ]


def _cancel(
    em: World, intent: PaymentIntent, reason: str | None, ctx: RequestContext
) -> list[Event]:
    events: list[Event] = []
    if intent.status == "requires_capture" and intent.latest_charge is not None:
        # The authorisation is released: Stripe reports the uncaptured charge refunded.
        charge = em.charge(intent.latest_charge)
        previous = {"amount_refunded": charge["amount_refunded"], "refunded": charge["refunded"]}
        charge["amount_refunded"], charge["refunded"] = charge["amount"], True
        intent.amount_capturable = 0
        events.append(
            em.event("charge.refunded", intent, ctx, data_object=charge, previous=previous)
        )
    intent.next_action = None
    intent.canceled_at = int(em.clock.now())
    intent.cancellation_reason = reason
    em.set_status(intent, "canceled")
    events.append(em.event("payment_intent.canceled", intent, ctx))
    return events


def _next_action(intent: PaymentIntent) -> dict[str, Any]:
    if intent.return_url:
        return {
            "type": "redirect_to_url",
            "redirect_to_url": {
                "url": f"https://hooks.stripe.com/3d_secure_2/hosted?pi={intent.id}",
                "return_url": intent.return_url,
            },
        }
    return {
        "type": "use_stripe_sdk",
        "use_stripe_sdk": {"type": "three_d_secure_redirect", "stripe_js": ""},
    }


def _card(method: str) -> TestCard:
    card = TEST_CARDS.get(method)
    if card is None:
        raise StripeError.invalid_param(
            f"No such PaymentMethod: '{method}'", param="payment_method", code="resource_missing"
        )
    return card


def _awaiting_action(em: World, ident: str) -> PaymentIntent:
    intent = em.intent(ident)
    if intent.status != "requires_action":
        raise StripeError.invalid_request(
            f"PaymentIntent {ident} has status {intent.status}; the customer can act "
            "only on one in requires_action",
            code="payment_intent_unexpected_state",
        )
    return intent


def _unexpected_state(intent: PaymentIntent, action: str) -> StripeError:
    allowed = {"cancel": CANCELABLE, "capture": CAPTURABLE}.get(action, CONFIRMABLE)
    past = {"cancel": "canceled", "capture": "captured"}.get(action, "confirmed")
    if action == "confirm" and intent.status == "succeeded":
        message = (
            "You cannot confirm this PaymentIntent because it has already succeeded after "
            "being previously confirmed."
        )
    else:
        message = (
            f"You cannot {action} this PaymentIntent because it has a status of "
            f"{intent.status}. Only a PaymentIntent with one of the following statuses may "
            f"be {past}: {', '.join(allowed)}."
        )
    return StripeError.invalid_request(
        message,
        code="payment_intent_unexpected_state",
        extra={"payment_intent": intent.to_json()},
    )

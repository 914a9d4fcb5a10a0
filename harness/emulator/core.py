"""The emulator's state and the PaymentIntent state machine. No HTTP here.

Operations run synchronously on the event loop, so each is atomic; they return
the response and the events it caused, and the ASGI layer delivers those.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from harness.emulator.clock import Clock, IdSource, SystemClock
from harness.emulator.delivery import DeliverySettings, Dispatcher, Endpoint, Sender
from harness.emulator.errors import StripeError
from harness.emulator.faults import FaultRule
from harness.emulator.idempotency import IdempotencyStore
from harness.emulator.resources import (
    CANCELABLE,
    CONFIRMABLE,
    TEST_CARDS,
    Event,
    PaymentIntent,
    TestCard,
)

MIN_AMOUNT = 50  # Stripe's minimum charge in cents for usd
MAX_AMOUNT = 99_999_999
CREATE_PARAMS = {
    "amount",
    "currency",
    "confirm",
    "payment_method",
    "metadata",
    "confirmation_method",
    "return_url",
    "description",
    "expand",
    "payment_method_types",
    "capture_method",
    "customer",
    "receipt_email",
    "automatic_payment_methods",
    "off_session",
    "setup_future_usage",
    "statement_descriptor",
    "use_stripe_sdk",
}
CONFIRM_PARAMS = {"payment_method", "return_url", "expand", "off_session", "use_stripe_sdk"}
CANCEL_PARAMS = {"cancellation_reason", "expand"}
CANCELLATION_REASONS = {"duplicate", "fraudulent", "requested_by_customer", "abandoned"}


@dataclass(frozen=True)
class RequestContext:
    request_id: str | None = None
    idempotency_key: str | None = None


@dataclass
class Outcome:
    """What an operation answers, and the events it caused."""

    status: int
    body: dict[str, Any]
    events: list[Event] = field(default_factory=list)


class Emulator:
    def __init__(
        self,
        *,
        sender: Sender,
        clock: Clock | None = None,
        seed: int = 0,
        delivery: DeliverySettings | None = None,
    ) -> None:
        self.clock = clock or SystemClock()
        self.seed = seed
        self.ids = IdSource(seed)
        self.rng = random.Random(seed)
        self.intents: dict[str, PaymentIntent] = {}
        self.charges: dict[str, dict[str, Any]] = {}
        self.events: list[Event] = []
        self.idempotency = IdempotencyStore()
        self.fault_rules: list[FaultRule] = []
        self.requests: list[dict[str, Any]] = []
        self.dispatcher = Dispatcher(self.clock, sender, delivery or DeliverySettings(), seed)
        self._fault_seq = 0

    async def reset(self) -> None:
        """Forget everything but the endpoints; ids restart from the seed."""
        await self.dispatcher.cancel_all()
        self.dispatcher.attempts.clear()
        self.dispatcher.clear_rules()
        self.ids = IdSource(self.seed)
        self.rng = random.Random(self.seed)
        self.dispatcher.rng = random.Random(self.seed)
        self.intents.clear()
        self.charges.clear()
        self.events.clear()
        self.idempotency = IdempotencyStore()
        self.fault_rules.clear()
        self.requests.clear()

    # -- configuration ------------------------------------------------------------

    def add_endpoint(self, url: str, secret: str) -> Endpoint:
        if not secret.startswith("whsec_"):
            raise StripeError.invalid_request(
                "webhook secret must start with whsec_", param="secret"
            )
        # Numbered, not drawn from `ids`: endpoints survive a reset, ids restart.
        endpoint = Endpoint(url=url, secret=secret, id=f"we_{len(self.dispatcher.endpoints) + 1}")
        self.dispatcher.endpoints.append(endpoint)
        return endpoint

    def add_fault(self, rule: FaultRule) -> FaultRule:
        self._fault_seq += 1
        rule.id = rule.id or f"fault_{self._fault_seq}"
        self.fault_rules.append(rule)
        return rule

    def match_fault(self, method: str, path: str, params: dict[str, Any]) -> FaultRule | None:
        for rule in self.fault_rules:
            if rule.matches(method, path, params, self.rng):
                rule.fired += 1
                return rule
        return None

    # -- PaymentIntents -----------------------------------------------------------------

    def create_intent(self, params: dict[str, Any], ctx: RequestContext) -> Outcome:
        _reject_unknown(params, CREATE_PARAMS)
        amount = _amount(params.get("amount"))
        currency = params.get("currency")
        if not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha():
            raise StripeError.invalid_request(
                "Missing required param: currency." if currency is None else "Invalid currency",
                param="currency",
                code="parameter_missing" if currency is None else "parameter_invalid_string",
            )
        metadata = _metadata(params.get("metadata"))
        confirm = _bool(params.get("confirm", "false"), "confirm")
        method = _optional_str(params, "payment_method")
        confirmation_method = params.get("confirmation_method", "automatic")
        if confirmation_method not in ("automatic", "manual"):
            raise StripeError.invalid_request(
                "Invalid confirmation_method", param="confirmation_method"
            )
        if method is not None:
            _card(method)
        ident = self.ids.new("pi")
        now = self.clock.now()
        intent = PaymentIntent(
            id=ident,
            amount=amount,
            currency=currency.lower(),
            created=int(now),
            client_secret=f"{ident}_secret_{self.ids.token()}",
            metadata=metadata,
            description=_optional_str(params, "description"),
            payment_method=method,
            return_url=_optional_str(params, "return_url"),
            confirmation_method=confirmation_method,
        )
        self.intents[ident] = intent
        self._set_status(intent, "requires_confirmation" if method else "requires_payment_method")
        events = [self._event("payment_intent.created", intent, ctx)]
        if confirm:
            if method is None:
                raise StripeError.invalid_request(
                    "You cannot confirm this PaymentIntent because it's missing a payment method.",
                    code="payment_intent_unexpected_state",
                )
            return self._confirm(intent, method, ctx, events)
        return Outcome(200, intent.to_json(), events)

    def retrieve_intent(self, ident: str) -> Outcome:
        return Outcome(200, self._intent(ident).to_json())

    def list_intents(self, params: dict[str, Any]) -> Outcome:
        try:
            limit = int(params.get("limit", "10"))
        except ValueError as exc:
            raise StripeError.invalid_request("Invalid integer: limit", param="limit") from exc
        if not 1 <= limit <= 100:
            raise StripeError.invalid_request("limit must be between 1 and 100", param="limit")
        newest_first = list(reversed(self.intents.values()))
        data = [i.to_json() for i in newest_first[:limit]]
        return Outcome(
            200,
            {
                "object": "list",
                "url": "/v1/payment_intents",
                "has_more": len(newest_first) > limit,
                "data": data,
            },
        )

    def confirm_intent(self, ident: str, params: dict[str, Any], ctx: RequestContext) -> Outcome:
        _reject_unknown(params, CONFIRM_PARAMS)
        intent = self._intent(ident)
        if intent.status not in CONFIRMABLE:
            raise self._unexpected_state(intent, "confirm")
        method = _optional_str(params, "payment_method") or intent.payment_method
        if method is None:
            raise StripeError.invalid_request(
                "You cannot confirm this PaymentIntent because it's missing a payment method.",
                code="payment_intent_unexpected_state",
            )
        _card(method)
        if params.get("return_url"):
            intent.return_url = str(params["return_url"])
        return self._confirm(intent, method, ctx, [])

    def cancel_intent(self, ident: str, params: dict[str, Any], ctx: RequestContext) -> Outcome:
        _reject_unknown(params, CANCEL_PARAMS)
        reason = params.get("cancellation_reason")
        if reason is not None and reason not in CANCELLATION_REASONS:
            raise StripeError.invalid_request(
                "Invalid cancellation_reason", param="cancellation_reason"
            )
        intent = self._intent(ident)
        if intent.status not in CANCELABLE:
            raise self._unexpected_state(intent, "cancel")
        events = self._cancel(intent, reason, ctx)
        return Outcome(200, intent.to_json(), events)

    # -- the customer's side of 3-D Secure ---------------------------------------------------

    def authenticate(self, ident: str) -> Outcome:
        intent = self._awaiting_action(ident)
        card = TEST_CARDS[intent.card or "pm_card_visa"]
        ctx = RequestContext()
        if card.outcome == "three_ds_then_decline":
            events = self._decline(intent, card, ctx)
        else:
            events = self._succeed(intent, ctx)
        return Outcome(200, intent.to_json(), events)

    def fail_authentication(self, ident: str) -> Outcome:
        intent = self._awaiting_action(ident)
        intent.payment_method = None
        intent.next_action = None
        intent.last_payment_error = {
            "code": "payment_intent_authentication_failure",
            "message": "The provided PaymentMethod has failed authentication. You can provide "
            "payment_method_data or a new PaymentMethod to attempt to fulfill this "
            "PaymentIntent again.",
            "type": "invalid_request_error",
        }
        self._set_status(intent, "requires_payment_method")
        event = self._event("payment_intent.payment_failed", intent, RequestContext())
        return Outcome(200, intent.to_json(), [event])

    def abandon(self, ident: str) -> Outcome:
        intent = self._awaiting_action(ident)
        events = self._cancel(intent, "abandoned", RequestContext())
        return Outcome(200, intent.to_json(), events)

    # -- state machine internals -------------------------------------------------------------

    def _confirm(
        self, intent: PaymentIntent, method: str, ctx: RequestContext, events: list[Event]
    ) -> Outcome:
        card = _card(method)
        intent.payment_method = method
        intent.last_payment_error = None
        if card.outcome == "succeed":
            events += self._succeed(intent, ctx)
        elif card.outcome in ("three_ds", "three_ds_then_decline"):
            intent.card = method
            intent.next_action = self._next_action(intent)
            self._set_status(intent, "requires_action")
            events.append(self._event("payment_intent.requires_action", intent, ctx))
        else:
            events += self._decline(intent, card, ctx)
            error = StripeError(
                402,
                "card_error",
                card.message or "Your card was declined.",
                code="card_declined",
                decline_code=card.decline_code,
                extra={
                    "charge": intent.latest_charge,
                    "payment_intent": intent.to_json(),
                    "payment_method": {"id": method, "object": "payment_method"},
                },
            )
            return Outcome(402, error.body(), events)
        return Outcome(200, intent.to_json(), events)

    def _succeed(self, intent: PaymentIntent, ctx: RequestContext) -> list[Event]:
        charge = self._charge(intent, "succeeded")
        intent.next_action = None
        intent.amount_received = intent.amount
        self._set_status(intent, "succeeded")
        return [
            self._event("charge.succeeded", intent, ctx, data_object=charge),
            self._event("payment_intent.succeeded", intent, ctx),
        ]

    def _decline(self, intent: PaymentIntent, card: TestCard, ctx: RequestContext) -> list[Event]:
        charge = self._charge(intent, "failed")
        intent.next_action = None
        intent.last_payment_error = {
            "charge": charge["id"],
            "code": "card_declined",
            "decline_code": card.decline_code,
            "message": card.message,
            "payment_method": {"id": intent.payment_method, "object": "payment_method"},
            "type": "card_error",
        }
        intent.payment_method = None
        self._set_status(intent, "requires_payment_method")
        return [self._event("payment_intent.payment_failed", intent, ctx)]

    def _cancel(
        self, intent: PaymentIntent, reason: str | None, ctx: RequestContext
    ) -> list[Event]:
        intent.next_action = None
        intent.canceled_at = int(self.clock.now())
        intent.cancellation_reason = reason
        self._set_status(intent, "canceled")
        return [self._event("payment_intent.canceled", intent, ctx)]

    def _charge(self, intent: PaymentIntent, status: str) -> dict[str, Any]:
        charge_id = self.ids.new("ch")
        charge: dict[str, Any] = {
            "id": charge_id,
            "object": "charge",
            "amount": intent.amount,
            "amount_captured": intent.amount if status == "succeeded" else 0,
            "currency": intent.currency,
            "created": int(self.clock.now()),
            "livemode": False,
            "metadata": dict(intent.metadata),
            "paid": status == "succeeded",
            "payment_intent": intent.id,
            "payment_method": intent.payment_method,
            "status": status,
        }
        self.charges[charge_id] = charge
        intent.latest_charge = charge_id
        return charge

    def _next_action(self, intent: PaymentIntent) -> dict[str, Any]:
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

    def _event(
        self,
        type_: str,
        intent: PaymentIntent,
        ctx: RequestContext,
        data_object: dict[str, Any] | None = None,
    ) -> Event:
        event = Event(
            id=self.ids.new("evt"),
            type=type_,
            created=int(self.clock.now()),
            data_object=dict(data_object) if data_object is not None else intent.to_json(),
            request_id=ctx.request_id,
            idempotency_key=ctx.idempotency_key,
        )
        self.events.append(event)
        return event

    def _set_status(self, intent: PaymentIntent, status: str) -> None:
        intent.status = status
        intent.status_history.append((self.clock.now(), status))

    def _intent(self, ident: str) -> PaymentIntent:
        intent = self.intents.get(ident)
        if intent is None:
            raise StripeError.missing("payment_intent", ident, param="intent")
        return intent

    def _awaiting_action(self, ident: str) -> PaymentIntent:
        intent = self._intent(ident)
        if intent.status != "requires_action":
            raise StripeError.invalid_request(
                f"PaymentIntent {ident} has status {intent.status}; the customer can act "
                "only on one in requires_action",
                code="payment_intent_unexpected_state",
            )
        return intent

    def _unexpected_state(self, intent: PaymentIntent, action: str) -> StripeError:
        allowed = CANCELABLE if action == "cancel" else CONFIRMABLE
        return StripeError.invalid_request(
            f"You cannot {action} this PaymentIntent because it has a status of "
            f"{intent.status}. Only a PaymentIntent with one of the following statuses may "
            f"be {action}ed: {', '.join(sorted(allowed))}.",
            code="payment_intent_unexpected_state",
        )

    # -- inspection ----------------------------------------------------------------------------

    def snapshot(self, metadata_prefix: tuple[str, str] | None = None) -> dict[str, Any]:
        """Everything, or with `metadata_prefix=(key, prefix)` only the intents whose
        metadata[key] starts with prefix and what belongs to them (charges, events,
        their deliveries, requests and idempotency keys): a caller watching its own
        users need not copy a long run's whole history on every look."""
        intents = list(self.intents.values())
        charges = list(self.charges.values())
        events, attempts, requests = self.events, self.dispatcher.attempts, self.requests
        keys = list(self.idempotency.records.values())
        if metadata_prefix is not None:
            key, prefix = metadata_prefix
            intents = [i for i in intents if str(i.metadata.get(key, "")).startswith(prefix)]
            ids = {i.id for i in intents}
            charges = [c for c in charges if c.get("payment_intent") in ids]
            events = [e for e in events if e.intent_id in ids]
            event_ids = {e.id for e in events}
            attempts = [a for a in attempts if a.event_id in event_ids]
            requests = [r for r in requests if r.get("intent_id") in ids]
            used = {r.get("idempotency_key") for r in requests}
            keys = [k for k in keys if k.key in used]
        return {
            "seed": self.seed,
            "now": self.clock.now(),
            "intents": [{**i.to_json(), "status_history": i.status_history} for i in intents],
            "charges": charges,
            "events": [e.to_json() for e in events],
            "idempotency_keys": [r.to_json() for r in keys],
            "deliveries": [a.to_json() for a in attempts],
            "held": [{"event_id": e.id, "endpoint_id": ep.id} for e, ep in self.dispatcher.held],
            "endpoints": [e.to_json() for e in self.dispatcher.endpoints],
            "delivery_rules": [r.to_json() for r in self.dispatcher.rules],
            "fault_rules": [r.to_json() for r in self.fault_rules],
            "requests": list(requests),
            "deliveries_in_progress": self.dispatcher.in_progress,
        }


def _reject_unknown(params: dict[str, Any], known: set[str]) -> None:
    for key in params:
        if key not in known:
            raise StripeError.invalid_request(
                f"Received unknown parameter: {key}", param=key, code="parameter_unknown"
            )


def _amount(value: Any) -> int:
    if value is None:
        raise StripeError.invalid_request(
            "Missing required param: amount.", param="amount", code="parameter_missing"
        )
    if not isinstance(value, str) or not value.isdigit() or not value.isascii():
        raise StripeError.invalid_request(
            "Invalid integer: " + str(value), param="amount", code="parameter_invalid_integer"
        )
    amount = int(value)
    if amount < MIN_AMOUNT:
        raise StripeError.invalid_request(
            "Amount must be at least $0.50 usd", param="amount", code="amount_too_small"
        )
    if amount > MAX_AMOUNT:
        raise StripeError.invalid_request(
            "Amount must be no more than $999,999.99", param="amount", code="amount_too_large"
        )
    return amount


def _bool(value: Any, param: str) -> bool:
    if value in ("true", "false"):
        return bool(value == "true")
    raise StripeError.invalid_request(f"Invalid boolean: {value}", param=param)


def _optional_str(params: dict[str, Any], key: str) -> str | None:
    value = params.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise StripeError.invalid_request(f"Invalid string: {key}", param=key)
    return value


def _metadata(value: Any) -> dict[str, str]:
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise StripeError.invalid_request("Invalid hash", param="metadata")
    if len(value) > 50:
        raise StripeError.invalid_request("metadata has more than 50 keys", param="metadata")
    out: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(item, str) or len(key) > 40 or len(item) > 500:
            raise StripeError.invalid_request(f"Invalid metadata[{key}]", param="metadata")
        out[key] = item
    return out


def _card(method: str) -> TestCard:
    card = TEST_CARDS.get(method)
    if card is None:
        raise StripeError.invalid_request(
            f"No such PaymentMethod: '{method}'", param="payment_method", code="resource_missing"
        )
    return card

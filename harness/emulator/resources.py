"""PaymentIntents, charges, refunds and events as plain data, and the test payment methods."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from harness.emulator.defaults import API_VERSION

CardOutcome = Literal["succeed", "three_ds", "three_ds_then_decline", "decline"]


@dataclass(frozen=True)
class TestCard:
    outcome: CardOutcome
    decline_code: str | None = None
    message: str | None = None
    brand: str = "visa"
    last4: str = "4242"
    funding: str = "credit"

    def details(self) -> dict[str, Any]:  # a fresh dict each call
        """The `card` hash of a PaymentMethod and of a charge's payment_method_details."""
        return {
            "brand": self.brand,
            "country": "US",
            "exp_month": 12,
            "exp_year": 2034,
            "fingerprint": f"fp{self.brand[:4]}{self.last4}",
            "funding": self.funding,
            "last4": self.last4,
        }


_GENERIC = ("generic_decline", "Your card was declined.")
_FUNDS = ("insufficient_funds", "Your card has insufficient funds.")

TEST_CARDS: dict[str, TestCard] = {
    "pm_card_visa": TestCard("succeed"),
    "pm_card_mastercard": TestCard("succeed", brand="mastercard", last4="4444"),
    "pm_card_threeDSecure2Required": TestCard("three_ds", last4="3220"),
    "pm_card_authenticationRequired": TestCard("three_ds", last4="3184"),
    "pm_card_threeDSecureRequiredChargeDeclined": TestCard(
        "three_ds_then_decline", *_GENERIC, last4="3178"
    ),
    "pm_card_chargeDeclined": TestCard("decline", *_GENERIC, last4="0002"),
    "pm_card_visa_chargeDeclined": TestCard("decline", *_GENERIC, last4="0002"),
    "pm_card_chargeDeclinedInsufficientFunds": TestCard("decline", *_FUNDS, last4="9995"),
    "pm_card_visa_chargeDeclinedInsufficientFunds": TestCard("decline", *_FUNDS, last4="9995"),
}

CANCELABLE = (
    "requires_payment_method",
    "requires_capture",
    "requires_confirmation",
    "requires_action",
    "processing",
)
CONFIRMABLE = ("requires_payment_method", "requires_confirmation", "requires_action")
CAPTURABLE = ("requires_capture",)
# Statuses in which more than metadata and description may change.
UPDATABLE = ("requires_payment_method", "requires_confirmation", "requires_action")


# A test card's billing details: none given.
NO_BILLING = {"address": None, "email": None, "name": None, "phone": None}


def payment_method_json(method: str, created: int) -> dict[str, Any]:
    card = TEST_CARDS[method]
    return {
        "id": method,
        "object": "payment_method",
        "billing_details": NO_BILLING,
        "card": card.details(),
        "created": created,
        "customer": None,
        "livemode": False,
        "metadata": {},
        "type": "card",
    }


@dataclass
class PaymentIntent:
    id: str
    amount: int
    currency: str
    created: int
    client_secret: str
    metadata: dict[str, str]
    description: str | None
    payment_method: str | None
    return_url: str | None
    confirmation_method: str
    capture_method: str = "automatic_async"
    automatic_payment_methods: dict[str, Any] | None = None
    payment_method_types: list[str] = field(default_factory=lambda: ["card"])
    receipt_email: str | None = None
    setup_future_usage: str | None = None
    statement_descriptor: str | None = None
    customer: str | None = None
    status: str = "requires_payment_method"
    last_payment_error: dict[str, Any] | None = None
    next_action: dict[str, Any] | None = None
    latest_charge: str | None = None
    amount_capturable: int = 0
    amount_received: int = 0
    canceled_at: int | None = None
    cancellation_reason: str | None = None
    # Not part of Stripe's object: what the emulator knows about the intent.
    status_history: list[tuple[float, str]] = field(default_factory=list)
    card: str | None = None  # the test card of the pending 3DS attempt

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "payment_intent",
            "amount": self.amount,
            "amount_capturable": self.amount_capturable,
            "amount_received": self.amount_received,
            "automatic_payment_methods": copy.copy(self.automatic_payment_methods),
            "canceled_at": self.canceled_at,
            "cancellation_reason": self.cancellation_reason,
            "capture_method": self.capture_method,
            "client_secret": self.client_secret,
            "confirmation_method": self.confirmation_method,
            "created": self.created,
            "currency": self.currency,
            "customer": self.customer,
            "description": self.description,
            "last_payment_error": copy.deepcopy(self.last_payment_error),
            "latest_charge": self.latest_charge,
            "livemode": False,
            "metadata": dict(self.metadata),
            "next_action": copy.deepcopy(self.next_action),
            "payment_method": self.payment_method,
            "payment_method_types": list(self.payment_method_types),
            "receipt_email": self.receipt_email,
            "setup_future_usage": self.setup_future_usage,
            "statement_descriptor": self.statement_descriptor,
            "status": self.status,
        }


@dataclass(slots=True)  # not frozen: a frozen init costs a setattr call per field
class Event:
    id: str
    type: str
    created: int
    data_object: dict[str, Any]
    request_id: str | None
    idempotency_key: str | None
    api_version: str = API_VERSION
    previous_attributes: dict[str, Any] | None = None
    _payload: bytes | None = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"object": self.data_object}
        if self.previous_attributes is not None:
            data["previous_attributes"] = self.previous_attributes
        return {
            "id": self.id,
            "object": "event",
            "api_version": self.api_version,
            "created": self.created,
            "data": data,
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": self.request_id, "idempotency_key": self.idempotency_key},
            "type": self.type,
        }

    def payload(self) -> bytes:
        """The body a webhook carries: pretty-printed like Stripe's, made once
        (retries, copies and endpoints send the same bytes)."""
        if self._payload is None:
            self._payload = orjson.dumps(self.to_json(), option=orjson.OPT_INDENT_2)
        return self._payload

    @property
    def intent_id(self) -> str | None:
        obj = self.data_object
        if obj.get("object") == "payment_intent":
            return str(obj["id"])
        pi = obj.get("payment_intent")
        return str(pi) if pi else None

    @property
    def metadata(self) -> dict[str, str]:
        meta = self.data_object.get("metadata") or {}
        return {str(k): str(v) for k, v in meta.items()}


@dataclass(frozen=True)
class RequestContext:
    request_id: str | None = None
    idempotency_key: str | None = None
    api_version: str = API_VERSION


@dataclass
class Outcome:
    """What an operation answers, and the events it caused."""

    status: int
    body: dict[str, Any]
    events: list[Event] = field(default_factory=list)

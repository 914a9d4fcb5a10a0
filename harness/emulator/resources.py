"""PaymentIntents, charges and events as plain data, and the test payment methods."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Literal

API_VERSION = "2025-03-31.basil"

Outcome = Literal["succeed", "three_ds", "three_ds_then_decline", "decline"]


@dataclass(frozen=True)
class TestCard:
    outcome: Outcome
    decline_code: str | None = None
    message: str | None = None
    brand: str = "visa"
    last4: str = "4242"


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

CANCELABLE = {
    "requires_payment_method",
    "requires_capture",
    "requires_confirmation",
    "requires_action",
}
CONFIRMABLE = {"requires_payment_method", "requires_confirmation"}


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
    status: str = "requires_payment_method"
    last_payment_error: dict[str, Any] | None = None
    next_action: dict[str, Any] | None = None
    latest_charge: str | None = None
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
            "amount_capturable": 0,
            "amount_received": self.amount_received,
            "automatic_payment_methods": None,
            "canceled_at": self.canceled_at,
            "cancellation_reason": self.cancellation_reason,
            "capture_method": "automatic",
            "client_secret": self.client_secret,
            "confirmation_method": self.confirmation_method,
            "created": self.created,
            "currency": self.currency,
            "description": self.description,
            "last_payment_error": copy.deepcopy(self.last_payment_error),
            "latest_charge": self.latest_charge,
            "livemode": False,
            "metadata": dict(self.metadata),
            "next_action": copy.deepcopy(self.next_action),
            "payment_method": self.payment_method,
            "payment_method_types": ["card"],
            "status": self.status,
        }


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    created: int
    data_object: dict[str, Any]
    request_id: str | None
    idempotency_key: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "event",
            "api_version": API_VERSION,
            "created": self.created,
            "data": {"object": self.data_object},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": self.request_id, "idempotency_key": self.idempotency_key},
            "type": self.type,
        }

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

"""Charges, balance transactions and refunds: what a PaymentIntent's attempts leave behind."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from harness.emulator import params as p
from harness.emulator.errors import StripeError
from harness.emulator.resources import NO_BILLING, Outcome, PaymentIntent, RequestContext, TestCard
from harness.emulator.world import World

REFUND_PARAMS = frozenset(
    {"amount", "charge", "payment_intent", "reason", "metadata", "expand", "instructions_email"}
)
REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")


def fee(amount: int) -> int:
    """Stripe's US card pricing, 2.9% + 30 cents."""
    return round(amount * 0.029) + 30


# The nested parts of a charge never change once made, so charges share them:
# fewer objects per purchase means less for the garbage collector to walk in a
# long run (the emulator keeps every charge). Nothing may mutate them.


@functools.cache
def outcome_for(decline_code: str | None) -> dict[str, Any]:
    if decline_code is None:
        return {
            "network_status": "approved_by_network",
            "reason": None,
            "risk_level": "normal",
            "risk_score": 32,
            "seller_message": "Payment complete.",
            "type": "authorized",
        }
    message = (
        "The bank did not return any further details with this decline."
        if decline_code == "generic_decline"
        else f"The bank returned the decline code `{decline_code}`."
    )
    return {
        "network_status": "declined_by_network",
        "reason": decline_code,
        "risk_level": "normal",
        "risk_score": 32,
        "seller_message": message,
        "type": "issuer_declined",
    }


@functools.cache
def method_details(card: TestCard, three_d_secure: bool) -> dict[str, Any]:
    checks = {"address_line1_check": None, "address_postal_code_check": None, "cvc_check": None}
    secure = {"authenticated": True, "version": "2.2.0"} if three_d_secure else None
    return {
        "card": {
            **card.details(),
            "checks": checks,
            "network": card.brand,
            "three_d_secure": secure,
        },
        "type": "card",
    }


def new_charge(
    em: World,
    intent: PaymentIntent,
    card: TestCard,
    *,
    captured: bool = True,
    failure: tuple[str, str, str] | None = None,  # (code, decline_code, message)
    three_d_secure: bool = False,
) -> dict[str, Any]:
    """A charge for one attempt; a succeeded, captured one gets a balance transaction."""
    charge_id = em.ids.new("ch")
    succeeded = failure is None
    charge: dict[str, Any] = {
        "id": charge_id,
        "object": "charge",
        "amount": intent.amount,
        "amount_captured": intent.amount if succeeded and captured else 0,
        "amount_refunded": 0,
        "balance_transaction": None,
        "billing_details": NO_BILLING,
        "calculated_statement_descriptor": intent.statement_descriptor or "TOKENPROOF",
        "captured": succeeded and captured,
        "created": int(em.clock.now()),
        "currency": intent.currency,
        "customer": intent.customer,
        "description": intent.description,
        "disputed": False,
        "failure_code": failure[0] if failure else None,
        "failure_message": failure[2] if failure else None,
        "livemode": False,
        "metadata": intent.metadata.copy(),
        "outcome": outcome_for(failure[1] if failure else None),
        "paid": succeeded,
        "payment_intent": intent.id,
        "payment_method": intent.payment_method,
        "payment_method_details": method_details(card, three_d_secure),
        "receipt_email": intent.receipt_email,
        "receipt_url": "https://pay.stripe.com/receipts/payment/" + charge_id,
        "refunded": False,
        "status": "succeeded" if succeeded else "failed",
    }
    if succeeded and captured:
        charge["balance_transaction"] = balance_transaction(em, intent.amount, intent, charge_id)
    em.charges.add(charge_id, charge)
    intent.latest_charge = charge_id
    return charge


@dataclass(frozen=True, slots=True)
class BalanceTransaction:
    """Kept compact (one object per charge); rendered only when asked for."""

    id: str
    amount: int
    currency: str
    description: str | None
    source: str
    kind: str  # charge | refund
    created: int

    def to_json(self) -> dict[str, Any]:
        charged_fee = fee(self.amount) if self.kind == "charge" else 0
        return {
            "id": self.id,
            "object": "balance_transaction",
            "amount": self.amount,
            "available_on": self.created + 2 * 86400,
            "created": self.created,
            "currency": self.currency,
            "description": self.description,
            "fee": charged_fee,
            "fee_details": [
                {"amount": charged_fee, "currency": self.currency, "type": "stripe_fee"}
            ]
            if charged_fee
            else [],
            "net": self.amount - charged_fee,
            "reporting_category": self.kind,
            "source": self.source,
            "status": "pending",
            "type": self.kind,
        }


def balance_transaction(
    em: World, amount: int, intent: PaymentIntent, source: str, kind: str = "charge"
) -> str:
    txn = BalanceTransaction(
        em.ids.new("txn"),
        amount,
        intent.currency,
        intent.description,
        source,
        kind,
        int(em.clock.now()),
    )
    em.balance_transactions[txn.id] = txn
    return txn.id


def capture_charge(em: World, intent: PaymentIntent, amount: int) -> dict[str, Any]:
    charge = em.charge(str(intent.latest_charge))
    charge["captured"] = True
    charge["amount_captured"] = amount
    # The part not captured is released to the customer, as Stripe reports it.
    charge["amount_refunded"] = charge["amount"] - amount
    charge["balance_transaction"] = balance_transaction(em, amount, intent, charge["id"])
    return charge


def create_refund(em: World, params: dict[str, Any], ctx: RequestContext) -> Outcome:
    p.reject_unknown(params, REFUND_PARAMS)
    charge_id, pi_id = p.optional_str(params, "charge"), p.optional_str(params, "payment_intent")
    if (charge_id is None) == (pi_id is None):
        raise StripeError.invalid_param(
            "You must pass exactly one of these parameters: charge, payment_intent."
        )
    reason = p.choice(params, "reason", REFUND_REASONS)
    metadata = p.metadata(params.get("metadata"))
    if pi_id is not None:
        intent = em.intents.get(pi_id)
        if intent is None:
            raise StripeError.missing("payment_intent", pi_id, param="payment_intent")
        if intent.status != "succeeded" or intent.latest_charge is None:
            raise StripeError.invalid_request(
                f"This PaymentIntent ({pi_id}) does not have a successful charge to refund.",
                param="payment_intent",
            )
        charge = em.charge(intent.latest_charge)
    else:
        charge = em.charge(str(charge_id))
        intent = em.intent(str(charge["payment_intent"]))
    if charge["status"] != "succeeded" or not charge["captured"]:
        raise StripeError.invalid_request(
            f"Charge {charge['id']} has not been captured or did not succeed; nothing to refund.",
            param="charge",
        )
    remaining = charge["amount_captured"] - charge["amount_refunded"]
    if remaining <= 0:
        raise StripeError.invalid_request(
            f"Charge {charge['id']} has already been refunded.", code="charge_already_refunded"
        )
    amount = remaining
    if params.get("amount") is not None:
        amount = p.integer(params["amount"], "amount")
        if not 1 <= amount <= remaining:
            raise StripeError.invalid_request(
                f"Refund amount ({p.display(amount, charge['currency'])}) is greater than "
                f"unrefunded amount on charge ({p.display(remaining, charge['currency'])})",
                param="amount",
            )
    previous = {"amount_refunded": charge["amount_refunded"], "refunded": charge["refunded"]}
    refund_id = em.ids.new("re")
    refund = {
        "id": refund_id,
        "object": "refund",
        "amount": amount,
        "balance_transaction": balance_transaction(em, -amount, intent, refund_id, "refund"),
        "charge": charge["id"],
        "created": int(em.clock.now()),
        "currency": charge["currency"],
        "destination_details": {"card": {"type": "refund"}, "type": "card"},
        "metadata": metadata,
        "payment_intent": intent.id,
        "reason": reason,
        "status": "succeeded",
    }
    em.refunds.add(refund_id, refund)
    charge["amount_refunded"] += amount
    charge["refunded"] = charge["amount_refunded"] >= charge["amount_captured"]
    events = [
        em.event("charge.refunded", intent, ctx, data_object=charge, previous=previous),
        em.event("refund.created", intent, ctx, data_object=refund),
    ]
    return Outcome(200, dict(refund), events)

"""Stripe as the oracle: reconcile the emulator's charges with the ledger (pure)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from harness.checkers.result import CheckResult, Violation
from harness.collect import DbState, StripeState


def _expected_tokens(intent: dict[str, Any]) -> int | None:
    meta = intent.get("metadata") or {}
    try:
        return int(meta["tokenAmount"]) + int(meta.get("bonusTokens", "0"))
    except (KeyError, ValueError):
        return None


def reconciliation(db: DbState, stripe: StripeState) -> CheckResult:
    """Every succeeded PaymentIntent credited exactly once with what was paid for;
    nothing credited for an intent that did not succeed, or for no intent at all."""
    violations: list[Violation] = []
    completed: dict[str | None, list[Any]] = defaultdict(list)
    for row in db.ledger:
        if row.type == "purchase" and row.status == "completed":
            completed[row.stripe_payment_intent_id].append(row)
    intents = {i["id"]: i for i in stripe.intents}
    for pi, intent in intents.items():
        rows = completed.get(pi, [])
        if intent["status"] == "succeeded":
            expected = _expected_tokens(intent)
            if len(rows) != 1:
                violations.append(
                    Violation(
                        "credited-exactly-once",
                        f"{pi} succeeded at Stripe and was credited {len(rows)} times",
                        {"intent": _brief(intent), "rows": [r.id for r in rows]},
                    )
                )
            elif expected is not None and rows[0].tokens != expected:
                violations.append(
                    Violation(
                        "credited-amount",
                        f"{pi} paid for {expected} tokens but the ledger credits {rows[0].tokens}",
                        {"intent": _brief(intent), "row": rows[0].id},
                    )
                )
        elif rows:
            violations.append(
                Violation(
                    "no-credit-without-charge",
                    f"{pi} is {intent['status']} at Stripe but credited {len(rows)} times",
                    {"intent": _brief(intent), "rows": [r.id for r in rows]},
                )
            )
    for pi, rows in completed.items():
        if pi not in intents:
            violations.append(
                Violation(
                    "no-credit-without-charge",
                    f"completed purchase rows {[r.id for r in rows]} name intent {pi}, "
                    "which Stripe never saw",
                    {"payment_intent": pi, "rows": [r.id for r in rows]},
                )
            )
    return CheckResult.of("reconciliation", len(intents), violations)


def one_charge_per_key(stripe: StripeState) -> CheckResult:
    """At most one successful charge per (user, clientIdempotencyKey)."""
    charged: dict[tuple[str, str], list[str]] = defaultdict(list)
    for intent in stripe.intents:
        meta = intent.get("metadata") or {}
        key = meta.get("clientIdempotencyKey")
        if intent["status"] == "succeeded" and key:
            charged[(meta.get("userId", "?"), key)].append(intent["id"])
    violations = [
        Violation(
            "one-charge-per-key",
            f"{user} was charged {len(ids)} times for client key {key!r}",
            {"user": user, "client_key": key, "intents": ids},
        )
        for (user, key), ids in charged.items()
        if len(ids) > 1
    ]
    return CheckResult.of("one_charge_per_key", len(charged), violations)


def _brief(intent: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": intent["id"],
        "status": intent["status"],
        "amount": intent["amount"],
        "metadata": intent.get("metadata"),
    }

"""What settling waits for, and what it saw on the way (pure).

The contract lets a service credit inside the webhook request or later, from a
queue: "credited exactly once per PaymentIntent ... once webhooks have settled",
and the webhook owes only "2xx once accepted". So a Stripe outcome is owed to
the rows once the service has acknowledged (2xx) a genuine delivery of it, and
not before: an event still held, dropped or refused owes nothing yet.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from harness.checkers.result import CheckResult, Violation
from harness.checkers.stripe import FINAL_ROW_STATUS, acknowledged
from harness.state import DbState, Delivery, Settling, StripeState

SUCCEEDED = "payment_intent.succeeded"


def unaccounted(
    db: DbState, stripe: StripeState, acked: dict[str, list[Delivery]] | None = None
) -> dict[str, str]:
    """Intents whose acknowledged outcome the rows do not show yet, and what is
    missing: a succeeded intent with no completed purchase row, or a purchase row
    not yet marked as its intent's failure or cancellation. `acked`: the
    `acknowledged(stripe)` deliveries, when the caller has them already."""
    acked = acknowledged(stripe) if acked is None else acked
    completed = Counter(
        r.stripe_payment_intent_id
        for r in db.ledger
        if r.type == "purchase" and r.status == "completed"
    )
    missing: dict[str, str] = {}
    for intent in stripe.intents:
        pi = intent["id"]
        types = [d["event_type"] for d in acked.get(pi, [])]
        if intent["status"] == "succeeded":
            if SUCCEEDED in types and completed[pi] == 0:
                missing[pi] = "still not credited"
            continue
        ended = [t for t in types if t in FINAL_ROW_STATUS]
        if not ended:
            continue
        expected = FINAL_ROW_STATUS[ended[-1]]
        # A completed or wrongly final row will not change: that is a checker's business.
        waiting = [
            r
            for r in db.ledger
            if r.stripe_payment_intent_id == pi
            and r.type == "purchase"
            and r.status not in (*FINAL_ROW_STATUS.values(), "completed")
        ]
        if waiting:
            row = waiting[0]
            missing[pi] = f"purchase row {row.id} still {row.status!r} (not {expected!r})"
    return missing


def settled(settling: Settling | None) -> CheckResult:
    """What the reads while settling showed: a balance below zero at any of them
    (the contract: no balance is *ever* negative), and rows still changing when
    the deadline came (the run never settled)."""
    if settling is None:
        return CheckResult.of("settled", 0, [])
    violations = []
    seen: set[str] = set()
    for negative in settling.negatives:
        if negative.user_id in seen:
            continue
        seen.add(negative.user_id)
        violations.append(
            Violation(
                "no-negative-balance",
                f"{negative.user_id} had balance {negative.balance} "
                f"{negative.after_s:.2f} s after webhooks settled, while the service was "
                "still settling",
                {"balance_row": {"user_id": negative.user_id, "balance": negative.balance}},
            )
        )
    if settling.still_changing:
        violations.append(
            Violation(
                "state-converges",
                f"the rows were still changing {settling.waited_s:.1f} s after webhook "
                f"deliveries settled (settle timeout {settling.timeout_s:g} s): they never "
                f"stayed unchanged for {settling.quiet_s:.2f} s",
                _summary(settling),
            )
        )
    return CheckResult.of("settled", settling.reads, violations)


def _summary(settling: Settling) -> dict[str, Any]:
    return {
        "reads": settling.reads,
        "waited_s": round(settling.waited_s, 3),
        "pending": dict(settling.pending),
    }

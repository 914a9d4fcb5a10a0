"""Stripe as the oracle: reconcile the emulator's charges with the ledger (pure)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from typing import Any

from harness.checkers.fold import InFlight, OpFold, OpsAt, fold_all
from harness.checkers.result import CheckResult, Violation
from harness.contract import bonus_for
from harness.history import Op
from harness.state import (
    DbState,
    Delivery,
    Intent,
    LedgerRow,
    Observation,
    Settling,
    StripeState,
    empty_observation,
)


def _expected_tokens(intent: Intent) -> int | None:
    """What the contract says a purchase of `tokenAmount` credits: the tokens plus
    the 5% bonus (floored) from 5000 up, whatever the metadata's bonusTokens says."""
    meta = intent.get("metadata") or {}
    try:
        tokens = int(meta["tokenAmount"])
    except (KeyError, ValueError):
        return None
    return tokens + bonus_for(tokens)


def reconciliation(
    db: DbState, stripe: StripeState, settling: Settling | None = None
) -> CheckResult:
    """Every succeeded PaymentIntent credited exactly once with what was paid for;
    nothing credited for an intent that did not succeed, or for no intent at all.
    An intent the settle deadline found still uncredited is said to be so, with
    how long after its acknowledged delivery: never "credited 0 times" while the
    credit may still come."""
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
                hint, evidence = diagnose(pi, db, stripe)
                late = None if settling is None or rows else settling.pending_of(pi)
                what = (
                    f"is {late}"
                    if late
                    else f"was credited {len(rows)} times"
                    if rows
                    else "has no completed purchase row"
                )
                violations.append(
                    Violation(
                        "credited-exactly-once",
                        f"{pi} succeeded at Stripe and {what}: {hint}",
                        {"intent": _brief(intent), "rows": [r.id for r in rows], **evidence},
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
    for named, rows in completed.items():
        if named not in intents:
            violations.append(
                Violation(
                    "no-credit-without-charge",
                    f"completed purchase rows {[r.id for r in rows]} name intent {named}, "
                    "which Stripe never saw",
                    {"payment_intent": named, "rows": [r.id for r in rows]},
                )
            )
    return CheckResult.of("reconciliation", len(intents), violations)


# The row status the contract names for an intent that ended without a charge.
FINAL_ROW_STATUS = {
    "payment_intent.canceled": "canceled",
    "payment_intent.payment_failed": "failed",
}


def purchase_rows_settled(
    db: DbState, stripe: StripeState, settling: Settling | None = None
) -> CheckResult:
    """Once webhooks have settled, a purchase row whose intent was canceled or
    failed at Stripe (and did not succeed after all) says so: `canceled` /
    `failed`, not pending for ever."""
    last_event: dict[str, str] = {}
    for event in stripe.events:
        if event["type"] in FINAL_ROW_STATUS:
            last_event[event["data"]["object"]["id"]] = event["type"]
    rows_of: dict[str, list[LedgerRow]] = {}
    for row in db.ledger:
        if row.type == "purchase" and row.stripe_payment_intent_id is not None:
            rows_of.setdefault(row.stripe_payment_intent_id, []).append(row)
    violations = []
    checked = 0
    for intent in stripe.intents:
        ended = last_event.get(intent["id"])
        if ended is None or intent["status"] == "succeeded":
            continue
        expected = FINAL_ROW_STATUS[ended]
        for row in rows_of.get(intent["id"], []):
            checked += 1
            if row.status != expected:
                violations.append(
                    Violation(
                        "purchase-row-final-status",
                        f"purchase row {row.id} is {row.status!r} but its intent "
                        f"{intent['id']} ended {intent['status']} at Stripe ({ended} was "
                        f"delivered): the row should be {expected!r}"
                        + _still(settling, intent["id"]),
                        {"row": row.id, "row_status": row.status, "intent": _brief(intent)},
                    )
                )
    return CheckResult.of("purchase_rows_settled", checked, violations)


class ChargesPerKey(OpFold):
    """At most one successful charge per (user, clientIdempotencyKey).

    Judged from what the harness saw itself, not only from what the service
    wrote into the intent's metadata (it may leave the key out, or send Stripe no
    key at all): each user's charges may not outnumber the distinct client keys
    of its purchase calls plus its purchase calls without a key. A refused call
    (4xx) charged nothing and counts for nothing."""

    name = "one_charge_per_key"
    SHOWN = 20  # calls per user kept as evidence

    def __init__(self) -> None:
        self.in_flight = InFlight()
        # user -> client key (None: no key) -> how many calls, and a few op indexes
        self.calls: dict[str, dict[str | None, int]] = defaultdict(lambda: defaultdict(int))
        self.shown: dict[str, dict[str | None, list[int]]] = defaultdict(dict)

    def feed(self, op: Op) -> None:
        if op.f != "purchase" or op.user is None:
            return
        invoke = self.in_flight.note(op)
        if op.type != "invoke" and op.type != "fail" and invoke is not None:
            self._count(invoke)

    def _count(self, invoke: Op) -> None:
        assert invoke.user is not None
        key = invoke.args.get("clientIdempotencyKey")
        key = key if isinstance(key, str) and key else None
        self.calls[invoke.user][key] += 1
        shown = self.shown[invoke.user]
        if key in shown:
            if len(shown[key]) < 5:
                shown[key].append(invoke.index)
        elif len(shown) < self.SHOWN:
            shown[key] = [invoke.index]

    def finish(self, observation: Observation, ops_at: OpsAt) -> CheckResult:
        for invoke in self.in_flight.unfinished():  # never answered: may have charged
            self._count(invoke)
        violations: list[Violation] = []
        charged: dict[tuple[str, str], list[str]] = defaultdict(list)
        succeeded: dict[str, list[str]] = defaultdict(list)
        for intent in observation.stripe.intents:
            meta = intent.get("metadata") or {}
            if intent["status"] != "succeeded":
                continue
            succeeded[meta.get("userId", "?")].append(intent["id"])
            if meta.get("clientIdempotencyKey"):
                charged[(meta.get("userId", "?"), meta["clientIdempotencyKey"])].append(
                    intent["id"]
                )
        for (user, key), ids in charged.items():
            if len(ids) > 1:
                violations.append(
                    Violation(
                        "one-charge-per-key",
                        f"{user} was charged {len(ids)} times for client key {key!r}",
                        {"user": user, "client_key": key, "intents": ids},
                    )
                )
        reported = {user for (user, _key), ids in charged.items() if len(ids) > 1}
        # Without every purchase call, charges cannot be counted against calls.
        counted = self.calls.items() if observation.history_complete else ()
        for user, calls in counted:
            keys = sorted(k for k in calls if k is not None)
            keyless = calls.get(None, 0)
            allowed = len(keys) + keyless
            ids = succeeded.get(user, [])
            if len(ids) > allowed and user not in reported:
                violations.append(
                    Violation(
                        "one-charge-per-key",
                        f"{user} was charged {len(ids)} times, but its purchase calls carried "
                        f"{len(keys)} client key(s) {keys[:5]} and "
                        f"{keyless} had none: a retried key was charged again",
                        {
                            "user": user,
                            "intents": ids,
                            "calls": {str(k): v for k, v in self.shown[user].items()},
                        },
                    )
                )
        return CheckResult.of(self.name, len(succeeded), violations)


def one_charge_per_key(ops: list[Op], stripe: StripeState) -> CheckResult:
    return fold_all(ChargesPerKey(), ops, replace(empty_observation(), stripe=stripe))


def diagnose(pi: str, db: DbState, stripe: StripeState) -> tuple[str, dict[str, Any]]:
    """Where to look when a succeeded intent is not credited exactly once: does
    its purchase row exist, in which status, created when relative to each
    webhook delivery, and what the service answered to each delivery."""
    rows = [r for r in db.ledger if r.type == "purchase" and r.stripe_payment_intent_id == pi]
    events = {e["id"]: e["type"] for e in stripe.events if e["data"]["object"].get("id") == pi}
    attempts = sorted(
        (a for a in stripe.deliveries if a["event_id"] in events), key=lambda a: a["started"]
    )
    first_row = min((r.created_at for r in rows if r.created_at is not None), default=None)
    deliveries = [
        {
            "event": a["event_type"],
            "attempt": a.get("attempt"),
            "signature": a.get("signature"),
            "answered": a["status"],
            "when": None if first_row is None else _relative(a["started"] - first_row),
        }
        for a in attempts
    ]
    genuine_ok = [
        a for a in acknowledged(stripe).get(pi, []) if a["event_type"] == "payment_intent.succeeded"
    ]
    completed = [r for r in rows if r.status == "completed"]
    if len(completed) > 1:
        hint = f"{len(completed)} completed purchase rows name it (a credit per delivery?)"
    elif not rows:
        hint = (
            f"no purchase row names it, yet the service answered {len(genuine_ok)} genuine "
            "succeeded deliveries with 2xx: the event was acknowledged and dropped"
            if genuine_ok
            else "no purchase row names it and no succeeded delivery was accepted"
        )
    elif genuine_ok:
        hint = (
            f"its purchase row is {rows[0].status!r}, and the service answered "
            f"{len(genuine_ok)} genuine succeeded deliveries with 2xx without crediting it"
        )
        if first_row is not None and genuine_ok[0]["started"] < first_row:
            hint += " (the first one came before the row existed)"
    else:
        hint = f"its purchase row is {rows[0].status!r}; no succeeded delivery was accepted"
    if not completed:
        hint += _unexplained(pi, db, stripe)
    evidence = {
        "purchase_rows": [
            {"id": r.id, "status": r.status, "tokens": r.tokens, "user": r.user_id} for r in rows
        ],
        "deliveries": deliveries,
    }
    return hint, evidence


def _unexplained(pi: str, db: DbState, stripe: StripeState) -> str:
    """A row's status is not the credit: what the buyer's balance shows beyond what
    its completed ledger rows explain (a credit whose row was overwritten later)."""
    intent = next((i for i in stripe.intents if i["id"] == pi), None)
    user = (intent or {}).get("metadata", {}).get("userId") if intent else None
    if user is None:
        return ""
    explained = sum(r.tokens for r in db.ledger if r.user_id == user and r.status == "completed")
    extra = db.balance_of(user) - explained
    if extra <= 0:
        return ""
    return (
        f"; yet {user}'s balance is {extra} tokens above what its completed ledger rows "
        "explain: the credit may have landed and the row been overwritten since"
    )


def _still(settling: Settling | None, pi: str) -> str:
    late = None if settling is None else settling.pending_of(pi)
    return f"; it was {late}" if late else ""


def acknowledged(stripe: StripeState) -> dict[str, list[Delivery]]:
    """Per intent, the genuine (validly signed) deliveries of its events that the
    service answered with a 2xx, oldest first."""
    intent_of = {e["id"]: _intent_id(e["data"]["object"]) for e in stripe.events}
    out: dict[str, list[Delivery]] = {}
    for delivery in sorted(stripe.deliveries, key=lambda d: d.get("started", 0.0)):
        status = delivery.get("status")
        if delivery.get("signature", "valid") != "valid" or status is None:
            continue
        intent = intent_of.get(delivery["event_id"])
        if intent is not None and 200 <= status < 300:
            out.setdefault(intent, []).append(delivery)
    return out


def acknowledged_at(delivery: Delivery) -> float:
    """When the service's 2xx came back (epoch seconds)."""
    return delivery.get("started", 0.0) + (delivery.get("latency_s") or 0.0)


def _intent_id(obj: dict[str, Any]) -> str | None:
    if obj.get("object") == "payment_intent" or str(obj.get("id", "")).startswith("pi_"):
        return str(obj["id"])
    pi = obj.get("payment_intent")
    return pi if isinstance(pi, str) else None


def _relative(seconds: float) -> str:
    return f"{abs(seconds):.3f} s {'after' if seconds >= 0 else 'before'} the row was created"


def _brief(intent: Intent) -> dict[str, Any]:
    return {
        "id": intent["id"],
        "status": intent["status"],
        "amount": intent["amount"],
        "metadata": intent.get("metadata"),
    }

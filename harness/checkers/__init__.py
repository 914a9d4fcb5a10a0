"""Checkers: pure functions of (history, final database state, Stripe state).

results = check(Observation(ops, db, stripe))
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from harness.checkers import ledger, responses, settling, stripe
from harness.checkers.result import CheckResult, Violation
from harness.errors import TokenproofError
from harness.history import Op
from harness.state import DbState, Settling, StripeState

__all__ = ["ALLOW_5XX", "CHECKERS", "CheckResult", "Observation", "Violation", "check", "scoped"]


@dataclass(frozen=True)
class Observation:
    ops: list[Op]
    db: DbState
    stripe: StripeState
    # How the reads converged before this one (None: read once, not settled).
    settling: Settling | None = None
    # Error messages the database server logged during the run (internal text).
    logged_errors: tuple[str, ...] = ()


CHECKERS: dict[str, Callable[[Observation], CheckResult]] = {
    "non_negative": lambda o: ledger.non_negative(o.db),
    "ledger_explains_balances": lambda o: ledger.ledger_explains_balances(o.db),
    "transfers": lambda o: ledger.transfers(o.db),
    "reconciliation": lambda o: stripe.reconciliation(o.db, o.stripe, o.settling),
    "one_charge_per_key": lambda o: stripe.one_charge_per_key(o.ops, o.stripe),
    "purchase_rows_settled": lambda o: stripe.purchase_rows_settled(o.db, o.stripe, o.settling),
    "settled": lambda o: settling.settled(o.settling),
    "no_server_errors": lambda o: responses.no_server_errors(o.ops),
    "transfers_match_answers": lambda o: responses.transfers_match_answers(o.ops, o.db),
    "purchases_match_answers": lambda o: responses.purchases_match_answers(o.ops, o.stripe),
    "no_internal_text": lambda o: responses.no_internal_text(o.ops, o.logged_errors),
}
ALLOW_5XX = tuple(name for name in CHECKERS if name != "no_server_errors")


class UnknownChecker(TokenproofError, ValueError):
    """A scenario names a checker that does not exist."""


def check(observation: Observation, names: Iterable[str] | None = None) -> list[CheckResult]:
    chosen = list(CHECKERS) if names is None else list(names)
    unknown = [n for n in chosen if n not in CHECKERS]
    if unknown:
        raise UnknownChecker(f"unknown checkers {unknown}; choose from {sorted(CHECKERS)}")
    return [_run_checker(name, observation) for name in chosen]


def _run_checker(name: str, observation: Observation) -> CheckResult:
    try:
        return CHECKERS[name](observation)
    except Exception:
        # A checker that crashes has decided nothing: `unknown`, never a pass.
        return CheckResult(name, "unknown", 0, error=traceback.format_exc(limit=6))


def scoped(
    db: DbState, stripe_state: StripeState, users: frozenset[str]
) -> tuple[DbState, StripeState]:
    """Only the rows and intents of these users: scenarios sharing a database do
    not see each other."""
    db = replace(
        db,
        users=tuple(u for u in db.users if u.supabase_id in users),
        balances=tuple(b for b in db.balances if b.user_id in users),
        ledger=tuple(r for r in db.ledger if r.user_id in users),
        earnings=tuple(e for e in db.earnings if e.creator_id in users),
    )
    intents = tuple(
        i for i in stripe_state.intents if (i.get("metadata") or {}).get("userId") in users
    )
    ids = {i["id"] for i in intents}
    events = tuple(
        e
        for e in stripe_state.events
        if (
            e["data"]["object"].get("id") in ids or e["data"]["object"].get("payment_intent") in ids
        )
    )
    return db, replace(stripe_state, intents=intents, events=events)

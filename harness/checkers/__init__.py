"""Checkers: pure functions of (history, final database state, Stripe state).

results = check(Observation(ops, db, stripe))

Each checker is a fold over the op stream (`checkers.fold`); those that judge
the final state alone read no op. `Checks` feeds a stream as it comes (a load
run); `check` feeds a history held in memory (a scenario).
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterable
from dataclasses import replace

from harness.checkers import ledger, responses, settling, stripe
from harness.checkers.fold import OpFold, OpsAt, StateCheck, ops_in
from harness.checkers.result import CheckResult, Violation
from harness.errors import TokenproofError
from harness.history import Op
from harness.state import DbState, Observation, StripeState

__all__ = [
    "ALLOW_5XX",
    "CHECKERS",
    "CheckResult",
    "Checks",
    "Observation",
    "Violation",
    "check",
    "scoped",
]


def _state(name: str, judge: Callable[[Observation], CheckResult]) -> Callable[[], OpFold]:
    return lambda: StateCheck(name, judge)


CHECKERS: dict[str, Callable[[], OpFold]] = {
    "non_negative": _state("non_negative", lambda o: ledger.non_negative(o.db)),
    "ledger_explains_balances": _state(
        "ledger_explains_balances", lambda o: ledger.ledger_explains_balances(o.db)
    ),
    "transfers": _state("transfers", lambda o: ledger.transfers(o.db)),
    "reconciliation": _state(
        "reconciliation", lambda o: stripe.reconciliation(o.db, o.stripe, o.settling)
    ),
    "one_charge_per_key": stripe.ChargesPerKey,
    "purchase_rows_settled": _state(
        "purchase_rows_settled",
        lambda o: stripe.purchase_rows_settled(o.db, o.stripe, o.settling),
    ),
    "settled": _state("settled", lambda o: settling.settled(o.settling)),
    "no_server_errors": responses.ServerErrors,
    "transfers_match_answers": responses.TransfersMatchAnswers,
    "purchases_match_answers": responses.PurchasesMatchAnswers,
    "no_internal_text": responses.InternalText,
}
ALLOW_5XX = tuple(name for name in CHECKERS if name != "no_server_errors")


class UnknownChecker(TokenproofError, ValueError):
    """A scenario names a checker that does not exist."""


class Checks:
    """The chosen checkers over an op stream. A checker that crashes, while
    folding or at the end, has decided nothing: `unknown`, never a pass."""

    def __init__(self, names: Iterable[str] | None = None) -> None:
        chosen = list(CHECKERS) if names is None else list(names)
        unknown = [n for n in chosen if n not in CHECKERS]
        if unknown:
            raise UnknownChecker(f"unknown checkers {unknown}; choose from {sorted(CHECKERS)}")
        self.folds = {name: CHECKERS[name]() for name in chosen}
        self.crashed: dict[str, str] = {}
        self.fed = 0

    def feed(self, op: Op) -> None:
        self.fed += 1
        for name, fold in self.folds.items():
            if name in self.crashed:
                continue
            try:
                fold.feed(op)
            except Exception:
                self.crashed[name] = traceback.format_exc(limit=6)

    def early(self) -> list[Violation]:
        """Violations certain before the stream ends."""
        found: list[Violation] = []
        for name, fold in self.folds.items():
            if name not in self.crashed:
                try:
                    found += fold.early()
                except Exception:
                    self.crashed[name] = traceback.format_exc(limit=6)
        return found

    def finish(self, observation: Observation, ops_at: OpsAt) -> list[CheckResult]:
        results = []
        for name, fold in self.folds.items():
            if name not in self.crashed:
                try:
                    results.append(fold.finish(observation, ops_at))
                    continue
                except Exception:
                    self.crashed[name] = traceback.format_exc(limit=6)
            results.append(CheckResult(name, "unknown", 0, error=self.crashed[name]))
        return results


def check(observation: Observation, names: Iterable[str] | None = None) -> list[CheckResult]:
    checks = Checks(names)
    for op in observation.ops:
        checks.feed(op)
    return checks.finish(observation, ops_in(observation.ops))


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

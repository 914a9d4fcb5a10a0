"""Problems, not symptoms: a run's violations grouped into the likely defects
behind them (pure).

The rule, in two steps, stable across seeds because it reads only invariants
and what each violation's evidence shows:

1. **Each violation gets a kind**: the invariant's family (`FAMILIES`) and the
   route class its evidence names (a purchase or a transfer), e.g. "a bad
   amount is accepted", "transfers do not keep the ledger". An answer that does
   not match the ledger for calls that carried a client key is a key problem,
   not a ledger one.
2. **Consequences join their cause in the same scenario.** Some invariants are
   what any defect leaves behind (a ledger that no longer explains a balance,
   an answer that disagrees with the ledger, a 5xx, a purchase row left
   pending, rows still changing at the settle deadline, the model's
   difference). In a scenario that also shows a more
   specific violation, they join its problem. Within one scenario the cause is
   the violation whose family comes first in `FAMILIES`.
3. **A consequence alone joins the cause it came with elsewhere.** Where a
   fault cuts a non-atomic transfer decides which of its rows is missing: one
   scenario shows the earnings short *and* the ledger off, another only the
   ledger off. When a consequence's kind came with exactly one cause in the
   run, and that cause is about the same routes, the scenarios that show the
   consequence alone join that cause's problem. Otherwise (never seen with a
   cause, or with several) it is a problem of its own.

Problems with the same kind across scenarios are one problem. A violation that
fits no family is a problem of its own kind (its invariant): nothing is hidden.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.checkers.result import Violation

# family -> (title, invariants, phase). Order is precedence: the first family a
# scenario shows is the cause its consequences join.
FAMILIES: dict[str, tuple[str, tuple[str, ...], str]] = {
    "webhook-signature": (
        "webhook deliveries with a bad signature or body are accepted",
        ("forgery-refused", "malformed-webhook-refused"),
        "webhook",
    ),
    "token-without-exp": (
        "a bearer token without exp is accepted",
        ("exp-required",),
        "answer",
    ),
    "bad-token": (
        "a bad bearer token (expired, wrongly signed, unsigned) is accepted",
        ("bad-token-refused", "only-callers-tokens-move"),
        "answer",
    ),
    "self-transfer": (
        "a user can tip or call themself",
        ("no-self-transfer", "self-transfer-refused"),
        "answer",
    ),
    "bad-input": (
        "bad input is accepted instead of refused with 400",
        (
            "bad-input-refused",
            "bad-input-changes-nothing",
            "bad-input-charges-nothing",
            "negative-refused",
            "outside-price-table-refused",
            "bad-text-field-refused",
        ),
        "answer",
    ),
    "unknown-user": (
        "an unknown user is served",
        ("unknown-user-refused",),
        "answer",
    ),
    "client-keys": (
        "a retried client idempotency key does not replay the first outcome",
        (
            "one-charge-per-key",
            "retry-replays-first-answer",
            "reused-key-refused",
            "retry-answers-200",
            "retry-after-outage",
            "retry-after-stripe-answered",
            "retry-handled",
        ),
        "answer",
    ),
    "internal-text": (
        "error answers carry internal text",
        ("no-internal-error-text",),
        "answer",
    ),
    "outage": (
        "a Stripe outage is not answered 502 or 503",
        ("outage-is-502-or-503",),
        "answer",
    ),
    "liveness": (
        "the service stalls, crashes or does not recover",
        ("service-stalled", "service-crashed", "recovers-after-kill", "works-after-restart"),
        "service",
    ),
    "transfer-accounting": (
        "transfers are booked wrong (earnings, totals, ledger pairs)",
        (
            "debit-equals-credit",
            "one-earning-per-credit",
            "unique-earning-source",
            "total-earned",
            "total-earnings-usd",
        ),
        "answer",
    ),
    "credited-amount": (
        "a purchase credits the wrong number of tokens",
        ("credited-amount",),
        "webhook",
    ),
    "purchase-answer": (
        "a purchase's answer does not match Stripe",
        ("purchase-answer-real", "decline-charged-nothing", "purchase-ok", "three-ds-pending"),
        "answer",
    ),
    "unknown-intent": (
        "an event for an intent no purchase made is mishandled",
        ("unknown-intent-handled",),
        "webhook",
    ),
    "purchase-credit": (
        "a purchase is not credited exactly once",
        ("credited-exactly-once", "no-credit-without-charge"),
        "webhook",
    ),
    "purchase-row": (
        "a failed or canceled purchase's row does not say so",
        ("purchase-row-final-status",),
        "webhook",
    ),
    "ledger": (
        "balances move without the ledger rows that explain them",
        ("ledger-explains-balance",),
        "answer",
    ),
    "answers": (
        "answers promise other amounts than the ledger moved",
        ("answers-match-ledger",),
        "answer",
    ),
    "no-5xx": (
        "concurrent requests get a 5xx",
        ("no-5xx",),
        "answer",
    ),
    "settling": (
        "the service's rows do not settle",
        ("state-converges", "no-negative-balance"),
        "settling",
    ),
    "model": (
        "the model and the service disagree",
        ("model-matches-service",),
        "answer",
    ),
}
FAMILY_OF = {inv: family for family, (_, invs, _) in FAMILIES.items() for inv in invs}
ORDER = {family: i for i, family in enumerate(FAMILIES)}
# What any defect may leave behind: joins a more specific cause in its scenario.
CONSEQUENCES = frozenset(
    {
        "ledger-explains-balance",
        "answers-match-ledger",
        "no-5xx",
        "bad-token-changes-nothing",
        "bad-input-changes-nothing",
        "bad-input-charges-nothing",
        "credited-exactly-once",
        "no-credit-without-charge",
        "purchase-row-final-status",
        "model-matches-service",
        # Rows still changing at the deadline: what a late double credit looks like.
        "state-converges",
    }
)


# The routes a family's defect is about, where the family itself names them.
FAMILY_ROUTE = {
    "self-transfer": "transfer",
    "transfer-accounting": "transfer",
    "credited-amount": "purchase",
    "purchase-answer": "purchase",
    "unknown-intent": "purchase",
    "purchase-credit": "purchase",
    "purchase-row": "purchase",
}


@dataclass(frozen=True)
class Shown:
    """One violation, where it was seen."""

    scenario: str
    violation: Violation


@dataclass
class Problem:
    kind: str  # family, and route class where it splits one
    title: str
    phase: str
    shown: list[Shown] = field(default_factory=list)

    @property
    def invariants(self) -> list[str]:
        return sorted({s.violation.invariant for s in self.shown})

    @property
    def scenarios(self) -> list[str]:
        return list(dict.fromkeys(s.scenario for s in self.shown))

    @property
    def headline(self) -> str:
        """The title, with what the first violation shows."""
        first = self.shown[0].violation.message.splitlines()[0] if self.shown else ""
        return f"{self.title} ({first[:140]})" if first else self.title


def kind_of(violation: Violation) -> str:
    """A violation's family and, where one family covers separate defects, the
    route class its evidence names."""
    family = FAMILY_OF.get(violation.invariant)
    if family is None:
        return violation.invariant
    if family == "model":
        return _model_kind(violation)
    if family == "answers" and _keyed(violation.evidence):
        return "client-keys:transfer"
    if family in ("client-keys", "ledger", "no-5xx", "answers"):
        return f"{family}:{_route_class(violation)}"
    if family == "purchase-credit":
        return f"{family}:{_credit_shape(violation)}"
    return family


def group(seen: Sequence[tuple[str, Sequence[Violation]]]) -> list[Problem]:
    """Problems from each scenario's violations, most widespread first."""
    kinds = [[kind_of(v) for v in violations] for _, violations in seen]
    causes = [_scenario_cause(v, k) for (_, v), k in zip(seen, kinds, strict=True)]
    # Rule 3's evidence: the causes each consequence kind came with in the run.
    came_with: dict[str, set[str]] = {}
    for (_, violations), scenario_kinds, (cause, specific) in zip(seen, kinds, causes, strict=True):
        for violation, kind in zip(violations, scenario_kinds, strict=True):
            if specific and cause is not None and violation.invariant in CONSEQUENCES:
                came_with.setdefault(kind, set()).add(cause)
    problems: dict[str, Problem] = {}
    for (scenario, violations), scenario_kinds, (cause, specific) in zip(
        seen, kinds, causes, strict=True
    ):
        if not specific and cause is not None:
            cause = _joined(cause, came_with.get(cause, set()))
        for violation, kind in zip(violations, scenario_kinds, strict=True):
            if violation.invariant in CONSEQUENCES and cause is not None:
                kind = cause
            problem = problems.get(kind)
            if problem is None:
                family = kind.split(":")[0]
                title, _, phase = FAMILIES.get(family, (f"{family} is violated", (), "answer"))
                problem = problems[kind] = Problem(kind, _titled(title, kind), phase)
            problem.shown.append(Shown(scenario, violation))
    return sorted(problems.values(), key=lambda p: (-len(p.scenarios), p.kind))


def _scenario_cause(violations: Sequence[Violation], kinds: list[str]) -> tuple[str | None, bool]:
    """The kind a scenario's consequences join (rule 2), and whether it is a
    specific violation's rather than a consequence's own."""
    causes = [k for k, v in zip(kinds, violations, strict=True) if v.invariant not in CONSEQUENCES]
    cause = min(causes or kinds, key=lambda k: ORDER.get(k.split(":")[0], len(ORDER)), default=None)
    return cause, bool(causes)


def _joined(alone: str, came_with: set[str]) -> str:
    """Rule 3: a consequence alone joins the one cause it came with elsewhere
    when both name the same routes; otherwise it stays a problem of its own."""
    if len(came_with) == 1:
        [cause] = came_with
        if _route_of(cause) and _route_of(cause) == _route_of(alone):
            return cause
    return alone


def _route_of(kind: str) -> str:
    """The routes a kind is about: its route class, else its family's, else ''."""
    family, _, route = kind.partition(":")
    return route if route in ("purchase", "transfer") else FAMILY_ROUTE.get(family, "")


def _titled(title: str, kind: str) -> str:
    route = kind.partition(":")[2]
    words = {
        "purchase": " (purchases)",
        "transfer": " (tips and calls)",
        "twice": ": credited more than once",
        "never": ": not credited",
        "without-charge": ": credited without a charge",
    }
    return title + words.get(route, "")


def _route_class(violation: Violation) -> str:
    """Which routes a violation is about, from its evidence: a purchase (or its
    webhook), a transfer (tip, call), or neither said."""
    evidence = violation.evidence
    route = evidence.get("route")
    op = evidence.get("op")
    if isinstance(route, str):
        return "purchase" if route == "purchase" else "transfer"
    if isinstance(op, dict) and isinstance(op.get("f"), str):
        return "purchase" if op["f"] == "purchase" else "transfer"
    if evidence.get("kind") in ("tip", "call"):
        return "transfer"
    rows = evidence.get("rows")
    if isinstance(rows, list) and rows:
        purchase = any(isinstance(r, dict) and r.get("type") == "purchase" for r in rows)
        return "purchase" if purchase else "transfer"
    if "client_key" in evidence or "intents" in evidence:
        return "purchase"
    return "other"


def _model_kind(violation: Violation) -> str:
    """A model failure is the problem of the check its failing step broke, or, when
    only the balances disagreed, of a ledger that does not explain them, on the
    route of that step (scenarios/model.py puts both in the evidence)."""
    checks = violation.evidence.get("failed_checks") or []
    route = violation.evidence.get("route")
    named = Violation(checks[0] if checks else "ledger-explains-balance", "", {"route": route})
    return kind_of(named) if route or checks else "model"


def _credit_shape(violation: Violation) -> str:
    if violation.invariant == "no-credit-without-charge":
        return "without-charge"
    rows = violation.evidence.get("rows")
    return "twice" if isinstance(rows, list) and len(rows) > 1 else "never"


def _keyed(evidence: dict[str, Any]) -> bool:
    """The calls in the evidence carried client idempotency keys: their answers
    disagree with the ledger because a key did not hold."""
    ops = evidence.get("ops") or []
    return any(
        isinstance(op, dict)
        and isinstance(op.get("args"), dict)
        and bool(op["args"].get("clientIdempotencyKey"))
        for op in ops
    )

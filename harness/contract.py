"""The target contract as the harness reads it: the only judge of a service.

Every invariant a checker or scenario enforces cites the contract sentence it
enforces (`INVARIANTS`); a test keeps each citation verbatim in
`docs/target-contract.md` and every invariant the code can report in this
table. Answers are compared only on what the contract names (`outcome`):
extra fields, timestamps, request ids and replay flags never count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.dialect.model import ANSWER_FIELDS, CONTRACT_ROUTES
from harness.errors import TokenproofError, UsageError

# The fields of a 200 answer that the contract's routes table names, per route
# (the contract's own dialect keeps them, harness.dialect.model).
NAMED_FIELDS = ANSWER_FIELDS

# The contract's routes a fan calls, by the name ops carry (`Op.f`).
ROUTES: dict[str, tuple[str, str]] = {
    name: (route.method, route.path)
    for name, route in CONTRACT_ROUTES.items()
    if name in ("purchase", "tip", "deduct", "balance")
}


def purchase_body(tokens: Any, method: str, key: str | None = None) -> dict[str, Any]:
    """A purchase request as the contract words it (scenarios, model and load share it)."""
    return _keyed({"tokenAmount": tokens, "paymentMethodId": method}, key)


def transfer_body(
    f: str, creator_id: str, amount: Any, *, context: str, key: str | None = None
) -> dict[str, Any]:
    """A tip (`context` is its channel) or a call deduct (`context` is its call id)."""
    body = {"creatorId": creator_id, "tokenAmount": amount}
    body["channel" if f == "tip" else "callId"] = context
    return _keyed(body, key)


def _keyed(body: dict[str, Any], key: str | None) -> dict[str, Any]:
    if key is not None:
        body["clientIdempotencyKey"] = key
    return body


# Every amount the contract lists as bad, sent to every amount field first.
BAD_AMOUNT_LITERALS: tuple[Any, ...] = (
    "12abc",
    "1e3",
    1.5,
    "1.5",
    -5,
    0,
    " 5",
    "0100",
    True,
    None,
    [5],
    {"tokens": 5},
    10**9 + 1,
)
PRICE_TABLE = (100, 500, 1000, 5000, 10000)
BONUS_FROM, BONUS_PERCENT = 5000, 5  # "Bonus: 5% (floored) on purchases of 5000 or more."


def bonus_for(tokens: int) -> int:
    """The bonus tokens a purchase of `tokens` earns."""
    return tokens * BONUS_PERCENT // 100 if tokens >= BONUS_FROM else 0


def field_value(body: Any, dotted: str) -> Any:
    """`paymentIntent.id` of a body, or None where the path is missing."""
    value = body
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def outcome(route: str, status: int, body: Any) -> tuple[Any, ...]:
    """What the contract promises of an answer: its status and, for a 200, the
    values of the fields the routes table names for that route."""
    if status != 200:
        return (status,)
    return (status, *(field_value(body, name) for name in NAMED_FIELDS.get(route, ())))


@dataclass(frozen=True)
class Citation:
    clause: str  # verbatim from docs/target-contract.md (whitespace folded)
    section: str


def _c(section: str, clause: str) -> Citation:
    return Citation(" ".join(clause.split()), section)


_NO_NEGATIVE = _c("Invariants", "No balance is ever negative.")
_LEDGER = _c(
    "Invariants",
    "For every user, `token_balances.balance` equals the sum of `tokens` over that "
    "user's `token_transactions` rows with status `completed` (the ledger explains "
    "every balance).",
)
_CREDITED_ONCE = _c(
    "Invariants",
    "Every PaymentIntent that succeeded at Stripe is credited exactly once, once "
    "webhooks have settled; a PaymentIntent that did not succeed credits nothing.",
)
_ONE_CHARGE = _c(
    "Invariants",
    "A purchase retried with the same `clientIdempotencyKey` charges the card at most once.",
)
_TRANSFER = _c(
    "Invariants",
    "Every tip or call moves tokens: debit = credit, one pair of ledger rows, one "
    "`creator_earnings` row with a unique `(earning_type, source_id)`; a caller "
    "cannot tip or call themself.",
)
_EARNINGS = _c(
    "Invariants",
    "`users.total_earnings` of a creator equals `TOKEN_VALUE` times the tokens it "
    "received; `token_balances.total_earned` equals the tokens it received.",
)
_BONUS = _c(
    "Routes",
    "Price table (tokens -> USD): 100 -> 0.99, 500 -> 4.99, 1000 -> 9.99, 5000 -> 49.99, "
    "10000 -> 99.99. Bonus: 5% (floored) on purchases of 5000 or more.",
)
_NO_5XX = _c(
    "Invariants",
    "Concurrent requests never produce a 5xx (a deadlock or serialization failure "
    "is retried inside the service, not surfaced).",
)
_BAD_AMOUNT = _c(
    "Routes",
    'Anything else (`"12abc"`, `"1e3"`, `1.5`, `"1.5"`, `-5`, `0`, `" 5"`, `"0100"`, '
    "`true`, `null`, a list, an object, a number above 10^9) gets 400 and changes nothing.",
)
_TEXT_FIELDS = _c(
    "Routes",
    "`creatorId` and `channel` are non-empty strings (at most 200 characters); a body "
    "that is not a JSON object gets 400.",
)
_PRICE = _c("Routes", "`tokenAmount` for a purchase must be a key of the price table.")
_AUTH = _c(
    "Authentication", "A missing, expired, or wrongly signed token gets 401 and changes nothing."
)
_NO_EXP = _c("Routes", "Other answers: a JWT without `exp` gets 401.")
_REPLAY = _c(
    "Routes",
    "The same `clientIdempotencyKey` sent again by the same user with the same body "
    "returns the first outcome (the same status code and the same values of the fields "
    "the routes table names; other fields such as timestamps, request ids or a replay "
    "flag may differ) and moves no money again; with a different body it gets a 4xx "
    "(the reference answers 409) and moves no money.",
)
_OUTAGE = _c("Routes", "A Stripe outage the service cannot ride out gets 502 or 503.")
_NO_LEAK = _c(
    "Routes",
    "A 5xx body never carries internal error text (SQL, driver or Stripe messages, stack traces).",
)
_WEBHOOK = _c(
    "Routes",
    "| `POST /api/payments/webhook` | raw Stripe event, `Stripe-Signature` header | 2xx "
    "once accepted (also for an event already processed) | 400 bad signature or body |",
)
_PURCHASE_ROUTE = _c(
    "Routes",
    "| `POST /api/tokens/purchase` | `tokenAmount`, `paymentMethodId`, `clientIdempotencyKey` "
    "(optional) | 200 `{success, transaction?, paymentIntent: {id, status, client_secret}}` "
    "| 400 bad input, 401, 402 card declined, 404 unknown user, 429 rate limited |",
)
_FAILED_ROWS = _c(
    "Money flow",
    "`payment_intent.payment_failed` / `payment_intent.canceled` mark the row failed / "
    "canceled and credit nothing.",
)
_ONE_TRANSACTION = _c(
    "Money flow",
    "A tip or call deduction moves tokens from the caller to a creator in one database "
    "transaction: debit caller, credit creator, two ledger rows (caller `-n`, creator "
    "`+n`), one `creator_earnings` row, creator `users.total_earnings` increased by "
    "`n * TOKEN_VALUE`.",
)
_HEALTH = _c(
    "Process",
    "The service must be healthy (`GET /health` answers 200) before the harness starts a scenario.",
)
_BALANCE_ROUTE = _c("Routes", "| `GET /api/tokens/balance` | none | 200 `{balance}` | 401 |")

# Every invariant the harness can report, with the sentence it enforces.
INVARIANTS: dict[str, Citation] = {
    "no-negative-balance": _NO_NEGATIVE,
    "ledger-explains-balance": _LEDGER,
    "credited-exactly-once": _CREDITED_ONCE,
    "credited-amount": _BONUS,
    "no-credit-without-charge": _CREDITED_ONCE,
    "state-converges": _CREDITED_ONCE,
    "one-charge-per-key": _ONE_CHARGE,
    "debit-equals-credit": _TRANSFER,
    "one-earning-per-credit": _TRANSFER,
    "unique-earning-source": _TRANSFER,
    "no-self-transfer": _TRANSFER,
    "self-transfer-refused": _TRANSFER,
    "total-earned": _EARNINGS,
    "total-earnings-usd": _EARNINGS,
    "no-5xx": _NO_5XX,
    "answers-match-ledger": _ONE_TRANSACTION,
    "purchase-answer-real": _PURCHASE_ROUTE,
    "decline-charged-nothing": _PURCHASE_ROUTE,
    "purchase-ok": _PURCHASE_ROUTE,
    "unknown-user-refused": _PURCHASE_ROUTE,
    "three-ds-pending": _PURCHASE_ROUTE,
    "bad-input-refused": _BAD_AMOUNT,
    "bad-input-changes-nothing": _BAD_AMOUNT,
    "bad-input-charges-nothing": _BAD_AMOUNT,
    "bad-text-field-refused": _TEXT_FIELDS,
    "outside-price-table-refused": _PRICE,
    "negative-refused": _BAD_AMOUNT,
    "bad-token-refused": _AUTH,
    "bad-token-changes-nothing": _AUTH,
    "exp-required": _NO_EXP,
    "only-callers-tokens-move": _AUTH,
    "retry-replays-first-answer": _REPLAY,
    "reused-key-refused": _REPLAY,
    "retry-handled": _OUTAGE,
    "outage-is-502-or-503": _OUTAGE,
    "retry-answers-200": _REPLAY,
    "retry-after-outage": _REPLAY,
    "retry-after-stripe-answered": _REPLAY,
    "no-internal-error-text": _NO_LEAK,
    "forgery-refused": _WEBHOOK,
    "malformed-webhook-refused": _WEBHOOK,
    "unknown-intent-handled": _WEBHOOK,
    "purchase-row-final-status": _FAILED_ROWS,
    "service-stalled": _BALANCE_ROUTE,
    "works-after-restart": _HEALTH,
    "recovers-after-kill": _HEALTH,
    "service-crashed": _HEALTH,
    "service-unreachable": _HEALTH,
    "model-matches-service": _LEDGER,
}


# Invariants a team's own scenarios enforce, with the rule of theirs each cites.
TEAM_INVARIANTS: dict[str, Citation] = {}


class UncitedInvariant(TokenproofError):
    """A check reports an invariant that cites no sentence of the contract."""


class InvariantDefinitionError(UsageError):
    """A team invariant clashes with one of the contract's or is defined twice
    with another rule."""


def invariant(name: str, rule: str) -> str:
    """Declare an invariant of your own and the rule it enforces (your spec's
    sentence), so that `run.expect(..., name, ...)` may report it. Returns `name`."""
    if name in INVARIANTS:
        raise InvariantDefinitionError(
            f"{name!r} is one of the contract's invariants; give yours another name"
        )
    cited = Citation(" ".join(rule.split()), "team")
    if TEAM_INVARIANTS.get(name, cited) != cited:
        raise InvariantDefinitionError(f"invariant {name!r} is already declared with another rule")
    TEAM_INVARIANTS[name] = cited
    return name


def citation(invariant: str) -> Citation:
    found = INVARIANTS.get(invariant) or TEAM_INVARIANTS.get(invariant)
    if found is None:
        raise UncitedInvariant(
            f"invariant {invariant!r} cites no sentence of the target contract; declare it "
            "with harness.api.invariant(name, rule) (a team's own rule), add it to "
            "harness.contract.INVARIANTS with the contract sentence it enforces, or do not "
            "demand it"
        )
    return found

"""Which invariants a part of a dialect carries: when a part does not answer as
it should (left to the contract's default on a service that words it otherwise,
or mapped wrong), these cannot be judged, and `dialect check` says so."""

from __future__ import annotations

PURCHASES = (
    "purchase-ok",
    "purchase-answer-real",
    "credited-exactly-once",
    "credited-amount",
    "no-credit-without-charge",
    "one-charge-per-key",
    "decline-charged-nothing",
    "three-ds-pending",
    "outside-price-table-refused",
    "retry-after-outage",
    "unknown-user-refused",
)
TRANSFERS = (
    "debit-equals-credit",
    "one-earning-per-credit",
    "unique-earning-source",
    "no-self-transfer",
    "self-transfer-refused",
    "negative-refused",
    "only-callers-tokens-move",
    "retry-replays-first-answer",
    "reused-key-refused",
    "bad-input-refused",
    "bad-text-field-refused",
    "total-earned",
    "total-earnings-usd",
)
EVERYTHING = ("every invariant",)

COSTS: dict[str, tuple[str, ...]] = {
    "routes.health": EVERYTHING,  # a service that never looks ready is never judged
    "auth": EVERYTHING,
    "database.create-user": EVERYTHING,
    "database.grant": EVERYTHING,
    "routes.purchase": PURCHASES,
    "requests.purchase": PURCHASES,
    "answers.purchase": ("purchase-ok", "purchase-answer-real", "three-ds-pending"),
    "routes.tip": TRANSFERS,
    "requests.tip": TRANSFERS,
    "answers.tip": ("answers-match-ledger", "retry-replays-first-answer"),
    "routes.deduct": TRANSFERS,
    "requests.deduct": TRANSFERS,
    "answers.deduct": ("answers-match-ledger", "retry-replays-first-answer"),
    "routes.balance": ("answers-match-ledger", "bad-token-refused", "exp-required"),
    "answers.balance": ("answers-match-ledger",),
    "routes.webhook": (
        "credited-exactly-once",
        "forgery-refused",
        "malformed-webhook-refused",
        "unknown-intent-handled",
        "purchase-row-final-status",
    ),
    "statuses": ("answers-match-ledger", "model-matches-service", "bad-input-refused"),
    "metadata": ("one-charge-per-key", "credited-exactly-once", "no-credit-without-charge"),
    "database.users": ("total-earnings-usd",),
    "database.balances": (
        "no-negative-balance",
        "ledger-explains-balance",
        "answers-match-ledger",
        "total-earned",
    ),
    "database.ledger": (
        "ledger-explains-balance",
        "credited-exactly-once",
        "credited-amount",
        "debit-equals-credit",
        "purchase-row-final-status",
        "state-converges",
    ),
    # Without the gate's lock the races happen only by chance.
    "database.lock-ledger": (
        "ledger-explains-balance",
        "no-negative-balance",
        "answers-match-ledger",
    ),
    "database.lock-balances": ("credited-exactly-once",),
    "database.earnings": ("one-earning-per-credit", "unique-earning-source", "total-earnings-usd"),
}


def costs(part: str) -> tuple[str, ...]:
    """The invariants `part` ("routes.tip", "database.ledger", ...) carries."""
    return COSTS.get(part, COSTS.get(part.split(".")[0], ()))

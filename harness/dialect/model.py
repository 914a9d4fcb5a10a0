"""A dialect: how one service words the contract (routes, bodies, answers, status
codes, its token, its Stripe metadata and its tables). Pure data; the contract
itself is `CONTRACT`, the dialect every key left out falls back to."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# The contract's routes as the harness names them.
ROUTE_NAMES = ("purchase", "tip", "deduct", "balance", "webhook", "health")
REQUEST_ROUTES = ("purchase", "tip", "deduct")
CONTRACT_FIELDS = {
    "purchase": ("tokenAmount", "paymentMethodId"),
    "tip": ("creatorId", "tokenAmount", "channel"),
    "deduct": ("creatorId", "tokenAmount", "callId"),
}
KEY_FIELD = "clientIdempotencyKey"
# The fields of an answer the checks read, per route (the contract's routes table).
ANSWER_FIELDS: dict[str, tuple[str, ...]] = {
    "tip": ("tokensDeducted", "senderBalance", "recipientBalance"),
    "deduct": ("tokensDeducted", "senderBalance"),
    "purchase": ("paymentIntent.id", "paymentIntent.status"),
    "balance": ("balance",),
}
# Outcome -> the contract's status code, and the routes it can come from.
OUTCOMES: dict[str, tuple[int, tuple[str, ...]]] = {
    "ok": (200, ("purchase", "tip", "deduct", "balance")),
    "bad-input": (400, ("purchase", "tip", "deduct")),
    "unauthorized": (401, ("purchase", "tip", "deduct", "balance")),
    "insufficient-funds": (402, ("tip", "deduct")),
    "card-declined": (402, ("purchase",)),
    "not-found": (404, ("purchase", "tip", "deduct")),
    "conflict": (409, ("purchase", "tip", "deduct")),
    "rate-limited": (429, ("purchase",)),
    "outage": (503, ("purchase",)),
}
METADATA_FIELDS = ("userId", "tokenAmount", "bonusTokens", "clientIdempotencyKey")
DATABASE_KEYS = (
    "users",
    "balances",
    "ledger",
    "earnings",
    "create-user",
    "grant",
    "lock-ledger",
    "lock-balances",
)
# The columns each read returns (`created_at` in epoch seconds, or NULL).
DATABASE_COLUMNS: dict[str, tuple[str, ...]] = {
    "users": ("supabase_id", "is_creator", "total_earnings"),
    "balances": ("user_id", "balance", "total_earned"),
    "ledger": (
        "id",
        "user_id",
        "type",
        "tokens",
        "status",
        "stripe_payment_intent_id",
        "client_idempotency_key",
        "related_user_id",
        "amount_usd",
        "created_at",
    ),
    "earnings": ("creator_id", "earning_type", "source_id", "tokens_earned", "usd_value", "fan_id"),
}


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # may hold `{field}` parameters

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class RequestShape:
    # A JSON template whose "{field}" strings take the contract fields' values;
    # None: the contract's own body, as it is.
    body: Any = None
    key_in: str = "body"  # "body" or "header"
    key_name: str = KEY_FIELD  # a dotted body path, or a header name


@dataclass(frozen=True)
class Auth:
    header: str = "Authorization"
    scheme: str = "Bearer"
    user_claim: str = "sub"
    algorithm: str = "HS256"
    claims: Mapping[str, Any] = field(default_factory=lambda: {"role": "authenticated"})


# The contract's tables in the dialect's form: what a dialect that gives some of
# [database] uses for the rest (a dialect that gives none is read by
# `harness.run.collect` and written by `harness.target.users` directly).
CONTRACT_SQL: dict[str, str] = {
    "users": "SELECT supabase_id, is_creator, total_earnings FROM users "
    "WHERE supabase_id = ANY($1::text[])",
    "balances": "SELECT user_id, balance, total_earned FROM token_balances "
    "WHERE user_id = ANY($1::text[])",
    "ledger": """SELECT id, user_id, type, tokens, status, stripe_payment_intent_id,
       client_idempotency_key, related_user_id, amount_usd,
       extract(epoch FROM created_at)::float8 AS created_at
FROM token_transactions WHERE user_id = ANY($1::text[])""",
    "earnings": """SELECT creator_id, earning_type, source_id, tokens_earned, usd_value, fan_id
FROM creator_earnings WHERE creator_id = ANY($1::text[])""",
    "create-user": "INSERT INTO users (supabase_id, is_creator) VALUES ($1, $2)",
    # What the contention gate holds: something every transfer must wait for once
    # it has read a balance (a ledger write), and something every credit must
    # wait for (a balance update).
    "lock-ledger": "LOCK TABLE token_transactions IN SHARE MODE",
    "lock-balances": "LOCK TABLE token_balances IN SHARE MODE",
    "grant": """WITH balance AS (
    INSERT INTO token_balances (user_id, balance) VALUES ($1, $2::bigint))
INSERT INTO token_transactions (user_id, type, tokens, status)
VALUES ($1, 'grant', $2::bigint, 'completed')""",
}


@dataclass(frozen=True)
class Dialect:
    name: str = "contract"
    routes: Mapping[str, Route] = field(default_factory=dict)
    requests: Mapping[str, RequestShape] = field(default_factory=dict)
    answers: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    statuses: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    auth: Auth = field(default_factory=Auth)
    metadata: Mapping[str, str] = field(default_factory=dict)
    database: Mapping[str, str] = field(default_factory=dict)
    # The parts the file named ("routes.tip", "database.ledger", ...): the rest
    # are the contract's defaults.
    mapped: frozenset[str] = frozenset()
    source: str | None = None  # the file it came from

    @property
    def is_contract(self) -> bool:
        return not self.mapped

    def route(self, name: str) -> Route:
        return self.routes[name]

    def request(self, name: str) -> RequestShape:
        return self.requests.get(name, RequestShape())

    def answer_path(self, route: str, contract_field: str) -> str:
        return self.answers.get(route, {}).get(contract_field, contract_field)

    def metadata_key(self, contract_name: str) -> str:
        return self.metadata.get(contract_name, contract_name)

    def lock(self, what: str) -> str:
        """The gate's lock: `ledger` (every transfer writes it) or `balances`."""
        return self.database.get(f"lock-{what}", CONTRACT_SQL[f"lock-{what}"])

    def sql(self, key: str) -> str | None:
        """The SQL for `key` when the dialect gives any of [database] (the
        contract's for the keys it leaves out); None when it gives none, and the
        contract's tables are read and written as tokenproof always has."""
        if not self.database:
            return None
        return self.database.get(key, CONTRACT_SQL[key])

    def to_json(self) -> dict[str, Any]:
        """Plain data, for a Locust worker on another machine."""
        data = dataclasses.asdict(self)
        data["mapped"] = sorted(self.mapped)
        data["auth"]["claims"] = dict(self.auth.claims)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Dialect:
        return cls(
            name=data["name"],
            routes={k: Route(**v) for k, v in data["routes"].items()},
            requests={k: RequestShape(**v) for k, v in data["requests"].items()},
            answers={k: dict(v) for k, v in data["answers"].items()},
            statuses={k: tuple(v) for k, v in data["statuses"].items()},
            auth=Auth(**data["auth"]),
            metadata=dict(data["metadata"]),
            database=dict(data["database"]),
            mapped=frozenset(data["mapped"]),
            source=data.get("source"),
        )


CONTRACT_ROUTES = {
    "purchase": Route("POST", "/api/tokens/purchase"),
    "tip": Route("POST", "/api/tokens/tip"),
    "deduct": Route("POST", "/api/tokens/calls/deduct"),
    "balance": Route("GET", "/api/tokens/balance"),
    "webhook": Route("POST", "/api/payments/webhook"),
    "health": Route("GET", "/health"),
}
CONTRACT = Dialect(routes=CONTRACT_ROUTES)

"""The final state of a run, read once into frozen data for the checkers."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg


@dataclass(frozen=True)
class LedgerRow:
    id: int
    user_id: str
    type: str
    tokens: int
    status: str
    stripe_payment_intent_id: str | None
    client_idempotency_key: str | None
    related_user_id: str | None
    amount_usd: Decimal | None
    created_at: float | None = None  # epoch seconds (the database's clock)


@dataclass(frozen=True)
class Earning:
    creator_id: str
    earning_type: str
    source_id: str
    tokens_earned: int
    usd_value: Decimal
    fan_id: str | None


@dataclass(frozen=True)
class UserRow:
    supabase_id: str
    is_creator: bool
    total_earnings: Decimal


@dataclass(frozen=True)
class BalanceRow:
    user_id: str
    balance: int
    total_earned: int


@dataclass(frozen=True)
class DbState:
    users: tuple[UserRow, ...]
    balances: tuple[BalanceRow, ...]
    ledger: tuple[LedgerRow, ...]
    earnings: tuple[Earning, ...]

    def balance_of(self, user: str) -> int:
        return next((b.balance for b in self.balances if b.user_id == user), 0)


@dataclass(frozen=True)
class StripeState:
    intents: tuple[dict[str, Any], ...]
    events: tuple[dict[str, Any], ...]
    deliveries: tuple[dict[str, Any], ...]
    requests: tuple[dict[str, Any], ...]

    @classmethod
    def from_snapshot(cls, snapshot: dict[str, Any]) -> StripeState:
        return cls(
            intents=tuple(snapshot["intents"]),
            events=tuple(snapshot["events"]),
            deliveries=tuple(snapshot["deliveries"]),
            requests=tuple(snapshot["requests"]),
        )


async def read_db(dsn: str, users: Collection[str] | None = None) -> DbState:
    """The tables the checkers read; with `users`, only those users' rows (a model
    run reads after every step, and a deep run's database keeps growing)."""
    where = "" if users is None else " WHERE {} = ANY($1::text[])"
    args: tuple[list[str], ...] = () if users is None else (sorted(users),)
    conn = await asyncpg.connect(dsn)
    try:
        # One snapshot for all four reads.
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            user_rows = await conn.fetch(
                "SELECT supabase_id, is_creator, total_earnings FROM users"
                + where.format("supabase_id")
                + " ORDER BY supabase_id",
                *args,
            )
            balances = await conn.fetch(
                "SELECT user_id, balance, total_earned FROM token_balances"
                + where.format("user_id")
                + " ORDER BY user_id",
                *args,
            )
            ledger = await conn.fetch(
                """SELECT id, user_id, type, tokens, status, stripe_payment_intent_id,
                          client_idempotency_key, related_user_id, amount_usd,
                          extract(epoch FROM created_at)::float8 AS created_at
                   FROM token_transactions"""
                + where.format("user_id")
                + " ORDER BY id",
                *args,
            )
            earnings = await conn.fetch(
                """SELECT creator_id, earning_type, source_id, tokens_earned, usd_value, fan_id
                   FROM creator_earnings"""
                + where.format("creator_id")
                + " ORDER BY creator_id, source_id",
                *args,
            )
    finally:
        await conn.close()
    return DbState(
        users=tuple(UserRow(**dict(r)) for r in user_rows),
        balances=tuple(BalanceRow(**dict(r)) for r in balances),
        ledger=tuple(LedgerRow(**dict(r)) for r in ledger),
        earnings=tuple(Earning(**dict(r)) for r in earnings),
    )

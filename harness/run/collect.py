"""Read the final state of a run once (one snapshot) into the frozen data of
`harness.state` that the checkers read."""

from __future__ import annotations

import re
from collections.abc import Collection
from pathlib import Path

import asyncpg

from harness.state import BalanceRow, DbState, Earning, LedgerRow, UserRow

# A long load run's compact read: completed tips and calls between two users
# summed per user, kind and direction, and earnings whose sources are unique
# summed per creator and type, in the database; every other row as it is.
SUMMED_TRANSFER = (
    "type IN ('tip', 'call') AND status = 'completed' AND related_user_id IS DISTINCT FROM user_id"
)
SHARED_SOURCE = """(earning_type, source_id) IN (
    SELECT earning_type, source_id FROM creator_earnings
    WHERE creator_id = ANY($1::text[]) GROUP BY 1, 2 HAVING count(*) > 1)"""


COMPACT_LEDGER_SQL = f"""
SELECT id, user_id, type, tokens, status, stripe_payment_intent_id, client_idempotency_key,
       related_user_id, amount_usd, extract(epoch FROM created_at)::float8 AS created_at,
       1 AS rows
FROM token_transactions
WHERE user_id = ANY($1::text[]) AND NOT ({SUMMED_TRANSFER})
UNION ALL
SELECT max(id), user_id, type, sum(tokens)::bigint, 'completed', NULL, NULL, NULL, NULL,
       extract(epoch FROM max(created_at))::float8, count(*)
FROM token_transactions
WHERE user_id = ANY($1::text[]) AND {SUMMED_TRANSFER}
GROUP BY user_id, type, sign(tokens)
ORDER BY 1"""
COMPACT_EARNINGS_SQL = f"""
SELECT creator_id, earning_type, source_id, tokens_earned, usd_value, fan_id, 1 AS rows,
       false AS summed
FROM creator_earnings
WHERE creator_id = ANY($1::text[]) AND {SHARED_SOURCE}
UNION ALL
SELECT creator_id, earning_type, count(*) || ' unique sources', sum(tokens_earned)::bigint,
       sum(usd_value), NULL, count(*), true
FROM creator_earnings
WHERE creator_id = ANY($1::text[]) AND NOT {SHARED_SOURCE}
GROUP BY creator_id, earning_type
ORDER BY 1, 3"""


async def read_db(
    dsn: str, users: Collection[str] | None = None, *, compact: bool = False
) -> DbState:
    """The tables the checkers read; with `users`, only those users' rows (a model
    run reads after every step, and a deep run's database keeps growing);
    `compact` (with `users`): the sums the checkers need instead of every tip,
    call and earning row, so an hour's load is read in bounded memory."""
    if compact and users is None:
        raise ValueError("a compact read names its users")
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
            if compact:
                ledger = await conn.fetch(COMPACT_LEDGER_SQL, *args)
                earnings = await conn.fetch(COMPACT_EARNINGS_SQL, *args)
            else:
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
                    """SELECT creator_id, earning_type, source_id, tokens_earned, usd_value,
                              fan_id
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


# "2026-12-07 10:00:00.123 UTC [1234] ERROR:  duplicate key value violates ..."
_LOGGED_ERROR = re.compile(r"\b(?:ERROR|FATAL|PANIC|DETAIL|STATEMENT):\s+(.+?)\s*$")
MIN_LOGGED_TEXT = 16  # shorter messages are too generic to call a leak


def logged_errors(log: Path) -> tuple[str, ...]:
    """Every error message the PostgreSQL server logged: whatever the service's
    stack makes of them, they are internal text a 5xx body must not carry."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return ()
    found = (m.group(1) for line in text.splitlines() if (m := _LOGGED_ERROR.search(line)))
    return tuple(dict.fromkeys(t for t in found if len(t) >= MIN_LOGGED_TEXT))

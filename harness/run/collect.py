"""Read the final state of a run once (one snapshot) into the frozen data of
`harness.state` that the checkers read."""

from __future__ import annotations

import re
from collections.abc import Collection
from pathlib import Path
from typing import Any

import asyncpg

from harness.dialect.model import CONTRACT, DATABASE_COLUMNS, Dialect
from harness.dialect.parse import DialectError
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


def compact_ledger_sql(created_at: str = "extract(epoch FROM created_at)::float8") -> str:
    """The compact ledger read of `token_transactions` (the table, or a dialect's
    query under that name in a WITH); `created_at`: its epoch seconds."""
    return f"""
SELECT id, user_id, type, tokens, status, stripe_payment_intent_id, client_idempotency_key,
       related_user_id, amount_usd, {created_at} AS created_at, 1 AS rows
FROM token_transactions
WHERE user_id = ANY($1::text[]) AND NOT ({SUMMED_TRANSFER})
UNION ALL
SELECT max(id), user_id, type, sum(tokens)::bigint, 'completed', NULL, NULL, NULL, NULL,
       max({created_at}), count(*)
FROM token_transactions
WHERE user_id = ANY($1::text[]) AND {SUMMED_TRANSFER}
GROUP BY user_id, type, sign(tokens)
ORDER BY 1"""


COMPACT_LEDGER_SQL = compact_ledger_sql()
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
    dsn: str,
    users: Collection[str] | None = None,
    *,
    compact: bool = False,
    dialect: Dialect = CONTRACT,
) -> DbState:
    """The tables the checkers read; with `users`, only those users' rows (a model
    run reads after every step, and a deep run's database keeps growing);
    `compact` (with `users`): the sums the checkers need instead of every tip,
    call and earning row, so an hour's load is read in bounded memory."""
    if compact and users is None:
        raise ValueError("a compact read names its users")
    if dialect.sql("ledger") is not None:
        if users is None:
            raise ValueError("a dialect's reads name their users")
        return await read_dialect(dsn, dialect, sorted(users), compact=compact)
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


def as_contract_tables(dialect: Dialect) -> str:
    """A WITH that names a dialect's reads as the contract's tables (`users`,
    `token_balances`, `token_transactions`, `creator_earnings`), so SQL written on
    the contract's tables reads the service's own ($1: the users); "" for a
    service whose tables are the contract's."""
    if dialect.sql("ledger") is None:
        return ""
    names = {
        "users": "users",
        "balances": "token_balances",
        "ledger": "token_transactions",
        "earnings": "creator_earnings",
    }
    return "WITH " + ", ".join(f"{table} AS ({dialect.sql(key)})" for key, table in names.items())


async def read_dialect(
    dsn: str, dialect: Dialect, users: list[str], *, compact: bool = False
) -> DbState:
    """The four reads in the dialect's own SQL ($1: the users), in one snapshot;
    `compact` sums its ledger and earnings as the contract's compact read does."""
    sql = {key: dialect.sql(key) for key in DATABASE_COLUMNS}
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            rows = {key: await conn.fetch(str(sql[key]), users) for key in ("users", "balances")}
            if compact:
                tables = (
                    f"WITH token_transactions AS ({sql['ledger']}), "
                    f"creator_earnings AS ({sql['earnings']})"
                )
                rows["ledger"] = await conn.fetch(tables + compact_ledger_sql("created_at"), users)
                rows["earnings"] = await conn.fetch(tables + COMPACT_EARNINGS_SQL, users)
            else:
                for key in ("ledger", "earnings"):
                    rows[key] = await conn.fetch(str(sql[key]), users)
    finally:
        await conn.close()
    return DbState(
        users=tuple(
            sorted(
                (UserRow(**r) for r in _columns(rows["users"], "users")),
                key=lambda u: u.supabase_id,
            )
        ),
        balances=tuple(
            sorted(
                (BalanceRow(**r) for r in _columns(rows["balances"], "balances")),
                key=lambda b: b.user_id,
            )
        ),
        ledger=tuple(
            sorted(
                (LedgerRow(**r) for r in _columns(rows["ledger"], "ledger", ("rows",))),
                key=lambda row: row.id,
            )
        ),
        earnings=tuple(
            sorted(
                (Earning(**r) for r in _columns(rows["earnings"], "earnings", ("rows", "summed"))),
                key=lambda e: (e.creator_id, e.source_id),
            )
        ),
    )


def _columns(rows: list[Any], key: str, optional: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The columns the checkers read, by name; a query without one is the
    dialect's mistake, said as such."""
    wanted = DATABASE_COLUMNS[key]
    out = []
    for row in rows:
        found = set(row.keys())
        missing = [c for c in wanted if c not in found]
        if missing:
            raise DialectError(
                f"database.{key} of the dialect returns no column {', '.join(missing)}; it "
                f"must return {', '.join(wanted)} (see docs/dialects.md)"
            )
        out.append({c: row[c] for c in (*wanted, *optional) if c in found})
    return out


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

"""All SQL of the reference service. Functions take a connection inside the
caller's transaction; they never open or commit one themselves."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg

# asyncpg ships no type stubs; a connection is duck-typed here.
Conn = Any


@dataclass(frozen=True)
class Balance:
    user_id: str
    balance: int
    version: int


@dataclass(frozen=True)
class StoredResponse:
    fingerprint: str
    status: int | None
    body: dict[str, Any] | None


async def user_exists(conn: Conn, supabase_id: str) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM users WHERE supabase_id = $1", supabase_id))


async def is_creator(conn: Conn, supabase_id: str) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT 1 FROM users WHERE supabase_id = $1 AND is_creator", supabase_id
        )
    )


async def balance_of(conn: Conn, user_id: str) -> Balance:
    row = await conn.fetchrow(
        "SELECT balance, version FROM token_balances WHERE user_id = $1", user_id
    )
    return Balance(user_id, row["balance"] if row else 0, row["version"] if row else 0)


# -- client idempotency keys ---------------------------------------------------------


async def claim_request_key(
    conn: Conn, user_id: str, key: str, endpoint: str, fingerprint: str
) -> StoredResponse | None:
    """None if this request is the first with the key; else what the first stored.

    A concurrent first request holding the key makes the INSERT wait for it to
    commit or roll back, so what we read afterwards is settled.
    """
    inserted = await conn.fetchval(
        """INSERT INTO request_keys (user_id, key, endpoint, fingerprint)
           VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING 1""",
        user_id,
        key,
        endpoint,
        fingerprint,
    )
    if inserted:
        return None
    row = await conn.fetchrow(
        """SELECT endpoint, fingerprint, http_status, response FROM request_keys
           WHERE user_id = $1 AND key = $2""",
        user_id,
        key,
    )
    assert row is not None
    print_ = row["fingerprint"] if row["endpoint"] == endpoint else f"other:{row['endpoint']}"
    body = json.loads(row["response"]) if row["response"] is not None else None
    return StoredResponse(print_, row["http_status"], body)


async def store_response(
    conn: Conn, user_id: str, key: str, status: int, body: dict[str, Any]
) -> None:
    await conn.execute(
        """UPDATE request_keys SET http_status = $3, response = $4::jsonb
           WHERE user_id = $1 AND key = $2""",
        user_id,
        key,
        status,
        json.dumps(body, default=str),
    )


async def forget_request_key(conn: Conn, user_id: str, key: str) -> None:
    await conn.execute(
        "DELETE FROM request_keys WHERE user_id = $1 AND key = $2 AND http_status IS NULL",
        user_id,
        key,
    )


# -- transfers (tips and call minutes) -------------------------------------------------


async def ensure_balance_row(conn: Conn, user_id: str) -> None:
    await conn.execute(
        "INSERT INTO token_balances (user_id) VALUES ($1) ON CONFLICT DO NOTHING", user_id
    )


async def lock_balances(conn: Conn, user_ids: list[str]) -> dict[str, int]:
    """Lock the rows in one global order (by user id) so crossed transfers cannot deadlock."""
    rows = await conn.fetch(
        """SELECT user_id, balance FROM token_balances
           WHERE user_id = ANY($1::text[]) ORDER BY user_id FOR UPDATE""",
        sorted(set(user_ids)),
    )
    return {r["user_id"]: r["balance"] for r in rows}


async def credit(conn: Conn, user_id: str, tokens: int, *, earned: bool) -> Balance:
    row = await conn.fetchrow(
        """INSERT INTO token_balances (user_id, balance, total_earned, version)
           VALUES ($1, $2::bigint, CASE WHEN $3::boolean THEN $2::bigint ELSE 0 END, 1)
           ON CONFLICT (user_id) DO UPDATE SET
               balance = token_balances.balance + $2::bigint,
               total_earned = token_balances.total_earned
                              + CASE WHEN $3::boolean THEN $2::bigint ELSE 0 END,
               version = token_balances.version + 1,
               updated_at = now()
           RETURNING balance, version""",
        user_id,
        tokens,
        earned,
    )
    return Balance(user_id, row["balance"], row["version"])


async def transfer_parties(conn: Conn, sender: str, creator: str) -> tuple[bool, bool]:
    """(the sender is a user, the receiver is a creator) in one round trip."""
    row = await conn.fetchrow(
        """SELECT EXISTS (SELECT 1 FROM users WHERE supabase_id = $1) AS sender,
                  EXISTS (SELECT 1 FROM users WHERE supabase_id = $2 AND is_creator) AS creator""",
        sender,
        creator,
    )
    return bool(row["sender"]), bool(row["creator"])


async def apply_transfer(
    conn: Conn,
    *,
    kind: str,
    sender: str,
    creator: str,
    tokens: int,
    usd: Decimal,
    channel: str,
    description: str,
) -> tuple[Balance, Balance]:
    """Debit, credit, both ledger rows, the earning and the creator's total in one
    statement (one round trip). Call with both balance rows locked and funds checked.

    The earning's source id is the creator's ledger row id: unique by construction,
    unlike the patches' `tip_${Date.now()}`.
    """
    row = await conn.fetchrow(
        """WITH debit AS (
               UPDATE token_balances
               SET balance = balance - $3, version = version + 1, updated_at = now()
               WHERE user_id = $1 AND balance >= $3
               RETURNING balance, version),
           credit AS (
               UPDATE token_balances
               SET balance = balance + $3, total_earned = total_earned + $3,
                   version = version + 1, updated_at = now()
               WHERE user_id = $2
               RETURNING balance, version),
           fan_row AS (
               INSERT INTO token_transactions
                   (user_id, type, tokens, amount_usd, status, related_user_id, channel)
               SELECT $1, $4, -$3::bigint, $5, 'completed', $2, $6 FROM debit),
           creator_row AS (
               INSERT INTO token_transactions
                   (user_id, type, tokens, amount_usd, status, related_user_id, channel)
               SELECT $2, $4, $3, $5, 'completed', $1, $6 FROM debit
               RETURNING id),
           earning AS (
               INSERT INTO creator_earnings
                   (creator_id, earning_type, source_id, tokens_earned, usd_value,
                    description, fan_id)
               SELECT $2, $4, $4 || '_' || id, $3, $5, $7, $1 FROM creator_row),
           total AS (
               UPDATE users SET total_earnings = total_earnings + $5, updated_at = now()
               WHERE supabase_id = $2 AND EXISTS (SELECT 1 FROM debit))
           SELECT debit.balance AS sender_balance, debit.version AS sender_version,
                  credit.balance AS creator_balance, credit.version AS creator_version
           FROM debit, credit""",
        sender,
        creator,
        tokens,
        kind,
        usd,
        channel,
        description,
    )
    if row is None:
        raise AssertionError("transfer without funds or balance rows after the checks under lock")
    return (
        Balance(sender, row["sender_balance"], row["sender_version"]),
        Balance(creator, row["creator_balance"], row["creator_version"]),
    )


# -- purchases and webhooks -------------------------------------------------------------


async def insert_purchase(
    conn: Conn,
    *,
    user_id: str,
    tokens: int,
    amount_usd: Decimal,
    bonus: int,
    payment_intent_id: str,
    client_key: str,
    status: str,
) -> dict[str, Any]:
    """Insert the pending purchase row, or return the one already there (a retry,
    or the webhook that got here first)."""
    await conn.execute(
        """INSERT INTO token_transactions
               (user_id, type, tokens, amount_usd, bonus_tokens, stripe_payment_intent_id,
                client_idempotency_key, status)
           VALUES ($1, 'purchase', $2, $3, $4, $5, $6, $7)
           ON CONFLICT DO NOTHING""",
        user_id,
        tokens,
        amount_usd,
        bonus,
        payment_intent_id,
        client_key,
        status,
    )
    row = await conn.fetchrow(
        """SELECT id, user_id, type, tokens, amount_usd, bonus_tokens, stripe_payment_intent_id,
                  client_idempotency_key, status, created_at
           FROM token_transactions
           WHERE stripe_payment_intent_id = $1
              OR (user_id = $2 AND client_idempotency_key = $3)
           ORDER BY (stripe_payment_intent_id = $1) DESC LIMIT 1""",
        payment_intent_id,
        user_id,
        client_key,
    )
    return dict(row) if row else {}


async def lock_purchase(conn: Conn, payment_intent_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT id, user_id, tokens, status FROM token_transactions
           WHERE stripe_payment_intent_id = $1 FOR UPDATE""",
        payment_intent_id,
    )


async def set_purchase_status(conn: Conn, row_id: int, status: str) -> None:
    await conn.execute(
        "UPDATE token_transactions SET status = $2, updated_at = now() WHERE id = $1",
        row_id,
        status,
    )


async def mark_unsuccessful(conn: Conn, payment_intent_id: str, status: str) -> None:
    """failed / canceled, but never over a completed (credited) purchase."""
    await conn.execute(
        """UPDATE token_transactions SET status = $2, updated_at = now()
           WHERE stripe_payment_intent_id = $1 AND status <> 'completed'""",
        payment_intent_id,
        status,
    )


async def record_event(
    conn: Conn, event_id: str, type_: str, payment_intent_id: str | None
) -> bool:
    """True the first time this event id is seen."""
    return bool(
        await conn.fetchval(
            """INSERT INTO stripe_events (event_id, type, payment_intent_id)
               VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING 1""",
            event_id,
            type_,
            payment_intent_id,
        )
    )

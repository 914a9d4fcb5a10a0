"""Ledger operations. Every money move is one PostgreSQL transaction."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from psycopg import Connection

from tokensvc import db, defects
from tokensvc.config import PRICE_CENTS, TOKEN_VALUE_USD, bonus_for
from tokensvc.errors import ApiError

log = logging.getLogger("tokensvc.ledger")

# Purchases without a clientIdempotencyKey still send one in the intent's
# metadata (support looks intents up by it): "srv-<request id>".
SERVER_KEY_PREFIX = "srv-"


@dataclass(frozen=True)
class Outcome:
    """What a keyed request answered; replayed verbatim for a retry."""

    status: int
    body: dict[str, Any]
    replayed: bool = False


# --------------------------------------------------------------- idempotency


def fingerprint(route: str, **fields: Any) -> str:
    raw = json.dumps({"route": route, **fields}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()


_PENDING = object()


def _claim(conn: Connection, user_id: str, key: str, route: str, fp: str) -> Outcome | object | None:
    """None: this request owns the key. An Outcome: replay it. _PENDING: an
    earlier request with this key has not finished."""
    inserted = conn.execute(
        """INSERT INTO api_idempotency_keys (user_id, idem_key, route, fingerprint)
           VALUES (%s, %s, %s, %s) ON CONFLICT (user_id, idem_key) DO NOTHING
           RETURNING idem_key""",
        (user_id, key, route, fp),
    ).fetchone()
    if inserted:
        return None
    row = conn.execute(
        """SELECT fingerprint, status_code, response FROM api_idempotency_keys
           WHERE user_id = %s AND idem_key = %s""",
        (user_id, key),
    ).fetchone()
    if row is None:  # claimed and released in between; try again
        return _claim(conn, user_id, key, route, fp)
    if row["fingerprint"] != fp:
        raise ApiError(
            409,
            "idempotency_key_reused",
            "clientIdempotencyKey was already used with a different request",
        )
    if row["status_code"] is None:
        return _PENDING
    return Outcome(row["status_code"], row["response"], replayed=True)


def _store(conn: Connection, user_id: str, key: str, outcome: Outcome) -> Outcome:
    conn.execute(
        """UPDATE api_idempotency_keys
           SET status_code = %s, response = %s, completed_at = now()
           WHERE user_id = %s AND idem_key = %s AND status_code IS NULL""",
        (outcome.status, json.dumps(outcome.body), user_id, key),
    )
    row = conn.execute(
        "SELECT status_code, response FROM api_idempotency_keys WHERE user_id = %s AND idem_key = %s",
        (user_id, key),
    ).fetchone()
    return Outcome(row["status_code"], row["response"]) if row else outcome


def claim_key(user_id: str, key: str, route: str, fp: str, *, wait_s: float = 10.0) -> Outcome | None:
    """Claim a key outside any money transaction (purchases: the Stripe call
    comes next). If a request with the same key is still running, wait a
    while for its answer; if it never comes (crashed), go ahead: Stripe's
    idempotency key keeps the charge single."""
    deadline = time.monotonic() + wait_s
    while True:
        with db.pool().connection() as conn:
            with conn.transaction():
                got = _claim(conn, user_id, key, route, fp)
        if got is None or isinstance(got, Outcome):
            return got
        if time.monotonic() >= deadline:
            log.warning("key %s still pending after %.0fs; proceeding", key, wait_s)
            return None
        time.sleep(0.1)


def store_key(user_id: str, key: str, outcome: Outcome) -> Outcome:
    with db.pool().connection() as conn:
        with conn.transaction():
            return _store(conn, user_id, key, outcome)


def release_key(user_id: str, key: str) -> None:
    """The request failed before an outcome (Stripe or database outage): let
    a retry run at once instead of waiting for an answer that never comes."""
    try:
        with db.pool().connection() as conn:
            conn.execute(
                """DELETE FROM api_idempotency_keys
                   WHERE user_id = %s AND idem_key = %s AND status_code IS NULL""",
                (user_id, key),
            )
    except Exception:  # best effort; the claim expires through the wait anyway
        log.warning("could not release key %s", key, exc_info=True)


# ------------------------------------------------------------------- users


def user_exists(user_id: str) -> bool:
    with db.pool().connection() as conn:
        return conn.execute("SELECT 1 FROM users WHERE supabase_id = %s", (user_id,)).fetchone() is not None


def balance_of(user_id: str) -> int:
    with db.pool().connection() as conn:
        row = conn.execute("SELECT balance FROM token_balances WHERE user_id = %s", (user_id,)).fetchone()
    return int(row["balance"]) if row else 0


# --------------------------------------------------------------- transfers


def _lock_balances(conn: Connection, fan: str, creator: str) -> dict[str, int]:
    if defects.on("unordered-locks"):
        # "lock the payer, then the payee"
        balances: dict[str, int] = {}
        for uid in (fan, creator):
            row = conn.execute(
                "SELECT user_id, balance FROM token_balances WHERE user_id = %s FOR UPDATE", (uid,)
            ).fetchone()
            if row:
                balances[row["user_id"]] = int(row["balance"])
        return balances
    rows = conn.execute(
        """SELECT user_id, balance FROM token_balances
           WHERE user_id = ANY(%s) ORDER BY user_id FOR UPDATE""",
        ([fan, creator],),
    ).fetchall()
    return {r["user_id"]: int(r["balance"]) for r in rows}


def _transfer_in(
    conn: Connection,
    *,
    kind: str,
    fan: str,
    creator: str,
    tokens: int,
    channel: str | None,
    call_id: str | None,
    key: str | None,
    fp: str,
    requested_ms: int,
) -> Outcome:
    if key:
        got = _claim(conn, fan, key, kind, fp)
        if isinstance(got, Outcome):
            return got
        # (_PENDING cannot happen: a transfer's key row commits with its outcome)

    def finish(outcome: Outcome) -> Outcome:
        return _store(conn, fan, key, outcome) if key else outcome

    found = conn.execute(
        "SELECT 1 FROM users WHERE supabase_id = %s AND is_creator", (creator,)
    ).fetchone()
    if found is None:
        return finish(Outcome(404, {"detail": "Creator not found", "code": "creator_not_found"}))

    usd = (Decimal(tokens) * TOKEN_VALUE_USD).quantize(Decimal("0.01"))

    if defects.on("read-modify-write"):
        # ORM style: load, compute in Python, save.
        row = conn.execute("SELECT balance FROM token_balances WHERE user_id = %s", (fan,)).fetchone()
        current = int(row["balance"]) if row else 0
        if current < tokens:
            return finish(_insufficient(current, tokens))
        conn.execute(
            "UPDATE token_balances SET balance = %s, updated_at = now() WHERE user_id = %s",
            (current - tokens, fan),
        )
        sender_balance = current - tokens
    else:
        balances = _lock_balances(conn, fan, creator)
        current = balances.get(fan, 0)
        if current < tokens:
            return finish(_insufficient(current, tokens))
        row = conn.execute(
            """UPDATE token_balances SET balance = balance - %s, updated_at = now()
               WHERE user_id = %s AND balance >= %s RETURNING balance""",
            (tokens, fan, tokens),
        ).fetchone()
        if row is None:  # cannot happen under the lock; refuse rather than overdraw
            return finish(_insufficient(current, tokens))
        sender_balance = int(row["balance"])

    first_earned = 0 if defects.on("first-credit-skips-earned") else tokens
    row = conn.execute(
        """INSERT INTO token_balances (user_id, balance, total_earned)
           VALUES (%s, %s, %s)
           ON CONFLICT (user_id) DO UPDATE SET
               balance = token_balances.balance + EXCLUDED.balance,
               total_earned = token_balances.total_earned + %s,
               updated_at = now()
           RETURNING balance""",
        (creator, tokens, first_earned, tokens),
    ).fetchone()
    recipient_balance = int(row["balance"])

    debit = conn.execute(
        """INSERT INTO token_transactions
               (user_id, type, tokens, amount_usd, status, related_user_id, channel, call_id,
                client_idempotency_key)
           VALUES (%s, %s, %s, %s, 'completed', %s, %s, %s, %s) RETURNING id""",
        (fan, kind, -tokens, usd, creator, channel, call_id, key),
    ).fetchone()
    conn.execute(
        """INSERT INTO token_transactions
               (user_id, type, tokens, amount_usd, status, related_user_id, channel, call_id)
           VALUES (%s, %s, %s, %s, 'completed', %s, %s, %s)""",
        (creator, kind, tokens, usd, fan, channel, call_id),
    )
    conn.execute(
        "UPDATE users SET total_earnings = total_earnings + %s, updated_at = now() WHERE supabase_id = %s",
        (usd, creator),
    )
    if defects.on("clock-source-id"):
        # The request's millisecond timestamp as source id; "ON CONFLICT" added
        # after the unique index started throwing in production.
        source_id = f"{kind}_{requested_ms}"
        conflict = "ON CONFLICT (earning_type, source_id) DO NOTHING"
    else:
        source_id = f"{kind}_{debit['id']}"
        conflict = ""
    what = f"Tip received in {channel}" if kind == "tip" else f"Call {call_id}"
    conn.execute(
        f"""INSERT INTO creator_earnings
                (creator_id, earning_type, source_id, tokens_earned, usd_value, description, fan_id)
            VALUES (%s, %s, %s, %s, %s, %s, %s) {conflict}""",
        (creator, kind, source_id, tokens, usd, what, fan),
    )

    body: dict[str, Any] = {
        "success": True,
        "tokensDeducted": tokens,
        "senderBalance": sender_balance,
        "creatorId": creator,
        "usdValue": str(usd),
        "transactionId": debit["id"],
    }
    if kind == "tip":
        body["recipientBalance"] = recipient_balance
        body["channel"] = channel
    else:
        body["callId"] = call_id
    return finish(Outcome(200, body))


def _insufficient(current: int, tokens: int) -> Outcome:
    return Outcome(
        402,
        {
            "detail": "Insufficient token balance",
            "code": "insufficient_balance",
            "currentBalance": current,
            "requiredTokens": tokens,
        },
    )


def transfer(**kw: Any) -> Outcome:
    kw["requested_ms"] = int(time.time() * 1000)

    def once() -> Outcome:
        with db.pool().connection() as conn:
            if defects.on("autocommit-transfer"):
                # The pool hands out autocommit connections; this path forgot
                # its `with conn.transaction():`, so each statement commits alone.
                return _transfer_in(conn, **kw)
            with conn.transaction():
                return _transfer_in(conn, **kw)

    if defects.on("unordered-locks"):
        return once()  # and no retry wrapper either
    return db.retrying(once, what=f"{kw['kind']} transfer")


# --------------------------------------------------------------- purchases


def _meta_purchase(metadata: Any) -> tuple[str, int, int, str | None] | None:
    """(user, tokens, bonus, client key) from a PaymentIntent's metadata, or
    None when it is not one of our purchases."""
    if not metadata:
        return None
    user = metadata.get("userId")
    raw = metadata.get("tokenAmount")
    if not isinstance(user, str) or not user or not isinstance(raw, str) or not raw.isdigit():
        return None
    tokens = int(raw)
    if tokens not in PRICE_CENTS:
        return None
    client_key = metadata.get("clientIdempotencyKey") or None
    if client_key and client_key.startswith(SERVER_KEY_PREFIX):  # ours, not the client's
        client_key = None
    return user, tokens, bonus_for(tokens), client_key


def _insert_purchase_row(
    conn: Connection,
    *,
    user: str,
    tokens: int,
    bonus: int,
    intent_id: str,
    client_key: str | None,
    status: str,
) -> int | None:
    row = conn.execute(
        """INSERT INTO token_transactions
               (user_id, type, tokens, amount_usd, bonus_tokens, stripe_payment_intent_id,
                client_idempotency_key, status)
           VALUES (%s, 'purchase', %s, %s, %s, %s, %s, %s)
           ON CONFLICT (stripe_payment_intent_id) DO NOTHING
           RETURNING id""",
        (user, tokens + bonus, Decimal(PRICE_CENTS[tokens]) / 100, bonus, intent_id, client_key, status),
    ).fetchone()
    return row["id"] if row else None


def _credit(conn: Connection, user: str, tokens: int) -> None:
    conn.execute(
        """INSERT INTO token_balances (user_id, balance, total_purchased) VALUES (%s, %s, %s)
           ON CONFLICT (user_id) DO UPDATE SET
               balance = token_balances.balance + EXCLUDED.balance,
               total_purchased = token_balances.total_purchased + EXCLUDED.total_purchased,
               updated_at = now()""",
        (user, tokens, tokens),
    )


def record_purchase(
    *,
    user: str,
    tokens: int,
    bonus: int,
    intent_id: str,
    intent_status: str,
    client_key: str | None,
    conn: Connection | None = None,
) -> int:
    """The purchase row after Stripe answered. Pending until the webhook says
    succeeded: the webhook alone credits."""
    status = "requires_action" if intent_status == "requires_action" else "pending"
    optimistic = defects.on("credit-on-purchase") and intent_status in (
        "succeeded",
        "processing",
        "requires_action",
    )

    def in_tx(conn: Connection) -> int:
        row_id = _insert_purchase_row(
            conn,
            user=user,
            tokens=tokens,
            bonus=bonus,
            intent_id=intent_id,
            client_key=client_key,
            status="completed" if optimistic else status,
        )
        if row_id is not None and optimistic:
            # Show the tokens right away; the webhook finds the row completed.
            _credit(conn, user, tokens + bonus)
        if row_id is None:
            row_id = conn.execute(
                "SELECT id FROM token_transactions WHERE stripe_payment_intent_id = %s", (intent_id,)
            ).fetchone()["id"]
        return int(row_id)

    if conn is not None:
        return in_tx(conn)

    def once() -> int:
        with db.pool().connection() as c, c.transaction():
            return in_tx(c)

    return db.retrying(once, what="purchase record")


def record_declined(*, user: str, tokens: int, bonus: int, intent_id: str, client_key: str | None) -> None:
    def once() -> None:
        with db.pool().connection() as conn, conn.transaction():
            _insert_purchase_row(
                conn, user=user, tokens=tokens, bonus=bonus, intent_id=intent_id,
                client_key=client_key, status="failed",
            )

    db.retrying(once, what="declined purchase record")


def purchase_holding_transaction(user: str, charge: Any, record: Any) -> Any:
    """(Defect `stripe-call-in-transaction`) one transaction around the whole
    purchase: the user's row locked "so one user's purchases don't interleave",
    Stripe called, the row written, then commit."""
    with db.pool().connection() as conn, conn.transaction():
        conn.execute("SELECT id FROM users WHERE supabase_id = %s FOR UPDATE", (user,))
        intent = charge()
        return intent, record(conn, intent)


# ---------------------------------------------------------------- webhooks


def record_event(conn: Connection, event_id: str, event_type: str, intent_id: str | None) -> None:
    conn.execute(
        """INSERT INTO stripe_webhook_events (event_id, event_type, payment_intent)
           VALUES (%s, %s, %s)
           ON CONFLICT (event_id) DO UPDATE SET deliveries = stripe_webhook_events.deliveries + 1""",
        (event_id, event_type, intent_id),
    )


def intent_succeeded(event_id: str, intent_id: str, metadata: Any) -> str:
    """Credit the purchase exactly once, creating its row if the webhook beat
    the purchase request to the database."""

    def once() -> str:
        with db.pool().connection() as conn, conn.transaction():
            record_event(conn, event_id, "payment_intent.succeeded", intent_id)
            exists = conn.execute(
                "SELECT 1 FROM token_transactions WHERE stripe_payment_intent_id = %s", (intent_id,)
            ).fetchone()
            if exists is None:
                meta = _meta_purchase(metadata)
                if meta is None:
                    return "not-ours"
                if defects.on("early-webhook-dropped"):
                    return "unknown-intent"  # "the purchase row must exist; Stripe will retry"
                user, tokens, bonus, client_key = meta
                if conn.execute("SELECT 1 FROM users WHERE supabase_id = %s", (user,)).fetchone() is None:
                    return "unknown-user"
                _insert_purchase_row(
                    conn, user=user, tokens=tokens, bonus=bonus, intent_id=intent_id,
                    client_key=client_key, status="pending",
                )
            guard = "" if defects.on("webhook-not-idempotent") else "AND status <> 'completed'"
            row = conn.execute(
                f"""UPDATE token_transactions SET status = 'completed', updated_at = now()
                    WHERE stripe_payment_intent_id = %s AND type = 'purchase' {guard}
                    RETURNING user_id, tokens""",
                (intent_id,),
            ).fetchone()
            if row is None:
                return "already-credited"
            _credit(conn, row["user_id"], int(row["tokens"]))
            return "credited"

    return db.retrying(once, what="webhook credit")


def intent_not_paid(event_id: str, event_type: str, intent_id: str, status: str, metadata: Any) -> str:
    """payment_failed / canceled: mark the row; a completed row stays completed."""

    def once() -> str:
        with db.pool().connection() as conn, conn.transaction():
            record_event(conn, event_id, event_type, intent_id)
            guard = "" if defects.on("failed-overwrites-completed") else "AND status <> 'completed'"
            row = conn.execute(
                f"""UPDATE token_transactions SET status = %s, updated_at = now()
                    WHERE stripe_payment_intent_id = %s AND type = 'purchase' {guard}
                    RETURNING id""",
                (status, intent_id),
            ).fetchone()
            if row is not None:
                return status
            meta = _meta_purchase(metadata)
            if meta is None:
                return "not-ours"
            user, tokens, bonus, client_key = meta
            if conn.execute("SELECT 1 FROM users WHERE supabase_id = %s", (user,)).fetchone() is None:
                return "unknown-user"
            _insert_purchase_row(
                conn, user=user, tokens=tokens, bonus=bonus, intent_id=intent_id,
                client_key=client_key, status=status,
            )
            return status

    return db.retrying(once, what="webhook status")

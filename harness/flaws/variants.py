"""One class per defect. Each docstring says what it puts back."""

from __future__ import annotations

import contextvars
import dataclasses
import json
import re
import secrets
import time
from typing import Any

import asyncpg
import jwt

from reference_impl import repo
from reference_impl.amounts import TOKEN_VALUE_USD, bonus_for
from reference_impl.auth import Unauthorized
from reference_impl.errors import InvalidInput, ServiceError
from reference_impl.service import Reply, TokenService, Transfer


async def _patch_style_rows(conn: repo.Conn, t: Transfer, source_id: str | None = None) -> None:
    """Ledger rows, earning and creator total the way the patches write them;
    the earning's source is the creator's ledger row unless `source_id` is given."""
    usd = t.tokens * TOKEN_VALUE_USD
    for user, tokens, other in ((t.sender, -t.tokens, t.creator), (t.creator, t.tokens, t.sender)):
        await conn.execute(
            """INSERT INTO token_transactions
                   (user_id, type, tokens, amount_usd, status, related_user_id, channel)
               VALUES ($1, $2, $3, $4, 'completed', $5, $6)""",
            user,
            t.kind,
            tokens,
            usd,
            other,
            t.channel,
        )
    if source_id is None:
        row = await conn.fetchval("SELECT currval('token_transactions_id_seq')")
        source_id = f"{t.kind}_{row}"
    await conn.execute(
        """INSERT INTO creator_earnings
               (creator_id, earning_type, source_id, tokens_earned, usd_value, fan_id)
           VALUES ($1, $2, $3, $4, $5, $6)""",
        t.creator,
        t.kind,
        source_id,
        t.tokens,
        usd,
        t.sender,
    )
    await conn.execute(
        "UPDATE users SET total_earnings = total_earnings + $2 WHERE supabase_id = $1",
        t.creator,
        usd,
    )


async def _patch_style_transfer(
    conn: repo.Conn, t: Transfer, new_balance_sql: str, value: int
) -> tuple[repo.Balance, repo.Balance]:
    """The patches' rows, then the sender's balance set to `new_balance_sql`
    ($2 is `value`) and the creator credited."""
    await _patch_style_rows(conn, t)
    sender = await conn.fetchrow(
        f"""UPDATE token_balances SET balance = {new_balance_sql}, version = version + 1
            WHERE user_id = $1 RETURNING balance, version""",
        t.sender,
        value,
    )
    creator = await repo.credit(conn, t.creator, t.tokens, earned=True)
    return repo.Balance(t.sender, sender["balance"], sender["version"]), creator


class LostUpdate(TokenService):
    """Reads the balances without a lock, checks in Python, writes the computed balance."""

    async def lock_parties(self, conn: repo.Conn, t: Transfer) -> dict[str, int]:
        await repo.ensure_balance_row(conn, t.creator)
        rows = await conn.fetch(
            "SELECT user_id, balance FROM token_balances WHERE user_id = ANY($1::text[])",
            [t.sender, t.creator],
        )
        return {r["user_id"]: r["balance"] for r in rows}

    async def debit_and_credit(
        self, conn: repo.Conn, t: Transfer, sender_balance: int
    ) -> tuple[repo.Balance, repo.Balance]:
        # The balance computed in Python from what was read without a lock.
        return await _patch_style_transfer(conn, t, "$2", sender_balance - t.tokens)


class NoFundsCheck(TokenService):
    """Never compares the balance with the amount: the debit runs regardless."""

    async def lock_parties(self, conn: repo.Conn, t: Transfer) -> dict[str, int]:
        locked = await super().lock_parties(conn, t)
        return {**locked, t.sender: max(locked.get(t.sender, 0), t.tokens)}

    async def debit_and_credit(
        self, conn: repo.Conn, t: Transfer, sender_balance: int
    ) -> tuple[repo.Balance, repo.Balance]:
        return await _patch_style_transfer(conn, t, "balance - $2", t.tokens)


class CreditOnPurchase(TokenService):
    """Credits a succeeded card payment when the purchase answers, and the webhook
    credits it again (as the patches' status 'completed' invites)."""

    async def purchase(
        self, user_id: str, tokens: int, payment_method: str, client_key: str | None
    ) -> Reply:
        reply = await super().purchase(user_id, tokens, payment_method, client_key)
        if reply.status == 200 and reply.body["paymentIntent"]["status"] == "succeeded":
            total = tokens + bonus_for(tokens)

            async def credit_now(conn: repo.Conn) -> None:
                await repo.credit(conn, user_id, total, earned=False)
                await conn.execute(
                    """INSERT INTO token_transactions (user_id, type, tokens, status)
                       VALUES ($1, 'purchase', $2, 'completed')""",
                    user_id,
                    total,
                )

            await self.transaction(credit_now)
        return reply


class WebhookNotIdempotent(TokenService):
    """Credits every delivery of payment_intent.succeeded, duplicates included."""

    async def credit_purchase(
        self, conn: repo.Conn, intent: dict[str, Any]
    ) -> tuple[repo.Balance, ...]:
        row = await repo.lock_purchase(conn, str(intent["id"]))
        if row is None:
            return await super().credit_purchase(conn, intent)
        balance = await repo.credit(conn, row["user_id"], row["tokens"], earned=False)
        await repo.set_purchase_status(conn, row["id"], "completed")
        return (balance,)


class RetryDoubleCharge(TokenService):
    """No idempotency key to Stripe and no uniqueness for the client's key: every
    retry is a new charge (the patches' random key per request)."""

    async def claim_purchase(
        self, conn: repo.Conn, user_id: str, client_key: str | None, fingerprint: str
    ) -> Reply | None:
        await super().claim_purchase(conn, user_id, None, fingerprint)
        return None

    def stripe_key(self, user_id: str, client_key: str) -> str:
        return secrets.token_hex(16)


class EarlyWebhookDropped(TokenService):
    """A succeeded event for a purchase row not yet written is acknowledged and lost."""

    async def insert_purchase_from_intent(self, conn: repo.Conn, intent: dict[str, Any]) -> bool:
        return False


class LockOrderDeadlock(TokenService):
    """Locks the sender's row, then the receiver's (request order, not a global one),
    and surfaces deadlocks instead of retrying them."""

    max_tx_attempts = 1

    async def lock_parties(self, conn: repo.Conn, t: Transfer) -> dict[str, int]:
        await repo.ensure_balance_row(conn, t.creator)
        locked: dict[str, int] = {}
        for user in (t.sender, t.creator):
            balance = await conn.fetchval(
                "SELECT balance FROM token_balances WHERE user_id = $1 FOR UPDATE", user
            )
            if balance is not None:
                locked[user] = balance
            # The patches' handler did some work between the two row locks.
            await conn.execute("SELECT pg_sleep(0.005)")
        return locked


def _parse_int(value: Any) -> int:
    """JavaScript's parseInt(value, 10): leading digits of the string form."""
    text = str(value).strip() if not isinstance(value, bool) else "NaN"
    match = re.match(r"[+-]?\d+", text)
    if match is None:
        raise InvalidInput("Invalid token amount - must be positive integer")
    return int(match.group(0))


class LenientAmounts(TokenService):
    """parseInt-style amounts: "12abc" is 12, "1e3" is 1, 1.5 is 1."""

    def parse_amount(self, value: Any, kind: str) -> int:
        number = _parse_int(value)
        if number <= 0:
            raise InvalidInput("Invalid token amount - must be positive integer")
        return number


class NegativeDeduct(TokenService):
    """/calls/deduct takes the amount as given, sign and all (the patch never
    validated it there)."""

    def parse_amount(self, value: Any, kind: str) -> int:
        if kind == "call":
            return _parse_int(value)
        return super().parse_amount(value, kind)


class SelfTip(TokenService):
    """A caller may tip or call themself."""

    def check_parties(self, t: Transfer) -> None:
        return None


class TipRetryDoubleDebit(TokenService):
    """Tips and deductions ignore the client's idempotency key."""

    async def transfer(self, t: Transfer) -> Reply:
        return await super().transfer(dataclasses.replace(t, client_key=None))


class ConnectionHeldAcrossStripe(TokenService):
    """Holds a connection and an open transaction (with a transaction id, as after
    its first write) while Stripe answers, as the patched /purchase does."""

    async def purchase(
        self, user_id: str, tokens: int, payment_method: str, client_key: str | None
    ) -> Reply:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT txid_current()")
            return await super().purchase(user_id, tokens, payment_method, client_key)


class LeakyErrors(TokenService):
    """Error answers carry the underlying exception (`details: error.message`)."""

    async def purchase(
        self, user_id: str, tokens: int, payment_method: str, client_key: str | None
    ) -> Reply:
        try:
            return await super().purchase(user_id, tokens, payment_method, client_key)
        except ServiceError as exc:
            cause = exc.__cause__
            if cause is not None:
                exc.details["details"] = f"{type(cause).__module__}.{type(cause).__name__}: {cause}"
            raise


class UnsignedWebhook(TokenService):
    """Trusts any JSON posted to the webhook: no signature check."""

    def verify_event(self, payload: bytes, signature: str | None) -> dict[str, Any]:
        try:
            event: dict[str, Any] = json.loads(payload)
            event["data"]["object"]["id"]
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidInput("invalid payload") from exc
        return event


class JwtNoExp(TokenService):
    """Accepts bearer tokens without an `exp` claim (they never expire)."""

    def authenticate(self, header: str | None) -> str:
        if not header or not header.startswith("Bearer "):
            raise Unauthorized("missing bearer token")
        try:
            claims = jwt.decode(
                header[7:],
                self.settings.jwt_secret,
                algorithms=["HS256"],
                options={"require": ["sub"]},
            )
        except jwt.PyJWTError as exc:
            raise Unauthorized("invalid token") from exc
        return str(claims["sub"])


class IgnoresCanceled(TokenService):
    """Ignores `payment_intent.canceled`: an abandoned 3-D Secure purchase stays
    `requires_action` for ever (nothing is credited, so no balance is wrong)."""

    async def handle_webhook(self, payload: bytes, signature: str | None) -> None:
        event = self.verify_event(payload, signature)
        if event["type"] != "payment_intent.canceled":
            await super().handle_webhook(payload, signature)


class KeyNotInMetadata(RetryDoubleCharge):
    """As retry-double-charge, and the client's key is left out of the intent's
    metadata: Stripe's side alone cannot tell the charges belong to one key."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        create = self.payments.create_intent

        async def without_key(**params: Any) -> Any:
            params["metadata"] = {
                k: v for k, v in params["metadata"].items() if k != "clientIdempotencyKey"
            }
            return await create(**params)

        self.payments.create_intent = without_key  # type: ignore[method-assign]


_source_id: contextvars.ContextVar[str] = contextvars.ContextVar("source_id")


class ClockSourceId(TokenService):
    """The patches' transfer: only the caller's row locked, and the earning's source
    id from the clock when the request is handled (`tip_${Date.now()}`), which
    collides when two credits are handled in the same millisecond."""

    async def move_tokens(self, conn: repo.Conn, t: Transfer) -> Reply:
        _source_id.set(f"{t.kind}_{int(time.time() * 1000)}")
        return await super().move_tokens(conn, t)

    async def lock_parties(self, conn: repo.Conn, t: Transfer) -> dict[str, int]:
        await repo.ensure_balance_row(conn, t.creator)
        balance = await conn.fetchval(
            "SELECT balance FROM token_balances WHERE user_id = $1 FOR UPDATE", t.sender
        )
        return {} if balance is None else {t.sender: balance}

    async def debit_and_credit(
        self, conn: repo.Conn, t: Transfer, sender_balance: int
    ) -> tuple[repo.Balance, repo.Balance]:
        sender = await conn.fetchval(
            "UPDATE token_balances SET balance = balance - $2 WHERE user_id = $1 RETURNING balance",
            t.sender,
            t.tokens,
        )
        creator = await conn.fetchval(
            "UPDATE token_balances SET balance = balance + $2, total_earned = total_earned + $2 "
            "WHERE user_id = $1 RETURNING balance",
            t.creator,
            t.tokens,
        )
        await _patch_style_rows(conn, t, source_id=_source_id.get())
        return repo.Balance(t.sender, sender, 0), repo.Balance(t.creator, creator, 0)


class LeadingZeroAmounts(TokenService):
    """Takes any string of ASCII digits as an amount, so `"0100"` is 100 (a regex
    of `^\\d+$` instead of the canonical form)."""

    def parse_amount(self, value: Any, kind: str) -> int:
        if isinstance(value, str) and value.isascii() and value.isdigit() and int(value) > 0:
            return int(value)
        return super().parse_amount(value, kind)


class LeakyDatabaseErrors(TokenService):
    """A 5xx answer carries the database driver's own message (no exception class
    name, no stack: just PostgreSQL's or asyncpg's words)."""

    async def transaction(self, body: Any) -> Any:
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                return await body(conn)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            error = ServiceError()
            error.details["details"] = str(exc)
            raise error from exc


FLAWS: dict[str, type[TokenService]] = {
    "lost-update": LostUpdate,
    "no-funds-check": NoFundsCheck,
    "credit-on-purchase": CreditOnPurchase,
    "webhook-not-idempotent": WebhookNotIdempotent,
    "retry-double-charge": RetryDoubleCharge,
    "early-webhook-dropped": EarlyWebhookDropped,
    "lock-order-deadlock": LockOrderDeadlock,
    "lenient-amounts": LenientAmounts,
    "negative-deduct": NegativeDeduct,
    "self-tip": SelfTip,
    "tip-retry-double-debit": TipRetryDoubleDebit,
    "connection-held-across-stripe": ConnectionHeldAcrossStripe,
    "leaky-errors": LeakyErrors,
    "unsigned-webhook": UnsignedWebhook,
    "jwt-no-exp": JwtNoExp,
    "ignores-canceled": IgnoresCanceled,
    "key-not-in-metadata": KeyNotInMetadata,
    "clock-source-id": ClockSourceId,
    "leading-zero-amounts": LeadingZeroAmounts,
    "leaky-database-errors": LeakyDatabaseErrors,
}

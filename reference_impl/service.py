"""The service layer: owns every transaction boundary. No HTTP, no SQL text."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import secrets
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

import asyncpg
import stripe

from reference_impl import repo
from reference_impl.amounts import (
    TOKEN_PRICES,
    TOKEN_VALUE_USD,
    InvalidAmount,
    bonus_for,
    cents,
    parse_tokens,
)
from reference_impl.auth import user_from_bearer
from reference_impl.errors import (
    Busy,
    InvalidInput,
    KeyReused,
    NotFound,
    PaymentDeclined,
    RateLimited,
)
from reference_impl.payments import Intent, Payments, stripe_idempotency_key
from reference_impl.settings import Settings
from reference_impl.stream import BalanceEvent, BalanceHub

log = logging.getLogger("reference_impl")
T = TypeVar("T")

# Lock conflicts PostgreSQL resolves by aborting one transaction: retry it whole.
RETRYABLE = (asyncpg.exceptions.DeadlockDetectedError, asyncpg.exceptions.SerializationError)
# The connection itself is gone: the outcome of a COMMIT in flight is unknown, so
# never retry blindly; the client retries with its idempotency key.
CONNECTION_LOST = (
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.InterfaceError,
    ConnectionError,
)
MAX_TX_ATTEMPTS = 8
ACQUIRE_TIMEOUT_S = 10.0
WEBHOOK_TOLERANCE_S = 300


@dataclass(frozen=True)
class Reply:
    """An answer with its status: idempotent endpoints store and replay it whole."""

    status: int
    body: dict[str, Any]
    balances: tuple[repo.Balance, ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class Transfer:
    kind: str  # "tip" or "call"
    sender: str
    creator: str
    tokens: int
    channel: str  # the tip's channel, or the call id
    client_key: str | None


class PurchaseLimiter:
    """At most `limit` purchases per user in any 60 s window (in memory, per process)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._seen: dict[str, deque[float]] = defaultdict(deque)

    def check(self, user_id: str) -> None:
        now = time.monotonic()
        window = self._seen[user_id]
        while window and now - window[0] > 60:
            window.popleft()
        if len(window) >= self.limit:
            raise RateLimited()
        window.append(now)


@dataclass(frozen=True)
class Order:
    """A purchase as the service records it, whatever Stripe answered."""

    user_id: str
    tokens: int
    bonus: int
    price: Decimal
    key: str  # the client's key, or one of ours when it sent none
    client_key: str | None

    async def insert(self, conn: repo.Conn, payment_intent_id: str, status: str) -> Any:
        return await repo.insert_purchase(
            conn,
            user_id=self.user_id,
            tokens=self.tokens + self.bonus,
            amount_usd=self.price,
            bonus=self.bonus,
            payment_intent_id=payment_intent_id,
            client_key=self.key,
            status=status,
        )

    async def remember(self, conn: repo.Conn, reply: Reply) -> None:
        """Store the answer a retry with the client's key gets again."""
        if self.client_key is not None:
            await repo.store_response(conn, self.user_id, self.key, reply.status, reply.body)


class TokenService:
    """Every step a flawed variant may override is a method of its own."""

    max_tx_attempts = MAX_TX_ATTEMPTS

    def __init__(
        self, pool: asyncpg.Pool, payments: Payments, hub: BalanceHub, settings: Settings
    ) -> None:
        self.pool = pool
        self.payments = payments
        self.hub = hub
        self.settings = settings
        self.limiter = PurchaseLimiter(settings.purchase_limit_per_minute)

    # -- transactions -------------------------------------------------------------------

    async def transaction(self, body: Callable[[repo.Conn], Awaitable[T]]) -> T:
        for attempt in range(1, self.max_tx_attempts + 1):
            try:
                async with (
                    self.pool.acquire(timeout=ACQUIRE_TIMEOUT_S) as conn,
                    conn.transaction(),
                ):
                    return await body(conn)
            except RETRYABLE:
                if attempt == self.max_tx_attempts:
                    log.warning("transaction still conflicting after %d attempts", attempt)
                    raise Busy() from None
                # Jitter so the conflicting transactions do not meet again.
                await asyncio.sleep(random.uniform(0, 0.005 * 2**attempt))
            except CONNECTION_LOST as exc:
                log.warning("database connection lost: %s", exc.__class__.__name__)
                raise Busy() from None
            except TimeoutError:
                raise Busy() from None
        raise AssertionError("unreachable")

    def publish(self, balances: tuple[repo.Balance, ...]) -> None:
        for b in balances:
            self.hub.publish(BalanceEvent(b.user_id, b.balance, b.version))

    async def balance(self, user_id: str) -> repo.Balance:
        return await self.transaction(lambda conn: repo.balance_of(conn, user_id))

    # -- tips and call minutes ----------------------------------------------------------------

    # -- input and identity ---------------------------------------------------------------

    def parse_amount(self, value: Any, kind: str) -> int:
        """`kind` is the endpoint (purchase, tip, call): one strict rule for all."""
        try:
            return parse_tokens(value)
        except InvalidAmount as exc:
            raise InvalidInput(str(exc)) from exc

    def authenticate(self, header: str | None) -> str:
        return user_from_bearer(header, self.settings.jwt_secret)

    def check_parties(self, t: Transfer) -> None:
        if t.sender == t.creator:
            raise InvalidInput("you cannot send tokens to yourself")

    async def transfer(self, t: Transfer) -> Reply:
        self.check_parties(t)
        endpoint = t.kind
        fingerprint = json.dumps([t.kind, t.creator, t.tokens, t.channel])

        async def body(conn: repo.Conn) -> Reply:
            if t.client_key is not None:
                prior = await repo.claim_request_key(
                    conn, t.sender, t.client_key, endpoint, fingerprint
                )
                if prior is not None:
                    if prior.fingerprint != fingerprint or prior.status is None:
                        raise KeyReused()
                    assert prior.body is not None
                    return Reply(prior.status, prior.body)
            reply = await self.move_tokens(conn, t)
            if t.client_key is not None:
                await repo.store_response(conn, t.sender, t.client_key, reply.status, reply.body)
            return reply

        reply = await self.transaction(body)
        self.publish(reply.balances)
        return reply

    async def move_tokens(self, conn: repo.Conn, t: Transfer) -> Reply:
        sender_exists, creator_exists = await repo.transfer_parties(conn, t.sender, t.creator)
        if not sender_exists:
            return Reply(404, {"error": "User not found"})
        if not creator_exists:
            return Reply(404, {"error": "Creator not found"})
        locked = await self.lock_parties(conn, t)
        current = locked.get(t.sender, 0)
        if current < t.tokens:
            return Reply(
                402,
                {
                    "error": "Insufficient token balance",
                    "currentBalance": current,
                    "requiredTokens": t.tokens,
                },
            )
        sender, creator = await self.debit_and_credit(conn, t, current)
        body: dict[str, Any] = {
            "success": True,
            "tokensDeducted": t.tokens,
            "senderBalance": sender.balance,
        }
        if t.kind == "tip":
            body["recipientBalance"] = creator.balance
        return Reply(200, body, (sender, creator))

    async def debit_and_credit(
        self, conn: repo.Conn, t: Transfer, sender_balance: int
    ) -> tuple[repo.Balance, repo.Balance]:
        return await repo.apply_transfer(
            conn,
            kind=t.kind,
            sender=t.sender,
            creator=t.creator,
            tokens=t.tokens,
            usd=t.tokens * TOKEN_VALUE_USD,
            channel=t.channel,
            description=f"{'Tip' if t.kind == 'tip' else 'Call'} via {t.channel}",
        )

    async def lock_parties(self, conn: repo.Conn, t: Transfer) -> dict[str, int]:
        """Both balance rows locked in one global order; a creator's first credit
        creates its row first."""
        parties = [t.sender, t.creator]
        locked = await repo.lock_balances(conn, parties)
        if t.creator not in locked:
            await repo.ensure_balance_row(conn, t.creator)
            locked = await repo.lock_balances(conn, parties)
        return locked

    # -- purchases ------------------------------------------------------------------------------

    async def purchase(
        self, user_id: str, tokens: int, payment_method: str, client_key: str | None
    ) -> Reply:
        price = TOKEN_PRICES.get(tokens)
        if price is None:
            raise InvalidInput(
                "tokenAmount must be one of the packages",
                validAmounts=[str(k) for k in TOKEN_PRICES],
            )
        self.limiter.check(user_id)
        key = client_key or secrets.token_hex(16)
        fingerprint = json.dumps(["purchase", tokens, payment_method])

        replay = await self.transaction(
            lambda conn: self.claim_purchase(conn, user_id, client_key, fingerprint)
        )
        if replay is not None:
            return replay
        bonus = bonus_for(tokens)
        metadata = {
            "userId": user_id,
            "tokenAmount": str(tokens),
            "bonusTokens": str(bonus),
            "clientIdempotencyKey": key,
        }
        order = Order(user_id, tokens, bonus, price, key, client_key)
        # No connection is held while Stripe answers (it may take seconds).
        try:
            intent = await self.payments.create_intent(
                amount_cents=cents(price),
                metadata=metadata,
                payment_method=payment_method,
                key=self.stripe_key(user_id, key),
            )
        except PaymentDeclined as exc:
            return await self.record_decline(exc, order)
        return await self.record_purchase(intent, order)

    async def record_decline(self, exc: PaymentDeclined, order: Order) -> Reply:
        """402, a failed purchase row for the declined intent, and the stored answer."""
        pi = exc.details.get("payment_intent_id")
        reply = Reply(
            402,
            {
                "error": exc.message,
                "declineCode": exc.details.get("decline_code"),
                "paymentIntentId": pi,
            },
        )

        async def record(conn: repo.Conn) -> None:
            if pi:
                await order.insert(conn, pi, "failed")
            await order.remember(conn, reply)

        await self.transaction(record)
        return reply

    async def record_purchase(self, intent: Intent, order: Order) -> Reply:
        """The pending purchase row and the 200 answer; only the webhook credits."""
        status = {
            "requires_action": "requires_action",
            "requires_payment_method": "failed",
            "canceled": "canceled",
        }.get(intent.status, "pending")  # succeeded too: only the webhook credits

        async def record(conn: repo.Conn) -> Reply:
            row = await order.insert(conn, intent.id, status)
            reply = Reply(
                200,
                {
                    "success": True,
                    "transaction": _jsonable(row),
                    "paymentIntent": {
                        "id": intent.id,
                        "status": intent.status,
                        "client_secret": intent.client_secret,
                    },
                },
            )
            await order.remember(conn, reply)
            return reply

        return await self.transaction(record)

    async def claim_purchase(
        self, conn: repo.Conn, user_id: str, client_key: str | None, fingerprint: str
    ) -> Reply | None:
        """The stored answer to replay for this client key, or None to go on."""
        if not await repo.user_exists(conn, user_id):
            raise NotFound("User not found")
        if client_key is None:
            return None
        prior = await repo.claim_request_key(conn, user_id, client_key, "purchase", fingerprint)
        if prior is None:
            return None
        if prior.fingerprint != fingerprint:
            raise KeyReused()
        # A stored outcome is replayed; one still running (or cut short by a
        # Stripe outage) goes on to Stripe with the same key, which dedupes.
        return Reply(prior.status, prior.body) if prior.status and prior.body else None

    def stripe_key(self, user_id: str, client_key: str) -> str:
        return stripe_idempotency_key(user_id, client_key)

    # -- Stripe webhooks ---------------------------------------------------------------------------

    async def handle_webhook(self, payload: bytes, signature: str | None) -> None:
        event = self.verify_event(payload, signature)
        obj = event["data"]["object"]
        pi = obj.get("id") if obj.get("object") == "payment_intent" else None
        kind = event["type"]
        if pi is None:
            return
        if kind == "payment_intent.succeeded":
            balances = await self.transaction(lambda conn: self.credit_purchase(conn, obj))
            self.publish(balances)
        elif kind in ("payment_intent.payment_failed", "payment_intent.canceled"):
            status = "failed" if kind.endswith("payment_failed") else "canceled"
            await self.transaction(lambda conn: repo.mark_unsuccessful(conn, pi, status))
        await self.transaction(lambda conn: repo.record_event(conn, event["id"], kind, pi))

    def verify_event(self, payload: bytes, signature: str | None) -> dict[str, Any]:
        try:
            stripe.WebhookSignature.verify_header(
                payload.decode("utf-8"),
                signature or "",
                self.settings.stripe_webhook_secret,
                WEBHOOK_TOLERANCE_S,
            )
            event = json.loads(payload)
        except (stripe.SignatureVerificationError, UnicodeDecodeError, ValueError) as exc:
            raise InvalidInput("invalid signature or payload") from exc
        if not (
            isinstance(event, dict)
            and isinstance(event.get("id"), str)
            and isinstance(event.get("type"), str)
            and isinstance(event.get("data"), dict)
            and isinstance(event["data"].get("object"), dict)
        ):
            raise InvalidInput("not a Stripe event")
        return event

    async def credit_purchase(
        self, conn: repo.Conn, intent: dict[str, Any]
    ) -> tuple[repo.Balance, ...]:
        """Credit a succeeded PaymentIntent once, however many deliveries race here."""
        pi = str(intent["id"])
        row = await repo.lock_purchase(conn, pi)
        if row is None:
            # The webhook beat the purchase response: create the row from what
            # we put in the intent's metadata, checked against the price table.
            if not await self.insert_purchase_from_intent(conn, intent):
                return ()
            row = await repo.lock_purchase(conn, pi)
            if row is None:  # its client key belongs to another intent's row
                log.warning("succeeded intent %s collides with another purchase", pi)
                return ()
        if row["status"] == "completed":
            return ()
        balance = await repo.credit(conn, row["user_id"], row["tokens"], earned=False)
        await repo.set_purchase_status(conn, row["id"], "completed")
        return (balance,)

    async def insert_purchase_from_intent(self, conn: repo.Conn, intent: dict[str, Any]) -> bool:
        meta = intent.get("metadata") or {}
        user_id = meta.get("userId")
        try:
            tokens = parse_tokens(meta.get("tokenAmount"))
            bonus = int(meta.get("bonusTokens", "0"))
        except (InvalidAmount, ValueError):
            log.warning("succeeded intent %s has no usable metadata", intent.get("id"))
            return False
        price = TOKEN_PRICES.get(tokens)
        if (
            not isinstance(user_id, str)
            or price is None
            or intent.get("amount") != cents(price)
            or bonus != bonus_for(tokens)
            or not await repo.user_exists(conn, user_id)
        ):
            log.warning("succeeded intent %s does not match a purchase", intent.get("id"))
            return False
        await repo.insert_purchase(
            conn,
            user_id=user_id,
            tokens=tokens + bonus,
            amount_usd=price,
            bonus=bonus,
            payment_intent_id=str(intent["id"]),
            client_key=str(meta.get("clientIdempotencyKey") or intent["id"]),
            status="pending",
        )
        return True


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, int | str | bool) or value is None:
            out[key] = value
        else:
            out[key] = str(value)
    return out

"""The reference service as a real process on PostgreSQL, paying through the emulator.

Each test pins one fix of the hardening patches' defects: it fails when the
fix is taken out.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import jwt
import pytest
import pytest_asyncio
import websockets

from harness.contract import BAD_AMOUNT_LITERALS
from harness.provisioning import DatabaseFactory
from harness.run.collect import read_db
from harness.state import DbState
from harness.target.client import Answer, TargetClient
from harness.target.start import ManagedTarget, Target
from harness.target.users import UserSpec, create_users
from harness.waiting import wait_until_async

FAN, FAN2, CREATOR, CREATOR2 = "fan-1", "fan-2", "creator-1", "creator-2"


@dataclass
class World:
    target: Target
    client: TargetClient

    async def db(self) -> DbState:
        return await read_db(self.target.database_url)

    async def balance(self, user: str) -> int:
        return (await self.db()).balance_of(user)

    async def wait_balance(self, user: str, expected: int) -> None:
        async def reached() -> bool:
            return await self.balance(user) == expected

        await wait_until_async(reached, within=15, what=f"{user} balance {expected}")

    async def settle(self) -> None:
        await asyncio.to_thread(self.target.emulator.wait_settled)

    def intents(self) -> list[dict[str, Any]]:
        intents: list[dict[str, Any]] = self.target.emulator.state()["intents"]
        return intents


async def _world(target: Target, users: list[UserSpec]) -> AsyncIterator[World]:
    conn = await asyncpg.connect(target.database_url)
    try:
        await create_users(conn, users)
    finally:
        await conn.close()
    async with TargetClient(target.base_url, target.jwt_secret) as client:
        yield World(target, client)


USERS = [
    UserSpec(FAN, grant=100),
    UserSpec(FAN2, grant=100),
    UserSpec(CREATOR, is_creator=True),
    UserSpec(CREATOR2, is_creator=True, grant=50),
]


@pytest_asyncio.fixture
async def world(reference_target: Target) -> AsyncIterator[World]:
    async for w in _world(reference_target, USERS):
        yield w


def _ledger_explains(state: DbState) -> None:
    for b in state.balances:
        total = sum(
            r.tokens for r in state.ledger if r.user_id == b.user_id and r.status == "completed"
        )
        assert total == b.balance, f"{b.user_id}: balance {b.balance}, ledger {total}"


async def _gather(n: int, call: Callable[[int], Awaitable[Answer]]) -> list[Answer]:
    return list(await asyncio.gather(*(call(i) for i in range(n))))


# -- purchases -----------------------------------------------------------------------


async def test_health_and_openapi(world: World) -> None:
    assert (await world.client.call("GET", "/health")).status == 200
    spec = await world.client.call("GET", "/openapi.json")
    assert "/api/tokens/tip" in spec.body["paths"]


async def test_purchase_is_credited_by_the_webhook_once(world: World) -> None:
    answer = await world.client.purchase(
        FAN, {"tokenAmount": 100, "paymentMethodId": "pm_card_visa"}
    )
    assert answer.status == 200, answer.body
    assert answer.body["paymentIntent"]["status"] == "succeeded"
    assert answer.body["transaction"]["status"] in ("pending", "completed")
    await world.wait_balance(FAN, 200)
    await world.settle()
    state = await world.db()
    purchases = [r for r in state.ledger if r.type == "purchase"]
    assert [(r.tokens, r.status) for r in purchases] == [(100, "completed")]
    _ledger_explains(state)


async def test_bonus_on_large_packages(world: World) -> None:
    answer = await world.client.purchase(
        FAN, {"tokenAmount": "5000", "paymentMethodId": "pm_card_visa"}
    )
    assert answer.status == 200
    await world.wait_balance(FAN, 100 + 5250)
    assert world.intents()[0]["amount"] == 4999


async def test_purchase_retried_sequentially_charges_once(world: World) -> None:
    body = {"tokenAmount": 500, "paymentMethodId": "pm_card_visa", "clientIdempotencyKey": "k1"}
    first = await world.client.purchase(FAN, body)
    second = await world.client.purchase(FAN, body)
    assert first.status == second.status == 200
    assert first.body["paymentIntent"]["id"] == second.body["paymentIntent"]["id"]
    await world.settle()
    assert len(world.intents()) == 1
    await world.wait_balance(FAN, 600)


async def test_purchase_retried_concurrently_charges_once(world: World) -> None:
    body = {"tokenAmount": 500, "paymentMethodId": "pm_card_visa", "clientIdempotencyKey": "k2"}
    answers = await _gather(10, lambda i: world.client.purchase(FAN, body))
    assert {a.status for a in answers} == {200}, [a.body for a in answers]
    assert len({a.body["paymentIntent"]["id"] for a in answers}) == 1
    await world.settle()
    assert len([i for i in world.intents() if i["status"] == "succeeded"]) == 1
    await world.wait_balance(FAN, 600)
    _ledger_explains(await world.db())


async def test_purchase_key_with_another_body_is_409(world: World) -> None:
    body = {"tokenAmount": 100, "paymentMethodId": "pm_card_visa", "clientIdempotencyKey": "k3"}
    assert (await world.client.purchase(FAN, body)).status == 200
    other = await world.client.purchase(FAN, {**body, "tokenAmount": 500})
    assert other.status == 409
    assert len(world.intents()) == 1


async def test_decline_is_402_with_code_and_credits_nothing(world: World) -> None:
    answer = await world.client.purchase(
        FAN, {"tokenAmount": 100, "paymentMethodId": "pm_card_chargeDeclinedInsufficientFunds"}
    )
    assert answer.status == 402
    assert answer.body["declineCode"] == "insufficient_funds"
    await world.settle()
    state = await world.db()
    assert state.balance_of(FAN) == 100
    assert [r.status for r in state.ledger if r.type == "purchase"] == ["failed"]


async def test_three_ds_authenticated_then_abandoned(world: World) -> None:
    answer = await world.client.purchase(
        FAN, {"tokenAmount": 100, "paymentMethodId": "pm_card_threeDSecure2Required"}
    )
    assert answer.status == 200
    assert answer.body["paymentIntent"]["status"] == "requires_action"
    world.target.emulator.customer(answer.body["paymentIntent"]["id"], "authenticate")
    await world.wait_balance(FAN, 200)
    second = await world.client.purchase(
        FAN, {"tokenAmount": 500, "paymentMethodId": "pm_card_threeDSecure2Required"}
    )
    world.target.emulator.customer(second.body["paymentIntent"]["id"], "abandon")
    await world.settle()
    state = await world.db()
    assert state.balance_of(FAN) == 200
    statuses = {r.stripe_payment_intent_id: r.status for r in state.ledger if r.type == "purchase"}
    assert statuses[second.body["paymentIntent"]["id"]] == "canceled"


async def test_webhook_before_the_purchase_row_is_credited_once(world: World) -> None:
    world.target.emulator.add_delivery_rule(
        "before_response", event_type="payment_intent.succeeded"
    )
    answer = await world.client.purchase(
        FAN, {"tokenAmount": 100, "paymentMethodId": "pm_card_visa"}
    )
    assert answer.status == 200
    # Credited before the purchase answered: the webhook created the row.
    assert await world.balance(FAN) == 200
    assert answer.body["transaction"]["status"] == "completed"
    await world.settle()
    _ledger_explains(await world.db())


async def test_parallel_duplicate_deliveries_credit_once(world: World) -> None:
    world.target.emulator.add_delivery_rule(
        "parallel", event_type="payment_intent.succeeded", copies=8
    )
    await world.client.purchase(FAN, {"tokenAmount": 1000, "paymentMethodId": "pm_card_visa"})
    await world.settle()
    attempts = [
        d
        for d in world.target.emulator.state()["deliveries"]
        if d["event_type"] == "payment_intent.succeeded"
    ]
    assert len(attempts) == 8 and all(d["status"] == 200 for d in attempts)
    assert await world.balance(FAN) == 1100


async def test_payment_failed_after_succeeded_changes_nothing(world: World) -> None:
    answer = await world.client.purchase(
        FAN, {"tokenAmount": 100, "paymentMethodId": "pm_card_visa"}
    )
    await world.wait_balance(FAN, 200)
    await world.settle()
    pi = answer.body["paymentIntent"]["id"]
    result = world.target.emulator.forge(
        pi,
        type="payment_intent.payment_failed",
        status="requires_payment_method",
        signature="valid",
    )
    assert result["attempts"][0]["status"] == 200
    state = await world.db()
    assert state.balance_of(FAN) == 200
    assert [r.status for r in state.ledger if r.stripe_payment_intent_id == pi] == ["completed"]


async def test_forged_and_unsigned_webhooks_are_rejected(world: World) -> None:
    answer = await world.client.purchase(
        FAN, {"tokenAmount": 100, "paymentMethodId": "pm_card_chargeDeclined"}
    )
    pi = answer.body["paymentIntentId"]
    for signature in ("forged", "stale"):
        result = world.target.emulator.forge(pi, signature=signature)
        assert result["attempts"][0]["status"] == 400
    unsigned = await world.client.call(
        "POST", "/api/payments/webhook", content=json.dumps({"id": "evt_x"}).encode()
    )
    assert unsigned.status == 400
    assert await world.balance(FAN) == 100


async def test_stripe_outage_is_502_and_a_retry_charges_once(world: World) -> None:
    world.target.emulator.add_fault("error", status=503, times=3)  # beats the SDK's 2 retries
    body = {"tokenAmount": 100, "paymentMethodId": "pm_card_visa", "clientIdempotencyKey": "o1"}
    first = await world.client.purchase(FAN, body)
    assert first.status in (502, 503)
    assert "503" not in json.dumps(first.body) and "api_error" not in json.dumps(first.body)
    second = await world.client.purchase(FAN, body)
    assert second.status == 200
    await world.wait_balance(FAN, 200)
    assert len(world.intents()) == 1


async def test_commit_then_drop_is_recovered_by_the_same_key(world: World) -> None:
    world.target.emulator.add_fault("commit_then_drop", path="^/v1/payment_intents$", times=1)
    answer = await world.client.purchase(
        FAN, {"tokenAmount": 100, "paymentMethodId": "pm_card_visa"}
    )
    assert answer.status == 200
    await world.settle()
    assert len(world.intents()) == 1
    await world.wait_balance(FAN, 200)


async def test_no_transaction_open_while_stripe_is_slow(world: World) -> None:
    world.target.emulator.add_fault("latency", latency_s=1.0, times=1)
    purchase = asyncio.create_task(
        world.client.purchase(FAN, {"tokenAmount": 100, "paymentMethodId": "pm_card_visa"})
    )

    async def stripe_waiting() -> bool:
        requests = (await asyncio.to_thread(world.target.emulator.state))["requests"]
        return any("status" not in r for r in requests)

    await wait_until_async(stripe_waiting, within=10, what="purchase waits on Stripe")
    conn = await asyncpg.connect(world.target.database_url)
    try:
        holding = await conn.fetchval(
            """SELECT count(*) FROM pg_stat_activity
               WHERE datname = current_database() AND pid <> pg_backend_pid()
                 AND (state LIKE 'idle in transaction%' OR backend_xid IS NOT NULL)"""
        )
    finally:
        await conn.close()
    assert holding == 0
    assert (await purchase).status == 200


# -- amounts and auth ----------------------------------------------------------------------

BAD_AMOUNTS: list[Any] = [*BAD_AMOUNT_LITERALS, ""]


@pytest.mark.parametrize("amount", BAD_AMOUNTS)
async def test_bad_amounts_are_400_and_change_nothing(world: World, amount: Any) -> None:
    before = await world.db()
    tip = await world.client.tip(
        FAN, {"creatorId": CREATOR, "tokenAmount": amount, "channel": "live"}
    )
    deduct = await world.client.deduct(
        FAN, {"creatorId": CREATOR, "tokenAmount": amount, "callId": "c1"}
    )
    purchase = await world.client.purchase(
        FAN, {"tokenAmount": amount, "paymentMethodId": "pm_card_visa"}
    )
    assert (tip.status, deduct.status, purchase.status) == (400, 400, 400)
    assert await world.db() == before
    assert world.intents() == []


async def test_purchase_outside_price_table_is_400(world: World) -> None:
    answer = await world.client.purchase(
        FAN, {"tokenAmount": 150, "paymentMethodId": "pm_card_visa"}
    )
    assert answer.status == 400
    assert "100" in answer.body["validAmounts"]


async def test_self_tip_and_self_call_are_refused(world: World) -> None:
    before = await world.db()
    tip = await world.client.tip(
        CREATOR2, {"creatorId": CREATOR2, "tokenAmount": 5, "channel": "x"}
    )
    call = await world.client.deduct(
        CREATOR2, {"creatorId": CREATOR2, "tokenAmount": 5, "callId": "c"}
    )
    assert (tip.status, call.status) == (400, 400)
    assert await world.db() == before


async def test_tokens_that_must_be_refused(world: World) -> None:
    secret = world.target.jwt_secret
    now = int(time.time())
    tokens = {
        "expired": jwt.encode({"sub": FAN, "exp": now - 10}, secret, algorithm="HS256"),
        "no exp": jwt.encode({"sub": FAN}, secret, algorithm="HS256"),
        "wrong key": jwt.encode(
            {"sub": FAN, "exp": now + 60}, "another-secret-of-32-bytes-or-more!", algorithm="HS256"
        ),
        "alg none": jwt.encode({"sub": FAN, "exp": now + 60}, None, algorithm="none"),
    }
    for name, token in tokens.items():
        answer = await world.client.call(
            "POST",
            "/api/tokens/tip",
            json={"creatorId": CREATOR, "tokenAmount": 5, "channel": "x"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert answer.status == 401, name
    missing = await world.client.call("GET", "/api/tokens/balance")
    assert missing.status == 401
    assert await world.balance(FAN) == 100


# -- tips and calls under concurrency ----------------------------------------------------------


async def test_forty_concurrent_tips_spend_exactly_the_balance(world: World) -> None:
    answers = await _gather(
        40,
        lambda i: world.client.tip(
            FAN, {"creatorId": CREATOR, "tokenAmount": 5, "channel": "live"}
        ),
    )
    counts = Counter(a.status for a in answers)
    assert counts == {200: 20, 402: 20}
    state = await world.db()
    assert state.balance_of(FAN) == 0 and state.balance_of(CREATOR) == 100
    assert len({e.source_id for e in state.earnings}) == 20
    _ledger_explains(state)


def test_a_pool_of_one_connection_serves_concurrent_purchases_and_tips(
    reference_database_factory: DatabaseFactory,
) -> None:
    """DB_POOL_SIZE=1 is a valid setting: the service starts, and concurrent
    requests wait for the one connection instead of failing."""

    async def purchase(world: World, i: int) -> Answer:
        return await world.client.purchase(
            FAN, {"tokenAmount": 100, "paymentMethodId": "pm_card_visa"}
        )

    async def tip(world: World, i: int) -> Answer:
        body = {"creatorId": CREATOR, "tokenAmount": 10, "channel": "live"}
        return await world.client.tip(FAN2, body)

    async def traffic(target: Target) -> None:
        async for world in _world(target, USERS):
            purchases = await _gather(3, functools.partial(purchase, world))
            tips = await _gather(12, functools.partial(tip, world))
            assert [a.status for a in purchases] == [200] * 3, purchases
            assert Counter(a.status for a in tips) == {200: 10, 402: 2}
            await world.wait_balance(FAN, 100 + 300)
            _ledger_explains(await world.db())

    with ManagedTarget(reference_database_factory, extra_env={"DB_POOL_SIZE": "1"}) as target:
        asyncio.run(traffic(target))


async def test_mixed_tips_and_calls_never_overdraw(world: World) -> None:
    async def op(i: int) -> Answer:
        if i % 2:
            return await world.client.deduct(
                FAN, {"creatorId": CREATOR, "tokenAmount": 7, "callId": f"call-{i}"}
            )
        return await world.client.tip(
            FAN, {"creatorId": CREATOR2, "tokenAmount": 7, "channel": "c"}
        )

    answers = await _gather(30, op)
    assert {a.status for a in answers} <= {200, 402}
    assert sum(a.status == 200 for a in answers) == 100 // 7
    _ledger_explains(await world.db())


async def test_crossed_transfers_do_not_surface_deadlocks(reference_target: Target) -> None:
    users = [UserSpec(f"c{i}", is_creator=True, grant=1000) for i in range(3)]

    async def op(world: World, i: int) -> Answer:
        # Senders and receivers cross: A->B, B->C, C->A and back, all at once.
        sender, receiver = f"c{i % 3}", f"c{(i + 1 + i // 3 % 2) % 3}"
        return await world.client.tip(
            sender, {"creatorId": receiver, "tokenAmount": 1, "channel": "x"}
        )

    async for world in _world(reference_target, users):
        answers = await _gather(90, functools.partial(op, world))
        assert {a.status for a in answers} == {200}, Counter(a.status for a in answers)
        state = await world.db()
        assert sum(b.balance for b in state.balances) == 3000
        _ledger_explains(state)


async def test_creator_totals_count_every_credit(world: World) -> None:
    for amount in (3, 4):
        assert (
            await world.client.tip(
                FAN, {"creatorId": CREATOR, "tokenAmount": amount, "channel": "x"}
            )
        ).status == 200
    state = await world.db()
    creator = next(u for u in state.users if u.supabase_id == CREATOR)
    balance = next(b for b in state.balances if b.user_id == CREATOR)
    assert balance.total_earned == 7
    assert str(creator.total_earnings) == "0.35"


async def test_tip_key_retried_moves_tokens_once(world: World) -> None:
    body = {"creatorId": CREATOR, "tokenAmount": 10, "channel": "x", "clientIdempotencyKey": "t1"}
    answers = await _gather(10, lambda i: world.client.tip(FAN, body))
    assert {a.status for a in answers} == {200}
    assert len({json.dumps(a.body, sort_keys=True) for a in answers}) == 1
    again = await world.client.tip(FAN, body)
    assert again.body == answers[0].body
    other = await world.client.tip(FAN, {**body, "tokenAmount": 11})
    assert other.status == 409
    assert await world.balance(FAN) == 90


async def test_balance_stream_ends_on_the_committed_balance(world: World) -> None:
    token = world.client.token(FAN)
    url = world.target.base_url.replace("http", "ws") + f"/api/tokens/stream?token={token}"
    async with websockets.connect(url) as ws:
        first = json.loads(await ws.recv())
        assert first["balance"] == 100
        await _gather(
            10,
            lambda i: world.client.tip(
                FAN, {"creatorId": CREATOR, "tokenAmount": 3, "channel": "x"}
            ),
        )
        latest = first
        while latest["balance"] != 70:
            event = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
            if event["version"] > latest["version"]:
                latest = event
    assert latest["balance"] == await world.balance(FAN)


def test_outside_command_target_runs_the_reference(
    reference_database_factory: DatabaseFactory,
) -> None:
    import shlex
    import sys

    command = f"{shlex.quote(sys.executable)} -m reference_impl"
    with ManagedTarget(reference_database_factory, command, name="command") as target:

        async def scenario() -> int:
            async for world in _world(target, USERS):
                answer = await world.client.tip(
                    FAN, {"creatorId": CREATOR, "tokenAmount": 1, "channel": "x"}
                )
                return answer.status
            raise AssertionError("no world")

        assert asyncio.run(scenario()) == 200


def test_purchase_rate_limit_is_429(reference_database_factory: DatabaseFactory) -> None:
    limited = ManagedTarget(
        reference_database_factory, extra_env={"PURCHASE_LIMIT_PER_MINUTE": "2"}
    )
    with limited as target:

        async def scenario() -> list[int]:
            async for world in _world(target, USERS):
                body = {"tokenAmount": 100, "paymentMethodId": "pm_card_visa"}
                return [(await world.client.purchase(FAN, body)).status for _ in range(3)]
            raise AssertionError("no world")

        assert asyncio.run(scenario()) == [200, 200, 429]
        assert len(target.emulator.state()["intents"]) == 2


def test_missing_configuration_is_a_clear_exit() -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "JWT_SECRET")}
    env.update(
        PORT="1",
        STRIPE_SECRET_KEY="sk_test_x",
        STRIPE_API_BASE="http://x",
        STRIPE_WEBHOOK_SECRET="whsec_x",
    )
    result = subprocess.run(
        [sys.executable, "-m", "reference_impl"], capture_output=True, text=True, env=env
    )
    assert result.returncode == 2
    assert "DATABASE_URL" in result.stderr

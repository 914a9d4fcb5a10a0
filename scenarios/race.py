"""race: concurrent spending, crossed transfers, first credits, concurrent purchases."""

from __future__ import annotations

import asyncio

from harness.api import Run
from harness.contract import PRICE_TABLE
from harness.run.scenario import creator, fan, scenario


@scenario("race", users=[fan("fan", 100), creator("star")])
async def drain_one_fan(run: Run) -> None:
    """40 concurrent 5-token tips from a fan holding 100: exactly 20 may succeed and
    the balance never goes negative. Catches missing funds checks and lost updates."""
    await run.gather(*(run.tip("fan", "star", 5) for _ in range(40)))


@scenario("race", users=[fan("fan", 100), creator("star")])
async def drain_one_fan_gated(run: Run) -> None:
    """20 tips of 10 released together by the contention gate after each has read
    the balance: a read-check-write service loses updates every time (the ledger no
    longer explains the balance); a locking one serialises."""
    async with run.gate(expect=20) as gate:
        tips = [run.spawn(run.tip("fan", "star", 10)) for _ in range(20)]
        await gate.wait_for_waiters()
    await asyncio.gather(*tips)


@scenario("race", users=[*(fan(f"f{i}", 50) for i in range(20)), creator("star", 10)])
async def many_fans_one_creator_gated(run: Run) -> None:
    """20 different fans tip one creator, released together by the contention gate:
    credits land in the same millisecond, so earnings sources built from a clock
    (`tip_${Date.now()}`) collide; every (earning_type, source_id) must stay unique
    and every credit counted."""
    async with run.gate(expect=20) as gate:
        tips = [run.spawn(run.tip(f"f{i}", "star", 5)) for i in range(20)]
        await gate.wait_for_waiters()
    await asyncio.gather(*tips)


@scenario("race", users=[fan("fan", 100), creator("star"), creator("host")])
async def tips_and_calls_exceed_balance(run: Run) -> None:
    """Tips and call minutes from one fan at once, together worth twice the balance:
    answers must match the ledger and nothing may overdraw."""
    ops = []
    for i in range(30):
        if i % 2:
            ops.append(run.deduct("fan", "host", 7, call_id=f"call-{i}"))
        else:
            ops.append(run.tip("fan", "star", 7))
    await run.gather(*ops)


@scenario("race", users=[creator("a", 1000), creator("b", 1000), creator("c", 1000)])
async def crossed_transfers(run: Run) -> None:
    """A->B with B->A and cycles A->B->C->A, all at once: locks taken in arbitrary
    order deadlock; a deadlock must be retried inside the service, never a 5xx."""
    pairs = [("a", "b"), ("b", "a"), ("b", "c"), ("c", "a"), ("a", "c"), ("c", "b")]
    await run.gather(*(run.tip(s, r, 1) for _ in range(15) for s, r in pairs))


@scenario("race", users=[*(fan(f"f{i}", 50) for i in range(30)), creator("star")])
async def many_fans_one_creator_first_credit(run: Run) -> None:
    """30 fans tip a creator that has no balance row yet, in the same instant: the
    first credits race to create the row; every earning needs a unique source id and
    the creator's totals must count every credit, the first one too."""
    await run.gather(*(run.tip(f"f{i}", "star", 10) for i in range(30)))


@scenario("race", users=[fan("fan", 10)])
async def concurrent_purchases_one_user(run: Run) -> None:
    """Eight purchases at once by a fan who already holds tokens, every package of
    the price table among them, each with its webhook: each succeeded
    PaymentIntent credited exactly once with what the contract says it buys (5%
    bonus from 5000 up), the balance explained by the ledger."""
    packages = [*PRICE_TABLE, 100, 5000, 500]
    await run.gather(*(run.purchase("fan", tokens) for tokens in packages))

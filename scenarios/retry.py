"""retry: the same request sent again, sequentially, concurrently, after a timeout,
after Stripe lost its answer, and with a different body."""

from __future__ import annotations

import asyncio

from harness.api import Run
from harness.checkers import ALLOW_5XX
from harness.contract import outcome
from harness.run.scenario import creator, fan, scenario
from harness.waiting import wait_until_async


@scenario("retry", users=[fan("fan")])
async def purchase_key_sequential(run: Run) -> None:
    """One purchase sent three times in a row with the same clientIdempotencyKey: one
    charge at Stripe, one credit. Catches purchases that do not pass a stable
    idempotency key to Stripe (retry-double-charge)."""
    for _ in range(3):
        answer = await run.purchase("fan", 500, key="buy-1")
        run.expect_ok(answer, "retry-answers-200", "the purchase retried", route="purchase")


@scenario("retry", users=[fan("fan")])
async def purchase_key_concurrent(run: Run) -> None:
    """Ten copies of one purchase (same key) at once: one charge, one credit, whatever
    interleaving of Stripe calls and inserts happens."""
    await run.gather(*(run.purchase("fan", 500, key="buy-2") for _ in range(10)))


@scenario("retry", users=[fan("fan", 100), creator("star")])
async def tip_key_retried(run: Run) -> None:
    """A tip retried with its key, five times in a row then five at once: tokens move
    once and every retry gets the first answer. Catches tip-retry-double-debit."""
    first = await run.tip("fan", "star", 10, key="tip-1")
    for _ in range(4):
        again = await run.tip("fan", "star", 10, key="tip-1")
        run.expect(
            outcome("tip", again.status, again.body) == outcome("tip", first.status, first.body),
            "retry-replays-first-answer",
            "a retried tip answered with another status or other values of the fields the "
            "contract names",
            route="tip",
            first=first.body,
            again=again.body,
        )
    await run.gather(*(run.tip("fan", "star", 10, key="tip-1") for _ in range(5)))


@scenario("retry", users=[fan("fan", 100), creator("host")])
async def deduct_key_retried(run: Run) -> None:
    """A call-minute deduction retried with its key, sequentially and concurrently:
    one debit."""
    await run.deduct("fan", "host", 10, key="minute-1")
    await run.gather(*(run.deduct("fan", "host", 10, key="minute-1") for _ in range(6)))


@scenario("retry", users=[fan("fan")], checkers=ALLOW_5XX)
async def client_timeout_then_retry(run: Run) -> None:
    """Stripe is slow, the client gives up (outcome unknown) and retries with the same
    key while the first call is still at Stripe (Stripe answers 409 "in progress", so
    a 502 is fair), then once more after Stripe has answered: exactly one charge,
    credited once, and the last retry succeeds."""
    # Requests of earlier scenarios may never have been answered (a connection a
    # fault cut): only this scenario's are waited for.
    mark = await asyncio.to_thread(run.stripe.request_mark)
    run.stripe.add_fault("latency", latency_s=1.5, times=1)
    first = await run.purchase("fan", 100, key="slow-1", timeout_s=0.3)
    run.require(first.status == 0, "the first call was meant to time out on the client")
    second = await run.purchase("fan", 100, key="slow-1")
    run.expect(
        second.status in (200, 409, 502, 503),
        "retry-handled",
        f"the retry answered {second.status}",
        route="purchase",
    )

    async def stripe_idle() -> bool:
        return await asyncio.to_thread(run.stripe.unanswered_since, mark) == 0

    await wait_until_async(stripe_idle, within=30, what="the slow Stripe call finishes")
    third = await run.purchase("fan", 100, key="slow-1")
    run.expect_ok(third, "retry-after-stripe-answered", "the retry", route="purchase")


@scenario("retry", users=[fan("fan")])
async def stripe_commits_then_drops_response(run: Run) -> None:
    """Stripe charges, then the connection is cut before the service hears back (and,
    second purchase, a 500 after the charge). The service's SDK retries with the
    same key and learns the outcome: one charge each, each credited once."""
    run.stripe.add_fault("commit_then_drop", path="^/v1/payment_intents$", times=1)
    await run.purchase("fan", 100, key="drop-1")
    run.stripe.add_fault("commit_then_drop", path="^/v1/payment_intents$", drop="500", times=1)
    await run.purchase("fan", 500, key="drop-2")


@scenario("retry", users=[fan("fan", 100), creator("star")])
async def key_reused_with_another_body(run: Run) -> None:
    """A key reused with a different body is refused (4xx) and moves no money, for a
    purchase and for a tip."""
    await run.purchase("fan", 100, key="same")
    other = await run.purchase("fan", 500, key="same")
    run.expect(
        400 <= other.status < 500,
        "reused-key-refused",
        f"a purchase key reused with another body answered {other.status}",
        route="purchase",
    )
    await run.tip("fan", "star", 10, key="same-tip")
    other_tip = await run.tip("fan", "star", 20, key="same-tip")
    run.expect(
        400 <= other_tip.status < 500,
        "reused-key-refused",
        f"a tip key reused with another body answered {other_tip.status}",
        route="tip",
    )

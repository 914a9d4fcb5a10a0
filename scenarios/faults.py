"""faults: the database connection killed mid-request, Stripe errors and latency,
the service killed under load and restarted."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import asyncpg

from harness.api import Run
from harness.checkers import ALLOW_5XX
from harness.run.scenario import creator, fan, scenario
from harness.run.stall import STALL_S, probe_stall
from harness.waiting import DeadlineExceeded, wait_until_async

SLOW_BUYERS = 24
STRIPE_LATENCY_S = 1.5
PURCHASE_TIMEOUT_S = 15.0


@scenario("faults", users=[fan("fan", 1000), creator("star")], checkers=ALLOW_5XX)
async def database_connection_killed(run: Run) -> None:
    """Twenty tips wait at the gate; the service's database connections are then
    terminated (pg_terminate_backend). Whatever each answers, no partial transfer
    may remain: every debit has its credit, ledger rows and earning."""
    async with run.gate(expect=10) as gate:
        tips = [run.spawn(run.tip("fan", "star", 5)) for _ in range(10)]
        await gate.wait_for_waiters()
        conn = await asyncpg.connect(run.target.database_url)
        try:
            killed = await conn.fetchval(
                """SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                   WHERE datname = current_database() AND pid <> pg_backend_pid()
                     AND wait_event_type = 'Lock'"""
            )
        finally:
            await conn.close()
        run.act(f"terminated {killed} of the service's database connections")
    await asyncio.gather(*tips)
    after = await run.tip("fan", "star", 5)
    run.expect_ok(after, "recovers-after-kill", "a tip after the kill")


@scenario("faults", users=[fan("fan")], checkers=ALLOW_5XX)
async def stripe_errors(run: Run) -> None:
    """Stripe answers 500/503 beyond the SDK's retries: the purchase fails cleanly
    (502/503, no charge), and a retry with the same key later charges exactly once."""
    run.stripe.add_fault("error", status=503, times=8)
    run.act("Stripe answers 503 to the next 8 calls")
    first = await run.purchase("fan", 100, key="outage-1")
    run.expect(
        first.status in (502, 503),
        "outage-is-502-or-503",
        f"a purchase during a Stripe outage answered {first.status}",
    )
    run.stripe.clear_faults()
    second = await run.purchase("fan", 100, key="outage-1")
    run.expect_ok(second, "retry-after-outage", "the purchase retried after the outage")


@scenario("faults", users=[fan("fan", 100), *(fan(f"buyer{i}") for i in range(SLOW_BUYERS))])
async def slow_stripe_concurrent_purchases(run: Run) -> None:
    """Stripe takes 1.5 s per call while 24 purchases run (more than most pools hold):
    GET /balance must still answer within 1 s unless nothing holds the database
    (a server's own thread count is not the contract's business). A service that
    keeps transactions open while Stripe answers starves its pool and stalls
    (catches connection-held-across-stripe); the violation shows what its
    database sessions were doing."""
    mark = await asyncio.to_thread(run.stripe.request_mark)
    run.stripe.add_fault("latency", latency_s=STRIPE_LATENCY_S, path="^/v1/payment_intents$")
    run.act(f"Stripe takes {STRIPE_LATENCY_S:g} s to create each PaymentIntent")
    purchases = [
        run.spawn(run.purchase(f"buyer{i}", 100, timeout_s=PURCHASE_TIMEOUT_S))
        for i in range(SLOW_BUYERS)
    ]

    async def waiting_on_stripe() -> bool:
        return await asyncio.to_thread(run.stripe.unanswered_since, mark) > 0

    # A starved pool may keep every purchase from reaching Stripe: after a while,
    # measure anyway.
    with contextlib.suppress(DeadlineExceeded):
        await wait_until_async(waiting_on_stripe, within=3, what="a purchase waits on Stripe")
    # Several reads at once, each round, each on a new connection; meanwhile the
    # service's database sessions are sampled: what holds them is the evidence.
    stall = await probe_stall(
        run.target.database_url,
        lambda: run.gather(
            *(run.balance("fan", timeout_s=STALL_S * 3, new_connection=True) for _ in range(4))
        ),
    )
    run.note(f"GET /balance worst {stall.worst_s * 1000:.1f} ms while Stripe is slow")
    if stall.worst_s >= STALL_S and not stall.holding:
        run.note("the slow reads came with no transaction held open: not a pool stall")
    if (
        not run.expect(
            not stall.stalled,
            "service-stalled",
            f"GET /balance took {stall.worst_s:.2f} s (or gave up) while purchases waited on "
            f"Stripe, and {len(stall.holding)} database sessions held a transaction open "
            "meanwhile",
            database_sessions=stall.sessions,
        )
        and run.target.process is not None
    ):
        # A starved pool may never recover (and may not stop gracefully either):
        # kill and start the service so the scenarios after this one judge the
        # service, not this stall.
        run.act("killed the stalled service (SIGKILL, its process group) and started it again")
        await asyncio.to_thread(run.target.process.kill)
        await asyncio.to_thread(run.target.process.start)
    await asyncio.gather(*purchases)


@scenario(
    "faults",
    users=[fan("fan", 1000), creator("star"), fan("buyer")],
    checkers=ALLOW_5XX,
    timeout_s=120,
)
async def service_killed_and_restarted(run: Run) -> None:
    """The service is SIGKILLed while tips and purchases are in flight, then started
    again (targets tokenproof started): every invariant holds afterwards, and
    requests work again."""
    process = run.target.process
    if process is None:
        run.skip("the target was not started by tokenproof")
        return
    ops = [run.spawn(run.tip("fan", "star", 1)) for _ in range(30)]
    ops += [run.spawn(run.purchase("buyer", 100)) for _ in range(3)]

    async def some_answered() -> bool:
        return any(op.type != "invoke" for op in run.history.ops)

    # Kill mid-stream: once the first answers are back, the rest are in flight.
    await wait_until_async(some_answered, within=30, what="first answers before the kill")
    run.act("SIGKILL to the service's process group")
    process.kill()
    await asyncio.gather(*ops)
    # Started from this (the main) thread on purpose: see ChildProcess.start.
    process.start()
    run.act("started the service again")
    after = await run.tip("fan", "star", 1)
    run.expect_ok(after, "works-after-restart", "a tip after the restart")


ACKED_BUYS = 3


@scenario("faults", users=[fan("fan")], checkers=ALLOW_5XX, timeout_s=120)
async def killed_after_webhook_ack(run: Run) -> None:
    """Three purchases' succeeded events are delivered while the balances are locked,
    so whatever credits them (the webhook handler itself, or a queue worker after
    the handler's 2xx) waits. Once every event is acknowledged (or the handler
    itself is seen waiting), the service is SIGKILLed, its whole process group
    (web, worker, broker), then started again. A 2xx means accepted and Stripe
    will not send it again: every acknowledged intent must still be credited
    exactly once. Catches an acknowledgement that lives only in memory or in a
    broker that dies with the process."""
    process = run.target.process
    if process is None:
        run.skip("the target was not started by tokenproof")
        return
    run.stripe.add_delivery_rule("hold", event_type="payment_intent.succeeded")
    answers = await run.gather(*(run.purchase("fan", 100) for _ in range(ACKED_BUYS)))
    run.require(all(a.status == 200 for a in answers), "the purchases were not all accepted")
    async with run.gate(expect=1, lock_sql=run.target.dialect.lock("balances")) as gate:
        run.stripe.release()

        async def acknowledged_or_blocked() -> bool:
            acked = len(_acknowledged(run, "payment_intent.succeeded"))
            return acked >= ACKED_BUYS or (
                await gate.waiters() > 0 and run.stripe.settled()["in_progress"] > 0
            )

        await wait_until_async(
            acknowledged_or_blocked, within=30, what="the succeeded events acknowledged"
        )
        run.act(
            f"SIGKILL to the service's process group after "
            f"{len(_acknowledged(run, 'payment_intent.succeeded'))} of {ACKED_BUYS} succeeded "
            "events were acknowledged"
        )
        process.kill()
    # Started from this (the main) thread on purpose: see ChildProcess.start.
    process.start()
    run.act("started the service again")


def _acknowledged(run: Run, event_type: str) -> list[dict[str, Any]]:
    return [
        d
        for d in run.stripe.state(metadata_prefix=("userId", run.user("fan")))["deliveries"]
        if d["event_type"] == event_type
        and d.get("signature") == "valid"
        and d["status"] is not None
        and 200 <= d["status"] < 300
    ]


CREDITING_LATENCY_S = 3.0
SLOW_CREDIT_BUYERS = 4


@scenario(
    "faults",
    users=[fan(f"buyer{i}") for i in range(SLOW_CREDIT_BUYERS)],
    checkers=ALLOW_5XX,
    timeout_s=120,
)
async def slow_stripe_while_crediting(run: Run) -> None:
    """Four purchases answer; then every Stripe call takes 3 s while their succeeded
    events are delivered and processed. A worker that asks Stripe for the intent
    before crediting now outlives a short queue lock or visibility timeout, and the
    queue runs the job again: no intent may be credited twice."""
    run.stripe.add_delivery_rule("hold", event_type="payment_intent.succeeded")
    answers = await run.gather(*(run.purchase(f"buyer{i}", 100) for i in range(SLOW_CREDIT_BUYERS)))
    run.require(all(a.status == 200 for a in answers), "the purchases were not all accepted")
    # Stays on through settling (the next scenario clears it).
    run.stripe.add_fault("latency", latency_s=CREDITING_LATENCY_S)
    run.act(f"every Stripe call takes {CREDITING_LATENCY_S:g} s from now on")
    run.stripe.release()


OUTAGE_CALLS = 12  # beyond any SDK's own retries


@scenario("faults", users=[fan("fan")], checkers=ALLOW_5XX, timeout_s=120)
async def stripe_outage_while_crediting(run: Run) -> None:
    """Two purchases answer; while their succeeded events are delivered, Stripe
    answers 503 to the next 12 reads of a PaymentIntent (beyond any SDK's retries),
    then recovers. A worker that checks the intent at Stripe before crediting
    fails its job: the event was acknowledged, so the credit must still come
    (a job given up on after one failure loses it)."""
    run.stripe.add_delivery_rule("hold", event_type="payment_intent.succeeded")
    answers = await run.gather(run.purchase("fan", 100), run.purchase("fan", 500))
    run.require(all(a.status == 200 for a in answers), "the purchases were not all accepted")
    run.stripe.add_fault(
        "error", status=503, times=OUTAGE_CALLS, path="^/v1/payment_intents/", method="GET"
    )
    run.act(f"Stripe answers 503 to the next {OUTAGE_CALLS} reads of a PaymentIntent")
    run.stripe.release()

"""faults: the database connection killed mid-request, Stripe errors and latency,
the service killed under load and restarted."""

from __future__ import annotations

import asyncio
import time

import asyncpg

from harness.checkers import ALLOW_5XX
from harness.runner import Run
from harness.scenario import creator, fan, scenario
from harness.waiting import wait_until_async

HOLDING_SQL = """
SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()
  AND (state LIKE 'idle in transaction%' OR backend_xid IS NOT NULL)
"""


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
        run.note(f"terminated {killed} service connections")
    await asyncio.gather(*tips)
    after = await run.tip("fan", "star", 5)
    run.expect(
        after.status == 200, "recovers-after-kill", f"a tip after the kill answered {after.status}"
    )


@scenario("faults", users=[fan("fan")], checkers=ALLOW_5XX)
async def stripe_errors(run: Run) -> None:
    """Stripe answers 500/503 beyond the SDK's retries: the purchase fails cleanly
    (502/503, no charge), and a retry with the same key later charges exactly once."""
    run.stripe.add_fault("error", status=503, times=8)
    first = await run.purchase("fan", 100, key="outage-1")
    run.expect(
        first.status in (502, 503),
        "outage-is-502-or-503",
        f"a purchase during a Stripe outage answered {first.status}",
    )
    run.stripe.clear_faults()
    second = await run.purchase("fan", 100, key="outage-1")
    run.expect(second.status == 200, "retry-after-outage", f"answered {second.status}")


@scenario("faults", users=[fan("fan", 100), *(fan(f"buyer{i}") for i in range(10))])
async def slow_stripe_concurrent_purchases(run: Run) -> None:
    """Stripe takes a second per call while ten purchases run: no database transaction
    stays open while the service waits (catches connection-held-across-stripe), and
    GET /balance stays fast (its p99 is reported)."""
    run.stripe.add_fault("latency", latency_s=1.0, path="^/v1/payment_intents$")
    purchases = [run.spawn(run.purchase(f"buyer{i}", 100)) for i in range(10)]

    async def waiting_on_stripe() -> bool:
        requests = (await asyncio.to_thread(run.stripe.state))["requests"]
        return any("status" not in r for r in requests)

    await wait_until_async(waiting_on_stripe, within=10, what="a purchase waits on Stripe")
    conn = await asyncpg.connect(run.target.database_url)
    try:
        holding = int(await conn.fetchval(HOLDING_SQL))
    finally:
        await conn.close()
    run.expect(
        holding == 0,
        "no-transaction-across-stripe",
        f"{holding} database sessions held a transaction while Stripe was answering",
    )
    latencies = []
    for _ in range(20):
        started = time.perf_counter()
        await run.balance("fan")
        latencies.append(time.perf_counter() - started)
    p99 = sorted(latencies)[-1]
    run.note(f"GET /balance p99 {p99 * 1000:.1f} ms while Stripe is slow")
    run.expect(p99 < 1.0, "balance-stays-fast", f"GET /balance p99 {p99:.2f} s")
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
        run.note("skipped: the target was not started by tokenproof")
        return
    ops = [run.spawn(run.tip("fan", "star", 1)) for _ in range(30)]
    ops += [run.spawn(run.purchase("buyer", 100)) for _ in range(3)]

    async def some_answered() -> bool:
        return any(op.type != "invoke" for op in run.history.ops)

    # Kill mid-stream: once the first answers are back, the rest are in flight.
    await wait_until_async(some_answered, within=30, what="first answers before the kill")
    process.kill()
    await asyncio.gather(*ops)
    # Started from this (the main) thread on purpose: see ChildProcess.start.
    process.start()
    after = await run.tip("fan", "star", 1)
    run.expect(after.status == 200, "works-after-restart", f"answered {after.status}")

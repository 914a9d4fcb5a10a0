"""The contention gate on a real PostgreSQL: it holds writers until they queue on
its lock, counts those that answered without reaching it, and always lets go."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from harness.provisioning.databases import FreshDatabase
from harness.run.gates import ContentionGate, GateNotFilled


async def _writer(dsn: str) -> None:
    """A transaction that needs the ledger table, as every transfer does."""
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await conn.execute("LOCK TABLE token_transactions IN ROW EXCLUSIVE MODE")
    finally:
        await conn.close()


def test_gate_holds_writers_then_releases_them(fresh_database: FreshDatabase) -> None:
    async def scenario() -> int:
        async with ContentionGate(fresh_database.dsn, 2, within=30) as gate:
            writers = [asyncio.ensure_future(_writer(fresh_database.dsn))]
            writers.append(asyncio.ensure_future(_writer(fresh_database.dsn)))
            waiting = await gate.wait_for_waiters()
            assert not any(w.done() for w in writers)  # held while the gate is closed
        await asyncio.wait_for(asyncio.gather(*writers), timeout=30)
        return waiting

    assert asyncio.run(scenario()) == 2


def test_answered_requests_count_as_arrived(fresh_database: FreshDatabase) -> None:
    async def scenario() -> int:
        async with ContentionGate(fresh_database.dsn, 2, within=30) as gate:
            writer = asyncio.ensure_future(_writer(fresh_database.dsn))
            # The second request "answered" (a refusal) before reaching the lock.
            waiting = await gate.wait_for_waiters(finished=lambda: 1)
        await asyncio.wait_for(writer, timeout=30)
        return waiting

    assert asyncio.run(scenario()) == 1


def test_a_gate_that_never_fills_says_so_and_lets_go(fresh_database: FreshDatabase) -> None:
    async def scenario() -> None:
        async with ContentionGate(fresh_database.dsn, 2, within=0.5) as gate:
            writer = asyncio.ensure_future(_writer(fresh_database.dsn))
            with pytest.raises(GateNotFilled, match="only 1 of 2"):
                await gate.wait_for_waiters()
        await asyncio.wait_for(writer, timeout=30)  # released on the way out

    asyncio.run(scenario())


def test_a_pool_capped_race_releases_at_the_plateau_and_says_so(
    fresh_database: FreshDatabase,
) -> None:
    """Three writers reach the lock, the other seven never can (a pool of three):
    the gate releases once no new waiter comes, and notes what it held."""
    notes: list[str] = []

    async def scenario() -> int:
        async with ContentionGate(
            fresh_database.dsn, 10, within=30, plateau_s=0.3, on_partial=notes.append
        ) as gate:
            writers = [asyncio.ensure_future(_writer(fresh_database.dsn)) for _ in range(3)]
            waiting = await gate.wait_for_waiters()
            assert not any(w.done() for w in writers)
        await asyncio.wait_for(asyncio.gather(*writers), timeout=30)
        return waiting

    assert asyncio.run(scenario()) == 3
    assert notes == ["the gate held 3 of 10 requests (the service's pool?)"]

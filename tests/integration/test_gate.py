"""The contention gate on a real PostgreSQL: it holds writers until they queue on
its lock, counts those that answered without reaching it, and always lets go."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

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


def _through_gate(
    dsn: str,
    expect: int,
    writers: int,
    *,
    finished: Callable[[], int] = lambda: 0,
    **gate: Any,
) -> tuple[int, bool]:
    """`writers` ledger transactions sent at a gate that expects `expect`: how
    many it counted as arrived, and whether any writer got past it before it let
    go. Every writer must then finish: the gate lets go on the way out, filled
    or not."""

    async def scenario() -> tuple[int, bool]:
        tasks: list[asyncio.Future[None]] = []
        try:
            async with ContentionGate(dsn, expect, **gate) as opened:
                tasks = [asyncio.ensure_future(_writer(dsn)) for _ in range(writers)]
                waiting = await opened.wait_for_waiters(finished=finished)
                return waiting, any(t.done() for t in tasks)
        finally:
            await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)

    return asyncio.run(scenario())


def test_gate_holds_writers_then_releases_them(fresh_database: FreshDatabase) -> None:
    assert _through_gate(fresh_database.dsn, 2, 2, within=30) == (2, False)


def test_answered_requests_count_as_arrived(fresh_database: FreshDatabase) -> None:
    # The second request "answered" (a refusal) before reaching the lock.
    waiting = _through_gate(fresh_database.dsn, 2, 1, within=30, finished=lambda: 1)
    assert waiting == (1, False)


def test_a_gate_that_never_fills_says_so_and_lets_go(fresh_database: FreshDatabase) -> None:
    with pytest.raises(GateNotFilled, match="only 1 of 2"):
        _through_gate(fresh_database.dsn, 2, 1, within=0.5)


def test_a_pool_capped_race_releases_at_the_plateau_and_says_so(
    fresh_database: FreshDatabase,
) -> None:
    """Three writers reach the lock, the other seven never can (a pool of three):
    the gate releases once no new waiter comes, and notes what it held."""
    notes: list[str] = []
    waiting = _through_gate(
        fresh_database.dsn, 10, 3, within=30, plateau_s=0.3, on_partial=notes.append
    )
    assert waiting == (3, False)
    assert notes == ["the gate held 3 of 10 requests (the service's pool?)"]


def test_one_request_at_a_time_is_the_services_way_and_said_so(
    fresh_database: FreshDatabase,
) -> None:
    """One writer reaches the lock and no other comes (a service that lets one
    request at a time reach its ledger): after the serial plateau the gate lets
    go, and says no race was possible at the database."""
    notes: list[str] = []
    waiting = _through_gate(
        fresh_database.dsn, 5, 1, within=30, serial_plateau_s=0.3, on_partial=notes.append
    )
    assert waiting == (1, False)
    assert len(notes) == 1 and "one at a time" in notes[0]


def test_no_waiter_at_all_points_at_the_lock(fresh_database: FreshDatabase) -> None:
    with pytest.raises(GateNotFilled, match=r"none of 2 .* lock-ledger"):
        _through_gate(fresh_database.dsn, 2, 0, within=0.5)

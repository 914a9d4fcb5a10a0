"""Whether a service stalls while its purchases wait on a slow Stripe, and what
its database sessions were doing meanwhile (the evidence)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

STALL_S = 1.0  # a balance read slower than this, while Stripe is slow, is a stall
STALL_ROUNDS = 10
HELD_S = 0.5  # a transaction idle this long is waiting on something outside the database
SAMPLE_EVERY_S = 0.1

SESSIONS_SQL = """
SELECT state, wait_event_type, wait_event, left(query, 200) AS query,
       round(extract(epoch FROM now() - xact_start)::numeric, 3) AS transaction_s
FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
ORDER BY xact_start NULLS LAST
"""


async def database_sessions(dsn: str) -> list[dict[str, Any]]:
    """What the service's database sessions are doing now (evidence for a stall:
    idle in transaction, waiting for a lock)."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(SESSIONS_SQL)
    finally:
        await conn.close()
    return [{k: (str(v) if v is not None else None) for k, v in r.items()} for r in rows]


@dataclass(frozen=True)
class Stall:
    worst_s: float  # the slowest round of reads
    sessions: list[dict[str, Any]] = field(default_factory=list)  # sampled in that round

    @property
    def holding(self) -> list[dict[str, Any]]:
        """Sessions idle inside a transaction for a while: waiting on something
        outside the database (Stripe) with a pooled connection and its locks held."""
        return [
            s
            for s in self.sessions
            if str(s.get("state", "")).startswith("idle in transaction")
            and float(s.get("transaction_s") or 0) >= HELD_S
        ]

    @property
    def stalled(self) -> bool:
        """Reads this slow with transactions held open are the database pool starved
        by them. Slow reads with none held are the server's own request capacity
        (threads, workers), which the contract does not size: not a stall."""
        return self.worst_s >= STALL_S and bool(self.holding)


async def probe_stall(
    dsn: str, reads: Callable[[], Awaitable[object]], *, rounds: int = STALL_ROUNDS
) -> Stall:
    """Run `reads` (several balance reads at once, each on a new connection, so a
    server with several workers hands them to different ones) `rounds` times while
    sampling the service's sessions; stop at the first round slower than STALL_S."""
    worst = Stall(0.0)
    for _ in range(rounds):
        stop = asyncio.Event()
        sampler = asyncio.ensure_future(_sample_holding(dsn, stop))
        started = time.perf_counter()
        try:
            await reads()
        finally:
            # Asked to stop, not cancelled: a connection cancelled half-way leaves
            # asyncpg a future nobody reads.
            stop.set()
            held = (await asyncio.gather(sampler, return_exceptions=True))[0]
        took = time.perf_counter() - started
        if took > worst.worst_s:
            worst = Stall(took, held if isinstance(held, list) else [])
        if took >= STALL_S:
            break
    return worst


async def _sample_holding(dsn: str, stop: asyncio.Event) -> list[dict[str, Any]]:
    """The sample with the most sessions holding a transaction, until `stop` (a
    held pool shows while requests wait, not after)."""
    best: list[dict[str, Any]] = []
    conn = await asyncpg.connect(dsn)
    try:
        while not stop.is_set():
            sample = [
                {k: (str(v) if v is not None else None) for k, v in r.items()}
                for r in await conn.fetch(SESSIONS_SQL)
            ]
            if len(Stall(0, sample).holding) > len(Stall(0, best).holding):
                best = sample
            # The sampling period; `stop` ends it early.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SAMPLE_EVERY_S)
    finally:
        await conn.close()
    return best

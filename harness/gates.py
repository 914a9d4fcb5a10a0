"""The contention gate: force a race instead of hoping for one.

A separate connection takes a lock the service needs *after* it has read a
balance (by default `LOCK TABLE token_transactions IN SHARE MODE`: every
transfer writes ledger rows). Requests fired meanwhile pile up inside their
transactions; the gate watches `pg_stat_activity` until N backends are
provably waiting on a lock, then releases them all at once. A read-check-write
service then loses updates every time; a correct one serialises.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any

import asyncpg

from harness.errors import TokenproofError
from harness.waiting import DeadlineExceeded, wait_until_async

DEFAULT_LOCK = "LOCK TABLE token_transactions IN SHARE MODE"
WAITING_SQL = """
SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'
"""


class GateNotFilled(TokenproofError):
    """Fewer requests than expected reached the database while the gate was closed."""


class ContentionGate:
    def __init__(
        self, dsn: str, expect: int, *, lock_sql: str = DEFAULT_LOCK, within: float = 30.0
    ) -> None:
        if expect < 1:
            raise ValueError("expect at least one waiting request")
        self.dsn = dsn
        self.expect = expect
        self.lock_sql = lock_sql
        self.within = within
        self.waiting = 0
        self._conn: Any = None
        self._watch: Any = None

    async def __aenter__(self) -> ContentionGate:
        self._conn = await asyncpg.connect(self.dsn)
        self._watch = await asyncpg.connect(self.dsn)
        await self._conn.execute("BEGIN")
        await self._conn.execute(self.lock_sql)
        return self

    async def wait_for_waiters(self, *, finished: Callable[[], int] = lambda: 0) -> int:
        """Until `expect` requests wait on a lock. `finished` counts requests that
        have already answered without reaching the lock (a refusal, say): they
        will never wait, so they count as arrived."""

        async def filled() -> bool:
            self.waiting = int(await self._watch.fetchval(WAITING_SQL))
            return self.waiting + finished() >= self.expect

        try:
            await wait_until_async(filled, within=self.within, what="requests queue at the gate")
        except DeadlineExceeded as exc:
            raise GateNotFilled(
                f"only {self.waiting} of {self.expect} requests were waiting on a lock after "
                f"{self.within:g} s; the service may take the lock elsewhere, or its pool "
                "may hold fewer connections than requests fired"
            ) from exc
        return self.waiting

    async def release(self) -> None:
        # Always runs (also on error) so the service is never left blocked.
        conn, self._conn = self._conn, None
        watch, self._watch = self._watch, None
        if conn is not None:
            try:
                await conn.execute("ROLLBACK")
            finally:
                await conn.close()
        if watch is not None:
            await watch.close()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.release()

"""The contention gate: force a race instead of hoping for one.

A separate connection takes a lock the service needs *after* it has read a
balance (by default `LOCK TABLE token_transactions IN SHARE MODE`: every
transfer writes ledger rows). Requests fired meanwhile pile up inside their
transactions; the gate watches `pg_stat_activity` until N backends are
provably waiting on a lock, then releases them all at once. A read-check-write
service then loses updates every time; a correct one serialises.

A service's pool caps how many requests can reach the database at once (10 by
default in node-postgres and many Python pools), so the gate also releases when
the number of waiters stops growing: a race held with at least two waiters is a
race, and the scenario notes how many it held. A service may also let only one
request at a time reach its ledger (one thread, a pool of one connection, a
queue that serialises transfers): the contract does not size its concurrency.
One waiter and no other for a long while is that; no race is possible at the
database, the requests run one after another, and the note says so.
"""

from __future__ import annotations

import time
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


MIN_RACE = 2  # waiters that make a race
PLATEAU_S = 0.75  # no new waiter for this long: the service lets no more in
# One waiter and no other for this long: the service lets one in at a time. Long,
# so that a loaded machine's slow second arrival is not taken for it.
SERIAL_PLATEAU_S = 5.0


class ContentionGate:
    def __init__(
        self,
        dsn: str,
        expect: int,
        *,
        lock_sql: str = DEFAULT_LOCK,  # a dialect's: Dialect.lock("ledger")
        within: float = 30.0,
        plateau_s: float = PLATEAU_S,
        serial_plateau_s: float = SERIAL_PLATEAU_S,
        on_partial: Callable[[str], None] = lambda _: None,
    ) -> None:
        if expect < 1:
            raise ValueError("expect at least one waiting request")
        self.dsn = dsn
        self.expect = expect
        self.lock_sql = lock_sql
        self.within = within
        self.plateau_s = plateau_s
        self.serial_plateau_s = serial_plateau_s
        self.on_partial = on_partial
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
        """Until `expect` requests wait on a lock, or at least two do and no more
        have arrived for `plateau_s` (the service's pool is full), or one does and
        no other has for `serial_plateau_s` (one at a time). `finished`
        counts requests that answered without reaching the lock (a refusal, say):
        they will never wait, so they count as arrived."""
        best, grew_at = -1, time.monotonic()

        async def filled() -> bool:
            nonlocal best, grew_at
            arrived = await self.waiters() + finished()
            now = time.monotonic()
            if arrived > best:
                best, grew_at = arrived, now
            if arrived >= self.expect:
                return True
            still = now - grew_at
            if self.waiting >= MIN_RACE:
                return still >= self.plateau_s
            return self.waiting == 1 and still >= self.serial_plateau_s

        try:
            await wait_until_async(filled, within=self.within, what="requests queue at the gate")
        except DeadlineExceeded as exc:
            if self.waiting == 0:
                raise GateNotFilled(
                    f"none of {self.expect} requests was waiting on a lock after "
                    f"{self.within:g} s; the service may not take row or table locks where "
                    "tokenproof expects them (a dialect's lock-ledger?)"
                ) from exc
            raise GateNotFilled(
                f"only {self.waiting} of {self.expect} requests were waiting on a lock after "
                f"{self.within:g} s, and more were still arriving"
            ) from exc
        if self.waiting == 1 and finished() + 1 < self.expect:
            self.on_partial(
                f"the gate held 1 of {self.expect} requests: the service lets one at a time "
                "reach its ledger, so no race was possible at the database; they ran in turn"
            )
        elif self.waiting + finished() < self.expect:
            self.on_partial(
                f"the gate held {self.waiting} of {self.expect} requests (the service's pool?)"
            )
        return self.waiting

    async def waiters(self) -> int:
        """How many of the service's sessions wait on a lock now."""
        self.waiting = int(await self._watch.fetchval(WAITING_SQL))
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

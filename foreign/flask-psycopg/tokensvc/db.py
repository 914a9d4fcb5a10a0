"""PostgreSQL access: migrations, the connection pool, and retrying transactions."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

log = logging.getLogger("tokensvc.db")

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
_MIGRATION_LOCK = 7_312_604_551  # pg_advisory_lock key: one migrator at a time

T = TypeVar("T")


def migrate(database_url: str) -> None:
    """Apply every migrations/*.sql in order. They are idempotent, and an
    advisory lock keeps two starting processes from racing each other."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
        try:
            for path in sorted(MIGRATIONS.glob("*.sql")):
                with conn.transaction():
                    conn.execute(path.read_text())
                log.info("migration applied: %s", path.name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))


_pool: ConnectionPool | None = None
_pool_lock = threading.Lock()


def init_pool(database_url: str, max_size: int) -> ConnectionPool:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ConnectionPool(
                database_url,
                min_size=max_size,  # fixed-size pool, opened at worker start
                max_size=max_size,
                timeout=15,
                # Autocommit connections: every multi-statement unit of work
                # opens its own `with conn.transaction():` block.
                kwargs={"autocommit": True, "row_factory": dict_row},
                check=ConnectionPool.check_connection,
                name="tokensvc",
                open=True,
            )
    return _pool


def pool() -> ConnectionPool:
    if _pool is None:
        raise RuntimeError("connection pool not initialised")
    return _pool


def close_pool() -> None:
    global _pool
    with _pool_lock:
        if _pool is not None:
            _pool.close()
            _pool = None


RETRYABLE = (pg_errors.DeadlockDetected, pg_errors.SerializationFailure, pg_errors.LockNotAvailable)


def retrying(work: Callable[[], T], *, attempts: int = 8, what: str = "transaction") -> T:
    """Run `work` (which opens its own connection and transaction) again when
    PostgreSQL aborted it for a deadlock or a serialization failure."""
    for attempt in range(1, attempts + 1):
        try:
            return work()
        except RETRYABLE as exc:
            if attempt == attempts:
                raise
            delay = min(0.5, 0.01 * 2**attempt) * random.uniform(0.5, 1.5)
            log.warning("%s aborted (%s), retry %d in %.3fs", what, type(exc).__name__, attempt, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")

"""A PostgreSQL server someone else runs, named by a URL.

We only create databases with our own prefix on it and drop only those; we
never alter anything we did not create.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from harness.provisioning.errors import (
    MissingCreatedbPrivilege,
    ProvisioningError,
    ServerUnreachable,
)
from harness.provisioning.lifecycle import StopsOnExit

CONNECT_TIMEOUT_S = 5.0


def replace_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


def redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


class ExistingPostgres(StopsOnExit):
    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("postgres", "postgresql") or not parts.hostname:
            raise ProvisioningError(
                f"{redact(url)!r} is not a PostgreSQL URL; "
                "write it as postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
            )
        self._url = url

    @property
    def admin_dsn(self) -> str:
        return self._url

    def dsn(self, database: str) -> str:
        return replace_database(self._url, database)

    def server_log(self) -> Path | None:
        return None  # the user's server: its log is not ours to read

    def describe(self) -> str:
        return f"existing PostgreSQL at {redact(self._url)}"

    def start(self) -> None:
        asyncio.run(self._check())

    def stop(self) -> None:
        """Nothing to stop: the server is not ours."""

    def __enter__(self) -> ExistingPostgres:
        self.start()
        return self

    async def _check(self) -> None:
        try:
            conn = await asyncpg.connect(self._url, timeout=CONNECT_TIMEOUT_S)
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            raise ServerUnreachable(
                f"cannot connect to {redact(self._url)}: {exc.__class__.__name__}: {exc}; "
                "check that the server runs and the URL (host, port, user, password) is right"
            ) from exc
        try:
            may_create = await conn.fetchval(
                "SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user"
            )
        finally:
            await conn.close()
        if not may_create:
            raise MissingCreatedbPrivilege(
                f"the role in {redact(self._url)} may not create databases; tokenproof needs "
                "a fresh database per scenario: `ALTER ROLE <name> CREATEDB` or use another role"
            )

"""Fresh databases with a schema loaded, one per test or scenario.

The schema is applied once to a template database; every fresh database is a
`CREATE DATABASE ... TEMPLATE` copy of it, which takes milliseconds. Names
carry our prefix, the xdist worker id and a run id, so parallel runs on one
server never collide, and we drop exactly the databases we created.
"""

from __future__ import annotations

import itertools
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import asyncpg

from harness.provisioning.errors import ProvisioningError, SchemaLoadFailed

PREFIX = "tokenproof_"


class Cluster(Protocol):
    @property
    def admin_dsn(self) -> str: ...

    def dsn(self, database: str) -> str: ...

    def describe(self) -> str: ...

    def server_log(self) -> Path | None:
        """The server's log, when tokenproof started the server (its error
        messages are known internal text); None for a server of the user's."""
        ...


@dataclass(frozen=True)
class FreshDatabase:
    name: str
    dsn: str


def worker_id() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def read_schema(files: Sequence[Path]) -> str:
    parts: list[str] = []
    for path in files:
        try:
            parts.append(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise SchemaLoadFailed(
                f"cannot read schema file {path}: {exc}; pass a readable UTF-8 SQL file"
            ) from exc
    return "\n;\n".join(parts)


class DatabaseFactory:
    """Create with `await DatabaseFactory.open(cluster, schema_files)`."""

    def __init__(self, cluster: Cluster, schema_sql: str, *, run_id: str | None = None) -> None:
        self._cluster = cluster
        self._schema_sql = schema_sql
        self._base = f"{PREFIX}{worker_id()}_{run_id or secrets.token_hex(3)}"
        self._template = f"{self._base}_tpl"
        self._counter = itertools.count(1)
        self._created: list[str] = []
        self._template_ready = False

    @classmethod
    async def open(
        cls, cluster: Cluster, schema_files: Sequence[Path], *, run_id: str | None = None
    ) -> DatabaseFactory:
        factory = cls(cluster, read_schema(schema_files), run_id=run_id)
        await factory._build_template()
        return factory

    @property
    def server_log(self) -> Path | None:
        return self._cluster.server_log()

    @property
    def created(self) -> tuple[str, ...]:
        return tuple(self._created)

    async def create(self) -> FreshDatabase:
        if not self._template_ready:
            raise ProvisioningError("use `await DatabaseFactory.open(...)` to make a factory")
        name = f"{self._base}_{next(self._counter)}"
        conn = await asyncpg.connect(self._cluster.admin_dsn)
        try:
            await conn.execute(
                f"CREATE DATABASE {_quote_ident(name)} TEMPLATE {_quote_ident(self._template)}"
            )
        finally:
            await conn.close()
        self._created.append(name)
        return FreshDatabase(name=name, dsn=self._cluster.dsn(name))

    async def drop(self, name: str) -> None:
        if name not in self._created:
            raise ProvisioningError(
                f"{name!r} was not created by this factory; tokenproof drops only its own databases"
            )
        conn = await asyncpg.connect(self._cluster.admin_dsn)
        try:
            # FORCE: a service under test may still hold connections to it.
            await conn.execute(f"DROP DATABASE IF EXISTS {_quote_ident(name)} WITH (FORCE)")
        finally:
            await conn.close()
        self._created.remove(name)

    async def close(self) -> None:
        """Drop every database this factory made, the template last."""
        for name in reversed(self._created):
            await self.drop(name)

    async def _build_template(self) -> None:
        conn = await asyncpg.connect(self._cluster.admin_dsn)
        try:
            await conn.execute(f"CREATE DATABASE {_quote_ident(self._template)}")
        finally:
            await conn.close()
        self._created.insert(0, self._template)
        if not self._schema_sql.strip():
            # No schema: the service migrates its own database at start-up.
            self._template_ready = True
            return
        conn = await asyncpg.connect(self._cluster.dsn(self._template))
        try:
            await conn.execute(self._schema_sql)
        except asyncpg.PostgresError as exc:
            await conn.close()
            # Leave nothing behind: the half-loaded template is useless.
            await self.drop(self._template)
            raise SchemaLoadFailed(
                f"the schema failed to load: {exc.__class__.__name__}: {exc}; "
                "fix the SQL (it is applied to an empty database)"
            ) from exc
        finally:
            await conn.close()
        self._template_ready = True

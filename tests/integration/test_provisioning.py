"""Provisioning against real PostgreSQL servers: lifecycle, isolation, errors."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import asyncpg
import pytest

from harness.provisioning import (
    DatabaseFactory,
    ExistingPostgres,
    FreshDatabase,
    LocalPostgres,
    MissingCreatedbPrivilege,
    PortInUse,
    ProvisioningError,
    SchemaLoadFailed,
    ServerStartFailed,
    ServerUnreachable,
    embedded_binaries,
    system_binaries,
)
from harness.provisioning.local import free_port
from harness.waiting import process_alive
from tests.support import fetch

SYSTEM_BIN = Path("/usr/lib/postgresql/15/bin")


def test_fresh_database_has_the_reference_schema(fresh_database: FreshDatabase) -> None:
    rows = asyncio.run(
        fetch(
            fresh_database.dsn,
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'",
        )
    )
    tables = {r["table_name"] for r in rows}
    assert {"users", "token_balances", "token_transactions", "creator_earnings"} <= tables


def test_fresh_databases_are_isolated(
    reference_database_factory: DatabaseFactory,
) -> None:
    async def scenario() -> None:
        first = await reference_database_factory.create()
        second = await reference_database_factory.create()
        try:
            assert first.name != second.name
            conn = await asyncpg.connect(first.dsn)
            try:
                await conn.execute("INSERT INTO users (supabase_id) VALUES ('only-in-first')")
            finally:
                await conn.close()
            rows = await fetch(second.dsn, "SELECT count(*) AS n FROM users")
            assert rows[0]["n"] == 0
        finally:
            await reference_database_factory.drop(first.name)
            await reference_database_factory.drop(second.name)

    asyncio.run(scenario())


def test_factory_drops_only_its_own_databases(
    postgres_cluster: LocalPostgres | ExistingPostgres,
    reference_database_factory: DatabaseFactory,
) -> None:
    async def scenario() -> None:
        conn = await asyncpg.connect(postgres_cluster.admin_dsn)
        try:
            await conn.execute('CREATE DATABASE "not_ours_x"')
            with pytest.raises(ProvisioningError, match="drops only its own"):
                await reference_database_factory.drop("not_ours_x")
            assert await conn.fetchval(
                "SELECT count(*) FROM pg_database WHERE datname = 'not_ours_x'"
            )
        finally:
            await conn.execute('DROP DATABASE IF EXISTS "not_ours_x"')
            await conn.close()

    asyncio.run(scenario())


def test_database_names_carry_worker_and_run(
    reference_database_factory: DatabaseFactory, fresh_database: FreshDatabase
) -> None:
    import os

    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    assert fresh_database.name.startswith(f"tokenproof_{worker}_")


def test_factory_close_leaves_nothing(postgres_cluster: LocalPostgres | ExistingPostgres) -> None:
    import reference_impl

    async def scenario() -> list[str]:
        factory = await DatabaseFactory.open(postgres_cluster, reference_impl.schema_files())
        made = [factory.created[0], (await factory.create()).name]
        await factory.close()
        rows = await fetch(postgres_cluster.admin_dsn, "SELECT datname FROM pg_database")
        return [name for name in made if name in {r["datname"] for r in rows}]

    assert asyncio.run(scenario()) == []


def test_broken_schema_raises_and_leaves_no_template(
    postgres_cluster: LocalPostgres | ExistingPostgres, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.sql"
    bad.write_text("CREATE TABLE t (id int);\nCREATE TABLE oops (;\n")

    async def scenario() -> None:
        before = {
            r["datname"]
            for r in await fetch(postgres_cluster.admin_dsn, "SELECT datname FROM pg_database")
        }
        with pytest.raises(SchemaLoadFailed, match="syntax"):
            await DatabaseFactory.open(postgres_cluster, [bad])
        after = {
            r["datname"]
            for r in await fetch(postgres_cluster.admin_dsn, "SELECT datname FROM pg_database")
        }
        assert after == before

    asyncio.run(scenario())


def test_start_and_stop_leave_no_process_or_folder() -> None:
    server = LocalPostgres(embedded_binaries())
    server.start()
    pid, workdir = server.pid, server.workdir
    assert pid is not None and workdir is not None and workdir.exists()
    rows = asyncio.run(fetch(server.admin_dsn, "SELECT inet_server_addr()::text AS addr"))
    assert rows[0]["addr"].startswith("127.0.0.1")
    server.stop()
    server.stop()  # idempotent
    assert not process_alive(pid)
    assert not workdir.exists()


@pytest.mark.skipif(not SYSTEM_BIN.is_dir(), reason="no system PostgreSQL 15 on this machine")
def test_system_binaries_serve() -> None:
    with LocalPostgres(system_binaries(SYSTEM_BIN)) as server:
        version = asyncio.run(fetch(server.admin_dsn, "SHOW server_version"))[0][0]
    assert version.startswith("15")


def test_taken_port_is_a_clear_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(PortInUse, match=str(port)):
            LocalPostgres(embedded_binaries(), port=port).start()


def test_failed_start_shows_log_tail_and_cleans_up() -> None:
    server = LocalPostgres(embedded_binaries(), settings={"shared_buffers": "nonsense"})
    with pytest.raises(ServerStartFailed) as info:
        server.start()
    assert "shared_buffers" in info.value.log_tail
    assert "shared_buffers" in str(info.value)
    assert server.workdir is None and server.pid is None


def test_unreachable_url_is_a_clear_error() -> None:
    url = f"postgresql://nobody:pw@127.0.0.1:{free_port()}/postgres"
    with pytest.raises(ServerUnreachable, match="cannot connect") as info:
        ExistingPostgres(url).start()
    assert "pw@" not in str(info.value)  # the password is redacted


def test_role_without_createdb_is_refused(
    postgres_cluster: LocalPostgres | ExistingPostgres,
) -> None:
    if not isinstance(postgres_cluster, LocalPostgres):
        pytest.skip("needs a server this test may add roles to")

    async def make_role() -> None:
        conn = await asyncpg.connect(postgres_cluster.admin_dsn)
        try:
            await conn.execute("DROP ROLE IF EXISTS tokenproof_nocreatedb")
            await conn.execute("CREATE ROLE tokenproof_nocreatedb LOGIN PASSWORD 'pw' NOCREATEDB")
        finally:
            await conn.close()

    asyncio.run(make_role())
    url = f"postgresql://tokenproof_nocreatedb:pw@127.0.0.1:{postgres_cluster.port}/postgres"
    with pytest.raises(MissingCreatedbPrivilege, match="CREATEDB"):
        ExistingPostgres(url).start()


def test_existing_server_mode_creates_and_drops_prefixed_databases(
    postgres_cluster: LocalPostgres | ExistingPostgres,
) -> None:
    import reference_impl

    existing = ExistingPostgres(postgres_cluster.admin_dsn)
    existing.start()

    async def scenario() -> None:
        factory = await DatabaseFactory.open(existing, reference_impl.schema_files())
        db = await factory.create()
        assert db.name.startswith("tokenproof_")
        await factory.close()
        names = {
            r["datname"]
            for r in await fetch(postgres_cluster.admin_dsn, "SELECT datname FROM pg_database")
        }
        assert db.name not in names
        assert "postgres" in names

    asyncio.run(scenario())


def test_a_closed_process_is_never_started_again(tmp_path: Path) -> None:
    """A supervisor thread's restart that races the cleanup on the way out (SIGTERM
    during a run) must not leave a new process behind."""
    import sys
    import threading

    from harness.provisioning.processes import ChildProcess, ProcessClosed

    child = ChildProcess(
        "sleeper", [sys.executable, "-c", "import time; time.sleep(60)"], log_path=tmp_path / "log"
    )
    child.start(lambda: True)
    pid = child.pid
    assert pid is not None and process_alive(pid)
    child.close()
    assert not process_alive(pid) and child.pid is None
    failures: list[BaseException] = []

    def restart() -> None:
        try:
            child.start(lambda: True)
        except ProcessClosed as exc:
            failures.append(exc)

    thread = threading.Thread(target=restart)
    thread.start()
    thread.join(timeout=30)
    assert len(failures) == 1 and child.pid is None

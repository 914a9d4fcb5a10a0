"""After a tokenproof run the machine is as it was: no process, no listener, no
temp folder, nothing new in the working directory but the reports asked for.
And while it runs, nothing it starts listens beyond loopback.

Each test gives the runs a temp folder of their own (TMPDIR) and a cache of
their own, so what is left there is provably these runs' doing, even on a
machine where other tokenproof runs are live.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.provisioning.local import free_port
from harness.provisioning.processes import family, is_running
from harness.waiting import wait_until
from tests.leftovers import (
    Listener,
    descendants,
    entries,
    listeners,
    processes_with_env,
    server_reachable_tmpdir,
)

pytestmark = pytest.mark.e2e

CLI = [sys.executable, "-m", "harness"]


@dataclass(frozen=True)
class Machine:
    work: Path  # the user's working directory (a service's folder)
    tmp: Path  # TMPDIR of the runs
    cache: Path  # TOKENPROOF_CACHE_DIR of the runs
    env: dict[str, str]

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, *args],
            cwd=self.work,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def left_in_tmp(self) -> set[str]:
        return entries(self.tmp, "tokenproof-")

    def processes(self) -> set[int]:
        return processes_with_env("TMPDIR", str(self.tmp))


@pytest.fixture
def machine(tmp_path: Path) -> Iterator[Machine]:
    work = tmp_path / "service"
    work.mkdir()
    with server_reachable_tmpdir() as tmp:
        env = {k: v for k, v in os.environ.items() if k != "TOKENPROOF_DATABASE_URL"}
        env.pop("HYPOTHESIS_STORAGE_DIRECTORY", None)
        # The cache too must be one the server's user can enter (it holds the
        # PostgreSQL binaries copied for it when root's checkout is private):
        # pytest's own temp folders are mode 700.
        cache = tmp / "cache"
        env |= {"TMPDIR": str(tmp), "TOKENPROOF_CACHE_DIR": str(cache)}
        yield Machine(work, tmp, cache, env)


def test_verify_and_load_runs_leave_only_the_reports_asked_for(machine: Machine) -> None:
    # Passing, with Hypothesis-generated bodies (Hypothesis used to leave
    # .hypothesis/ in the working directory).
    passed = machine.run("verify", "--scenario", "inputs/tip-bodies", "--report", "pass-report")
    assert passed.returncode == 0, passed.stderr[-3000:]
    failed = machine.run(
        "verify",
        "--target",
        "reference:lost-update",
        "--scenario",
        "race/drain-one-fan-gated",
        "--report",
        "fail-report",
    )
    assert failed.returncode == 1, failed.stderr[-3000:]
    load = machine.run("load", "--users", "4", "--spawn-rate", "4", "--duration", "2")
    assert load.returncode == 0, load.stderr[-3000:]
    # No --report: the load reports go to the cache, and the run says where.
    written = load.stderr.replace("\n", "").split("reports written to ")[-1].strip()
    assert Path(written).is_relative_to(machine.cache)
    assert (Path(written) / "load.json").is_file()

    assert entries(machine.work) == {"pass-report", "fail-report"}
    assert (machine.work / "pass-report" / "report.json").is_file()
    assert (machine.cache / "hypothesis").is_dir()
    assert machine.left_in_tmp() == set()
    assert machine.processes() == set()


def _listening(cli: int) -> list[Listener]:
    return listeners(descendants(cli))


def test_listeners_bind_loopback_and_a_killed_run_is_cleaned_by_the_next(
    machine: Machine,
) -> None:
    web_port = free_port()
    log = machine.work.parent / "load.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [
                *CLI,
                "load",
                "--web",
                "--web-port",
                str(web_port),
                "--processes",
                "2",
                "--users",
                "2",
                "--report",
                "load-report",
            ],
            cwd=machine.work,
            env=machine.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        # PostgreSQL, the emulator, the reference service and the Locust master
        # (web UI and the port its workers connect to) all listen at once.
        def all_up() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"load exited {proc.returncode}: {log.read_text()[-3000:]}")
            found = _listening(proc.pid)
            return web_port in {s.port for s in found} and len({s.pid for s in found}) >= 4

        wait_until(all_up, within=120, what="every listener of the load run up")
        found = _listening(proc.pid)
        assert [s for s in found if not s.loopback] == [], found
        assert len({s.port for s in found}) >= 5  # postgres, emulator, service, web, master
        run = family(proc.pid)
        ports = {s.port for s in found}

        proc.send_signal(signal.SIGKILL)  # no cleanup of its own runs
        proc.wait(timeout=30)
        wait_until(
            lambda: not [p for p in run if is_running(p)],
            within=60,
            what="every process of the killed run gone",
        )
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert machine.processes() == set()
    # Other test workers may bind the freed ports meanwhile: what must be gone
    # are listeners of the run's own processes, wherever they were reparented.
    pids = {p.pid for p in run} | machine.processes()
    assert not [s for s in listeners(pids) if s.port in ports]
    assert {n.rsplit("-", 1)[0] for n in machine.left_in_tmp()} >= {
        "tokenproof-pg",
        "tokenproof-run",
        "tokenproof-load",
    }  # what a SIGKILL leaves, until...

    # ...the next run, whose janitor removes the folders of gone runs.
    after = machine.run("verify", "--scenario", "inputs/raw-bodies")
    assert after.returncode == 0, after.stderr[-3000:]
    assert machine.left_in_tmp() == set()
    assert machine.processes() == set()
    assert entries(machine.work) == {"load-report"}

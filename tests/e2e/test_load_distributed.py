"""Load over several machines, as Locust runs it: a master, and workers that
share nothing on disk with it (each in its own mount namespace, with a /tmp of
its own), sending their ops over Locust's messages."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.provisioning.local import free_port
from tests.leftovers import server_reachable_tmpdir
from tests.needs import private_tmp

CLI = [sys.executable, "-m", "harness"]
pytestmark = pytest.mark.e2e


def _env(tmp: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TOKENPROOF_DATABASE_URL"}
    if tmp is not None:
        tmp.mkdir(exist_ok=True)
        env["TMPDIR"] = str(tmp)
    return env


def _master(
    report: Path, port: int, duration: str, tmp: Path | None = None
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            *CLI,
            "load",
            "--users",
            "16",
            "--spawn-rate",
            "16",
            "--duration",
            duration,
            "--expect-workers",
            "2",
            "--expect-workers-within",
            "2m",
            "--master-bind-port",
            str(port),
            "--report",
            str(report),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(tmp),
    )


def _worker(port: int, prefix: list[str], tmp: Path | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*prefix, *CLI, "load-worker", "--master-host", "127.0.0.1", "--master-port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(tmp),
        start_new_session=True,
    )


def _finish(master: subprocess.Popen[str], workers: list[subprocess.Popen[str]]) -> str:
    try:
        _, stderr = master.communicate(timeout=300)
    finally:
        for worker in workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGTERM)
            worker.communicate(timeout=60)
    return stderr


def _report(folder: Path) -> dict[str, Any]:
    found: dict[str, Any] = json.loads((folder / "load.json").read_text())
    return found


@pytest.mark.needs_root
def test_two_workers_with_their_own_tmp_give_one_verdict(tmp_path: Path) -> None:
    # The master's temp folder (its op file, its PostgreSQL) is an empty tmpfs
    # where the workers run, and each worker has a temp folder of its own.
    with server_reachable_tmpdir() as master_tmp:
        prefix = private_tmp(str(master_tmp))
        (master_tmp / "the-masters").write_text("a file only the master's machine has")
        seen = subprocess.run(
            [*prefix, "ls", "-A", str(master_tmp)], capture_output=True, text=True
        )
        assert seen.returncode == 0 and seen.stdout == "", seen  # where the workers run
        port = free_port()
        master = _master(tmp_path / "report", port, "8s", master_tmp)
        workers = [_worker(port, prefix, tmp_path / f"worker-{i}-tmp") for i in range(2)]
        stderr = _finish(master, workers)
    assert master.returncode == 0, stderr[-3000:]
    report = _report(tmp_path / "report")
    assert report["verdict"] == "pass"
    counted = [w["requests"] for w in report["workers"]]
    assert len(counted) == 2 and all(n > 0 for n in counted), report["workers"]
    assert sum(counted) == report["requests"]  # every worker's requests, each once
    assert all(w["done"] and not w["lost"] for w in report["workers"])
    assert report["history_complete"] is True
    assert "2 worker(s) sent" in stderr


def _locust_child(worker: subprocess.Popen[str]) -> int:
    """The Locust process `tokenproof load-worker` started."""
    children = Path(f"/proc/{worker.pid}/task/{worker.pid}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


def test_a_worker_killed_mid_run_is_reported_lost_and_the_run_ends_in_a_verdict(
    tmp_path: Path,
) -> None:
    port = free_port()
    master = _master(tmp_path, port, "14s")
    workers = [_worker(port, []) for _ in range(2)]
    assert master.stderr is not None
    seen: list[str] = []
    try:
        # The first progress line comes 5 s into the run: both workers are sending.
        while not any("ops checked" in line for line in seen):
            line = master.stderr.readline()
            assert line, "".join(seen)
            seen.append(line)
        os.kill(_locust_child(workers[0]), signal.SIGKILL)
    finally:
        stderr = "".join(seen) + _finish(master, workers)
    report = _report(tmp_path)
    assert report["verdict"] == "pass", stderr[-3000:]
    assert master.returncode == 0
    (lost,) = [w for w in report["workers"] if w["lost"]]
    assert lost["requests"] > 0 and lost["lost_at_s"] > 0
    assert lost["lost_how"] in ("stopped sending heartbeats", "disconnected")
    assert report["lost_workers"] == 1 and report["history_complete"] is False
    assert sum(w["requests"] for w in report["workers"]) == report["requests"]
    assert "1 lost" in stderr and "lower bounds" in stderr

"""The Locust processes of a load run: the master (or a standalone Locust) that
`tokenproof load` starts, the workers `tokenproof load-worker` starts, the
addresses they listen on, and what those addresses expose."""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.errors import SetupError
from harness.load.report import LOOPBACK, MASTER_PORT, LoadSettings
from harness.provisioning.local import free_port
from harness.provisioning.processes import die_with_parent, end_group

# Packaged, so `tokenproof load` works from an installed wheel, not only a checkout.
LOCUSTFILE = Path(__file__).resolve().parent / "locust_user.py"


class LoadFailed(SetupError):
    """Locust itself failed to run (the message carries its output)."""


def is_loopback(host: str) -> bool:
    """True only for an address that provably stays on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # "*", "0.0.0.0"'s spellings, host names: not provably local


def exposure_warnings(settings: LoadSettings) -> list[str]:
    """What the settings open beyond loopback, in words a user can act on."""
    found = []
    if not settings.headless and not is_loopback(settings.web_host):
        found.append(
            f"Locust's web UI will listen on {settings.web_host}:{settings.web_port}, "
            "beyond loopback: anyone who reaches this machine there can start load "
            "against the service and read its figures; drop --web-host to keep it on "
            f"{LOOPBACK}"
        )
    if settings.distributed and not is_loopback(settings.master_bind_host):
        port = settings.master_bind_port or MASTER_PORT
        found.append(
            f"the Locust master will listen on {settings.master_bind_host}:"
            f"{port}, beyond loopback: any machine that reaches it there "
            "can join as a worker; drop --master-bind-host unless workers run elsewhere"
        )
    return found


def master_args(settings: LoadSettings) -> list[str]:
    """Where the master listens and its local workers find it.

    On loopback a free port (parallel runs must not fight over Locust's 5557)
    unless one is given; elsewhere Locust's default port, which workers on
    other machines assume.
    """
    bind = settings.master_bind_host
    if settings.master_bind_port is not None:
        port = settings.master_bind_port
    else:
        port = free_port() if is_loopback(bind) else MASTER_PORT
    wildcard = bind in ("*", "0.0.0.0", "::", "")
    connect = LOOPBACK if wildcard else bind
    return [
        "--master-bind-host",
        bind,
        "--master-bind-port",
        str(port),
        "--master-host",
        connect,
        "--master-port",
        str(port),
    ]


def run_group(
    argv: list[str],
    env: dict[str, str],
    log: Any,
    timeout: float | None,
    *,
    on_start: Callable[[subprocess.Popen[bytes]], None] = lambda _: None,
) -> int:
    """Run Locust in a session of its own and leave none of its processes behind.

    `--processes` forks workers; killing only the master (what subprocess.run
    does on a timeout or Ctrl-C) would orphan them, so on any way out we stop
    the whole group. PDEATHSIG stops the master if we are killed outright.
    """
    on_main = threading.current_thread() is threading.main_thread()
    process = subprocess.Popen(
        argv,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=die_with_parent() if on_main else None,
    )
    on_start(process)
    try:
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise LoadFailed(f"locust did not stop within {timeout:g} s") from exc
    finally:
        end_group(process, grace_s=15.0)


def locust_command() -> list[str]:
    """Locust with tokenproof's users, in this interpreter."""
    return [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE)]


def run_worker(master_host: str, master_port: int, processes: int = 1) -> int:
    """A Locust worker (or `processes` of them) for a master elsewhere, until the
    master ends the run; Locust's exit code. Its output goes to this terminal."""
    argv = [
        *locust_command(),
        "--worker",
        "--master-host",
        master_host,
        "--master-port",
        str(master_port),
        "--loglevel",
        "WARNING",
    ]
    if processes > 1:
        argv += ["--processes", str(processes)]
    return run_group(argv, dict(os.environ), None, None)

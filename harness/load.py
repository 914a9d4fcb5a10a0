"""Locust load runs that end in a verdict.

Before: create fans (with a starting grant) and creators, write the run's
configuration for the Locust users (harness/locust_user.py). During: Locust
headless (or its web UI) in its own process, optionally with webhook chaos at
the emulator. After: settle (harness/settle.py), read the ops every Locust
process recorded and the converged state, and run every checker on them.

Nothing it starts listens beyond loopback unless asked: Locust's web UI and
the master that `--processes` workers connect to both bind 127.0.0.1 (Locust's
own default is every interface, which lets anyone who reaches the machine
start load against the service and read its figures). The op files live in a
temp folder of the run, deleted afterwards; reports go where the caller says,
by default to tokenproof's cache, not the working directory.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg

from harness.cache import cache_dir, slug
from harness.checkers import check
from harness.errors import SetupError
from harness.history import Op, read_jsonl
from harness.load_progress import LoadProgress, ProgressTicker, read_progress
from harness.load_report import LOOPBACK, LoadReport, LoadSettings
from harness.provisioning.local import free_port
from harness.provisioning.processes import die_with_parent, end_group
from harness.provisioning.workdirs import LOAD_PREFIX, OwnedDir
from harness.report.load_page import write_load_html
from harness.settle import settle
from harness.targets import Target
from harness.users import UserSpec, create_users

# Packaged, so `tokenproof load` works from an installed wheel, not only a checkout.
LOCUSTFILE = Path(__file__).resolve().parent / "locust_user.py"
# Locust's default master port: where workers on other machines look for it
# when the master is bound to an address they can reach.
REMOTE_MASTER_PORT = 5557
CHAOS_RULES: list[dict[str, Any]] = [
    {"mode": "parallel", "event_type": "payment_intent.succeeded", "copies": 3, "probability": 0.2},
    {
        "mode": "duplicate",
        "event_type": "payment_intent.succeeded",
        "copies": 2,
        "probability": 0.25,
    },
    {"mode": "delay", "event_type": "payment_intent.*", "delay_s": 0.5, "probability": 0.2},
    {"mode": "drop_first", "event_type": "payment_intent.*", "probability": 0.2},
    {"mode": "forge", "event_type": "payment_intent.succeeded", "probability": 0.1},
]


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
    if settings.processes > 1 and not is_loopback(settings.master_bind_host):
        found.append(
            f"the Locust master will listen on {settings.master_bind_host}:"
            f"{REMOTE_MASTER_PORT}, beyond loopback: any machine that reaches it there "
            "can join as a worker; drop --master-bind-host unless workers run elsewhere"
        )
    return found


def default_report_dir(target_label: str) -> Path:
    """Where a load run's reports go when the caller names no folder: the cache
    (one folder per target, the latest run), never the working directory."""
    return cache_dir() / "load" / slug(target_label)


def fresh_default_report_dir(target_label: str) -> Path:
    """The default report folder, emptied of the previous run's files: a run
    that fails early must not leave an older verdict looking like its own."""
    path = default_report_dir(target_label)
    shutil.rmtree(path, ignore_errors=True)  # a folder of our own cache, nobody else's
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_load(
    target: Target,
    settings: LoadSettings,
    out_dir: Path,
    *,
    on_progress: Callable[[LoadProgress], None] = lambda _: None,
) -> LoadReport:
    """Create the users, run Locust, wait for webhooks to settle and check. While
    Locust runs, `on_progress` gets a `LoadProgress` every few seconds."""
    out_dir.mkdir(parents=True, exist_ok=True)
    run_id = secrets.token_hex(3)
    fans = [f"load-{run_id}-fan-{i}" for i in range(settings.fans)]
    creators = [f"load-{run_id}-creator-{i}" for i in range(settings.creators)]
    asyncio.run(_create(target, fans, creators, settings.grant))
    target.emulator.clear_delivery_rules()
    target.emulator.clear_faults()
    if settings.webhook_chaos:
        for rule in CHAOS_RULES:
            target.emulator.add_delivery_rule(**rule)
    # Every Locust process appends its ops here; the folder is the run's and
    # goes with it (or with the next run's janitor, if this one is killed).
    owned = OwnedDir.create(LOAD_PREFIX)
    try:
        return _run_locust(target, settings, out_dir, owned.path, fans, creators, on_progress)
    finally:
        owned.remove()


def _run_locust(
    target: Target,
    settings: LoadSettings,
    out_dir: Path,
    history_dir: Path,
    fans: list[str],
    creators: list[str],
    on_progress: Callable[[LoadProgress], None],
) -> LoadReport:
    config = {
        "fans": fans,
        "creators": creators,
        "jwt_secret": target.jwt_secret,
        "emulator_url": target.emulator_url,
        "history_dir": str(history_dir),
        "started": time.time(),
    }
    config_path = history_dir / "config.json"
    config_path.write_text(json.dumps(config))
    argv = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--host",
        target.base_url,
        "-u",
        str(settings.users),
        "-r",
        str(settings.spawn_rate),
        "--csv",
        str(out_dir / "locust"),
        "--html",
        str(out_dir / "locust.html"),
        "--only-summary",
        "--loglevel",
        "WARNING",
        "--stop-timeout",
        "10",
        # Locust binds every interface unless told otherwise.
        "--web-host",
        settings.web_host,
        "--web-port",
        str(settings.web_port),
    ]
    if settings.headless:
        argv += ["--headless", "-t", f"{settings.duration_s}s"]
    if settings.processes > 1:
        argv += ["--processes", str(settings.processes), *_master_args(settings)]
    env = {**os.environ, "TOKENPROOF_LOAD": str(config_path)}
    started = time.monotonic()
    timeout = settings.duration_s + 120 if settings.headless else None

    def tick(elapsed: float) -> None:
        history = out_dir / "locust_stats_history.csv"
        on_progress(read_progress(history, elapsed, settings.duration_s, target.emulator))

    with open(out_dir / "locust.log", "w") as log, ProgressTicker(tick):
        returncode = _run_group(argv, env, log, timeout)
    duration = time.monotonic() - started
    ops = _read_ops(history_dir)
    if not ops:
        tail = (out_dir / "locust.log").read_text()[-3000:]
        raise LoadFailed(f"locust recorded no requests (exit {returncode}):\n{tail}")
    # Chaos rules delay deliveries, and a queue worker may still be crediting:
    # the verdict is judged on the converged state.
    observation = asyncio.run(settle(target, fans + creators, ops, deliveries_within=60))
    results = check(observation)
    stats = _read_stats(out_dir / "locust_stats.csv")
    report = LoadReport(target.name, settings, results, ops, duration, returncode, stats)
    write_load_html(report, out_dir)
    return report


def _master_args(settings: LoadSettings) -> list[str]:
    """Where the master of `--processes` listens and its local workers find it.

    On loopback a free port (parallel runs must not fight over Locust's 5557);
    elsewhere Locust's default port, which workers on other machines assume.
    """
    bind = settings.master_bind_host
    if is_loopback(bind):
        port, connect = free_port(), bind
    else:
        wildcard = bind in ("*", "0.0.0.0", "::", "")
        port, connect = REMOTE_MASTER_PORT, LOOPBACK if wildcard else bind
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


def _run_group(argv: list[str], env: dict[str, str], log: Any, timeout: float | None) -> int:
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
    try:
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise LoadFailed(f"locust did not stop within {timeout:g} s") from exc
    finally:
        end_group(process, grace_s=15.0)


async def _create(target: Target, fans: list[str], creators: list[str], grant: int) -> None:
    conn = await asyncpg.connect(target.database_url)
    try:
        await create_users(
            conn,
            [UserSpec(f, grant=grant) for f in fans]
            + [UserSpec(c, is_creator=True) for c in creators],
        )
    finally:
        await conn.close()


def _read_ops(directory: Path) -> list[Op]:
    ops: list[Op] = []
    for path in sorted(directory.glob("history-*.jsonl")):
        ops.extend(read_jsonl(path))
    ops.sort(key=lambda op: (op.time_s, op.type != "invoke"))
    return [Op(**{**op.__dict__, "index": i}) for i, op in enumerate(ops)]


def _read_stats(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    import csv

    with path.open() as f:
        return list(csv.DictReader(f))

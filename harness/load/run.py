"""Locust load runs that end in a verdict.

Before: create fans (with a starting grant) and creators, write the run's
configuration for the Locust master (harness/load/locust_user.py), which hands
it to its workers. During: Locust headless (or its web UI) in its own process
group, optionally with webhook chaos at the emulator; the workers send their
ops to the master over Locust's messages and the master appends them to the
run's op file, which this process reads every second: each op is folded into
the checkers as it comes (`harness.load.stream`), and the database is read for
what holds at every moment (`harness.load.live`). After: settle
(harness/run/settle.py) and finish every checker on the converged state.

Memory stays flat however long the run: the ops live in the file, the
checkers keep counters. Nothing it starts listens beyond loopback unless
asked: Locust's web UI and the master both bind 127.0.0.1 (Locust's own
default is every interface, which lets anyone who reaches the machine start
load against the service and read its figures). The op file lives in a temp
folder of the run, deleted afterwards; reports go where the caller says, by
default to tokenproof's cache, not the working directory.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import asyncpg

from harness.cache import cache_dir, slug
from harness.checkers import CheckResult, Checks
from harness.errors import UsageError
from harness.load.live import LiveChecks
from harness.load.process import LoadFailed, locust_command, master_args, run_group
from harness.load.progress import PROGRESS_EVERY_S, LoadProgress, ProgressTicker, read_progress
from harness.load.report import LoadReport, LoadSettings, WorkerSummary
from harness.load.stream import OpFile, Tally
from harness.provisioning.workdirs import LOAD_PREFIX, OwnedDir
from harness.report.load_page import write_load_html
from harness.run.collect import as_contract_tables
from harness.run.settle import settle
from harness.target.start import Target
from harness.target.users import UserSpec, create_users

READ_EVERY_S = 1.0  # how often the op file is read and the live checks run
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


def check_settings(settings: LoadSettings) -> None:
    """Refuse settings that cannot work together, saying what to do instead."""
    if settings.processes > 1 and settings.expect_workers:
        raise UsageError(
            "--processes starts workers on this machine and --expect-workers waits for "
            "workers started elsewhere: use one (start more `tokenproof load-worker`s "
            "with --processes on the other machines instead)"
        )


def run_load(
    target: Target,
    settings: LoadSettings,
    out_dir: Path,
    *,
    on_progress: Callable[[LoadProgress], None] = lambda _: None,
) -> LoadReport:
    """Create the users, run Locust, check as the ops come, settle and finish
    the checks. While Locust runs, `on_progress` gets a `LoadProgress` every few
    seconds."""
    check_settings(settings)
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
    # The master appends every worker's ops here; the folder is the run's and
    # goes with it (or with the next run's janitor, if this one is killed).
    owned = OwnedDir.create(LOAD_PREFIX)
    try:
        session = LoadSession(target, settings, out_dir, owned.path, fans, creators)
        return session.run(on_progress)
    finally:
        owned.remove()


class LoadSession:
    """One Locust run and everything read while it goes."""

    def __init__(
        self,
        target: Target,
        settings: LoadSettings,
        out_dir: Path,
        work: Path,
        fans: list[str],
        creators: list[str],
    ) -> None:
        self.target = target
        self.settings = settings
        self.out_dir = out_dir
        self.users = fans + creators
        self.seed = secrets.randbits(32)
        self.ops_path = work / "ops.jsonl"
        self.status_path = work / "status.json"
        self.config_path = work / "config.json"
        self.config = {
            "fans": fans,
            "creators": creators,
            "jwt_secret": target.jwt_secret,
            # Workers speak the target's dialect too; they read no file of it.
            "dialect": target.dialect.to_json(),
            "emulator_url": target.emulator_url,
            "seed": self.seed,
            "ops_path": str(self.ops_path),
            "status_path": str(self.status_path),
            "started": time.time(),
        }
        self.tally = Tally()
        self.checks = Checks()
        self.ops = OpFile(self.ops_path, self.checks, self.tally)
        self.live = LiveChecks(
            target.database_url, tuple(self.users), tables=as_contract_tables(target.dialect)
        )
        self.live_error: str | None = None
        self.stopped_early: str | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._conn: asyncpg.Connection | None = None
        self._last_progress = (0.0, 0)  # (elapsed, requests) at the last progress line

    def run(self, on_progress: Callable[[LoadProgress], None]) -> LoadReport:
        # The secret is in it: readable by this user only.
        fd = os.open(self.config_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(self.config, f)
        env = {**os.environ, "TOKENPROOF_LOAD": str(self.config_path)}
        started = time.monotonic()
        next_progress = [PROGRESS_EVERY_S]

        def tick(elapsed: float) -> None:
            self._read_and_check()
            if elapsed >= next_progress[0]:
                next_progress[0] += PROGRESS_EVERY_S
                on_progress(self.progress(elapsed))

        try:
            with (
                open(self.out_dir / "locust.log", "w") as log,
                ProgressTicker(tick, every_s=READ_EVERY_S),
            ):
                returncode = run_group(
                    self.argv(), env, log, self.timeout_s(), on_start=self._started
                )
        finally:
            self._close_live()
        duration = time.monotonic() - started
        stopped = time.monotonic()
        self.ops.read_new()  # what came in since the last tick
        if not self.tally.requests:
            tail = (self.out_dir / "locust.log").read_text()[-3000:]
            raise LoadFailed(f"locust recorded no requests (exit {returncode}):\n{tail}")
        # Chaos rules delay deliveries, and a queue worker may still be crediting:
        # the verdict is judged on the converged state.
        # The ops are not held: the read is compact (sums, not every transfer
        # row), and the database's log is read if any answer was a 5xx.
        observation = asyncio.run(
            settle(
                self.target,
                self.users,
                [],
                deliveries_within=60,
                compact=True,
                server_errors=self.tally.server_errors > 0,
            )
        )
        workers = self.workers()
        complete = not any(w.lost or w.late for w in workers) and not self.tally.unreadable
        observation = replace(observation, history_complete=complete)
        results = self.checks.finish(observation, self.ops.ops_at)
        results.append(self.during_load())
        report = LoadReport(
            self.target.name,
            self.settings,
            results,
            duration,
            returncode,
            self.seed,
            requests=self.tally.requests,
            outcomes=dict(self.tally.outcomes),
            server_errors=self.tally.server_errors,
            workers=workers,
            history_complete=complete,
            stats=_read_stats(self.out_dir / "locust_stats.csv"),
            stopped_early=self.stopped_early,
            live_error=self.live_error,
            verdict_after_s=time.monotonic() - stopped,
        )
        write_load_html(report, self.out_dir)
        return report

    def argv(self) -> list[str]:
        s = self.settings
        argv = [
            *locust_command(),
            "--host",
            self.target.base_url,
            "-u",
            str(s.users),
            "-r",
            str(s.spawn_rate),
            "--csv",
            str(self.out_dir / "locust"),
            "--html",
            str(self.out_dir / "locust.html"),
            "--only-summary",
            "--loglevel",
            "WARNING",
            "--stop-timeout",
            "10",
            # Locust binds every interface unless told otherwise.
            "--web-host",
            s.web_host,
            "--web-port",
            str(s.web_port),
        ]
        if s.headless:
            argv += ["--headless", "-t", f"{s.duration_s}s"]
        if s.processes > 1:
            argv += ["--processes", str(s.processes), *master_args(s)]
        elif s.expect_workers:
            argv += [
                "--master",
                "--expect-workers",
                str(s.expect_workers),
                "--expect-workers-max-wait",
                str(s.expect_workers_within_s),
                *master_args(s)[:4],  # bind host and port: the workers connect to us
            ]
        return argv

    def timeout_s(self) -> float | None:
        if not self.settings.headless:
            return None
        waiting = self.settings.expect_workers_within_s if self.settings.expect_workers else 0
        return self.settings.duration_s + 120 + waiting

    def _started(self, process: subprocess.Popen[bytes]) -> None:
        self._process = process

    def _read_and_check(self) -> None:
        """Fold the new ops, run the live reads that are due, stop if told to."""
        self.ops.read_new()
        if self.live_error is None:
            try:
                self._live_tick()
            except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
                # The load goes on and the settled checks still judge everything.
                self.live_error = f"{type(exc).__name__}: {exc}"
        if self.settings.stop_on_violation and self.stopped_early is None:
            found = self.early_violations()
            if found:
                self.stopped_early = f"stopped at the first violation: {found[0].message}"
                self._stop_locust()

    def _live_tick(self) -> None:
        # This thread's own loop and connection: the main thread waits on Locust.
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        if self._conn is None:
            self._conn = self._loop.run_until_complete(
                asyncpg.connect(self.target.database_url, timeout=10)
            )
        self._loop.run_until_complete(self.live.tick(self._conn, self.tally, self.ops.last_read))

    def _close_live(self) -> None:
        if self._loop is None:
            return
        if self._conn is not None:
            try:
                self._loop.run_until_complete(self._conn.close(timeout=5))
            except (TimeoutError, OSError, asyncpg.PostgresError):
                self._conn.terminate()  # closing is best effort; the server drops it too
        self._loop.close()

    def _stop_locust(self) -> None:
        # SIGTERM: Locust stops its users, the master collects every worker's
        # last ops, writes its reports and exits; its group is ended after.
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)

    def early_violations(self) -> list[Any]:
        return self.checks.early() + self.live.violations

    def progress(self, elapsed: float) -> LoadProgress:
        """Users and the webhook backlog as Locust and the emulator say; requests,
        their rate and failures as read from the op file (Locust's own history
        file is written only every few seconds)."""
        history = self.out_dir / "locust_stats_history.csv"
        progress = read_progress(history, elapsed, self.settings.duration_s, self.target.emulator)
        last_elapsed, last_requests = self._last_progress
        self._last_progress = (elapsed, self.tally.requests)
        rate = (self.tally.requests - last_requests) / max(elapsed - last_elapsed, 1e-6)
        workers = len(self._status().get("workers", {})) if self.settings.distributed else None
        return replace(
            progress,
            requests_per_s=rate,
            requests=self.tally.requests,
            failures=self.tally.outcomes["info"],
            checked=self.ops.read_ops,
            workers=workers,
            violations=len(self.early_violations()),
        )

    def _status(self) -> dict[str, Any]:
        try:
            found = json.loads(self.status_path.read_text())
        except (OSError, ValueError):
            return {}  # not written yet
        return found if isinstance(found, dict) else {}

    def workers(self) -> list[WorkerSummary]:
        known = {f.name for f in fields(WorkerSummary)}
        return [
            WorkerSummary(worker=name, **{k: v for k, v in tally.items() if k in known})
            for name, tally in sorted(self._status().get("workers", {}).items())
        ]

    def during_load(self) -> CheckResult:
        """What the live reads found. If the database could not be read during
        the run, the settled checks still judge everything: not `unknown`."""
        return CheckResult.of("during_load", self.live.reads, self.live.violations)


async def _create(target: Target, fans: list[str], creators: list[str], grant: int) -> None:
    conn = await asyncpg.connect(target.database_url)
    try:
        await create_users(
            conn,
            [UserSpec(f, grant=grant) for f in fans]
            + [UserSpec(c, is_creator=True) for c in creators],
            target.dialect,
        )
    finally:
        await conn.close()


def _read_stats(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open() as f:
        return list(csv.DictReader(f))

"""Locust load runs that end in a verdict.

Before: create fans (with a starting grant) and creators, write the run's
configuration for locustfile.py. During: Locust headless (or its web UI) in its
own process, optionally with webhook chaos at the emulator. After: wait until
webhooks settle, read the ops every Locust process recorded and the final
state, and run every checker on them.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from harness.checkers import CheckResult, check
from harness.errors import SetupError
from harness.history import Op, read_jsonl
from harness.observe import observe
from harness.report.load_page import write_load_html
from harness.targets import Target
from harness.users import UserSpec, create_users

LOCUSTFILE = Path(__file__).resolve().parents[1] / "locustfile.py"
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


@dataclass(frozen=True)
class LoadSettings:
    users: int = 100
    spawn_rate: float = 20.0
    duration_s: int = 60
    processes: int = 1
    webhook_chaos: bool = False
    headless: bool = True
    fans: int = 200
    creators: int = 20
    grant: int = 100_000


@dataclass
class LoadReport:
    target: str
    settings: LoadSettings
    results: list[CheckResult]
    ops: list[Op]
    duration_s: float
    locust_exit: int
    stats: list[dict[str, str]] = field(default_factory=list)

    @property
    def recording_processes(self) -> int:
        """Locust processes that sent requests (op ids carry the process id)."""
        return len({op.process // 10_000_000 for op in self.ops})

    @property
    def violations(self) -> list[Any]:
        return [v for r in self.results for v in r.violations]

    @property
    def ok(self) -> bool:
        return not self.violations

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": "pass" if self.ok else "fail",
            "target": self.target,
            "settings": self.settings.__dict__,
            "duration_s": round(self.duration_s, 1),
            "requests": len([op for op in self.ops if op.type == "invoke"]),
            "locust_exit": self.locust_exit,
            "recording_processes": self.recording_processes,
            "checks": [r.to_json() for r in self.results],
            "violations": [v.to_json() for v in self.violations],
            "stats": self.stats,
        }


def run_load(target: Target, settings: LoadSettings, out_dir: Path) -> LoadReport:
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
    history_dir = Path(tempfile.mkdtemp(prefix="tokenproof-load-"))
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
    ]
    if settings.headless:
        argv += ["--headless", "-t", f"{settings.duration_s}s"]
    if settings.processes > 1:
        argv += ["--processes", str(settings.processes)]
    env = {**os.environ, "TOKENPROOF_LOAD": str(config_path)}
    started = time.monotonic()
    with open(out_dir / "locust.log", "w") as log:
        try:
            result = subprocess.run(
                argv,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=settings.duration_s + 120 if settings.headless else None,
            )
        except subprocess.TimeoutExpired as exc:
            raise LoadFailed(f"locust did not stop within {settings.duration_s + 120} s") from exc
    duration = time.monotonic() - started
    ops = _read_ops(history_dir)
    if not ops:
        tail = (out_dir / "locust.log").read_text()[-3000:]
        raise LoadFailed(f"locust recorded no requests (exit {result.returncode}):\n{tail}")
    target.emulator.release()
    target.emulator.wait_settled(60)
    # Chaos rules delay deliveries; once settled nothing is left in flight.
    results = check(asyncio.run(observe(target, fans + creators, ops)))
    stats = _read_stats(out_dir / "locust_stats.csv")
    report = LoadReport(target.name, settings, results, ops, duration, result.returncode, stats)
    write_load_html(report, out_dir)
    return report


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

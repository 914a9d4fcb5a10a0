"""A load run's settings and its report (data only): what `harness.load` runs
and what the report pages render."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.checkers import CheckResult
from harness.history import Op

LOOPBACK = "127.0.0.1"
WEB_PORT = 8089  # Locust's default


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
    web_host: str = LOOPBACK
    web_port: int = WEB_PORT
    master_bind_host: str = LOOPBACK


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

    @property
    def requests_checked(self) -> int:
        return sum(1 for o in self.ops if o.type == "invoke")

    def endpoint_lines(self) -> list[str]:
        """Throughput and latency per endpoint, and for all of them, as Locust counted."""
        return [
            f"{row['Name']:<10} {float(row['Requests/s']):8.1f} req/s  "
            f"p50 {row['50%']} ms  p99 {row['99%']} ms  failures {row['Failure Count']}"
            for row in self.stats
            if row.get("Name") in ("Aggregated", "tip", "deduct", "purchase", "balance")
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": "pass" if self.ok else "fail",
            "target": self.target,
            "settings": self.settings.__dict__,
            "duration_s": round(self.duration_s, 1),
            "requests": self.requests_checked,
            "locust_exit": self.locust_exit,
            "recording_processes": self.recording_processes,
            "checks": [r.to_json() for r in self.results],
            "violations": [v.to_json() for v in self.violations],
            "stats": self.stats,
        }

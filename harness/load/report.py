"""A load run's settings and its report (data only): what `harness.load.run`
runs and what the report pages render. The report holds counts and results,
never the ops (they stay in the run's op file)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from harness.checkers import CheckResult
from harness.verdict import Verdict, decide

LOOPBACK = "127.0.0.1"
WEB_PORT = 8089  # Locust's default
MASTER_PORT = 5557  # Locust's default: where workers on other machines look


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
    master_bind_port: int | None = None  # None: a free port on loopback, else 5557
    expect_workers: int = 0  # workers started elsewhere (`tokenproof load-worker`)
    expect_workers_within_s: int = 120
    stop_on_violation: bool = False

    @property
    def distributed(self) -> bool:
        return self.processes > 1 or self.expect_workers > 0


@dataclass(frozen=True)
class WorkerSummary:
    """One Locust worker as the master tallied it."""

    worker: str
    ops: int
    requests: int
    first_s: float | None
    last_s: float | None
    done: bool
    lost_at_s: float | None = None
    lost_how: str | None = None
    late: int = 0  # ops that reached the master after it stopped waiting

    @property
    def lost(self) -> bool:
        return self.lost_at_s is not None

    def line(self) -> str:
        text = f"{self.worker}: {self.requests:,} requests"
        if self.lost:
            text += f", lost {self.lost_at_s:.0f} s into the run ({self.lost_how})"
        return text


@dataclass
class LoadReport:
    target: str
    settings: LoadSettings
    results: list[CheckResult]
    duration_s: float
    locust_exit: int
    seed: int
    requests: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    server_errors: int = 0
    workers: list[WorkerSummary] = field(default_factory=list)
    # False if a lost worker's last ops never arrived: the checks that count what
    # was asked judged only what arrived (the report says so).
    history_complete: bool = True
    stats: list[dict[str, str]] = field(default_factory=list)
    stopped_early: str | None = None  # why the run ended before its duration
    live_error: str | None = None  # why the database could not be read during the run
    verdict_after_s: float = 0.0  # from Locust's exit to the verdict

    @property
    def violations(self) -> list[Any]:
        return [v for r in self.results for v in r.violations]

    @property
    def lost_workers(self) -> list[WorkerSummary]:
        return [w for w in self.workers if w.lost]

    @property
    def verdict(self) -> Verdict:
        return decide(
            violated=bool(self.violations),
            undecided=any(r.validity == "unknown" for r in self.results),
        )

    @property
    def ok(self) -> bool:
        return self.verdict == "pass"

    @property
    def requests_checked(self) -> int:
        return self.requests

    def endpoint_lines(self) -> list[str]:
        """Throughput and latency per endpoint, and for all of them, as Locust counted."""
        return [
            f"{row['Name']:<10} {float(row['Requests/s']):8.1f} req/s  "
            f"p50 {row['50%']} ms  p99 {row['99%']} ms  failures {row['Failure Count']}"
            for row in self.stats
            if row.get("Name") in ("Aggregated", "tip", "deduct", "purchase", "balance")
        ]

    def worker_line(self) -> str:
        lost = self.lost_workers
        text = f"{len(self.workers)} worker(s) sent {self.requests:,} requests"
        if lost:
            text += f"; {len(lost)} lost: " + "; ".join(w.line() for w in lost)
        if not self.history_complete:
            text += (
                ". Requests a lost worker sent but could not report may have moved tokens "
                "or charged cards: answers were checked against the ledger only as lower "
                "bounds, and charges were not counted against purchase calls"
            )
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "target": self.target,
            "settings": asdict(self.settings),
            "seed": self.seed,
            "duration_s": round(self.duration_s, 1),
            "requests": self.requests,
            "outcomes": self.outcomes,
            "server_errors": self.server_errors,
            "locust_exit": self.locust_exit,
            "stopped_early": self.stopped_early,
            "live_error": self.live_error,
            "verdict_after_s": round(self.verdict_after_s, 2),
            "workers": [{**asdict(w), "lost": w.lost} for w in self.workers],
            "lost_workers": len(self.lost_workers),
            "history_complete": self.history_complete,
            "checks": [r.to_json() for r in self.results],
            "violations": [v.to_json() for v in self.violations],
            "stats": self.stats,
        }

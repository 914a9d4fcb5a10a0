"""How far a load run is, every few seconds: elapsed of total, users, requests
per second, requests and failures so far (from Locust's own stats history),
and the webhooks the emulator still has to deliver."""

from __future__ import annotations

import csv
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.target.emulator_client import EmulatorClient, EmulatorControlError

PROGRESS_EVERY_S = 5.0


@dataclass(frozen=True)
class LoadProgress:
    elapsed_s: float
    duration_s: int
    users: int = 0
    requests_per_s: float = 0.0
    requests: int = 0
    failures: int = 0
    webhook_backlog: int | None = None
    checked: int = 0  # ops tokenproof has read and checked so far
    workers: int | None = None  # Locust workers heard from (None: no workers)
    violations: int = 0  # found during the run

    def line(self, width: int = 80) -> str:
        """One line of at most `width` characters: the figures in order of
        importance, as many as fit (a CI log must not wrap it)."""
        backlog = "?" if self.webhook_backlog is None else str(self.webhook_backlog)
        parts = [
            f"{self.elapsed_s:.0f}/{self.duration_s} s",
            f"{self.requests_per_s:.0f} req/s",
            f"{self.violations} violations" if self.violations else "",
            f"{self.failures} failed",
            f"{self.users} users",
            f"backlog {backlog}",
            f"{self.checked} ops checked",
            "" if self.workers is None else f"{self.workers} workers",
        ]
        line = ""
        for part in filter(None, parts):
            candidate = f"{line} · {part}" if line else part
            if len(candidate) > width:
                break
            line = candidate
        return line[:width]


def latest_aggregate(history_csv: Path) -> dict[str, str] | None:
    """The last `Aggregated` row Locust wrote (it appends one every second)."""
    try:
        with history_csv.open(newline="") as f:
            rows = [r for r in csv.DictReader(f) if r.get("Name") == "Aggregated"]
    except OSError:
        return None
    return rows[-1] if rows else None


def read_progress(
    history_csv: Path,
    elapsed_s: float,
    duration_s: int,
    emulator: EmulatorClient,
) -> LoadProgress:
    row = latest_aggregate(history_csv) or {}

    def number(column: str) -> float:
        try:
            return float(row.get(column) or 0)
        except ValueError:
            return 0.0

    try:
        settled = emulator.settled()
        backlog: int | None = settled.get("in_progress", 0) + settled.get("held", 0)
    except EmulatorControlError:
        backlog = None
    return LoadProgress(
        elapsed_s,
        duration_s,
        int(number("User Count")),
        number("Requests/s"),
        int(number("Total Request Count")),
        int(number("Total Failure Count")),
        backlog,
    )


class ProgressTicker:
    """A thread that reports progress every `every_s` until stopped (`with`)."""

    def __init__(
        self,
        report: Callable[[float], None],
        *,
        every_s: float = PROGRESS_EVERY_S,
    ) -> None:
        self.report = report
        self.every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load-progress", daemon=True)
        self._started = 0.0

    def _run(self) -> None:
        # Event.wait is the timer: it returns early (True) when stopped.
        while not self._stop.wait(self.every_s):
            self.report(time.monotonic() - self._started)

    def __enter__(self) -> ProgressTicker:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

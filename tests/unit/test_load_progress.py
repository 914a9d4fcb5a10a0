"""Load progress read from Locust's stats history and the emulator's backlog."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import cast

from harness.load.progress import LoadProgress, ProgressTicker, read_progress
from harness.target.emulator_client import EmulatorClient, EmulatorControlError

HEADER = (
    "Timestamp,User Count,Type,Name,Requests/s,Failures/s,Total Request Count,Total Failure Count"
)


class _Emulator:
    def __init__(self, settled: dict[str, int] | None) -> None:
        self._settled = settled

    def settled(self) -> dict[str, int]:
        if self._settled is None:
            raise EmulatorControlError("emulator gone")
        return self._settled


def _emulator(settled: dict[str, int] | None) -> EmulatorClient:
    return cast(EmulatorClient, _Emulator(settled))


def test_the_last_aggregated_row_and_the_backlog_make_the_line(tmp_path: Path) -> None:
    history = tmp_path / "locust_stats_history.csv"
    history.write_text(
        f"{HEADER}\n"
        "1,10,,Aggregated,50.0,0.0,50,0\n"
        "2,20,GET,balance,10.0,0.0,10,0\n"
        "2,20,,Aggregated,120.5,1.0,170,3\n"
    )
    progress = read_progress(history, 10.2, 60, _emulator({"in_progress": 4, "held": 1}))
    assert (progress.users, progress.requests, progress.failures) == (20, 170, 3)
    assert progress.webhook_backlog == 5
    assert progress.line() == (
        "10/60 s · 120 req/s · 3 failed · 20 users · backlog 5 · 0 ops checked"
    )


def test_the_line_fits_any_width_dropping_the_least_important_figures() -> None:
    progress = LoadProgress(
        3725, 5400, 1000, 4321.5, 9_000_000, 12, 1234, checked=8_999_000, workers=16, violations=3
    )
    wide = progress.line(200)
    assert wide.split(" · ") == [
        "3725/5400 s",
        "4322 req/s",
        "3 violations",
        "12 failed",
        "1000 users",
        "backlog 1234",
        "8999000 ops checked",
        "16 workers",
    ]
    for width in (80, 60, 40, 20, 12):
        line = progress.line(width)
        assert len(line) <= width and "\n" not in line
        assert wide.startswith(line)
    assert "violations" in progress.line(40)  # a finding outranks the rest


def test_nothing_written_yet_and_no_emulator_still_make_a_line(tmp_path: Path) -> None:
    progress = read_progress(tmp_path / "missing.csv", 5, 60, _emulator(None))
    assert progress.requests == 0 and progress.webhook_backlog is None
    assert "backlog ?" in progress.line()


def test_the_ticker_reports_until_stopped() -> None:
    seen: list[float] = []
    enough = threading.Event()

    def report(elapsed: float) -> None:
        seen.append(elapsed)
        if len(seen) >= 3:
            enough.set()

    with ProgressTicker(report, every_s=0.01):
        assert enough.wait(10), "the ticker never reported three times"
    count = len(seen)
    assert count >= 3 and seen == sorted(seen)
    assert seen[0] >= 0

"""Wall time of `tokenproof verify` on the reference: all suites, and each suite alone.

    .venv/bin/python benchmarks/verify_time.py

Each figure includes start-up (PostgreSQL, emulator, service) as a user sees it.
"""

from __future__ import annotations

import subprocess
import sys
import time

from harness.scenario import SUITE_MODULES


def timed(args: list[str]) -> tuple[float, int]:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "harness", "verify", *args], capture_output=True, text=True
    )
    return time.monotonic() - started, result.returncode


def main() -> None:
    total, code = timed([])
    print(f"all suites       {total:6.1f} s  exit {code}")
    for suite in SUITE_MODULES:
        seconds, code = timed(["--suite", suite])
        print(f"--suite {suite:<8} {seconds:6.1f} s  exit {code}")


if __name__ == "__main__":
    main()

"""Load figures: requests/s and p50/p99 per endpoint on the reference, webhook chaos
on, and the invariant verdict.

    .venv/bin/python benchmarks/load.py [--users 100] [--duration 60] [--processes 1]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from harness.load.report import LoadSettings
from harness.load.run import run_load
from harness.provisioning import PostgresSettings
from harness.targets import TargetSpec, open_target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--duration", type=int, default=60)
    parser.add_argument("--processes", type=int, default=1)
    args = parser.parse_args()
    settings = LoadSettings(
        users=args.users,
        spawn_rate=args.users,
        duration_s=args.duration,
        processes=args.processes,
        webhook_chaos=True,
    )
    out = Path(tempfile.mkdtemp(prefix="tokenproof-load-bench-"))
    with open_target(TargetSpec("reference"), PostgresSettings.resolve()) as target:
        report = run_load(target, settings, out)
    print(f"{args.users} users, {args.duration} s, {args.processes} process(es), webhook chaos")
    print(f"{'endpoint':<12} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'failures':>8}")
    for row in report.stats:
        print(
            f"{row['Name']:<12} {float(row['Requests/s']):8.1f} {row['50%']:>7} "
            f"{row['99%']:>7} {row['Failure Count']:>8}"
        )
    print(
        f"verdict: {'pass' if report.ok else 'fail'} "
        f"({len(report.violations)} violations, {report.requests} requests checked)"
    )


if __name__ == "__main__":
    main()

"""Detection: for each flawed variant, over several seeds, how often its home suite
catches it and the median scenario time and ops to the first violation; and how
often the reference stays clean.

    .venv/bin/python benchmarks/detection.py [--seeds 5] [--flaw NAME ...]
"""

from __future__ import annotations

import argparse
import statistics

from harness.flaws import FLAWS
from harness.provisioning import PostgresSettings
from harness.selftest.run import HOME_SUITES, REFERENCE, run_selftest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--flaw", action="append", choices=sorted(FLAWS))
    args = parser.parse_args()
    flaws = args.flaw or list(FLAWS)
    settings = PostgresSettings.resolve()
    runs = [
        run_selftest([REFERENCE, *flaws], None, settings, seed=seed, quick=True)
        for seed in range(1, args.seeds + 1)
    ]
    clean = sum(
        all(not c.caught and not c.errors for c in r.cells if c.variant == REFERENCE) for r in runs
    )
    print(f"{'variant':<30} {'caught':>7} {'median s':>9} {'median ops':>11}  suite")
    for flaw in flaws:
        cells = [c for r in runs for c in r.cells if c.variant == flaw and c.caught]
        caught_runs = sum(r.caught(flaw) for r in runs)
        seconds = statistics.median(c.seconds for c in cells) if cells else float("nan")
        ops = statistics.median(c.ops for c in cells) if cells else float("nan")
        print(
            f"{flaw:<30} {caught_runs:>3}/{len(runs):<3} {seconds:9.2f} {ops:11.0f}  "
            f"{','.join(HOME_SUITES[flaw])}"
        )
    print(f"{'reference clean':<30} {clean:>3}/{len(runs):<3}")


if __name__ == "__main__":
    main()

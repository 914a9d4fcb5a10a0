"""Which flawed variants the model-based run finds on its own.

    .venv/bin/python benchmarks/model_detection.py [--shrink] [--flaw NAME ...]

Without --shrink, Hypothesis only generates (the CI profile's examples and
steps) and stops at the first failure: a fast yes/no per variant. With
--shrink it also shrinks and prints the length of the shrunk sequence, which
takes minutes per variant.
"""

from __future__ import annotations

import argparse
import time

from hypothesis import Phase, settings

from harness.flaws import FLAWS
from harness.model import CI_PROFILE, run_model
from harness.provisioning import PostgresSettings
from harness.target.start import TargetSpec, open_target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flaw", action="append", choices=sorted(FLAWS))
    parser.add_argument("--shrink", action="store_true")
    args = parser.parse_args()
    phases = list(Phase) if args.shrink else [Phase.explicit, Phase.reuse, Phase.generate]
    profile = settings(CI_PROFILE, phases=phases)
    found = 0
    flaws = args.flaw or list(FLAWS)
    for flaw in flaws:
        with open_target(TargetSpec("reference", flaw=flaw), PostgresSettings.resolve()) as target:
            started = time.monotonic()
            outcome = run_model(target, profile)
        seconds = time.monotonic() - started
        found += not outcome.passed
        last = outcome.text.strip().splitlines()[-1][:90] if not outcome.passed else ""
        steps = f"{outcome.steps} steps" if outcome.steps and args.shrink else ""
        print(
            f"{flaw:<30} {'found' if not outcome.passed else 'missed':<7} {seconds:6.1f} s "
            f"{steps:<9} {last}",
            flush=True,
        )
    print(f"the model found {found} of {len(flaws)} variants")


if __name__ == "__main__":
    main()

"""`python -m harness.flaws NAME`: serve the reference with one defect put back."""

from __future__ import annotations

import sys

from harness.flaws.variants import FLAWS
from reference_impl.__main__ import main


def run(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in FLAWS:
        print(
            f"usage: python -m harness.flaws NAME, NAME one of: {', '.join(FLAWS)}", file=sys.stderr
        )
        return 2
    return main(FLAWS[argv[0]])


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))

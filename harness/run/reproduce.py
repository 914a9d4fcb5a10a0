"""The one place a reproduction command is built: every report, the pytest
plugin and the selftest print a line a developer can paste into a shell."""

from __future__ import annotations

import shlex
from collections.abc import Sequence


def reproduce_command(target_args: Sequence[str], scenario_id: str, seed: int) -> str:
    """`tokenproof verify` with the target's options, one scenario and the seed,
    quoted for a POSIX shell (a `--target-command` with spaces stays one word)."""
    return shlex.join(
        ["tokenproof", "verify", *target_args, "--scenario", scenario_id, "--seed", str(seed)]
    )

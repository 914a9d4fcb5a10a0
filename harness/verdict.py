"""One verdict rule for every run (verify, load, selftest, the model), Jepsen's:
fail > error > pass. `error` is Jepsen's *unknown*: something could not be
decided (a checker crashed, a scenario could not run), and an undecided run is
never a pass (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

Verdict = Literal["pass", "fail", "error"]
_RANK: dict[Verdict, int] = {"pass": 0, "error": 1, "fail": 2}
EXIT_CODES: dict[Verdict, int] = {"pass": 0, "fail": 1, "error": 2}


def decide(*, violated: bool, undecided: bool) -> Verdict:
    """A violation fails; otherwise anything undecided is an error; else pass."""
    if violated:
        return "fail"
    return "error" if undecided else "pass"


def worst(verdicts: Iterable[Verdict]) -> Verdict:
    """The combined verdict of parts (no parts: pass)."""
    return max(verdicts, key=_RANK.__getitem__, default="pass")

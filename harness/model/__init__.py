"""Model-based runs: Hypothesis drives random operation sequences against a target
and compares it, after every step, with an in-memory model of what it should hold.
A failure prints the shrunk steps as runnable code, and the seed.

`machine` (the state machine: `base` with its helpers and invariant, the rules
in `payments` and `transfers`), `run` (Hypothesis settings, the run, its report),
`control` (progress, shrink budget, cancellation).
"""

from harness.model.control import (
    ModelCancelled,
    ShrinkBudgetSpent,
    Tally,
    step_count,
    steps_text,
)
from harness.model.machine import TokenModel
from harness.model.run import CI_PROFILE, ModelOutcome, deep_profile, run_model

__all__ = [
    "CI_PROFILE",
    "ModelCancelled",
    "ModelOutcome",
    "ShrinkBudgetSpent",
    "Tally",
    "TokenModel",
    "deep_profile",
    "run_model",
    "step_count",
    "steps_text",
]

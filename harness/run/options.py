"""Options a whole run passes to its scenarios: the model suite's budget, and where
long scenarios report progress."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

# The CI profile of the model suite: bounded so `verify` stays quick.
CI_MODEL_EXAMPLES = 25
CI_MODEL_STEPS = 10
# How long the model may shrink a failure before it reports the shortest failing
# sequence reached (a run that finds something stays near a clean run's time).
DEFAULT_SHRINK_S = 30.0


@dataclass(frozen=True)
class RunOptions:
    model_examples: int | None = None  # None: the CI profile's
    model_steps: int | None = None
    model_shrink_s: float | None = None  # None: DEFAULT_SHRINK_S
    # Team modules whose scenarios joined the run (reproduction commands name them).
    scenarios_from: tuple[str, ...] = ()
    # Where long scenarios report how far they are (the CLI prints it).
    on_progress: Callable[[str], None] = field(default=lambda _: None, compare=False)

    def __post_init__(self) -> None:
        for name in ("model_examples", "model_steps", "model_shrink_s"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1, not {value}")

    @property
    def examples(self) -> int:
        return self.model_examples or CI_MODEL_EXAMPLES

    @property
    def steps(self) -> int:
        return self.model_steps or CI_MODEL_STEPS

    @property
    def shrink_s(self) -> float:
        return self.model_shrink_s or DEFAULT_SHRINK_S

    @property
    def model_budget_factor(self) -> float:
        """How many times the CI profile's work a model run will do (at least 1):
        the model scenario's timeout grows by as much."""
        return max(1.0, self.examples * self.steps / (CI_MODEL_EXAMPLES * CI_MODEL_STEPS))

    def cli_args(self) -> list[str]:
        """The options that ask for this run again, for reproduction commands."""
        args = [a for module in self.scenarios_from for a in ("--scenarios-from", module)]
        return args + self.model_args()

    def model_args(self) -> list[str]:
        """The options that size the model suite."""
        args = []
        if self.model_examples is not None:
            args += ["--examples", str(self.model_examples)]
        if self.model_steps is not None:
            args += ["--steps", str(self.model_steps)]
        if self.model_shrink_s is not None:
            args += ["--shrink-seconds", f"{self.model_shrink_s:g}"]
        return args

"""What a model run keeps across examples: how far it got, the shortest failing
sequence it ran, and the signals that stop it (cancellation, shrink budget)."""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from dataclasses import dataclass, field

from harness.run.options import DEFAULT_SHRINK_S


class ShrinkBudgetSpent(BaseException):
    """Shrinking has used its time budget. A BaseException for the same reason as
    ModelCancelled: Hypothesis lets it through instead of shrinking it."""


class ModelCancelled(BaseException):
    """The run was cancelled (Ctrl-C, SIGTERM, a timeout). A BaseException so that
    Hypothesis does not take it for a failure to shrink, and lets it through."""


_RUN_TOKEN = secrets.token_hex(3)
_examples = itertools.count()


def user_prefix() -> str:
    """The prefix of one example's users: no two examples, in this run or any
    other on the same database, share a user."""
    return f"m{_RUN_TOKEN}{next(_examples)}-"


@dataclass
class Tally:
    """What a run did, for its report: examples run, model-vs-service checks, and
    the shortest failing sequence it ran (its `state.…` lines and the error)."""

    examples: int = 0
    checks: int = 0
    requests: int = 0  # sent to the service, in every example
    shortest_failure: tuple[list[str], str] | None = None
    last_failure: list[str] | None = None
    first_failure_at: float | None = None  # time.monotonic() of the first failure
    shrink_budget_s: float = DEFAULT_SHRINK_S
    # Set by cancel(): a run's own, so a cancel that lands before its thread has
    # even started is not lost (a module-wide flag was cleared by the next run).
    cancelled: threading.Event = field(default_factory=threading.Event)

    def cancel(self) -> None:
        """Ask the run (in another thread) to stop at its next step."""
        self.cancelled.set()

    def stop_if_cancelled(self) -> None:
        """Each step asks first, so a cancelled run stops within one step."""
        if self.cancelled.is_set():
            raise ModelCancelled

    def saw_failure(self, steps: list[str], error: BaseException) -> None:
        if self.first_failure_at is None:
            self.first_failure_at = time.monotonic()
        self.last_failure = list(steps)
        if self.shortest_failure is None or len(steps) < len(self.shortest_failure[0]):
            self.shortest_failure = (list(steps), f"{type(error).__name__}: {error}")

    def shrinking_over_budget(self) -> bool:
        return (
            self.first_failure_at is not None
            and time.monotonic() - self.first_failure_at > self.shrink_budget_s
        )

    def progress(self, budget: int, elapsed_s: float) -> str:
        """A progress line for a long run. Hypothesis runs a few more examples than
        it counts (invalid ones are not) and keeps running them while it shrinks,
        so the count may pass the budget; the line says when that is shrinking."""
        text = (
            f"{self.examples} examples run (budget {budget}), "
            f"{self.checks} model checks, {elapsed_s:.0f} s"
        )
        if self.shortest_failure is not None:
            steps = steps_text(step_count(self.shortest_failure[0]))
            text += f"; a failure was found, shrinking it (shortest failing run so far: {steps})"
        return text

    def shrunk_steps(self) -> int | None:
        """The length of the last failing sequence the machine logged: Hypothesis
        replays the shrunk example last, so that is the shrunk sequence."""
        return None if self.last_failure is None else step_count(self.last_failure)


def steps_text(count: int) -> str:
    return f"{count} step{'s' * (count != 1)}"


def step_count(steps: list[str]) -> int:
    """Rule calls in a logged sequence (the invariant's line is not a step)."""
    return sum(1 for s in steps if "state.service_matches_model(" not in s)

"""Running the model: Hypothesis settings (the CI profile and deep runs), the
run itself, and its report (the shrunk steps as runnable code)."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import HealthCheck, settings
from hypothesis import errors as hypothesis_errors

from harness.model.control import ShrinkBudgetSpent, Tally, step_count
from harness.model.machine import TokenModel
from harness.run.options import CI_MODEL_EXAMPLES, CI_MODEL_STEPS
from harness.target.start import Target

CI_PROFILE = settings(
    max_examples=CI_MODEL_EXAMPLES,
    stateful_step_count=CI_MODEL_STEPS,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)


def deep_profile(examples: int, steps: int) -> settings:
    return settings(CI_PROFILE, max_examples=examples, stateful_step_count=steps)


@dataclass(frozen=True)
class ModelOutcome:
    passed: bool
    text: str  # Hypothesis's report: the shrunk steps as code, and how to reproduce
    steps: int | None  # length of the shrunk sequence, when it failed
    tally: Tally = field(default_factory=Tally)


def run_model(
    target: Target, profile: settings = CI_PROFILE, *, seed: int = 1, tally: Tally | None = None
) -> ModelOutcome:
    """Run the state machine; `seed` picks the examples (the same seed, the same run).
    Pass a `tally` to watch the run's progress from another thread."""
    from hypothesis import seed as use_seed
    from hypothesis.reporting import with_reporter
    from hypothesis.stateful import run_state_machine_as_test

    lines: list[str] = []
    machine = use_seed(seed)(TokenModel.bind(target, tally))
    with with_reporter(lambda text: lines.append(str(text))):
        try:
            run_state_machine_as_test(machine, settings=profile)
        except ShrinkBudgetSpent:
            text, steps = _budget_report(machine.tally)
            return ModelOutcome(False, text, steps, machine.tally)
        except Exception as exc:  # the falsifying example(s), already shrunk
            text, steps = _report(exc, lines, machine.tally)
            return ModelOutcome(False, text, steps, machine.tally)
    return ModelOutcome(True, "\n".join(lines), None, machine.tally)


def _budget_report(tally: Tally) -> tuple[str, int | None]:
    """The shortest failing sequence reached when shrinking ran out of time."""
    assert tally.shortest_failure is not None, "the budget runs only after a failure"
    steps, error = tally.shortest_failure
    text = "\n".join(
        [
            f"Shrinking stopped after its budget of {tally.shrink_budget_s:g} s "
            "(--shrink-seconds raises it). The shortest failing sequence reached:",
            "state = TokenModelRun()",
            *steps,
            "state.teardown()",
            error,
        ]
    )
    return text, step_count(steps)


def _report(exc: BaseException, lines: list[str], tally: Tally) -> tuple[str, int | None]:
    """A failed run's report, led by what failed and the shortest steps that make it
    fail; Hypothesis's own words (its seed line, a `FlakyStrategyDefinition` or
    `FlakyFailure` it raised about the run itself) come only below them. The
    length of the shrunk sequence is counted from the machine's own step log
    (Hypothesis replays the shrunk example last). When Hypothesis printed no
    steps (it gives up shrinking a failure whose replay does not fail the same
    way: a race whose outcome varies), the shortest failing sequence the run
    logged stands in."""
    failures = _failures(exc)
    checks = [(notes, error) for notes, error in failures if not _from_hypothesis(error)]
    printed = [(notes, error) for notes, error in checks if any("state." in n for n in notes)]
    lead: list[str] = []
    own: list[str] = []
    steps: int | None = None
    if printed:
        for number, (notes, error) in enumerate(printed, start=1):
            if len(printed) > 1:
                lead.append(f"--- failure {number} of {len(printed)} ---")
            lead += [f"The model failed: {error}", "Shortest failing steps:"]
            lead += [n for n in notes if "state." in n]
            own += [n for n in notes if "state." not in n]
        steps = tally.shrunk_steps()
    elif tally.shortest_failure is not None:
        seen_steps, seen_error = tally.shortest_failure
        lead += [
            f"The model failed: {seen_error}",
            "Hypothesis could not shrink this failure: replaying the same steps did not "
            "always fail the same way (a race whose outcome varies). The shortest "
            "failing sequence it ran:",
            "state = TokenModelRun()",
            *seen_steps,
            "state.teardown()",
        ]
        steps = step_count(seen_steps)
    else:
        lead.append(f"The model failed: {(checks or failures)[0][1]}")
    for notes, error in failures:
        if (notes, error) not in printed:
            own += [*notes, error]
    below = [line for line in [*lines, *own] if line.strip()]
    if below:
        lead += ["", "Hypothesis's own report:", *below]
    return "\n".join(lead), steps


# What Hypothesis raises about the run itself (flakiness, health checks), as
# opposed to a check of the model failing.
_HYPOTHESIS_ERRORS = frozenset(
    name
    for name in dir(hypothesis_errors)
    if isinstance(getattr(hypothesis_errors, name), type)
    and issubclass(getattr(hypothesis_errors, name), BaseException)
)


def _from_hypothesis(error: str) -> bool:
    return error.split(":", 1)[0] in _HYPOTHESIS_ERRORS


def _failures(exc: BaseException) -> list[tuple[list[str], str]]:
    """Each distinct failure with its notes (Hypothesis attaches the steps as PEP 678
    notes). Several distinct failures, or a flaky one, come as an ExceptionGroup:
    its notes belong to the group, the steps to each sub-exception."""
    own = [str(n) for n in getattr(exc, "__notes__", [])]
    if isinstance(exc, BaseExceptionGroup):
        found = [f for sub in exc.exceptions for f in _failures(sub)]
        if found:
            notes, error = found[0]
            found[0] = (own + notes, error)
            return found
    return [(own, f"{exc.__class__.__name__}: {exc}")]

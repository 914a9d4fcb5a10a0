"""Running the model: Hypothesis settings (the CI profile and deep runs), the
run itself, and its report (the shrunk steps as runnable code)."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import HealthCheck, settings

from harness.model.control import ShrinkBudgetSpent, Tally, step_count
from harness.model.machine import TokenModel
from harness.options import CI_MODEL_EXAMPLES, CI_MODEL_STEPS
from harness.targets import Target

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
    """Hypothesis's report of a failed run, and the length of the shrunk sequence,
    counted from the machine's own step log (Hypothesis replays the shrunk example
    last). When Hypothesis prints no steps (it gives up shrinking a failure whose
    replay does not fail the same way, a race whose outcome varies), the shortest
    failing sequence the run logged stands in."""
    failures = _failures(exc)
    parts = list(lines)
    for number, (notes, error) in enumerate(failures, start=1):
        if len(failures) > 1:
            parts.append(f"--- failure {number} of {len(failures)} ---")
        parts += [*notes, error]
    printed = any("state." in note for notes, _ in failures for note in notes)
    steps = tally.shrunk_steps() if printed else None
    seen = tally.shortest_failure
    if steps is None and seen is not None:
        seen_steps, seen_error = seen
        parts += [
            "",
            "Hypothesis could not shrink this failure: replaying the same steps did not "
            "always fail the same way (a race whose outcome varies). The shortest "
            "failing sequence it ran:",
            "state = TokenModelRun()",
            *seen_steps,
            "state.teardown()",
            seen_error,
        ]
        steps = step_count(seen_steps)
    return "\n".join(parts), steps


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

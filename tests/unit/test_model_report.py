"""How a model failure's report is read out of Hypothesis's exceptions."""

from __future__ import annotations

from hypothesis.errors import FlakyStrategyDefinition

from harness.model import Tally, step_count
from harness.model.run import _budget_report, _failures, _report

# The machine's own log of a failing example: rule calls, then the invariant.
LOGGED = [
    "state.create_users(grants=[0, 0, 0, 0])",
    "state.burst(ops=[])",
    "keyed_0 = state.purchase(fan='fan0', method='pm_card_visa', tokens=100)",
    "state.service_matches_model()",
]
STEPS = "\n".join(
    [
        "state = TokenModelRun()",
        "state.create_users(grants=[0, 0, 0, 0])",
        "state.service_matches_model()",
        "state.burst(ops=[])",
        "keyed_0 = state.purchase(fan='fan0', method='pm_card_visa', tokens=100)",
        "state.teardown()",
    ]
)


def _noted(exc: Exception, *notes: str) -> Exception:
    for note in notes:
        exc.add_note(note)
    return exc


def test_one_failure_keeps_its_steps() -> None:
    [(notes, error)] = _failures(_noted(AssertionError("off by 5"), STEPS))
    assert error == "AssertionError: off by 5"
    assert notes == [STEPS]


def test_steps_are_counted_from_the_machines_log() -> None:
    # create_users, burst and purchase (a bundle assignment); not the invariant
    assert step_count(LOGGED) == 3


def test_distinct_failures_are_each_reported() -> None:
    group = ExceptionGroup(
        "Hypothesis found 2 distinct failures.",
        [
            _noted(AssertionError("a 500"), STEPS),
            _noted(AssertionError("no serial order"), STEPS + "\nstate.retry(request=keyed_0)"),
        ],
    )
    failures = _failures(_noted(group, "reproduce with seed 1"))
    assert [e for _, e in failures] == ["AssertionError: a 500", "AssertionError: no serial order"]
    assert failures[0][0][0] == "reproduce with seed 1"
    assert failures[1][0][-1].endswith("state.retry(request=keyed_0)")


def test_a_group_without_notes_still_names_its_errors() -> None:
    failures = _failures(ExceptionGroup("flaky", [ValueError("x")]))
    assert failures == [([], "ValueError: x")]


def _tally(*failing: list[str]) -> Tally:
    tally = Tally()
    for steps in failing:
        tally.saw_failure(steps, AssertionError("service != model"))
    return tally


def test_the_shrunk_length_is_the_last_logged_failure() -> None:
    """Hypothesis replays the shrunk example last: its log is the shrunk sequence."""
    tally = _tally(["state.create_users(grants=[1, 0, 0, 0])"], LOGGED)
    text, steps = _report(_noted(AssertionError("off by 5"), STEPS), [], tally)
    assert steps == 3
    assert "could not shrink" not in text


def test_a_failure_hypothesis_could_not_shrink_leads_with_the_check_and_the_logged_sequence() -> (
    None
):
    """Hypothesis gives up on a race whose replay passes (FlakyStrategyDefinition) and
    reports no steps; the report leads with the failing check and the shortest
    failing sequence the run logged, and Hypothesis's own words come below."""
    flaky = _noted(
        FlakyStrategyDefinition("Inconsistent data generation!"), "state = TokenModelRun()"
    )
    logged = [
        "state.create_users(grants=[2, 0, 0, 0])",
        "state.burst(ops=[('tip', 'star0', 'star1', 1), ('tip', 'fan0', 'star0', 1)])",
        "state.service_matches_model()",
    ]
    text, steps = _report(flaky, ["seed 1"], _tally(logged))
    assert steps == 2
    lines = text.splitlines()
    assert lines[0] == "The model failed: AssertionError: service != model"
    assert lines[2:7] == ["state = TokenModelRun()", *logged, "state.teardown()"]
    below = lines[lines.index("Hypothesis's own report:") :]
    assert "seed 1" in below
    assert "FlakyStrategyDefinition: Inconsistent data generation!" in below


def test_a_shrunk_failure_leads_with_its_check_and_steps() -> None:
    tally = _tally(LOGGED)
    text, _steps = _report(_noted(AssertionError("off by 5"), STEPS), ["seed 1"], tally)
    assert text.splitlines()[:3] == [
        "The model failed: AssertionError: off by 5",
        "Shortest failing steps:",
        STEPS.splitlines()[0],
    ]
    assert text.index("off by 5") < text.index("seed 1")


def test_no_steps_and_nothing_logged_reports_no_length() -> None:
    text, steps = _report(RuntimeError("flaky"), [], Tally())
    assert steps is None and text.startswith("The model failed: RuntimeError: flaky")


def test_progress_says_when_the_run_is_shrinking() -> None:
    tally = Tally(examples=30, checks=120)
    assert tally.progress(25, 14.6) == "30 examples run (budget 25), 120 model checks, 15 s"
    tally.saw_failure(LOGGED, AssertionError("off by 5"))
    assert tally.progress(25, 20).endswith(
        "; a failure was found, shrinking it (shortest failing run so far: 3 steps)"
    )


def test_shrinking_stops_at_its_budget_with_the_shortest_sequence_reached() -> None:
    import time

    tally = Tally(shrink_budget_s=30)
    assert not tally.shrinking_over_budget()  # no failure yet: no clock running
    long = ["state.create_users(grants=[0, 0, 0, 0])", "state.burst(ops=[])", "state.burst(ops=[])"]
    tally.saw_failure(long, AssertionError("off by 5"))
    tally.saw_failure(long[:2], AssertionError("off by 3"))
    assert not tally.shrinking_over_budget()
    assert tally.first_failure_at is not None
    tally.first_failure_at = time.monotonic() - 31
    assert tally.shrinking_over_budget()
    text, steps = _budget_report(tally)
    assert steps == 2
    assert "budget of 30 s" in text and "AssertionError: off by 3" in text

"""How a model failure's report is read out of Hypothesis's exceptions."""

from __future__ import annotations

from harness.model import _failures, _step_count

STEPS = "\n".join(
    [
        "state = TokenModelRun()",
        "state.create_users(grants=[0, 0, 0, 0])",
        "state.service_matches_model()",
        "state.burst(ops=[])",
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
    assert _step_count(notes) == 2  # create_users and burst; not the invariant or teardown


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
    assert [_step_count(n) for n, _ in failures] == [2, 3]


def test_a_group_without_notes_still_names_its_errors() -> None:
    failures = _failures(ExceptionGroup("flaky", [ValueError("x")]))
    assert failures == [([], "ValueError: x")]

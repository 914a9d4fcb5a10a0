"""Grouping violations into problems (harness.problems) on hand-made violations."""

from __future__ import annotations

from typing import Any

import pytest

from harness.checkers.result import Violation
from harness.problems import group, kind_of

pytestmark = pytest.mark.unit


def v(invariant: str, message: str = "x", **evidence: Any) -> Violation:
    return Violation(invariant, message, evidence)


TIP_ROWS = [{"type": "grant"}, {"type": "tip"}]
BUY_ROWS = [{"type": "purchase"}, {"type": "purchase"}]


def test_consequences_join_the_cause_in_their_scenario() -> None:
    """An accepted bad amount moves tokens: the ledger and the answers disagree
    too, but that is one defect."""
    problems = group(
        [
            ("inputs/tip-bodies", [v("bad-input-refused"), v("answers-match-ledger", kind="tip")]),
            ("inputs/deduct-bodies", [v("bad-input-changes-nothing")]),
        ]
    )
    [problem] = problems
    assert problem.kind == "bad-input"
    assert problem.scenarios == ["inputs/tip-bodies", "inputs/deduct-bodies"]
    assert problem.invariants == [
        "answers-match-ledger",
        "bad-input-changes-nothing",
        "bad-input-refused",
    ]


def test_a_consequence_alone_is_a_problem_of_its_own_by_route() -> None:
    problems = group(
        [
            ("race/drain", [v("ledger-explains-balance", rows=TIP_ROWS)]),
            ("webhooks/duplicates", [v("ledger-explains-balance", rows=BUY_ROWS)]),
        ]
    )
    assert sorted(p.kind for p in problems) == ["ledger:purchase", "ledger:transfer"]
    assert all(len(p.scenarios) == 1 for p in problems)


def test_the_same_defect_across_scenarios_is_one_problem() -> None:
    problems = group(
        [(f"race/s{i}", [v("ledger-explains-balance", rows=TIP_ROWS)]) for i in range(4)]
    )
    assert len(problems) == 1 and len(problems[0].scenarios) == 4


def test_lost_and_double_credits_are_different_problems() -> None:
    lost = v("credited-exactly-once", rows=[])
    double = v("credited-exactly-once", rows=[1, 2])
    assert kind_of(lost) != kind_of(double)


def test_answers_for_keyed_calls_are_a_key_problem() -> None:
    keyed = {"args": {"clientIdempotencyKey": "k1"}}
    assert kind_of(v("answers-match-ledger", kind="tip", ops=[keyed])) == "client-keys:transfer"
    assert kind_of(v("answers-match-ledger", kind="tip", ops=[{"args": {}}])) == "answers:transfer"


def test_a_violation_no_family_knows_is_shown_as_its_own_problem() -> None:
    [problem] = group([("team/x", [v("big-pack-bonus-credited", "no bonus")])])
    assert problem.kind == "big-pack-bonus-credited"
    assert "no bonus" in problem.headline


def test_two_defects_in_one_run_are_two_problems() -> None:
    problems = group(
        [
            ("security/refused-tokens", [v("exp-required"), v("bad-token-changes-nothing")]),
            (
                "race/drain",
                [v("ledger-explains-balance", rows=TIP_ROWS), v("no-5xx", op={"f": "tip"})],
            ),
            ("webhooks/duplicates", [v("ledger-explains-balance", rows=BUY_ROWS)]),
        ]
    )
    assert sorted(p.kind for p in problems) == [
        "ledger:purchase",
        "ledger:transfer",
        "token-without-exp",
    ]


def test_rows_still_changing_join_the_ledger_problem_they_come_with() -> None:
    """A late double credit: one scenario sees the ledger off and the rows still
    changing at the deadline, another only the ledger off. One defect."""
    problems = group(
        [
            ("faults/slow", [v("state-converges"), v("ledger-explains-balance", rows=BUY_ROWS)]),
            ("faults/outage", [v("ledger-explains-balance", rows=BUY_ROWS)]),
        ]
    )
    assert [p.kind for p in problems] == ["ledger:purchase"]


def test_a_model_failure_joins_the_problem_its_failing_step_shows() -> None:
    """The model found the lost update too: its failing step was a burst of tips
    and only the balances disagreed, so it is the transfers' ledger problem."""
    problems = group(
        [
            ("race/drain", [v("ledger-explains-balance", rows=TIP_ROWS)]),
            (
                "model/state-machine",
                [v("model-matches-service", failed_checks=[], route="transfer")],
            ),
        ]
    )
    assert [p.kind for p in problems] == ["ledger:transfer"]
    named = v("model-matches-service", failed_checks=["no-self-transfer"], route="transfer")
    assert kind_of(named) == "self-transfer"
    assert kind_of(v("model-matches-service")) == "model"


@pytest.mark.parametrize("order", [1, -1])
def test_a_partial_transfer_is_one_problem_whichever_row_the_cut_left_out(order: int) -> None:
    """A transfer that is not atomic, cut by two faults: one cut leaves the
    earnings short and the ledger off, the other only the ledger off. The
    second joins the first's cause, in either order."""
    seen = [
        ("faults/db-killed", [v("total-earned"), v("ledger-explains-balance", rows=TIP_ROWS)]),
        ("faults/service-killed", [v("ledger-explains-balance", rows=TIP_ROWS)]),
    ][::order]
    [problem] = group(seen)
    assert problem.kind == "transfer-accounting"
    assert sorted(problem.scenarios) == ["faults/db-killed", "faults/service-killed"]


def test_a_consequence_alone_joins_no_cause_it_cannot_be_sure_of() -> None:
    """Seen with two causes, or with a cause about other routes, a consequence
    alone stays a problem of its own."""
    two = group(
        [
            ("a", [v("total-earned"), v("ledger-explains-balance", rows=TIP_ROWS)]),
            ("b", [v("no-self-transfer"), v("ledger-explains-balance", rows=TIP_ROWS)]),
            ("c", [v("ledger-explains-balance", rows=TIP_ROWS)]),
        ]
    )
    assert sorted(p.kind for p in two) == [
        "ledger:transfer",
        "self-transfer",
        "transfer-accounting",
    ]
    other_routes = group(
        [
            ("a", [v("total-earned"), v("ledger-explains-balance", rows=BUY_ROWS)]),
            ("b", [v("ledger-explains-balance", rows=BUY_ROWS)]),
        ]
    )
    assert sorted(p.kind for p in other_routes) == ["ledger:purchase", "transfer-accounting"]
    unrouted = group(
        [
            ("a", [v("exp-required"), v("no-5xx", op={"f": "tip"})]),
            ("b", [v("no-5xx", op={"f": "tip"})]),
        ]
    )
    assert sorted(p.kind for p in unrouted) == ["no-5xx:transfer", "token-without-exp"]

"""The checker runner: a crashing checker is `unknown`, never a pass."""

from __future__ import annotations

import pytest

from harness import checkers
from harness.checkers import Observation, check
from harness.checkers.fold import OpFold, OpsAt, StateCheck
from harness.history import History, Op
from harness.state import DbState, StripeState


def test_a_crashing_checker_is_unknown_with_its_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def boom(_: Observation) -> checkers.CheckResult:
        raise KeyError("paymentIntentId")

    monkeypatch.setitem(checkers.CHECKERS, "boom", lambda: StateCheck("boom", boom))
    empty = Observation([], DbState((), (), (), ()), StripeState((), (), (), ()))
    (result,) = check(empty, ["boom"])
    assert result.validity == "unknown"
    assert not result.violations
    assert result.error is not None and "KeyError" in result.error


def test_an_unknown_checker_name_is_a_named_error() -> None:
    empty = Observation([], DbState((), (), (), ()), StripeState((), (), (), ()))
    with pytest.raises(checkers.UnknownChecker, match="choose from"):
        check(empty, ["nope"])


class CrashesOnPurchase(OpFold):
    name = "crashes_on_purchase"

    def feed(self, op: Op) -> None:
        if op.f == "purchase":
            raise ValueError("no such field")

    def finish(self, observation: Observation, ops_at: OpsAt) -> checkers.CheckResult:
        return checkers.CheckResult.of(self.name, 1, [])


def test_a_checker_that_crashes_while_folding_is_unknown_and_the_others_go_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(checkers.CHECKERS, "crashes_on_purchase", CrashesOnPurchase)
    history = History()
    history.complete(history.invoke("w", "purchase", "fan", {}), 500)
    stream = checkers.Checks(["crashes_on_purchase", "no_server_errors"])
    for op in history.ops:
        stream.feed(op)
    assert [v.invariant for v in stream.early()] == ["no-5xx"]
    empty = Observation([], DbState((), (), (), ()), StripeState((), (), (), ()))
    crashed, errors = stream.finish(empty, lambda _: {})
    assert crashed.validity == "unknown" and crashed.error and "ValueError" in crashed.error
    assert errors.validity == "invalid"

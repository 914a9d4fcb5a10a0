"""The checker runner: a crashing checker is `unknown`, never a pass."""

from __future__ import annotations

import pytest

from harness import checkers
from harness.checkers import Observation, check
from harness.state import DbState, StripeState


def test_a_crashing_checker_is_unknown_with_its_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def boom(_: Observation) -> checkers.CheckResult:
        raise KeyError("paymentIntentId")

    monkeypatch.setitem(checkers.CHECKERS, "boom", boom)
    empty = Observation([], DbState((), (), (), ()), StripeState((), (), (), ()))
    (result,) = check(empty, ["boom"])
    assert result.validity == "unknown"
    assert not result.violations
    assert result.error is not None and "KeyError" in result.error


def test_an_unknown_checker_name_is_a_named_error() -> None:
    empty = Observation([], DbState((), (), (), ()), StripeState((), (), (), ()))
    with pytest.raises(checkers.UnknownChecker, match="choose from"):
        check(empty, ["nope"])

"""The public scenario API: misuse is a named error that says what to do."""

from __future__ import annotations

import pytest

from harness import api
from harness.contract import TEAM_INVARIANTS, citation
from harness.run.scenario import REGISTRY, define


async def _documented(run: api.Run) -> None:
    """Forces nothing; checks nothing."""


def test_a_scenario_must_be_async_and_documented() -> None:
    def sync(run: api.Run) -> None:
        """A docstring."""

    async def undocumented(run: api.Run) -> None:
        pass

    with pytest.raises(api.ScenarioDefinitionError, match="async def"):
        define(sync, "team", users=[])  # type: ignore[arg-type]
    with pytest.raises(api.ScenarioDefinitionError, match="needs a docstring"):
        define(undocumented, "team", users=[])


def test_a_user_named_twice_is_refused() -> None:
    with pytest.raises(api.ScenarioDefinitionError, match="'fan' twice"):
        define(_documented, "team", users=[api.fan("fan"), api.creator("fan")])


def test_unknown_checkers_are_refused_with_the_known_ones() -> None:
    with pytest.raises(api.ScenarioDefinitionError, match="choose from"):
        define(_documented, "team", users=[], checkers=("nope",))


def test_the_same_id_twice_is_refused() -> None:
    async def twice(run: api.Run) -> None:
        """First."""

    api.scenario("team-unit", users=[])(twice)
    try:

        async def twice_(run: api.Run) -> None:
            """Second."""

        twice_.__name__ = "twice"
        with pytest.raises(api.ScenarioDefinitionError, match="defined twice"):
            api.scenario("team-unit", users=[])(twice_)
    finally:
        REGISTRY.pop("team-unit/twice", None)


def test_team_invariants_cite_their_own_rule() -> None:
    try:
        api.invariant("bonus-shown", "Our rule: the bonus shows in the purchase answer.")
        assert citation("bonus-shown").section == "team"
        with pytest.raises(api.InvariantDefinitionError, match="one of the contract"):
            api.invariant("no-negative-balance", "Mine.")
    finally:
        TEAM_INVARIANTS.pop("bonus-shown", None)


def test_scenario_test_makes_a_pytest_function_that_verify_can_load_too() -> None:
    @api.scenario_test(users=[api.fan("fan", 10)])
    async def test_tip_nothing(run: api.Run) -> None:
        """A fan with 10 tokens reads its balance."""
        await run.balance("fan")

    assert test_tip_nothing.__name__ == "test_tip_nothing"
    item = test_tip_nothing.tokenproof_scenario  # type: ignore[attr-defined]
    assert item.id == "team/tip-nothing"

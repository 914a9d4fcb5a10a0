"""The scenario API: everything a team needs to write scenarios of its own.

A scenario is an `async def` over a `Run`, registered with `@scenario`. It
gets every checker of the bundled suites for free (no double credit, no
double charge, no negative balance, no lost credit, a ledger that explains
every balance, no 5xx, answers that match the ledger, ...) and may add
expectations of its own with `run.expect`::

    from harness.api import Run, creator, fan, invariant, scenario

    invariant("bonus-paid", "Our rule: a purchase of 5000 or more gets 5% bonus tokens.")

    @scenario("team", users=[fan("fan"), creator("star")])
    async def bonus_on_big_purchase(run: Run) -> None:
        "What it forces; what it checks."
        await run.purchase("fan", 5000)
        await run.settled()
        balance = await run.balance("fan")
        run.expect(balance.body["balance"] == 5250, "bonus-paid", f"balance {balance.body}")

Run such a module with `tokenproof verify --scenarios-from mypkg.scenarios`
(it joins the bundled suites in the report, JUnit and reproduction commands),
or turn a function in a pytest file into a test with `@scenario_test(...)`.

This module is the stable surface: its names keep their meaning across
releases; anything imported from elsewhere in `harness` may change.
"""

from __future__ import annotations

from harness.checkers import ALLOW_5XX, CHECKERS
from harness.contract import (
    ROUTES,
    InvariantDefinitionError,
    invariant,
    purchase_body,
    transfer_body,
)
from harness.run.context import Run, ScenarioCouldNotRun
from harness.run.gates import ContentionGate, GateNotFilled
from harness.run.runner import ScenarioNeverCalledTarget, ScenarioReport
from harness.run.scenario import (
    Scenario,
    ScenarioDefinitionError,
    creator,
    fan,
    load_scenarios_from,
    scenario,
    stranger,
)
from harness.target.client import Answer
from harness.target.emulator_client import EmulatorClient
from harness.testing import scenario_test

__all__ = [
    "ALLOW_5XX",
    "CHECKERS",
    "ROUTES",
    "Answer",
    "ContentionGate",
    "EmulatorClient",
    "GateNotFilled",
    "InvariantDefinitionError",
    "Run",
    "Scenario",
    "ScenarioCouldNotRun",
    "ScenarioDefinitionError",
    "ScenarioNeverCalledTarget",
    "ScenarioReport",
    "creator",
    "fan",
    "invariant",
    "load_scenarios_from",
    "purchase_body",
    "scenario",
    "scenario_test",
    "stranger",
    "transfer_body",
]

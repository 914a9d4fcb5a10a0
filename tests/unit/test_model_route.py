"""A model failure joins the problem of the route its failing step used."""

from __future__ import annotations

import pytest

from scenarios.model import _what_failed

pytestmark = pytest.mark.unit

STEPS = "state = TokenModelRun()\nstate.create_users(grants=[100, 100, 100, 100])\n{}\n"


@pytest.mark.parametrize(
    ("step", "route"),
    [
        (
            "state.double_submit(amount=0, copies=4, creator='star0', f='purchase', fan='fan0')",
            "purchase",
        ),
        (
            "state.double_submit(amount=5, copies=2, creator='star0', f='tip', fan='fan0')",
            "transfer",
        ),
        ("state.database_connections_killed(amount=5, tips=3)", "transfer"),
        ("state.purchase(fan='fan0', method='pm_card_visa', tokens=100)", "purchase"),
    ],
)
def test_the_route_of_the_failing_step(step: str, route: str) -> None:
    assert _what_failed(STEPS.format(step))["route"] == route

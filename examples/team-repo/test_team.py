"""Our own tokenproof scenarios: the rules that are ours, not the contract's.

`pytest` runs each as a test against the service in tokenproof.toml; `tokenproof
verify` runs them beside the bundled suites (`scenarios-from` in the config).
Each gets every bundled checker for free; `run.expect` adds our own rules.
"""

from __future__ import annotations

from harness.api import Run, creator, fan, invariant, scenario_test

BIG_PACK = invariant(
    "big-pack-bonus-credited",
    "Pricing page: the 5000-token pack credits 5250 tokens (5% bonus) once paid.",
)
TIP_ALL = invariant(
    "whole-balance-can-be-tipped",
    "Support FAQ: a fan may tip everything they hold, down to zero.",
)


@scenario_test("team", users=[fan("buyer")])
async def test_big_pack_bonus(run: Run) -> None:
    """A fan buys the 5000-token pack with a card: once Stripe's webhooks have
    settled, the balance shows the pack and its 5% bonus."""
    answer = await run.purchase("buyer", 5000)
    run.require(answer.status == 200, f"the purchase answered {answer.status} {answer.body}")
    await run.settled()
    balance = await run.balance("buyer")
    shown = balance.body.get("balance") if isinstance(balance.body, dict) else None
    run.expect(shown == 5250, BIG_PACK, f"after the 5000 pack the balance is {shown}, not 5250")


@scenario_test("team", users=[fan("fan", 120), creator("star")])
async def test_tip_whole_balance(run: Run) -> None:
    """A fan with 120 tokens tips all 120 to a creator: accepted, and the fan is
    left with zero."""
    answer = await run.tip("fan", "star", 120)
    run.expect(answer.status == 200, TIP_ALL, f"tipping the whole balance answered {answer.status}")
    balance = await run.balance("fan")
    shown = balance.body.get("balance") if isinstance(balance.body, dict) else None
    run.expect(shown == 0, TIP_ALL, f"after tipping everything the balance is {shown}")

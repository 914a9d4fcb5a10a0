"""A scenario whose requests are still unanswered when its time runs out fails
with service-stalled (the pending requests and the database sessions), not
with a harness timeout."""

from __future__ import annotations

import asyncio

from harness.run.context import Run
from harness.run.runner import run_scenario
from harness.run.scenario import define, fan
from harness.target.start import Target


async def _purchase_behind_a_stalled_stripe(run: Run) -> None:
    """Stripe takes longer than the scenario may: the purchase never answers in time."""
    run.stripe.add_fault("latency", latency_s=5.0, path="^/v1/payment_intents$")
    await run.purchase("fan", 100)


def test_unanswered_requests_at_the_deadline_are_a_stall(reference_target: Target) -> None:
    item = define(_purchase_behind_a_stalled_stripe, "stall", users=[fan("fan")], timeout_s=1.0)
    report = asyncio.run(run_scenario(reference_target, item, seed=1, run_id="stall"))
    stalled = [v for v in report.violations if v.invariant == "service-stalled"]
    assert report.status == "fail", report.error
    assert len(stalled) == 1
    assert [op["f"] for op in stalled[0].evidence["pending"]] == ["purchase"]
    assert "database_sessions" in stalled[0].evidence
    assert report.error is None  # a finding, not a harness timeout

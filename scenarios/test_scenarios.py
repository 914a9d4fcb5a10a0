"""Every registered scenario as a pytest test: `pytest scenarios/` and
`tokenproof verify` run the same scenarios through the same runner."""

from __future__ import annotations

import asyncio

import pytest

from harness.reproduce import reproduce_command
from harness.runner import ScenarioReport, run_scenario
from harness.scenario import Scenario, select
from harness.targets import Target, TargetSpec

ALL = select(None)


def _explain(report: ScenarioReport, spec: TargetSpec) -> str:
    lines = [f"{report.scenario.id}: {report.status}"]
    if report.error:
        lines.append(report.error)
    for v in report.violations[:10]:
        lines.append(f"  {v.invariant}: {v.message}")
    lines.append(
        "reproduce: " + reproduce_command(spec.cli_args(), report.scenario.id, report.seed)
    )
    return "\n".join(lines)


@pytest.mark.parametrize("item", ALL, ids=[s.id for s in ALL])
def test_scenario(
    item: Scenario,
    tokenproof_target: Target,
    tokenproof_target_spec: TargetSpec,
    tokenproof_run_id: str,
    request: pytest.FixtureRequest,
) -> None:
    seed = request.config.getoption("--tokenproof-seed")
    report = asyncio.run(run_scenario(tokenproof_target, item, seed=seed, run_id=tokenproof_run_id))
    assert report.status == "pass", _explain(report, tokenproof_target_spec)

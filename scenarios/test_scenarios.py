"""Every registered scenario as a pytest test: `pytest scenarios/` and
`tokenproof verify` run the same scenarios through the same runner."""

from __future__ import annotations

import asyncio

import pytest

from harness.runner import run_scenario
from harness.scenario import Scenario, select
from harness.targets import Target, TargetSpec
from harness.testing import explain


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """The bundled scenarios and those of `--scenarios-from`, each named
    `tokenproof::suite/name`."""
    if "item" in metafunc.fixturenames:
        chosen = select(None, metafunc.config.getoption("--scenarios-from"))
        metafunc.parametrize("item", chosen, ids=[f"tokenproof::{s.id}" for s in chosen])


def test_scenario(
    item: Scenario,
    tokenproof_target: Target,
    tokenproof_target_spec: TargetSpec,
    tokenproof_run_id: str,
    request: pytest.FixtureRequest,
) -> None:
    seed = request.config.getoption("--tokenproof-seed")
    report = asyncio.run(run_scenario(tokenproof_target, item, seed=seed, run_id=tokenproof_run_id))
    modules = request.config.getoption("--scenarios-from")
    extra = [a for m in modules for a in ("--scenarios-from", m)]
    if report.status != "pass":
        pytest.fail(explain(report, tokenproof_target_spec, extra), pytrace=False)

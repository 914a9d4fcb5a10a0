"""The verify loop on a service at --target-url that stops answering: reported
once, on the scenario it went down in; the ones after it are not run until it
answers again. The target and the scenario runs are faked: only the loop's
and the supervisor's logic is under test."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from harness.checkers import CheckResult
from harness.dialect import CONTRACT
from harness.run import verify as verify_module
from harness.run.runner import ScenarioReport
from harness.run.scenario import Scenario
from harness.target.supervise import Supervisor


async def _noop(run: Any) -> None:
    return None


class _Target:
    """Answers GET /health until told otherwise."""

    name = "url: http://127.0.0.1:1"
    base_url = "http://127.0.0.1:1"
    process = None
    dialect = CONTRACT

    def __init__(self, answering: list[bool]) -> None:
        self.answering = answering

    async def answers(self, within: float = 5.0) -> bool:
        return self.answering.pop(0)

    def crash_report(self) -> None:
        return None  # started by nobody: it cannot exit under tokenproof's eyes


def test_a_service_that_stops_answering_is_reported_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def run_scenario(
        target: Any, item: Scenario, *, supervisor: Supervisor, **kwargs: Any
    ) -> ScenarioReport:
        # As the runner ends every scenario: what happened to the service.
        report = ScenarioReport(item, "pass", 1, 0.1)
        if found := await supervisor.findings(item.id, []):
            report.results.append(CheckResult.of("service", 1, found))
            report.status = "fail"
        return report

    monkeypatch.setattr(verify_module, "run_scenario", run_scenario)
    scenarios = [Scenario(f"s{i}", "race", (), _noop, "doc") for i in range(4)]
    # After s0: up. After s1: down. Before s2: still down. Before s3: back.
    target = _Target([True, False, False, True, True])
    report = asyncio.run(verify_module.verify(target, scenarios, seed=1))  # type: ignore[arg-type]
    statuses = [(s.scenario.name, s.status) for s in report.scenarios]
    assert statuses == [("s0", "pass"), ("s1", "fail"), ("s2", "error"), ("s3", "pass")]
    assert [v.invariant for v in report.scenarios[1].violations] == ["service-unreachable"]
    assert report.scenarios[2].error == "not run: the service stopped answering during race/s1"
    assert report.verdict == "fail"

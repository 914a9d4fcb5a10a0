"""The library API behind `tokenproof verify`, the pytest plugin and the benchmarks.

spec = TargetSpec("reference")
with open_target(spec, PostgresSettings.resolve()) as target:
    report = asyncio.run(verify(target, select(["race"]), seed=1))
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from harness.checkers import CheckResult, Violation
from harness.report import RunReport
from harness.run.options import RunOptions
from harness.run.runner import ScenarioReport, run_scenario
from harness.run.scenario import Scenario
from harness.target.start import Target, TargetSpec, open_target

__all__ = ["TargetSpec", "open_target", "verify"]


def unreachable(target: Target) -> Violation:
    return Violation(
        "service-unreachable",
        f"the service at {target.base_url} stopped answering GET /health during this "
        "scenario; later scenarios run only once it answers again",
        {"url": target.base_url},
    )


async def verify(
    target: Target,
    scenarios: list[Scenario],
    *,
    seed: int,
    spec: TargetSpec | None = None,
    run_id: str | None = None,
    options: RunOptions | None = None,
    on_start: Callable[[Scenario], None] = lambda _: None,
    on_done: Callable[[ScenarioReport], None] = lambda _: None,
) -> RunReport:
    run_id = run_id or secrets.token_hex(3)
    reports: list[ScenarioReport] = []
    went_down_in: str | None = None  # a service at --target-url that stopped answering
    for item in scenarios:
        on_start(item)
        if went_down_in is not None and not await target.answers():
            report = ScenarioReport(item, "error", seed, 0.0)
            report.error = f"not run: the service stopped answering during {went_down_in}"
        else:
            went_down_in = None
            report = await run_scenario(target, item, seed=seed, run_id=run_id, options=options)
            if target.process is None and not await target.answers():
                # Reported once, on the scenario it went down in; the ones after
                # it are listed as not run rather than failing request by request.
                went_down_in = item.id
                report.results.append(CheckResult.of("service", 1, [unreachable(target)]))
                report.status = "fail"
        reports.append(report)
        on_done(report)
    command = (spec or TargetSpec("reference")).cli_args() + (options or RunOptions()).cli_args()
    return RunReport(target.name, seed, run_id, reports, command)

"""The library API behind `tokenproof verify`, the pytest plugin and the benchmarks.

spec = TargetSpec("reference")
with open_target(spec, PostgresSettings.resolve()) as target:
    report = asyncio.run(verify(target, select(["race"]), seed=1))
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from harness.dialect.model import Dialect
from harness.report import RunReport
from harness.run.options import RunOptions
from harness.run.runner import ScenarioReport, run_scenario
from harness.run.scenario import Scenario
from harness.target.start import Target, TargetSpec, open_target
from harness.target.supervise import Supervisor

__all__ = ["TargetSpec", "open_target", "verify"]


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
    supervisor = Supervisor(target)  # across scenarios: a service that went down stays known
    for item in scenarios:
        on_start(item)
        if (why := await supervisor.not_ready()) is not None:
            report = ScenarioReport(item, "error", seed, 0.0)
            report.error = why
        else:
            report = await run_scenario(
                target, item, seed=seed, run_id=run_id, options=options, supervisor=supervisor
            )
        reports.append(report)
        on_done(report)
    command = (spec or TargetSpec("reference")).cli_args() + (options or RunOptions()).cli_args()
    return RunReport(target.name, seed, run_id, reports, command, spoken(target.dialect))


def spoken(dialect: Dialect) -> dict[str, Any] | None:
    """What a report says of a target's dialect: its routes and answer fields in
    the service's words (None for the contract's own)."""
    if dialect.is_contract:
        return None
    return {
        "name": dialect.name,
        "file": dialect.source,
        "routes": {name: str(route) for name, route in dialect.routes.items()},
        "answers": {route: dict(fields) for route, fields in dialect.answers.items()},
    }

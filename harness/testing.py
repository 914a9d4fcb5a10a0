"""pytest support for a team's own scenarios: `@scenario_test` turns an `async
def` over a `Run` into a test that runs against the target the tokenproof
plugin provides and gets every checker for free."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import pytest

from harness.run.options import RunOptions
from harness.run.reproduce import reproduce_command
from harness.run.scenario import DEFAULT_TIMEOUT_S, SCENARIO_ATTRIBUTE, Scenario, define
from harness.target.users import UserSpec

if TYPE_CHECKING:
    from harness.run.context import Run
    from harness.run.runner import ScenarioReport
    from harness.target.start import TargetSpec


def explain(report: ScenarioReport, spec: TargetSpec, extra_args: Sequence[str] = ()) -> str:
    """A failed scenario as a person reads it: the error, each violation, and a
    reproduction line that pastes into a shell."""
    lines = [f"{report.scenario.id}: {report.status}"]
    if report.error:
        lines.append(report.error)
    for v in report.violations[:10]:
        lines.append(f"  {v.invariant}: {v.message}")
    args = [*spec.cli_args(), *extra_args]
    lines.append(f"reproduce: {reproduce_command(args, report.scenario.id, report.seed)}")
    return "\n".join(lines)


def scenario_test(
    suite: str = "team",
    *,
    users: Sequence[UserSpec],
    checkers: tuple[str, ...] | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Callable[[Callable[[Run], Awaitable[None]]], Callable[..., None]]:
    """Make a pytest test of a scenario: name it `test_...`, give it a docstring,
    and run pytest with the tokenproof plugin's target options (`--target`,
    `--target-command`, ...). The same function also joins `tokenproof verify
    --scenarios-from your.module`."""

    def wrap(body: Callable[[Run], Awaitable[None]]) -> Callable[..., None]:
        item = define(body, suite, users=users, checkers=checkers, timeout_s=timeout_s)

        def test(request: Any) -> None:
            run_as_test(request, item, [body.__module__])

        test.__name__ = body.__name__
        test.__qualname__ = body.__qualname__
        test.__doc__ = body.__doc__
        test.__module__ = body.__module__
        setattr(test, SCENARIO_ATTRIBUTE, item)
        return test

    return wrap


def run_as_test(request: pytest.FixtureRequest, item: Scenario, modules: Sequence[str]) -> None:
    """Run `item` on the plugin's target; if it does not pass, fail the test with
    what went wrong and a reproduction command (`modules`: its --scenarios-from)."""
    from harness.run.runner import run_scenario

    target = request.getfixturevalue("tokenproof_target")
    spec = request.getfixturevalue("tokenproof_target_spec")
    run_id = request.getfixturevalue("tokenproof_run_id")
    seed = request.config.getoption("--tokenproof-seed")
    report = asyncio.run(run_scenario(target, item, seed=seed, run_id=run_id))
    if report.status != "pass":
        extra = RunOptions(scenarios_from=tuple(modules)).cli_args()
        # The harness's own frames say nothing to the reader: no traceback.
        pytest.fail(explain(report, spec, extra), pytrace=False)

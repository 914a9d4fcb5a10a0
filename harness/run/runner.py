"""Run a scenario against a target: users, ops recorded into a history, settle,
collect, check. Each scenario sees only its own users (named with a per-run
prefix), so scenarios can share one service and one database."""

from __future__ import annotations

import asyncio
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, TypeVar

import asyncpg

from harness.checkers import CheckResult, Violation, check
from harness.errors import TokenproofError
from harness.history import History, Op
from harness.run.context import Run
from harness.run.options import RunOptions
from harness.run.scenario import Scenario
from harness.run.settle import settle
from harness.run.stall import database_sessions
from harness.state import Settling
from harness.target.client import TargetClient
from harness.target.start import Target
from harness.target.supervise import Supervisor
from harness.target.users import UserSpec, create_users
from harness.verdict import Verdict, decide

T = TypeVar("T")
Status = Verdict


@dataclass
class ScenarioReport:
    scenario: Scenario
    status: Status
    seed: int
    duration_s: float
    results: list[CheckResult] = field(default_factory=list)
    ops: list[Op] = field(default_factory=list)
    users: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    # What tokenproof did to the service meanwhile (kill, restart, fault), on the
    # history's clock: (seconds, what).
    actions: list[tuple[float, str]] = field(default_factory=list)
    # Requests a scenario sent outside this history (the model keeps one history
    # per example): counted in `op_count`, not checked here.
    ops_elsewhere: int = 0
    # How the final read converged (None: the scenario never got that far).
    settling: Settling | None = None

    @property
    def op_count(self) -> int:
        return len([op for op in self.ops if op.type == "invoke"]) + self.ops_elsewhere

    @property
    def violations(self) -> list[Violation]:
        return [v for r in self.results for v in r.violations]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.scenario.name,
            "suite": self.scenario.suite,
            "status": self.status,
            "seed": self.seed,
            "duration_s": round(self.duration_s, 3),
            "ops": self.op_count,
            "users": self.users,
            "error": self.error,
            "notes": self.notes,
            "actions": [{"at_s": round(at, 3), "what": what} for at, what in self.actions],
            "settle": None if self.settling is None else settle_json(self.settling),
            "checks": [r.to_json() for r in self.results],
            "violations": [v.to_json() for v in self.violations],
        }


class ScenarioNeverCalledTarget(TokenproofError):
    """A scenario returned without one request to the service: a bug of the scenario."""


def user_ids(scenario: Scenario, run_id: str) -> dict[str, str]:
    prefix = f"{run_id}-{scenario.name[:40]}-"
    return {u.supabase_id: prefix + u.supabase_id for u in scenario.users}


async def run_scenario(
    target: Target,
    scenario: Scenario,
    *,
    seed: int,
    run_id: str,
    options: RunOptions | None = None,
    supervisor: Supervisor | None = None,
) -> ScenarioReport:
    """Run one scenario and judge it. A violation makes it `fail` even when the
    scenario also errored (Jepsen's order: invalid outranks unknown): what was
    observed before the error is still checked. `supervisor`: the run's, when
    it spans several scenarios (verify); else one for this scenario."""
    options = options or RunOptions()
    supervisor = supervisor or Supervisor(target)
    timeout_s = scenario.timeout_for(options)
    started = time.monotonic()
    users = user_ids(scenario, run_id)
    history = History()
    report = ScenarioReport(scenario, "error", seed, 0.0, users=users)
    errors: list[str] = []
    run: Run | None = None
    try:
        restarted = await supervisor.restart_if_exited()
        await _create_users(target, scenario, users)
        await asyncio.to_thread(target.emulator.clear_delivery_rules)
        await asyncio.to_thread(target.emulator.clear_faults)
        async with TargetClient(
            target.base_url, target.jwt_secret, dialect=target.dialect
        ) as client:
            run = Run(target, client, history, users, seed, options)
            if restarted:
                run.act("started the service again: it had exited in an earlier scenario")
            async with asyncio.timeout(timeout_s):
                await scenario.body(run)
            if not history.ops and not run.ops_elsewhere and not run.skipped:
                raise ScenarioNeverCalledTarget(
                    f"scenario {scenario.id} finished without calling the service: await "
                    "run.tip/purchase/deduct/balance/call (a coroutine that is not awaited "
                    "never runs), or run.skip(reason) when there is nothing to do"
                )
    except TimeoutError:
        pending = [op for op in history.ops if op.type == "info" and op.error == "cancelled"]
        if pending:
            stalled = await _stalled(target, pending, timeout_s)
            report.results.append(CheckResult.of("liveness", 1, [stalled]))
        else:
            errors.append(f"the scenario did not finish within {timeout_s:g} s")
    except Exception as exc:
        errors.append(_describe(exc))
    try:
        if run is not None:
            observation = await settle(target, users.values(), history.ops)
            report.settling = observation.settling
            report.results += check(observation, scenario.checkers)
            report.results.append(
                CheckResult.of("expectations", run.expectations_checked, run.expectations)
            )
            report.notes = run.notes
            report.actions = run.actions
            report.ops_elsewhere = run.ops_elsewhere
    except Exception as exc:
        errors.append(f"while checking: {_describe(exc)}")
    finally:
        found = await supervisor.findings(scenario.id, history.ops)
        if found:
            report.results.append(CheckResult.of("service", 1, found))
        report.ops = history.ops
        errors += [f"checker {r.checker} crashed:\n{r.error}" for r in report.results if r.error]
        report.error = "\n".join(errors) or None
        report.status = _status(report)
        report.duration_s = time.monotonic() - started
    return report


def _status(report: ScenarioReport) -> Status:
    return decide(
        violated=bool(report.violations),
        undecided=bool(report.error) or any(r.validity == "unknown" for r in report.results),
    )


def _describe(exc: BaseException) -> str:
    return f"{exc.__class__.__name__}: {exc}\n{traceback.format_exc(limit=4)}"


def settle_json(settling: Settling) -> dict[str, Any]:
    return {
        "converged": settling.converged,
        "waited_s": round(settling.waited_s, 3),
        "reads": settling.reads,
        "timeout_s": settling.timeout_s,
        "quiet_s": round(settling.quiet_s, 3),
        "lags_s": {pi: round(lag, 3) for pi, lag in settling.lags},
        "pending": dict(settling.pending),
    }


async def _stalled(target: Target, pending: list[Op], timeout_s: float) -> Violation:
    """Requests the service never answered within the scenario's time: a stall of
    the service (its pool starved, a lock never released), not of the harness."""
    try:
        sessions = await database_sessions(target.database_url)
    except (OSError, asyncpg.PostgresError) as exc:
        sessions = [{"error": f"cannot read pg_stat_activity: {exc}"}]
    return Violation(
        "service-stalled",
        f"{len(pending)} requests had no answer when the scenario's {timeout_s:g} s ran out",
        {"pending": [op.to_json() for op in pending[:20]], "database_sessions": sessions},
    )


async def _create_users(target: Target, scenario: Scenario, users: dict[str, str]) -> None:
    conn = await asyncpg.connect(target.database_url)
    try:
        await create_users(
            conn,
            [
                UserSpec(users[u.supabase_id], u.is_creator, u.grant, u.exists)
                for u in scenario.users
            ],
            target.dialect,
        )
    finally:
        await conn.close()

"""Run a scenario against a target: users, ops recorded into a history, settle,
collect, check. Each scenario sees only its own users (named with a per-run
prefix), so scenarios can share one service and one database."""

from __future__ import annotations

import asyncio
import random
import time
import traceback
from collections.abc import Awaitable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import asyncpg
import httpx

from harness.checkers import CheckResult, Observation, Violation, check
from harness.client import Answer, TargetClient
from harness.collect import read_db
from harness.contract import citation
from harness.emulator_client import EmulatorClient
from harness.errors import TokenproofError
from harness.gates import ContentionGate
from harness.history import History, Op
from harness.options import RunOptions
from harness.scenario import Scenario
from harness.settle import DELIVERIES_WITHIN_S, settle
from harness.state import DbState, Settling
from harness.targets import ServiceCrash, Target
from harness.users import UserSpec, create_users

T = TypeVar("T")
Status = Literal["pass", "fail", "error"]


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


class ScenarioCouldNotRun(TokenproofError):
    """Something a scenario needs did not happen; it says nothing of the service."""


class ScenarioNeverCalledTarget(TokenproofError):
    """A scenario returned without one request to the service: a bug of the scenario."""


class Run:
    """What a scenario body acts through. Every call is recorded in the history."""

    def __init__(
        self,
        target: Target,
        client: TargetClient,
        history: History,
        users: dict[str, str],
        seed: int,
        options: RunOptions | None = None,
    ) -> None:
        self.target = target
        self.seed = seed
        self.options = options or RunOptions()
        self.client = client
        self.history = history
        self.users = users
        self.rng = random.Random(seed)
        self.stripe: EmulatorClient = target.emulator
        self.expectations: list[Violation] = []
        self.expectations_checked = 0
        self.notes: list[str] = []
        self.actions: list[tuple[float, str]] = []
        self.ops_elsewhere = 0  # see ScenarioReport.ops_elsewhere
        self.skipped = False
        self._worker = 0

    def expect(self, holds: bool, invariant: str, message: str, **evidence: Any) -> bool:
        """A scenario's own expectation (a 4xx for bad input, a rejected forgery, ...).
        `invariant` must cite the contract (`harness.contract.INVARIANTS`)."""
        citation(invariant)
        self.expectations_checked += 1
        if not holds:
            self.expectations.append(Violation(invariant, message, evidence))
        return holds

    def require(self, holds: bool, what: str) -> None:
        """What the scenario needs to go on (not a property of the service): when it
        does not hold, the scenario could not run, and says why."""
        if not holds:
            raise ScenarioCouldNotRun(what)

    async def intents_of(self, user: str) -> list[dict[str, Any]]:
        """The PaymentIntents created for one of this scenario's users, as Stripe
        knows them (the contract puts `userId` in every intent's metadata)."""
        full = self.user(user)
        state = await asyncio.to_thread(self.stripe.state, metadata_prefix=("userId", full))
        return [i for i in state["intents"] if (i.get("metadata") or {}).get("userId") == full]

    def skip(self, reason: str) -> None:
        """Say why this scenario has nothing to do against this target (it passes,
        with the reason noted); call it before returning early."""
        self.skipped = True
        self.notes.append(f"skipped: {reason}")

    async def settled(self, within: float = DELIVERIES_WITHIN_S) -> Observation:
        """Release held webhooks, wait until Stripe has delivered everything it
        meant to, then until the service's rows show every outcome it acknowledged
        (a queue worker may credit after its 2xx) and stop changing, or the
        target's settle deadline passes. Returns that read of this scenario's users."""
        return await settle(
            self.target, self.users.values(), self.history.ops, deliveries_within=within
        )

    def act(self, what: str) -> None:
        """Record something tokenproof does to the service (kill, restart, a fault):
        the report's timeline shows it beside the requests."""
        self.actions.append((self.history.now(), what))

    def note(self, text: str) -> None:
        """A figure worth reporting (a latency, a count), shown next to the result."""
        self.notes.append(text)

    def progress(self, text: str) -> None:
        """How far a long scenario is, for whoever watches the run."""
        self.options.on_progress(text)

    def user(self, local: str) -> str:
        try:
            return self.users[local]
        except KeyError:
            raise KeyError(
                f"{local!r} is not among this scenario's users {sorted(self.users)}"
            ) from None

    def worker(self) -> str:
        self._worker += 1
        return f"w{self._worker}"

    async def call(
        self,
        f: str,
        method: str,
        path: str,
        *,
        user: str | None,
        json: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        token: str | None = None,
        worker: str | None = None,
        args: dict[str, Any] | None = None,
        timeout_s: float | None = None,
    ) -> Answer:
        full_user = self.user(user) if user is not None else None
        recorded = (
            args if args is not None else (json if isinstance(json, dict) else {"body": json})
        )
        invoke = self.history.invoke(worker or self.worker(), f, full_user, recorded)
        all_headers = dict(headers or {})
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        try:
            answer = await self.client.call(
                method,
                path,
                user=full_user if token is None else None,
                json=json,
                content=content,
                headers=all_headers,
                timeout_s=timeout_s,
            )
        except httpx.HTTPError as exc:
            self.history.complete(invoke, None, error=f"{exc.__class__.__name__}: {exc}")
            return Answer(0, None)
        except BaseException:
            # Cancelled (timeout, Ctrl-C) after sending: the outcome is unknown.
            self.history.complete(invoke, None, error="cancelled")
            raise
        self.history.complete(invoke, answer.status, answer.body)
        return answer

    async def tip(
        self,
        fan: str,
        creator: str,
        amount: Any,
        *,
        key: str | None = None,
        channel: str = "live",
        worker: str | None = None,
    ) -> Answer:
        body: dict[str, Any] = {
            "creatorId": self.user(creator),
            "tokenAmount": amount,
            "channel": channel,
        }
        if key is not None:
            body["clientIdempotencyKey"] = key
        return await self.call("tip", "POST", "/api/tokens/tip", user=fan, json=body, worker=worker)

    async def deduct(
        self,
        fan: str,
        creator: str,
        amount: Any,
        *,
        call_id: str = "call-1",
        key: str | None = None,
        worker: str | None = None,
    ) -> Answer:
        body: dict[str, Any] = {
            "creatorId": self.user(creator),
            "tokenAmount": amount,
            "callId": call_id,
        }
        if key is not None:
            body["clientIdempotencyKey"] = key
        return await self.call(
            "deduct", "POST", "/api/tokens/calls/deduct", user=fan, json=body, worker=worker
        )

    async def purchase(
        self,
        fan: str,
        tokens: Any,
        *,
        method: str = "pm_card_visa",
        key: str | None = None,
        worker: str | None = None,
        timeout_s: float | None = None,
    ) -> Answer:
        body: dict[str, Any] = {"tokenAmount": tokens, "paymentMethodId": method}
        if key is not None:
            body["clientIdempotencyKey"] = key
        return await self.call(
            "purchase",
            "POST",
            "/api/tokens/purchase",
            user=fan,
            json=body,
            worker=worker,
            timeout_s=timeout_s,
        )

    async def balance(
        self, fan: str, *, timeout_s: float | None = None, new_connection: bool = False
    ) -> Answer:
        """`new_connection`: on a connection of its own, closed after it (a server
        with several worker processes may then hand it to any of them)."""
        return await self.call(
            "balance",
            "GET",
            "/api/tokens/balance",
            user=fan,
            timeout_s=timeout_s,
            headers={"Connection": "close"} if new_connection else None,
        )

    async def gather(self, *calls: Awaitable[T]) -> list[T]:
        return list(await asyncio.gather(*calls))

    def gate(self, expect: int, **kwargs: Any) -> ContentionGate:
        kwargs.setdefault("on_partial", self.note)
        return ContentionGate(self.target.database_url, expect, **kwargs)

    async def db(self) -> DbState:
        return await read_db(self.target.database_url)

    def spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        return asyncio.ensure_future(coro)


SESSIONS_SQL = """
SELECT state, wait_event_type, wait_event, left(query, 200) AS query,
       round(extract(epoch FROM now() - xact_start)::numeric, 3) AS transaction_s
FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
ORDER BY xact_start NULLS LAST
"""


async def database_sessions(dsn: str) -> list[dict[str, Any]]:
    """What the service's database sessions are doing now (evidence for a stall:
    idle in transaction, waiting for a lock)."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(SESSIONS_SQL)
    finally:
        await conn.close()
    return [{k: (str(v) if v is not None else None) for k, v in r.items()} for r in rows]


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
) -> ScenarioReport:
    """Run one scenario and judge it. A violation makes it `fail` even when the
    scenario also errored (Jepsen's order: invalid outranks unknown): what was
    observed before the error is still checked."""
    options = options or RunOptions()
    timeout_s = scenario.timeout_for(options)
    started = time.monotonic()
    users = user_ids(scenario, run_id)
    history = History()
    report = ScenarioReport(scenario, "error", seed, 0.0, users=users)
    errors: list[str] = []
    run: Run | None = None
    try:
        restarted = await asyncio.to_thread(target.ensure_running)
        await _create_users(target, scenario, users)
        await asyncio.to_thread(target.emulator.clear_delivery_rules)
        await asyncio.to_thread(target.emulator.clear_faults)
        async with TargetClient(target.base_url, target.jwt_secret) as client:
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
        # After settling: a crash while webhooks were delivered is this scenario's.
        crash = target.crash_report()
        if crash is not None:
            report.results.append(CheckResult.of("service", 1, [crashed(crash, history.ops)]))
        report.ops = history.ops
        errors += [f"checker {r.checker} crashed:\n{r.error}" for r in report.results if r.error]
        report.error = "\n".join(errors) or None
        report.status = _status(report)
        report.duration_s = time.monotonic() - started
    return report


def _status(report: ScenarioReport) -> Status:
    if report.violations:
        return "fail"
    if report.error or any(r.validity == "unknown" for r in report.results):
        return "error"
    return "pass"


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


def crashed(crash: ServiceCrash, ops: list[Op]) -> Violation:
    """The service tokenproof started exited by itself during the scenario."""
    unknown = [op for op in ops if op.type == "info"]
    return Violation(
        "service-crashed",
        f"the service process exited during the scenario ({crash.how}); "
        f"{len(unknown)} requests got no answer. It was restarted for the next scenario.",
        {
            "exit": crash.how,
            "log_tail": crash.log_tail,
            "ops_in_flight": [op.to_json() for op in unknown[:20]],
        },
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
        )
    finally:
        await conn.close()

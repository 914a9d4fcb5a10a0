"""Hand-made runs for report tests: what a run against a buggy service looks
like (many passing scenarios listed first, failures with evidence, a scenario
that could not run, a crashed checker), and an all-pass run. No service."""

from __future__ import annotations

from collections import Counter
from typing import Any

from harness.checkers import CheckResult, Violation
from harness.history import Op, OpType, classify
from harness.load.report import LoadReport, LoadSettings
from harness.report import RunReport
from harness.run.runner import ScenarioReport, Status
from harness.run.scenario import Scenario

COMMAND = ["--target", "reference:lost-update"]
TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "/work/harness/run/runner.py", line 301, in run_scenario\n'
    "    await asyncio.wait_for(scenario.body(run), timeout=deadline_with_a_rather_long_name)\n"
    "harness.run.gates.GateNotFilled: the gate expected 20 requests waiting on a lock; after 10 s "
    "only 3 were waiting (pg_stat_activity: wait_event_type=Lock for pids 4711, 4712, 4713); "
    "the service may take its locks in another order than the scenario assumes\n"
)


async def _body(run: object) -> None:
    return None


class Ops:
    """Builds a history with chosen times: each call an invoke and its completion."""

    def __init__(self) -> None:
        self.ops: list[Op] = []
        self._next = 0

    def call(
        self,
        worker: str,
        f: str,
        user: str,
        args: dict[str, Any],
        start: float,
        end: float | None,
        status: int | None = 200,
        body: Any = None,
    ) -> Op | None:
        process = self._next
        self._next += 1
        self.ops.append(Op(len(self.ops), process, "invoke", worker, f, user, args, start))
        if end is None:
            return None
        kind: OpType = classify(status)
        done = Op(len(self.ops), process, kind, worker, f, user, args, end, status, body)
        self.ops.append(done)
        return done


def _scenario(suite: str, name: str, doc: str) -> Scenario:
    return Scenario(name, suite, (), _body, doc)


def _valid(n: int) -> list[CheckResult]:
    return [CheckResult.of(c, n, []) for c in ("ledger_explains_balances", "no_server_errors")]


def passing(suite: str, name: str, calls: int = 6) -> ScenarioReport:
    ops = Ops()
    for i in range(calls):
        ops.call(
            f"w{i % 3 + 1}",
            "balance",
            f"{name}-fan",
            {},
            0.01 * i,
            0.01 * i + 0.004,
            200,
            {"balance": 100},
        )
    doc = f"{name.replace('-', ' ').capitalize()}: a scenario that held. Second sentence."
    return ScenarioReport(_scenario(suite, name, doc), "pass", 1, 0.2, _valid(12), ops.ops)


def drain() -> ScenarioReport:
    """40 tips of 5 from a fan holding 100: all answered 200 (a lost update)."""
    ops = Ops()
    fan, star = "run1-drain-fan", "run1-drain-star"
    answered = []
    for i in range(40):
        start = 0.030 + 0.001 * i
        end = 0.300 + 0.004 * i
        op = ops.call(
            f"w{i + 1}",
            "tip",
            fan,
            {"creatorId": star, "tokenAmount": 5},
            start,
            end,
            200,
            {"senderBalance": 95 - 5 * (i % 3), "recipientBalance": 5 + 5 * (i % 3)},
        )
        assert op is not None
        answered.append(op)
    rows = [
        {"id": 38 + 2 * i, "type": "tip", "tokens": -5, "status": "completed"} for i in range(20)
    ]
    ledger = Violation(
        "ledger-explains-balance",
        f"{fan}: balance 90 but completed ledger rows sum to -100 (+190 unexplained)",
        {"user": fan, "balance": 90, "ledger_sum": -100, "rows": rows},
    )
    answers = Violation(
        "answers-match-ledger",
        f"{fan}: tip answers account for 200..200 tokens debited, the ledger debited 100",
        {
            "user": fan,
            "kind": "tip",
            "answered_ok": 200,
            "unknown": 0,
            "debited": 100,
            "ops": [op.to_json() for op in answered[:3]],
        },
    )
    results = [
        CheckResult.of("ledger_explains_balances", 2, [ledger]),
        CheckResult.of("transfers_match_answers", 40, [answers]),
        CheckResult.of("no_server_errors", 40, []),
    ]
    doc = (
        "40 concurrent 5-token tips from a fan holding 100: exactly 20 may succeed and the "
        "balance never goes negative.\n    Catches missing funds checks and lost updates."
    )
    return ScenarioReport(_scenario("race", "drain-one-fan", doc), "fail", 1, 0.5, results, ops.ops)


def drained_load(duration_s: int, stats: list[dict[str, str]] | None = None) -> LoadReport:
    """A load run of `duration_s` (plus a second of start-up) that found the
    drain scenario's violation, with Locust's aggregated `stats` rows."""
    scenario = drain()
    calls = [op for op in scenario.ops if op.type != "invoke"]
    return LoadReport(
        "reference:lost-update",
        LoadSettings(users=20, duration_s=duration_s),
        scenario.results,
        duration_s + 1.0,
        0,
        seed=7,
        requests=len(scenario.ops) - len(calls),
        outcomes=dict(Counter(op.type for op in calls)),
        server_errors=sum(1 for op in calls if op.status is not None and op.status >= 500),
        stats=stats or [],
    )


def server_error() -> ScenarioReport:
    """A purchase answered 500 with a stack trace; a checker crashed."""
    ops = Ops()
    fan = "run1-retry-fan"
    body = {"error": "internal", "detail": TRACEBACK}
    ops.call(
        "w1",
        "purchase",
        fan,
        {"tokens": 100, "clientIdempotencyKey": "k1"},
        0.0,
        0.120,
        200,
        {"paymentIntent": {"id": "pi_1", "status": "succeeded"}},
    )
    bad = ops.call(
        "w2",
        "purchase",
        fan,
        {"tokens": 100, "clientIdempotencyKey": "k1"},
        0.010,
        0.250,
        500,
        body,
    )
    ops.call("w3", "purchase", fan, {"tokens": 100, "clientIdempotencyKey": "k1"}, 0.020, None)
    assert bad is not None
    crash = CheckResult("reconciliation", "unknown", 0, (), TRACEBACK)
    results = [
        CheckResult.of(
            "no_server_errors",
            2,
            [
                Violation("no-5xx", f"purchase by {fan} answered 500", {"op": bad.to_json()}),
            ],
        ),
        CheckResult.of(
            "one_charge_per_key",
            1,
            [
                Violation(
                    "one-charge-per-key",
                    f"{fan} was charged 2 times for client key 'k1'",
                    {
                        "user": fan,
                        "client_key": "k1",
                        "intents": ["pi_1", "pi_2"],
                        "intent": {
                            "id": "pi_2",
                            "status": "succeeded",
                            "amount": 500,
                            "metadata": {"userId": fan, "clientIdempotencyKey": "k1"},
                        },
                    },
                )
            ],
        ),
        crash,
    ]
    doc = "The same purchase key sent three times at once: one charge, one credit."
    return ScenarioReport(
        _scenario("retry", "same-key-concurrently", doc), "fail", 1, 0.3, results, ops.ops
    )


def could_not_run() -> ScenarioReport:
    return ScenarioReport(
        _scenario("race", "drain-one-fan-gated", "20 tips released together by the gate."),
        "error",
        1,
        10.1,
        error=TRACEBACK,
    )


SUITES = ("race", "retry", "threeds", "webhooks", "inputs", "security", "faults")


def failing_run() -> RunReport:
    """A long run: 36 passing scenarios listed before the failures."""
    scenarios = [passing(SUITES[i % len(SUITES)], f"held-{i}") for i in range(36)]
    scenarios += [drain(), could_not_run(), server_error()]
    return RunReport("reference:lost-update", 1, "run1", scenarios, COMMAND)


def passing_run() -> RunReport:
    scenarios = [passing(SUITES[i % len(SUITES)], f"held-{i}") for i in range(12)]
    return RunReport("reference", 1, "run2", scenarios, ["--target", "reference"])


def statuses(report: RunReport) -> dict[str, Status]:
    return {s.scenario.id: s.status for s in report.scenarios}

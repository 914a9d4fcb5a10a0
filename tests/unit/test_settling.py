"""Settling by convergence on scripted reads: what is owed (`unaccounted`), how
the loop decides (`poll`), and what the checkers say of it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal

import pytest

from harness.checkers import Observation, check, settling
from harness.checkers.stripe import reconciliation
from harness.run.settle import poll
from harness.state import BalanceRow, DbState, Delivery, Event, StripeState, UserRow
from harness.target.spec import QUIET_MAX_S, QUIET_MIN_S, SettlePolicy
from tests.unit.test_checkers import intent, row

pytestmark = pytest.mark.unit

PI = "pi_late"


def _event(pi: str, kind: str = "payment_intent.succeeded") -> Event:
    return {"id": f"evt_{pi}_{kind}", "type": kind, "data": {"object": {"id": pi}}}


def _delivery(event: Event, status: int, signature: str = "valid") -> Delivery:
    return {
        "event_id": event["id"],
        "event_type": event["type"],
        "signature": signature,
        "started": time.time() - 0.01,
        "latency_s": 0.001,
        "status": status,
    }


def _stripe(status: int = 200, signature: str = "valid") -> StripeState:
    event = _event(PI)
    return StripeState(
        (intent(PI, "succeeded"),), (event,), (_delivery(event, status, signature),), ()
    )


def _db(*, credited: bool, balance: int | None = None) -> DbState:
    rows = [
        row(
            "fan",
            "purchase",
            100,
            "completed" if credited else "pending",
            stripe_payment_intent_id=PI,
        )
    ]
    amount = balance if balance is not None else (100 if credited else 0)
    return DbState(
        (UserRow("fan", False, Decimal(0)),), (BalanceRow("fan", amount, 0),), tuple(rows), ()
    )


def _reads(
    *states: DbState, stripe: StripeState | None = None
) -> Callable[[], Awaitable[Observation]]:
    """Each read returns the next state; the last one is repeated."""
    seen = iter(states)
    last: list[DbState] = []
    stripe = stripe or _stripe()

    async def read() -> Observation:
        db = next(seen, None)
        if db is not None:
            last[:] = [db]
        return Observation([], last[0], stripe)

    return read


def _poll(read: Callable[[], Awaitable[Observation]], policy: SettlePolicy) -> Observation:
    return asyncio.run(poll(read, policy))


def test_an_acknowledged_success_without_a_completed_row_is_owed() -> None:
    assert settling.unaccounted(_db(credited=False), _stripe()) == {PI: "still not credited"}
    assert settling.unaccounted(_db(credited=True), _stripe()) == {}


def test_a_refused_or_forged_delivery_owes_nothing_yet() -> None:
    assert settling.unaccounted(_db(credited=False), _stripe(status=500)) == {}
    assert settling.unaccounted(_db(credited=False), _stripe(signature="forged")) == {}


def test_an_acknowledged_cancellation_owes_the_row_its_final_status() -> None:
    event = _event(PI, "payment_intent.canceled")
    stripe = StripeState((intent(PI, "canceled"),), (event,), (_delivery(event, 200),), ())
    pending = DbState(
        (), (), (row("fan", "purchase", 100, "requires_action", stripe_payment_intent_id=PI),), ()
    )
    marked = DbState(
        (), (), (row("fan", "purchase", 100, "canceled", stripe_payment_intent_id=PI),), ()
    )
    assert "still 'requires_action'" in settling.unaccounted(pending, stripe)[PI]
    assert settling.unaccounted(marked, stripe) == {}


def test_a_credit_already_there_is_still_watched_for_a_quiet_window() -> None:
    """Rows right at the first read after a new acknowledged delivery may be a
    fast queue worker's, with more to come: they must stay unchanged for
    QUIET_MIN_S, and no lag is learned from a credit that was never late."""
    policy = SettlePolicy(timeout_s=5)
    observation = _poll(_reads(_db(credited=True)), policy)
    assert observation.settling is not None
    assert observation.settling.converged and observation.settling.reads >= 2
    assert observation.settling.waited_s >= QUIET_MIN_S
    assert list(policy.lags) == [0.0]


def test_a_late_failure_overwriting_a_credit_is_seen_at_the_first_look() -> None:
    """The failed-after-succeeded race: credited at the first read, then a queue
    worker applies a late payment_failed to the row. A service that never showed a
    lag is watched too, so the read that counts is the overwritten one."""
    failed = _db(credited=True)
    failed = DbState(
        failed.users,
        failed.balances,
        (row("fan", "purchase", 100, "failed", stripe_payment_intent_id=PI),),
        failed.earnings,
    )
    observation = _poll(_reads(_db(credited=True), failed), SettlePolicy(timeout_s=5))
    assert observation.db == failed
    invariants = {v.invariant for r in check(observation) for v in r.violations}
    assert "ledger-explains-balance" in invariants


def test_no_delivery_at_all_pays_one_read() -> None:
    """Transfers are synchronous by the contract: a scope with no acknowledged
    delivery is converged at its first read."""
    no_stripe = StripeState((), (), (), ())

    async def read() -> Observation:
        return Observation([], _db(credited=False, balance=0), no_stripe)

    observation = asyncio.run(poll(read, SettlePolicy(timeout_s=5), scope="ex9-"))
    assert observation.settling is not None
    assert observation.settling.converged and observation.settling.reads == 1


def test_the_quiet_window_follows_the_typical_lag_not_the_slowest() -> None:
    policy = SettlePolicy(timeout_s=10)
    assert policy.quiet_s() == QUIET_MIN_S
    for lag in (0.1, 0.1, 3.0):
        policy.settled(None, 0, lag)
    assert policy.quiet_s() == pytest.approx(0.2)
    assert policy.quiet_s(1.0) == pytest.approx(2.0)
    assert policy.quiet_s(30.0) == QUIET_MAX_S
    # A fast queue worker: most settlings find the credits in place at once.
    for _ in range(10):
        policy.settled(None, 0, 0.0)
    assert policy.quiet_s() == QUIET_MIN_S


def test_settlings_with_credits_in_place_count_towards_the_typical_lag() -> None:
    """One late credit among settlings whose credits were there at the first read
    must not make every later window twice that late credit's lag."""
    policy = SettlePolicy(timeout_s=10)
    policy.settled(None, 0, 3.0)
    for scope in ("a-", "b-", "c-"):
        asyncio.run(poll(_reads(_db(credited=True)), policy, scope=scope))
    assert list(policy.lags) == [3.0, 0.0, 0.0, 0.0]
    assert policy.quiet_s() == QUIET_MIN_S


def test_a_late_credit_is_waited_for_and_its_lag_learned() -> None:
    policy = SettlePolicy(timeout_s=5)
    reads = _reads(_db(credited=False), _db(credited=False), _db(credited=True))
    observation = _poll(reads, policy)
    assert observation.settling is not None
    assert observation.settling.converged
    assert dict(observation.settling.lags)[PI] > 0
    assert policy.lags[-1] > 0
    # Once a lag was seen, the credited state must also stay unchanged for a while.
    assert observation.settling.reads >= 4
    assert all(r.valid for r in check(observation))


def test_a_credit_that_never_comes_is_reported_at_the_deadline_as_such() -> None:
    observation = _poll(_reads(_db(credited=False)), SettlePolicy(timeout_s=0.2))
    assert observation.settling is not None
    assert not observation.settling.converged
    assert "after its last delivery was acknowledged" in (observation.settling.pending_of(PI) or "")
    [violation] = reconciliation(
        observation.db, observation.stripe, observation.settling
    ).violations
    assert violation.invariant == "credited-exactly-once"
    assert "still not credited" in violation.message
    assert "credited 0 times" not in violation.message
    assert "0.0 s after" not in violation.message


def test_rows_that_never_stop_changing_are_a_finding_of_their_own() -> None:
    policy = SettlePolicy(timeout_s=0.3)
    counter = iter(range(1, 10_000))

    async def read() -> Observation:
        db = _db(credited=True, balance=100)
        db = DbState(db.users, (BalanceRow("fan", 100, next(counter)),), db.ledger, db.earnings)
        return Observation([], db, _stripe())

    observation = asyncio.run(poll(read, policy))
    [violation] = settling.settled(observation.settling).violations
    assert violation.invariant == "state-converges"


def test_a_negative_balance_between_reads_is_a_violation() -> None:
    reads = _reads(_db(credited=False, balance=-5), _db(credited=True))
    observation = _poll(reads, SettlePolicy(timeout_s=5))
    invariants = [v.invariant for r in check(observation) for v in r.violations]
    assert invariants == ["no-negative-balance"]


def test_rows_that_stopped_just_before_the_deadline_are_converged_not_changing() -> None:
    """A credit that lands late (its delivery acknowledged long ago, so the quiet
    window is long) and then stays: the deadline cuts the window short, and the
    rows did stop, so this is no `state-converges`."""
    old = _delivery(_event(PI), 200)
    old["started"] = time.time() - 2.0
    stripe = StripeState((intent(PI, "succeeded"),), (_event(PI),), (old,), ())
    before, after = _db(credited=False), _db(credited=True)
    started = time.monotonic()

    async def read() -> Observation:
        late = time.monotonic() - started >= 0.3
        return Observation([], after if late else before, stripe)

    observation = _poll(read, SettlePolicy(timeout_s=0.45))
    assert observation.settling is not None
    assert observation.settling.converged, observation.settling
    assert not settling.settled(observation.settling).violations


def test_a_scope_with_nothing_newly_acknowledged_pays_one_read() -> None:
    """The model settles after every step: once a scope has converged, a read that
    owes nothing and shows no new acknowledged delivery is converged at once,
    even for a service known to credit late."""
    policy = SettlePolicy(timeout_s=5)
    policy.settled(None, 0, 0.2)  # known to credit late
    credited = _reads(_db(credited=True))
    first = asyncio.run(poll(credited, policy, scope="ex1-"))
    again = asyncio.run(poll(credited, policy, scope="ex1-"))
    assert first.settling is not None and again.settling is not None
    assert first.settling.reads >= 2  # a quiet window: this scope is new
    assert again.settling.reads == 1


def _one_by_one(landing_s: list[float | None]) -> Callable[[], Awaitable[Observation]]:
    """Reads of intents acknowledged at once and credited one by one, the i-th
    `landing_s[i]` seconds after the first read (None: never), as a worker that
    credits serially behind a slow Stripe does."""
    pis = [f"pi_{i}" for i in range(len(landing_s))]
    events = tuple(_event(pi) for pi in pis)
    stripe = StripeState(
        tuple(intent(pi, "succeeded") for pi in pis),
        events,
        tuple(_delivery(e, 200) for e in events),
        (),
    )
    started: list[float] = []
    states: dict[tuple[bool, ...], DbState] = {}  # one per pattern: rows unchanged between

    def state(landed: tuple[bool, ...]) -> DbState:
        rows = tuple(
            row(
                "fan",
                "purchase",
                100,
                "completed" if done else "pending",
                stripe_payment_intent_id=pi,
            )
            for pi, done in zip(pis, landed, strict=True)
        )
        balances = (BalanceRow("fan", 100 * sum(landed), 0),)
        return DbState((UserRow("fan", False, Decimal(0)),), balances, rows, ())

    async def read() -> Observation:
        now = time.monotonic()
        started[:] = started or [now]
        landed = tuple(s is not None and now - started[0] >= s for s in landing_s)
        return Observation([], states.setdefault(landed, state(landed)), stripe)

    return read


def test_a_worker_still_crediting_is_given_time_past_the_deadline() -> None:
    """Three credits 0.25 s apart under a 0.4 s deadline: 0.75 s in all, but
    never 0.4 s without one landing, so settling waits for the last."""
    observation = _poll(_one_by_one([0.25, 0.5, 0.75]), SettlePolicy(timeout_s=0.4))
    assert observation.settling is not None
    assert observation.settling.converged, observation.settling.pending
    assert observation.settling.waited_s >= 0.75


def test_a_credit_that_never_comes_is_reported_a_deadline_after_the_last_that_did() -> None:
    observation = _poll(_one_by_one([0.2, None]), SettlePolicy(timeout_s=0.4))
    assert observation.settling is not None
    assert not observation.settling.converged
    assert [pi for pi, _ in observation.settling.pending] == ["pi_1"]
    assert 0.6 <= observation.settling.waited_s < 1.2

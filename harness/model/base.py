"""The model's state machine: what every example starts with, its helpers, and
the invariant that compares the service with the model after every step. The
rules live in `payments` and `transfers`, mixed into `TokenModel`.

Each example gets users of its own (a fresh namespace in the target's database,
the same isolation a fresh database gives, without restarting the service), so
Hypothesis can replay and shrink. Async calls run on one event loop per machine
instance.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import asyncpg
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
)

from harness.checkers import check
from harness.contract import PRICE_TABLE, bonus_for, transfer_body
from harness.errors import TokenproofError
from harness.history import History
from harness.model.control import ShrinkBudgetSpent, Tally, user_prefix
from harness.run.gates import ContentionGate, GateNotFilled
from harness.run.record import recorded
from harness.run.settle import settle
from harness.target.client import Answer, TargetClient
from harness.target.start import Target
from harness.target.users import UserSpec, create_users

PRICES = {tokens: bonus_for(tokens) for tokens in PRICE_TABLE}  # tokens -> bonus
FANS, CREATORS = ("fan0", "fan1"), ("star0", "star1")
GATE_WITHIN_S = 10.0
TRANSFERS = ("tip", "deduct")

# The draws the rules share: who acts, which transfer, how many tokens.
a_fan = st.sampled_from(FANS)
a_creator = st.sampled_from(CREATORS)
a_transfer = st.sampled_from(TRANSFERS)
a_transfer_amount = st.integers(1, 60)
# How a purchase's events arrive, drawn by every rule that buys (None: as they
# come), so a credit per duplicated event is found whatever else an example draws.
a_delivery = st.sampled_from([None, "duplicate", "parallel", "reorder", "drop_first"])


@dataclass
class Keyed:
    """A request sent with a client key, kept so a rule can retry it."""

    f: str
    user: str
    body: dict[str, Any]
    first: Answer


@dataclass
class Pending3DS:
    intent: str
    user: str
    tokens: int
    done: bool = False


T = TypeVar("T")


def logged_step(method: Callable[..., T]) -> Callable[..., T]:
    """Log each rule call as a `state.…` line, as Hypothesis prints them. Hypothesis
    prints only the final, shrunk sequence; when it cannot shrink a failure (a race
    whose outcome varies between replays of the same steps) it prints none, and
    this log is what still shows a sequence that failed."""

    @functools.wraps(method)
    def logged(self: ModelBase, **kwargs: Any) -> T:
        args = ", ".join(f"{k}={self.names.get(id(v), repr(v))}" for k, v in sorted(kwargs.items()))
        call = f"state.{method.__name__}({args})"
        try:
            result = method(self, **kwargs)
        except Exception as exc:
            self.steps.append(call)
            self.tally.saw_failure(self.steps, exc)
            raise
        if isinstance(result, Keyed | Pending3DS):
            bundle = "keyed" if isinstance(result, Keyed) else "three_ds"
            name = f"{bundle}_{sum(n.startswith(bundle) for n in self.names.values())}"
            self.names[id(result)] = name
            call = f"{name} = {call}"
        self.steps.append(call)
        return result

    return logged


@dataclass
class ModelState:
    balances: dict[str, int] = field(default_factory=dict)


KEYED = Bundle("keyed")
THREE_DS = Bundle("three_ds")


class ModelNotBound(TokenproofError):
    """The machine was run without a target."""


class ModelBase(RuleBasedStateMachine):
    """Bound to a target with `TokenModel.bind(target)` before a run."""

    target: ClassVar[Target]
    tally: ClassVar[Tally]

    def __init__(self) -> None:
        super().__init__()
        if "target" not in dir(type(self)):
            raise ModelNotBound("bind the model to a target first: TokenModel.bind(target)")
        self.tally.stop_if_cancelled()
        if self.tally.shrinking_over_budget():
            raise ShrinkBudgetSpent
        self.loop = asyncio.new_event_loop()
        # Unique per example, replay and shrink attempt alike: rows an earlier
        # attempt created (and the service may still be crediting) never collide.
        self.prefix = user_prefix()
        self.client = TargetClient(
            self.target.base_url, self.target.jwt_secret, dialect=self.target.dialect
        )
        self.history = History()
        self.model = ModelState()
        self.keys = itertools.count()
        self.steps: list[str] = []  # see logged_step
        self.names: dict[int, str] = {}  # id of a bundle value -> its name in `steps`
        # Calls a fault step made fail on purpose: their 5xx is allowed (its text
        # still is judged).
        self.expected_5xx: set[int] = set()
        self.target.emulator.clear_delivery_rules()
        self.tally.examples += 1

    def teardown(self) -> None:
        self.tally.requests += self.client.requests_sent
        # Close the HTTP pool on its own loop, then the loop: nothing may leak
        # from one example into the next.
        self.loop.run_until_complete(self.client.aclose())
        self.loop.close()

    # -- helpers -------------------------------------------------------------------

    def _reconnect(self) -> None:
        """A new HTTP pool, after the service was restarted: connections kept alive
        to the process that was killed are tokenproof's, not the service's, and
        must not turn the next requests into unknown outcomes."""
        self.tally.requests += self.client.requests_sent
        self.loop.run_until_complete(self.client.aclose())
        self.client = TargetClient(
            self.target.base_url, self.target.jwt_secret, dialect=self.target.dialect
        )

    def uid(self, local: str) -> str:
        return self.prefix + local

    def _call(self, f: str, user: str, body: Any, *, record: bool = True) -> Answer:
        """One request. `record=False` keeps it out of the history the checkers read:
        for answers a rule expects to be 5xx, which `no_server_errors` would flag."""
        self.tally.stop_if_cancelled()
        if not record:
            return self.loop.run_until_complete(self.client.send(f, user, body))
        return self.loop.run_until_complete(self._recorded("model", f, user, body))

    async def _recorded(
        self, worker: str, f: str, user: str, body: Any, timeout_s: float | None = None
    ) -> Answer:
        """One request, perhaps of several in flight; a connection that breaks or
        times out (a killed service, a client that gives up) is an op with an
        unknown outcome and `Answer(0, "<error>")`."""
        request = self.client.send(f, user, body, timeout_s=timeout_s)
        args = body if isinstance(body, dict) else {}
        return await recorded(self.history, worker, f, user, args, request)

    def _allow_5xx(self, since: int) -> None:
        """The 5xx answers and unknown outcomes among the ops since index `since`
        are what a fault step expects, not server errors."""
        self.expected_5xx |= {
            op.process
            for op in self.history.ops[since:]
            if op.type != "invoke" and (op.status is None or op.status >= 500)
        }

    def _fire_gated(
        self,
        requests: list[tuple[str, str, dict[str, Any]]],
        *,
        while_waiting: Callable[[], Awaitable[None]] | None = None,
    ) -> list[Answer]:
        """Send (f, user, body) requests at once, held at the contention gate until
        each waits on a lock (or has answered), then released together: the race
        happens on every replay, so Hypothesis can shrink it (an ungated race happens
        only sometimes, and a failure that comes and goes cannot be shrunk).
        `while_waiting` runs while they wait (a fault in the middle of a race)."""
        self.tally.stop_if_cancelled()
        dsn = self.target.database_url

        async def fire() -> list[Answer]:
            lock = self.target.dialect.lock("ledger")
            async with ContentionGate(
                dsn, len(requests), within=GATE_WITHIN_S, lock_sql=lock
            ) as gate:
                tasks = [asyncio.ensure_future(self._recorded("burst", *r)) for r in requests]
                with contextlib.suppress(GateNotFilled):
                    # Not filling is the service's business (it may lock elsewhere);
                    # the requests then race ungated.
                    await gate.wait_for_waiters(finished=lambda: sum(t.done() for t in tasks))
                if while_waiting is not None:
                    await while_waiting()
            return list(await asyncio.gather(*tasks))

        return self.loop.run_until_complete(fire())

    def _fire_together(self, requests: list[tuple[str, str, dict[str, Any]]]) -> list[Answer]:
        """Send (f, user, body) requests at once, ungated: for routes that need not
        wait on a database lock (a purchase waits on Stripe)."""
        self.tally.stop_if_cancelled()

        async def fire() -> list[Answer]:
            return list(await asyncio.gather(*(self._recorded("burst", *r) for r in requests)))

        return self.loop.run_until_complete(fire())

    def _transfer_body(self, f: str, creator: str, amount: int, key: str | None) -> dict[str, Any]:
        return transfer_body(f, self.uid(creator), amount, context="model", key=key)

    def _deliver(self, mode: str | None) -> None:
        if mode is None:
            return
        self.target.emulator.clear_delivery_rules()
        extra: dict[str, Any] = {"copies": 3} if mode in ("duplicate", "parallel") else {}
        if mode == "delay":
            extra["delay_s"] = 0.2
        if mode == "reorder":
            extra["max_wait_s"] = 0.5  # a window left half full flushes soon
        event_type = "payment_intent.*" if mode == "reorder" else "payment_intent.succeeded"
        self.target.emulator.add_delivery_rule(mode, event_type=event_type, **extra)

    def _expect_transfer(self, answer: Answer, fan: str, creator: str, amount: int) -> None:
        sender = self.uid(fan)
        if self.model.balances[sender] >= amount:
            assert answer.status == 200, f"expected 200, the model has funds; got {answer}"
            self.model.balances[sender] -= amount
            self.model.balances[self.uid(creator)] += amount
        else:
            assert answer.status == 402, f"expected 402 (insufficient); got {answer}"

    def _settle(self) -> None:
        self.target.emulator.release()
        self.target.emulator.wait_settled()

    # -- rules ------------------------------------------------------------------------

    @initialize(grants=st.lists(st.integers(0, 120), min_size=4, max_size=4))
    @logged_step
    def create_users(self, grants: list[int]) -> None:
        users = [UserSpec(self.uid(f), grant=g) for f, g in zip(FANS, grants, strict=False)]
        users += [
            UserSpec(self.uid(c), is_creator=True, grant=g)
            for c, g in zip(CREATORS, grants[len(FANS) :], strict=True)
        ]
        dsn = self.target.database_url

        async def go() -> None:
            conn = await asyncpg.connect(dsn)
            try:
                await create_users(conn, users, self.target.dialect)
            finally:
                await conn.close()

        self.loop.run_until_complete(go())
        self.model.balances = {u.supabase_id: u.grant for u in users}

    # -- invariants --------------------------------------------------------------------

    @invariant()
    def service_matches_model(self) -> None:
        try:
            self._compare_with_service()
        except Exception as exc:
            self.tally.saw_failure([*self.steps, "state.service_matches_model()"], exc)
            raise

    def _compare_with_service(self) -> None:
        if not self.model.balances:
            return
        self.tally.checks += 1
        target = self.target
        # Settled as the suites settle (a queue worker may credit after its 2xx);
        # held deliveries stay held until a rule releases them.
        observation = self.loop.run_until_complete(
            settle(target, self.model.balances, self.history.ops, release=False)
        )
        actual = {u: observation.db.balance_of(u) for u in self.model.balances}
        assert actual == self.model.balances, f"service {actual} != model {self.model.balances}"
        # Every invariant the suites hold a service to, after every step.
        broken = [
            v
            for result in check(observation)
            for v in result.violations
            if not (v.invariant == "no-5xx" and v.evidence["op"]["process"] in self.expected_5xx)
        ][:3]
        assert not broken, "; ".join(f"{v.invariant}: {v.message}" for v in broken)

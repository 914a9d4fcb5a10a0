"""Model-based runs: Hypothesis drives random operation sequences against a target
and compares it, after every step, with an in-memory model of what it should hold.

Each example gets users of its own (a fresh namespace in the target's database,
the same isolation a fresh database gives, without restarting the service), so
Hypothesis can replay and shrink. Async calls run on one event loop per machine
instance. A failure prints the shrunk steps as runnable code, and the seed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import asyncpg
import jwt
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
)

from harness.checkers import check
from harness.checkers.responses import internal_text
from harness.client import Answer, TargetClient
from harness.gates import ContentionGate, GateNotFilled
from harness.history import History
from harness.observe import observe
from harness.options import CI_MODEL_EXAMPLES, CI_MODEL_STEPS, DEFAULT_SHRINK_S
from harness.targets import Target
from harness.users import UserSpec, create_users
from harness.waiting import wait_until_async

PRICES = {100: 0, 500: 0, 1000: 0, 5000: 250, 10000: 500}  # tokens -> bonus
FANS, CREATORS = ("fan0", "fan1"), ("star0", "star1")
GATE_WITHIN_S = 10.0
TRANSFER_PATHS = {"tip": "/api/tokens/tip", "deduct": "/api/tokens/calls/deduct"}
PATHS = {**TRANSFER_PATHS, "purchase": "/api/tokens/purchase"}
SLOW_STRIPE_S = 1.0
# A balance read behind a slow Stripe may not wait for Stripe: well under its delay.
STALL_S = 0.9
MODEL_CHECKERS = (
    "non_negative",
    "ledger_explains_balances",
    "transfers",
    "reconciliation",
    "one_charge_per_key",
    "no_server_errors",
    "transfers_match_answers",
    "purchases_match_answers",
)

CI_PROFILE = settings(
    max_examples=CI_MODEL_EXAMPLES,
    stateful_step_count=CI_MODEL_STEPS,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)


def deep_profile(examples: int, steps: int) -> settings:
    return settings(CI_PROFILE, max_examples=examples, stateful_step_count=steps)


class ShrinkBudgetSpent(BaseException):
    """Shrinking has used its time budget. A BaseException for the same reason as
    ModelCancelled: Hypothesis lets it through instead of shrinking it."""


class ModelCancelled(BaseException):
    """The run was cancelled (Ctrl-C, SIGTERM, a timeout). A BaseException so that
    Hypothesis does not take it for a failure to shrink, and lets it through."""


_cancel = threading.Event()
_RUN_TOKEN = secrets.token_hex(3)
_examples = itertools.count()


def cancel_model() -> None:
    """Ask a model run in another thread to stop at its next step."""
    _cancel.set()


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


@dataclass
class Tally:
    """What a run did, for its report: examples run, model-vs-service checks, and
    the shortest failing sequence it ran (its `state.…` lines and the error)."""

    examples: int = 0
    checks: int = 0
    requests: int = 0  # sent to the service, in every example
    shortest_failure: tuple[list[str], str] | None = None
    first_failure_at: float | None = None  # time.monotonic() of the first failure
    shrink_budget_s: float = DEFAULT_SHRINK_S

    def saw_failure(self, steps: list[str], error: BaseException) -> None:
        if self.first_failure_at is None:
            self.first_failure_at = time.monotonic()
        if self.shortest_failure is None or len(steps) < len(self.shortest_failure[0]):
            self.shortest_failure = (list(steps), f"{type(error).__name__}: {error}")

    def shrinking_over_budget(self) -> bool:
        return (
            self.first_failure_at is not None
            and time.monotonic() - self.first_failure_at > self.shrink_budget_s
        )

    def progress(self, budget: int, elapsed_s: float) -> str:
        """A progress line for a long run. Hypothesis runs a few more examples than
        it counts (invalid ones are not) and keeps running them while it shrinks,
        so the count may pass the budget; the line says when that is shrinking."""
        text = (
            f"{self.examples} examples run (budget {budget}), "
            f"{self.checks} model checks, {elapsed_s:.0f} s"
        )
        if self.shortest_failure is not None:
            steps = steps_text(_step_count(self.shortest_failure[0]))
            text += f"; a failure was found, shrinking it (shortest failing run so far: {steps})"
        return text


T = TypeVar("T")


def _logged(method: Callable[..., T]) -> Callable[..., T]:
    """Log each rule call as a `state.…` line, as Hypothesis prints them. Hypothesis
    prints only the final, shrunk sequence; when it cannot shrink a failure (a race
    whose outcome varies between replays of the same steps) it prints none, and
    this log is what still shows a sequence that failed."""

    @functools.wraps(method)
    def logged(self: TokenModel, **kwargs: Any) -> T:
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


class TokenModel(RuleBasedStateMachine):
    """Bound to a target with `TokenModel.bind(target)` before a run."""

    target: ClassVar[Target | None] = None
    runs: ClassVar[Iterator[int]] = itertools.count()

    keyed = Bundle("keyed")
    three_ds = Bundle("three_ds")

    tally: ClassVar[Tally]

    @classmethod
    def bind(cls, target: Target, tally: Tally | None = None) -> type[TokenModel]:
        return type("TokenModelRun", (cls,), {"target": target, "tally": tally or Tally()})

    def __init__(self) -> None:
        super().__init__()
        if self.target is None:
            raise RuntimeError("bind the model to a target first: TokenModel.bind(target)")
        if _cancel.is_set():
            raise ModelCancelled
        if self.tally.shrinking_over_budget():
            raise ShrinkBudgetSpent
        self.loop = asyncio.new_event_loop()
        # Unique per example, replay and shrink attempt alike: rows an earlier
        # attempt created (and the service may still be crediting) never collide.
        self.prefix = f"m{_RUN_TOKEN}{next(_examples)}-"
        self.client = TargetClient(self.target.base_url, self.target.jwt_secret)
        self.history = History()
        self.model = ModelState()
        self.keys = itertools.count()
        self.steps: list[str] = []  # see _logged
        self.names: dict[int, str] = {}  # id of a bundle value -> its name in `steps`
        self.target.emulator.clear_delivery_rules()
        self.tally.examples += 1

    def teardown(self) -> None:
        self.tally.requests += self.client.requests_sent
        # Close the HTTP pool on its own loop, then the loop: nothing may leak
        # from one example into the next.
        self.loop.run_until_complete(self.client.aclose())
        self.loop.close()

    # -- helpers -------------------------------------------------------------------

    def uid(self, local: str) -> str:
        return self.prefix + local

    def _call(
        self, f: str, user: str, method: str, path: str, body: Any, *, record: bool = True
    ) -> Answer:
        """One request. `record=False` keeps it out of the history the checkers read:
        for answers a rule expects to be 5xx, which `no_server_errors` would flag."""
        if _cancel.is_set():
            raise ModelCancelled
        args = body if isinstance(body, dict) else {}
        invoke = self.history.invoke("model", f, user, args) if record else None

        async def go() -> Answer:
            return await self.client.call(method, path, user=user, json=body)

        answer = self.loop.run_until_complete(go())
        if invoke is not None:
            self.history.complete(invoke, answer.status, answer.body)
        return answer

    def _fire_gated(self, requests: list[tuple[str, str, dict[str, Any]]]) -> list[Answer]:
        """Send (f, user, body) requests at once, held at the contention gate until
        each waits on a lock (or has answered), then released together: the race
        happens on every replay, so Hypothesis can shrink it (an ungated race happens
        only sometimes, and a failure that comes and goes cannot be shrunk)."""
        assert self.target is not None
        if _cancel.is_set():
            raise ModelCancelled
        dsn = self.target.database_url

        async def fire() -> list[Answer]:
            async def one(f: str, user: str, body: dict[str, Any]) -> Answer:
                invoke = self.history.invoke("burst", f, user, body)
                answer = await self.client.call("POST", TRANSFER_PATHS[f], user=user, json=body)
                self.history.complete(invoke, answer.status, answer.body)
                return answer

            async with ContentionGate(dsn, len(requests), within=GATE_WITHIN_S) as gate:
                tasks = [asyncio.ensure_future(one(*request)) for request in requests]
                with contextlib.suppress(GateNotFilled):
                    # Not filling is the service's business (it may lock elsewhere);
                    # the requests then race ungated.
                    await gate.wait_for_waiters(finished=lambda: sum(t.done() for t in tasks))
            return list(await asyncio.gather(*tasks))

        return self.loop.run_until_complete(fire())

    def _transfer_body(self, f: str, creator: str, amount: int, key: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {"creatorId": self.uid(creator), "tokenAmount": amount}
        body["channel" if f == "tip" else "callId"] = "model"
        if key is not None:
            body["clientIdempotencyKey"] = key
        return body

    def _expect_transfer(self, answer: Answer, fan: str, creator: str, amount: int) -> None:
        sender = self.uid(fan)
        if self.model.balances[sender] >= amount:
            assert answer.status == 200, f"expected 200, the model has funds; got {answer}"
            self.model.balances[sender] -= amount
            self.model.balances[self.uid(creator)] += amount
        else:
            assert answer.status == 402, f"expected 402 (insufficient); got {answer}"

    def _settle(self) -> None:
        assert self.target is not None
        self.target.emulator.release()
        self.target.emulator.wait_settled()

    # -- rules ------------------------------------------------------------------------

    @initialize(grants=st.lists(st.integers(0, 120), min_size=4, max_size=4))
    @_logged
    def create_users(self, grants: list[int]) -> None:
        users = [UserSpec(self.uid(f), grant=g) for f, g in zip(FANS, grants, strict=False)]
        users += [
            UserSpec(self.uid(c), is_creator=True, grant=g)
            for c, g in zip(CREATORS, grants[len(FANS) :], strict=True)
        ]
        assert self.target is not None
        dsn = self.target.database_url

        async def go() -> None:
            conn = await asyncpg.connect(dsn)
            try:
                await create_users(conn, users)
            finally:
                await conn.close()

        self.loop.run_until_complete(go())
        self.model.balances = {u.supabase_id: u.grant for u in users}

    @rule(
        target=keyed,
        f=st.sampled_from(["tip", "deduct"]),
        fan=st.sampled_from(FANS),
        creator=st.sampled_from(CREATORS),
        amount=st.integers(1, 60),
        with_key=st.booleans(),
    )
    @_logged
    def transfer(self, f: str, fan: str, creator: str, amount: int, with_key: bool) -> Any:
        key = f"k{next(self.keys)}" if with_key else None
        body = self._transfer_body(f, creator, amount, key)
        answer = self._call(f, self.uid(fan), "POST", TRANSFER_PATHS[f], body)
        self._expect_transfer(answer, fan, creator, amount)
        return Keyed(f, self.uid(fan), body, answer) if key else multiple()

    @rule(fan=st.sampled_from(CREATORS), amount=st.integers(1, 10))
    @_logged
    def self_transfer(self, fan: str, amount: int) -> None:
        answer = self._call(
            "tip",
            self.uid(fan),
            "POST",
            "/api/tokens/tip",
            self._transfer_body("tip", fan, amount, None),
        )
        assert 400 <= answer.status < 500, f"a self tip answered {answer}"

    @rule(
        f=st.sampled_from(["tip", "deduct"]),
        fan=st.sampled_from(FANS),
        amount=st.sampled_from(["12abc", "1e1", " 5", "0100", 1.5, -5, "-5", 0, True, None]),
    )
    @_logged
    def bad_amount(self, f: str, fan: str, amount: Any) -> None:
        body = self._transfer_body(f, CREATORS[0], 1, None)
        body["tokenAmount"] = amount
        answer = self._call(f, self.uid(fan), "POST", TRANSFER_PATHS[f], body)
        # 400 exactly (the contract's answer to bad input): a 402 would mean the
        # amount was parsed into something and checked against the balance.
        assert answer.status == 400, f"amount {amount!r} answered {answer}"

    @rule(fan=st.sampled_from(FANS))
    @_logged
    def token_without_exp(self, fan: str) -> None:
        assert self.target is not None
        if _cancel.is_set():
            raise ModelCancelled
        token = jwt.encode({"sub": self.uid(fan)}, self.target.jwt_secret, algorithm="HS256")

        async def go() -> Answer:
            return await self.client.call(
                "GET", "/api/tokens/balance", headers={"Authorization": f"Bearer {token}"}
            )

        answer = self.loop.run_until_complete(go())
        assert answer.status == 401, f"a token without exp answered {answer.status}"

    @rule(fan=st.sampled_from(FANS))
    @_logged
    def forged_success_for_declined(self, fan: str) -> None:
        """A declined purchase, then a badly signed `succeeded` for it: nothing credited."""
        assert self.target is not None
        body = {"tokenAmount": 100, "paymentMethodId": "pm_card_chargeDeclined"}
        answer = self._call("purchase", self.uid(fan), "POST", "/api/tokens/purchase", body)
        assert answer.status == 402, f"a declined card answered {answer}"
        intent = answer.body.get("paymentIntentId") if isinstance(answer.body, dict) else None
        if isinstance(intent, str):
            result = self.target.emulator.forge(intent, signature="forged")
            statuses = [a["status"] for a in result["attempts"]]
            assert all(s is not None and 400 <= s < 500 for s in statuses), (
                f"a forged event was answered {statuses}"
            )

    @rule(
        target=keyed,
        fan=st.sampled_from(FANS),
        tokens=st.sampled_from(sorted(PRICES)),
        method=st.sampled_from(["pm_card_visa", "pm_card_chargeDeclined"]),
    )
    @_logged
    def purchase(self, fan: str, tokens: int, method: str) -> Any:
        key = f"p{next(self.keys)}"
        body = {"tokenAmount": tokens, "paymentMethodId": method, "clientIdempotencyKey": key}
        answer = self._call("purchase", self.uid(fan), "POST", "/api/tokens/purchase", body)
        if method == "pm_card_visa":
            assert answer.status == 200, f"a card purchase answered {answer}"
            self.model.balances[self.uid(fan)] += tokens + PRICES[tokens]
        else:
            assert answer.status == 402, f"a declined card answered {answer}"
        self._settle()
        return Keyed("purchase", self.uid(fan), body, answer)

    @rule(target=three_ds, fan=st.sampled_from(FANS), tokens=st.sampled_from([100, 500]))
    @_logged
    def purchase_three_ds(self, fan: str, tokens: int) -> Any:
        body = {"tokenAmount": tokens, "paymentMethodId": "pm_card_threeDSecure2Required"}
        answer = self._call("purchase", self.uid(fan), "POST", "/api/tokens/purchase", body)
        assert answer.status == 200, f"a 3DS purchase answered {answer}"
        return Pending3DS(answer.body["paymentIntent"]["id"], self.uid(fan), tokens)

    @rule(pending=three_ds, action=st.sampled_from(["authenticate", "abandon", "fail"]))
    @_logged
    def customer_acts(self, pending: Pending3DS, action: str) -> None:
        assert self.target is not None
        if pending.done:
            return
        pending.done = True
        self.target.emulator.customer(pending.intent, action)
        if action == "authenticate":
            self.model.balances[pending.user] += pending.tokens
        self._settle()

    @rule(
        mode=st.sampled_from(
            [
                "duplicate",
                "parallel",
                "reorder",
                "delay",
                "hold",
                "drop_first",
                "forge",
                "stale",
                "before_response",
                "immediate",
            ]
        )
    )
    @_logged
    def webhook_delivery(self, mode: str) -> None:
        """How the next purchases' events arrive."""
        assert self.target is not None
        self.target.emulator.clear_delivery_rules()
        extra: dict[str, Any] = {"copies": 3} if mode in ("duplicate", "parallel") else {}
        if mode == "delay":
            extra["delay_s"] = 0.2
        if mode == "reorder":
            extra["max_wait_s"] = 0.5  # a window left half full flushes soon
        event_type = "payment_intent.*" if mode == "reorder" else "payment_intent.succeeded"
        self.target.emulator.add_delivery_rule(mode, event_type=event_type, **extra)

    @rule(
        target=keyed,
        f=st.sampled_from(["tip", "deduct"]),
        fan=st.sampled_from(FANS),
        creator=st.sampled_from(CREATORS),
        amount=st.integers(1, 60),
        copies=st.integers(2, 3),
    )
    @_logged
    def double_submit(self, f: str, fan: str, creator: str, amount: int, copies: int) -> Any:
        """A new keyed transfer sent `copies` times at once (a double click): money
        moves once and every copy answers alike, except that a copy may be told 409
        while the first is in flight. Catches key checks that race."""
        body = self._transfer_body(f, creator, amount, f"k{next(self.keys)}")
        answers = self._fire_gated([(f, self.uid(fan), body)] * copies)
        outcomes = {a.status for a in answers} - {409}
        assert len(outcomes) == 1, f"{copies} copies of one keyed {f} answered {answers}"
        first = next(a for a in answers if a.status != 409)
        self._expect_transfer(first, fan, creator, amount)
        return Keyed(f, self.uid(fan), body, first)

    @rule(target=keyed, fan=st.sampled_from(FANS), tokens=st.sampled_from([100, 500]))
    @_logged
    def purchase_during_outage(self, fan: str, tokens: int) -> Any:
        """Stripe answers 500 to every call: the purchase fails cleanly (502 or 503,
        no internal text, nothing credited). Its retry after the outage (the `retry`
        rule) must then succeed. The 500 says Stripe-Should-Retry: false, so the
        SDK gives up at once instead of spending seconds in backoff on every
        replay (the faults suite covers an outage the SDK retries through)."""
        assert self.target is not None
        key = f"p{next(self.keys)}"
        body = {
            "tokenAmount": tokens,
            "paymentMethodId": "pm_card_visa",
            "clientIdempotencyKey": key,
        }
        self.target.emulator.add_fault("error", status=500, should_retry=False)
        try:
            # Not recorded: its 5xx is the expected answer, not a server error.
            answer = self._call(
                "purchase", self.uid(fan), "POST", PATHS["purchase"], body, record=False
            )
        finally:
            self.target.emulator.clear_faults()
        assert answer.status in (502, 503), f"a purchase during a Stripe outage answered {answer}"
        leaked = internal_text(str(answer.body))
        assert not leaked, f"an outage answer carries internal text {leaked}: {answer.body}"
        self._settle()
        return Keyed("purchase", self.uid(fan), body, answer)

    @rule(target=keyed, fan=st.sampled_from(FANS))
    @_logged
    def purchase_while_stripe_slow(self, fan: str) -> Any:
        """Stripe takes SLOW_STRIPE_S to create the intent: while the service waits
        on it, the buyer's balance still answers within STALL_S (a service that
        stalls behind a slow Stripe breaks its routes' promise of an answer)."""
        assert self.target is not None
        emulator = self.target.emulator
        key = f"p{next(self.keys)}"
        body = {"tokenAmount": 100, "paymentMethodId": "pm_card_visa", "clientIdempotencyKey": key}
        fault = emulator.add_fault(
            "latency", latency_s=SLOW_STRIPE_S, path="^/v1/payment_intents$", method="POST"
        )

        def fault_fired() -> bool:
            rules = emulator.state(metadata_prefix=("userId", self.prefix))["fault_rules"]
            return any(r["id"] == fault["id"] and r["fired"] for r in rules)

        async def go() -> tuple[Answer, float]:
            user = self.uid(fan)
            invoke = self.history.invoke("model", "purchase", user, body)
            call = asyncio.ensure_future(
                self.client.call("POST", PATHS["purchase"], user=user, json=body)
            )
            try:
                await wait_until_async(
                    lambda: asyncio.to_thread(fault_fired),
                    within=GATE_WITHIN_S,
                    what="the purchase reaches Stripe",
                )
                started = time.monotonic()
                await self.client.call("GET", "/api/tokens/balance", user=user, timeout_s=5)
                balance_s = time.monotonic() - started
            finally:
                # Whatever happened, the purchase is awaited: nothing outlives the step.
                answer = await call
                self.history.complete(invoke, answer.status, answer.body)
            return answer, balance_s

        try:
            answer, balance_s = self.loop.run_until_complete(go())
        finally:
            emulator.clear_faults()
        assert balance_s < STALL_S, f"GET /balance took {balance_s:.2f} s while Stripe was slow"
        assert answer.status == 200, f"a card purchase answered {answer}"
        self.model.balances[self.uid(fan)] += 100
        self._settle()
        return Keyed("purchase", self.uid(fan), body, answer)

    @rule(request=keyed)
    @_logged
    def retry(self, request: Keyed) -> None:
        answer = self._call(request.f, request.user, "POST", PATHS[request.f], request.body)
        if request.first.status in (502, 503):
            # The first try met a Stripe outage, now over: this one charges, once.
            assert answer.status == 200, f"a purchase retried after an outage answered {answer}"
            self.model.balances[request.user] += request.body["tokenAmount"]
            request.first = answer
        else:
            assert answer.status == request.first.status, (
                f"a retry answered {answer.status}, the first answer was {request.first.status}"
            )
        self._settle()

    @rule(
        ops=st.lists(
            st.tuples(
                st.sampled_from(["tip", "deduct"]),
                st.sampled_from(FANS + CREATORS),
                st.sampled_from(CREATORS),
                st.integers(1, 60),
            ).filter(lambda op: op[1] != op[2]),
            min_size=2,
            max_size=4,
        )
    )
    @_logged
    def burst(self, ops: list[tuple[str, str, str, int]]) -> None:
        """k requests at once, gated (see _fire_gated): the outcome must equal some
        serial order's. Creators send too, so transfers can cross."""
        self._burst(ops)

    @rule(
        f=st.sampled_from(["tip", "deduct"]),
        amounts=st.lists(st.integers(1, 60), min_size=2, max_size=6).filter(
            lambda a: len(a) % 2 == 0
        ),
    )
    @_logged
    def crossing_transfers(self, f: str, amounts: list[int]) -> None:
        """The two creators pay each other at the same moment, in pairs: each
        transfer locks both rows, in opposite request order. Catches lock orders
        that deadlock (more pairs, more chances for the locks to interleave)."""
        a, b = CREATORS
        self._burst([(f, *((a, b) if i % 2 == 0 else (b, a)), n) for i, n in enumerate(amounts)])

    def _burst(self, ops: list[tuple[str, str, str, int]]) -> None:
        answers = self._fire_gated(
            [
                (f, self.uid(fan), self._transfer_body(f, creator, amount, None))
                for f, fan, creator, amount in ops
            ]
        )
        statuses = [a.status for a in answers]
        for order in itertools.permutations(range(len(ops))):
            balances = dict(self.model.balances)
            outcome = [0] * len(ops)
            for i in order:
                _, fan, creator, amount = ops[i]
                if balances[self.uid(fan)] >= amount:
                    balances[self.uid(fan)] -= amount
                    balances[self.uid(creator)] += amount
                    outcome[i] = 200
                else:
                    outcome[i] = 402
            if outcome == statuses:
                self.model.balances = balances
                return
        raise AssertionError(f"no serial order of {ops} gives the answers {statuses}")

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
        assert self.target is not None
        self.tally.checks += 1
        target = self.target
        # Only this example's intents: a deep run's whole history would be copied
        # on every step otherwise.
        observation = self.loop.run_until_complete(
            observe(target, self.model.balances, self.history.ops, metadata_prefix=self.prefix)
        )
        actual = {u: observation.db.balance_of(u) for u in self.model.balances}
        assert actual == self.model.balances, f"service {actual} != model {self.model.balances}"
        for result in check(observation, MODEL_CHECKERS):
            assert result.valid, "; ".join(v.message for v in result.violations[:3])
        for op in self.history.completions():
            # The contract says it of 5xx bodies only.
            if op.status is not None and op.status >= 500:
                leaked = internal_text(str(op.body))
                assert not leaked, f"internal text {leaked} in {op.body}"


@dataclass(frozen=True)
class ModelOutcome:
    passed: bool
    text: str  # Hypothesis's report: the shrunk steps as code, and how to reproduce
    steps: int | None  # length of the shrunk sequence, when it failed
    tally: Tally = field(default_factory=Tally)


def run_model(
    target: Target, profile: settings = CI_PROFILE, *, seed: int = 1, tally: Tally | None = None
) -> ModelOutcome:
    """Run the state machine; `seed` picks the examples (the same seed, the same run).
    Pass a `tally` to watch the run's progress from another thread."""
    from hypothesis import seed as use_seed
    from hypothesis.reporting import with_reporter
    from hypothesis.stateful import run_state_machine_as_test

    lines: list[str] = []
    _cancel.clear()
    machine = use_seed(seed)(TokenModel.bind(target, tally))
    with with_reporter(lambda text: lines.append(str(text))):
        try:
            run_state_machine_as_test(machine, settings=profile)
        except ShrinkBudgetSpent:
            text, steps = _budget_report(machine.tally)
            return ModelOutcome(False, text, steps, machine.tally)
        except Exception as exc:  # the falsifying example(s), already shrunk
            text, steps = _report(exc, lines, machine.tally.shortest_failure)
            return ModelOutcome(False, text, steps, machine.tally)
    return ModelOutcome(True, "\n".join(lines), None, machine.tally)


def _budget_report(tally: Tally) -> tuple[str, int | None]:
    """The shortest failing sequence reached when shrinking ran out of time."""
    assert tally.shortest_failure is not None, "the budget runs only after a failure"
    steps, error = tally.shortest_failure
    text = "\n".join(
        [
            f"Shrinking stopped after its budget of {tally.shrink_budget_s:g} s "
            "(--shrink-seconds raises it). The shortest failing sequence reached:",
            "state = TokenModelRun()",
            *steps,
            "state.teardown()",
            error,
        ]
    )
    return text, _step_count(steps)


def _report(
    exc: BaseException, lines: list[str], seen: tuple[list[str], str] | None
) -> tuple[str, int | None]:
    """Hypothesis's report of a failed run, and the length of the shortest failing
    sequence in it. `seen` (the shortest failing sequence the run logged) stands in
    when Hypothesis reports no steps: it gives up shrinking a failure whose replay
    does not fail the same way (a race whose outcome varies), and says only that."""
    failures = _failures(exc)
    parts = list(lines)
    for number, (notes, error) in enumerate(failures, start=1):
        if len(failures) > 1:
            parts.append(f"--- failure {number} of {len(failures)} ---")
        parts += [*notes, error]
    lengths = [_step_count(notes) for notes, _ in failures]
    steps = min((n for n in lengths if n), default=None)
    if steps is None and seen is not None:
        seen_steps, seen_error = seen
        parts += [
            "",
            "Hypothesis could not shrink this failure: replaying the same steps did not "
            "always fail the same way (a race whose outcome varies). The shortest "
            "failing sequence it ran:",
            "state = TokenModelRun()",
            *seen_steps,
            "state.teardown()",
            seen_error,
        ]
        steps = _step_count(seen_steps)
    return "\n".join(parts), steps


def _failures(exc: BaseException) -> list[tuple[list[str], str]]:
    """Each distinct failure with its notes (Hypothesis attaches the steps as PEP 678
    notes). Several distinct failures, or a flaky one, come as an ExceptionGroup:
    its notes belong to the group, the steps to each sub-exception."""
    own = [str(n) for n in getattr(exc, "__notes__", [])]
    if isinstance(exc, BaseExceptionGroup):
        found = [f for sub in exc.exceptions for f in _failures(sub)]
        if found:
            notes, error = found[0]
            found[0] = (own + notes, error)
            return found
    return [(own, f"{exc.__class__.__name__}: {exc}")]


def steps_text(count: int) -> str:
    return f"{count} step{'s' * (count != 1)}"


def _step_count(notes: list[str]) -> int:
    """Rule calls in printed steps: `state.rule(...)` or `keyed_0 = state.rule(...)`
    (a rule that adds to a bundle), not the invariant or the teardown."""
    skip = ("state.teardown", "state.service_matches_model")
    calls = (_STEP.match(line) for note in notes for line in note.splitlines())
    return sum(1 for call in calls if call and not call.group(1).startswith(skip))


_STEP = re.compile(r"\s*(?:\w+ = )?(state\.\w+\()")

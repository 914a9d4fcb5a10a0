"""The model's fault steps: something breaks in the middle of a sequence, and
the service must come out of it with its ledger whole."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import httpx
from hypothesis import strategies as st
from hypothesis.stateful import multiple, precondition, rule

from harness.checkers.responses import internal_text
from harness.contract import purchase_body
from harness.model.base import (
    CREATORS,
    FANS,
    KEYED,
    PRICES,
    Keyed,
    ModelBase,
    a_delivery,
    a_fan,
    logged_step,
)
from harness.run.collect import logged_errors
from harness.run.settle import settle
from harness.run.stall import STALL_S, Stall, probe_stall
from harness.target.client import Answer
from harness.waiting import DeadlineExceeded, wait_until, wait_until_async

KILL_WAITERS_SQL = """
SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'
"""
SLOW_STRIPE_S = 0.3  # slow enough for purchases to overlap, short enough for many examples
CLIENT_TIMEOUT_S = 0.1
# More purchases at once than most pools hold, each waiting this long on Stripe:
# longer than a read may take (STALL_S), so a starved pool shows.
CROWD, CROWD_STRIPE_S, CROWD_TIMEOUT_S = 24, 1.5, 15.0


class FaultRules(ModelBase):
    @rule(amount=st.integers(1, 30), tips=st.integers(2, 4))
    @logged_step
    def database_connections_killed(self, amount: int, tips: int) -> None:
        """`tips` identical tips wait on one lock; the service's connections that
        wait are terminated. Each tip then happened or not (a 5xx says nothing),
        but none half-way, no 5xx carries internal text, and the next tip is
        served. The model learns how many happened from the settled balance."""
        dsn = self.target.database_url

        async def kill() -> None:
            conn = await asyncpg.connect(dsn)
            try:
                await conn.fetchval(KILL_WAITERS_SQL)
            finally:
                await conn.close()

        self._tips_cut_off(amount, tips, kill, "cut off by the kill")

    @precondition(lambda self: self.target.process is not None)
    @rule(amount=st.integers(1, 30), tips=st.integers(2, 4))
    @logged_step
    def service_restarted(self, amount: int, tips: int) -> None:
        """`tips` identical tips wait on one lock; the service is SIGKILLed (its
        whole process group) and started again. As for killed connections: each
        tip happened or not, none half-way; webhooks Stripe could not deliver
        meanwhile arrive later and credit once. Only for a service tokenproof
        started (it cannot restart one it was given by URL)."""
        process = self.target.process
        assert process is not None

        async def kill() -> None:
            await asyncio.to_thread(process.kill)

        # Started once the gate has let go of its lock: a service may take locks
        # on its own tables as it starts (migrations), and would wait on the gate.
        def start_again() -> None:
            process.start()
            self._reconnect()

        self._tips_cut_off(amount, tips, kill, "cut off by the restart", then=start_again)

    def _tips_cut_off(
        self,
        amount: int,
        tips: int,
        fault: Callable[[], Awaitable[None]],
        what: str,
        *,
        then: Callable[[], object] = lambda: None,
    ) -> None:
        """`fault` runs while the tips wait at the gate, `then` once it has let go."""
        fan = self.uid(FANS[0])
        body = self._transfer_body("tip", CREATORS[0], amount, None)
        before = len(self.history.ops)
        answers = self._fire_gated([("tip", fan, body)] * tips, while_waiting=fault)
        then()
        self._allow_5xx(before)
        logged = logged_errors(self.target.server_log) if self.target.server_log else ()
        for answer in answers:
            if answer.status >= 500:
                text = str(answer.body)
                leaked = internal_text(text) + [m[:80] for m in logged if m in text]
                assert not leaked, f"a tip {what} answered {answer} ({leaked})"
        done = sum(a.status == 200 for a in answers)
        unknown = sum(a.status >= 500 or a.status == 0 for a in answers)
        self._learn_tips(fan, amount, done, unknown, answers)
        after = self._call("tip", fan, body)
        assert after.status in (200, 402), f"the next tip after a tip {what} answered {after}"
        self._expect_transfer(after, FANS[0], CREATORS[0], amount)

    def _learn_tips(
        self, fan: str, amount: int, done: int, unknown: int, answers: list[Any]
    ) -> None:
        """How many of the tips happened, from the settled balance: at least the
        200s, at most those plus the unknown outcomes, and whole tips only."""
        observation = self.loop.run_until_complete(
            settle(self.target, self.model.balances, self.history.ops, release=False)
        )
        moved = self.model.balances[fan] - observation.db.balance_of(fan)
        happened, rest = divmod(moved, amount)
        assert rest == 0 and done <= happened <= done + unknown, (
            f"{len(answers)} tips of {amount} answered {[a.status for a in answers]}; the "
            f"fan's balance moved by {moved}"
        )
        self.model.balances[fan] -= happened * amount
        self.model.balances[self.uid(CREATORS[0])] += happened * amount

    @rule(
        target=KEYED,
        fan=a_fan,
        tokens=st.sampled_from([100, 500]),
        calls=st.integers(1, 2),
        delivery=a_delivery,
    )
    @logged_step
    def purchase_through_stripe_errors(
        self, fan: str, tokens: int, calls: int, delivery: str | None
    ) -> Any:
        """Stripe answers the next `calls` calls with a 503 that its SDKs may retry,
        then a keyed purchase: it succeeds, charging once, or fails cleanly with 502
        or 503 (no internal text, nothing charged); a failed one is kept for
        `retry`, which must then succeed."""
        key = f"p{next(self.keys)}"
        body = purchase_body(tokens, "pm_card_visa", key)
        self._deliver(delivery)
        self.target.emulator.add_fault("error", status=503, times=calls)
        before = len(self.history.ops)
        try:
            answer = self._call("purchase", self.uid(fan), body)
        finally:
            self.target.emulator.clear_faults()
        assert answer.status in (200, 502, 503), (
            f"a purchase while Stripe answered 503 to {calls} calls answered {answer}"
        )
        leaked = internal_text(str(answer.body)) if answer.status >= 500 else []
        assert not leaked, f"a purchase during a Stripe outage answered {answer} ({leaked})"
        self._allow_5xx(before)
        if answer.status == 200:
            self.model.balances[self.uid(fan)] += tokens + PRICES[tokens]
        self._settle()
        return Keyed("purchase", self.uid(fan), body, answer)

    @rule(fan=a_fan, tokens=st.sampled_from([100, 500]), delivery=a_delivery)
    @logged_step
    def purchase_times_out(self, fan: str, tokens: int, delivery: str | None) -> None:
        """Stripe is slow, the client gives up on a keyed purchase (its outcome
        unknown) and sends it again at once, while the first is still at Stripe: 200,
        or 409, 502 or 503 (Stripe answers "in progress"). Once Stripe has answered,
        the same key again must succeed: one charge, credited once."""
        key = f"p{next(self.keys)}"
        body = purchase_body(tokens, "pm_card_visa", key)
        user = self.uid(fan)
        self._deliver(delivery)
        emulator = self.target.emulator
        # Requests before this step may never have been answered (a connection cut
        # by an earlier fault): only this step's are waited for.
        mark = emulator.request_mark()
        emulator.add_fault(
            "latency", latency_s=SLOW_STRIPE_S, path="^/v1/payment_intents$", times=1
        )
        before = len(self.history.ops)
        first = self.loop.run_until_complete(
            self._recorded("model", "purchase", user, body, timeout_s=CLIENT_TIMEOUT_S)
        )
        again = self._call("purchase", user, body)
        self.target.emulator.clear_faults()
        self._allow_5xx(before)
        assert again.status in (200, 409, 502, 503), (
            f"a purchase sent again while its first try (client timeout, {first}) was at "
            f"Stripe answered {again}"
        )
        wait_until(
            lambda: emulator.unanswered_since(mark) == 0,
            within=30,
            what="the slow Stripe call finishes",
        )
        last = self._call("purchase", user, body)
        assert last.status == 200, f"a purchase sent again once Stripe answered got {last}"
        self.model.balances[user] += tokens + PRICES[tokens]
        self._settle()

    @rule(target=KEYED, fan=a_fan, purchases=st.sampled_from([1, 2, 4, CROWD]), delivery=a_delivery)
    @logged_step
    def purchases_wait_on_slow_stripe(self, fan: str, purchases: int, delivery: str | None) -> Any:
        """`purchases` keyed purchases at once (shared by both fans) while Stripe
        takes a while to create each intent: each charges once and is credited
        once (or is refused 429, which the contract allows). A crowd (more than most
        pools hold) waits CROWD_STRIPE_S each, and balance reads must not stall
        meanwhile on transactions held open across the Stripe call (`probe_stall`:
        a slow read with no transaction held is the server's own capacity, which
        the contract does not size)."""
        crowd = purchases == CROWD
        users = [self.uid(FANS[(FANS.index(fan) + i) % len(FANS)]) for i in range(purchases)]
        bodies = [purchase_body(100, "pm_card_visa", f"p{next(self.keys)}") for _ in users]
        self._deliver(delivery)
        self.target.emulator.add_fault(
            "latency",
            latency_s=CROWD_STRIPE_S if crowd else SLOW_STRIPE_S,
            path="^/v1/payment_intents$",
            method="POST",
        )
        reader = self.uid(CREATORS[0])  # no purchase of its own in flight

        async def reads() -> None:
            async def read() -> None:
                with contextlib.suppress(httpx.HTTPError):  # a read that gives up is slow
                    await self.client.send(
                        "balance", reader, headers={"Connection": "close"}, timeout_s=STALL_S * 3
                    )

            await asyncio.gather(*(read() for _ in range(4)))

        mark = self.target.emulator.request_mark()

        async def waiting_on_stripe() -> bool:
            return await asyncio.to_thread(self.target.emulator.unanswered_since, mark) > 0

        async def fire() -> tuple[list[Answer], Stall | None]:
            tasks = [
                asyncio.ensure_future(
                    self._recorded("crowd", "purchase", user, body, timeout_s=CROWD_TIMEOUT_S)
                )
                for user, body in zip(users, bodies, strict=True)
            ]
            stall = None
            if crowd:
                with contextlib.suppress(DeadlineExceeded):
                    await wait_until_async(
                        waiting_on_stripe, within=3, what="a purchase waits on Stripe"
                    )
                stall = await probe_stall(self.target.database_url, reads)
            return list(await asyncio.gather(*tasks)), stall

        try:
            answers, stall = self.loop.run_until_complete(fire())
        finally:
            self.target.emulator.clear_faults()
        if stall is not None:
            assert not stall.stalled, (
                f"GET /balance took {stall.worst_s:.2f} s while {purchases} purchases waited on "
                f"Stripe, and {len(stall.holding)} database sessions held a transaction open "
                f"meanwhile: {stall.holding[:3]}"
            )
        for user, answer in zip(users, answers, strict=True):
            assert answer.status in (200, 429), (
                f"a purchase while Stripe was slow answered {answer}"
            )
            if answer.status == 200:
                self.model.balances[user] += 100
        self._settle()
        return multiple(
            *(Keyed("purchase", u, b, a) for u, b, a in zip(users, bodies, answers, strict=True))
        )

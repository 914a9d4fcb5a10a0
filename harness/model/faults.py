"""The model's fault steps: something breaks in the middle of a sequence, and
the service must come out of it with its ledger whole."""

from __future__ import annotations

import asyncpg
from hypothesis import strategies as st
from hypothesis.stateful import rule

from harness.checkers.responses import internal_text
from harness.model.base import CREATORS, FANS, ModelBase, logged_step
from harness.run.collect import logged_errors
from harness.run.settle import settle

KILL_WAITERS_SQL = """
SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'
"""


class FaultRules(ModelBase):
    @rule(amount=st.integers(1, 30), tips=st.integers(2, 4))
    @logged_step
    def database_connections_killed(self, amount: int, tips: int) -> None:
        """`tips` identical tips wait on one lock; the service's connections that
        wait are terminated. Each tip then happened or not (a 5xx says nothing),
        but none half-way, no 5xx carries internal text, and the next tip is
        served. The model learns how many happened from the settled balance."""
        fan, creator = self.uid(FANS[0]), self.uid(CREATORS[0])
        body = self._transfer_body("tip", CREATORS[0], amount, None)
        dsn = self.target.database_url

        async def kill() -> None:
            conn = await asyncpg.connect(dsn)
            try:
                await conn.fetchval(KILL_WAITERS_SQL)
            finally:
                await conn.close()

        before = len(self.history.ops)
        answers = self._fire_gated([("tip", fan, body)] * tips, while_waiting=kill)
        failed = [op for op in self.history.ops[before:] if op.type == "info"]
        self.expected_5xx |= {op.process for op in failed}
        logged = logged_errors(self.target.server_log) if self.target.server_log else ()
        for answer in answers:
            if answer.status >= 500:
                text = str(answer.body)
                leaked = internal_text(text) + [m[:80] for m in logged if m in text]
                assert not leaked, f"a tip cut off by the kill answered {answer} ({leaked})"
        done = sum(a.status == 200 for a in answers)
        unknown = sum(a.status >= 500 for a in answers)
        observation = self.loop.run_until_complete(
            settle(self.target, self.model.balances, self.history.ops, release=False)
        )
        happened, rest = divmod(self.model.balances[fan] - observation.db.balance_of(fan), amount)
        assert rest == 0 and done <= happened <= done + unknown, (
            f"{tips} tips of {amount} answered {[a.status for a in answers]}; the fan's balance "
            f"moved by {self.model.balances[fan] - observation.db.balance_of(fan)}"
        )
        self.model.balances[fan] -= happened * amount
        self.model.balances[creator] += happened * amount
        after = self._call("tip", fan, body)
        self._expect_transfer(after, FANS[0], CREATORS[0], amount)

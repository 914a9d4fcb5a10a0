"""Checks that run while the load goes on, so a long session fails early.

What the contract says holds in every committed state is read from the
database during the run:

- no balance is negative, at any read;
- no two `creator_earnings` rows share a source (written with the tip or call
  they record, in its one transaction);
- the ledger explains the balance of every user no credit can be half-way for.
  Tips and call minutes move tokens in one transaction (the contract says so),
  so any snapshot shows them whole. A purchase is credited by the webhook,
  which the contract does not make one transaction, and maybe later by a queue
  worker: users with a purchase call are left to the settled check at the end.
  A user's first purchase call may reach tokenproof a moment after the
  snapshot, so a snapshot is judged only HOLD_S later, against the ops read by
  then.

Each query is one statement: PostgreSQL answers it from one snapshot.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass, field

import asyncpg

from harness.checkers import Violation
from harness.load.stream import Tally

NEGATIVES_EVERY_S = 2.0
LEDGER_EVERY_S = 15.0  # sums every ledger row of the users: kept rare under load
HOLD_S = 5.0

NEGATIVES_SQL = """
SELECT user_id, balance FROM token_balances
WHERE user_id = ANY($1::text[]) AND balance < 0
"""
LEDGER_SQL = """
SELECT b.user_id, b.balance,
       COALESCE((SELECT sum(t.tokens) FROM token_transactions t
                 WHERE t.user_id = b.user_id AND t.status = 'completed'), 0) AS ledger
FROM token_balances b
WHERE b.user_id = ANY($1::text[])
"""
SHARED_SOURCES_SQL = """
SELECT earning_type, source_id, count(*) AS rows FROM creator_earnings
WHERE creator_id = ANY($1::text[])
GROUP BY earning_type, source_id HAVING count(*) > 1
LIMIT 20
"""


@dataclass(frozen=True)
class Snapshot:
    taken: float  # monotonic
    after_s: float  # since the run's start
    gaps: tuple[tuple[str, int, int], ...]  # (user, balance, ledger sum) that differ


@dataclass
class LiveChecks:
    database_url: str
    users: tuple[str, ...]
    tables: str = ""  # a dialect's reads named as the contract's tables (as_contract_tables)
    started: float = field(default_factory=time.monotonic)
    violations: list[Violation] = field(default_factory=list)
    reads: int = 0
    _held: list[Snapshot] = field(default_factory=list)
    _negative_users: set[str] = field(default_factory=set)
    _ledger_users: set[str] = field(default_factory=set)
    _shared_sources: set[tuple[str, str]] = field(default_factory=set)
    _next_negatives: float = 0.0
    _next_ledger: float = LEDGER_EVERY_S

    async def tick(self, conn: asyncpg.Connection, tally: Tally, ops_read_at: float) -> None:
        """Read what is due and judge held snapshots the ops have caught up with."""
        now = time.monotonic()
        after = now - self.started
        if after >= self._next_negatives:
            self._next_negatives = after + NEGATIVES_EVERY_S
            self.reads += 1
            for row in await conn.fetch(self.tables + NEGATIVES_SQL, list(self.users)):
                self._negative(row["user_id"], int(row["balance"]), after)
        if after >= self._next_ledger:
            self._next_ledger = after + LEDGER_EVERY_S
            self.reads += 1
            rows = await conn.fetch(self.tables + LEDGER_SQL, list(self.users))
            gaps = tuple(
                (r["user_id"], int(r["balance"]), int(r["ledger"]))
                for r in rows
                if int(r["balance"]) != int(r["ledger"])
            )
            self._held.append(Snapshot(now, after, gaps))
            for row in await conn.fetch(self.tables + SHARED_SOURCES_SQL, list(self.users)):
                self._shared_source(row["earning_type"], row["source_id"], int(row["rows"]), after)
        self.judge(tally.buyers, ops_read_at)

    def judge(self, buyers: Collection[str], ops_read_at: float) -> None:
        """Judge the snapshots whose hold has passed, if the ops were read since."""
        still: list[Snapshot] = []
        for snap in self._held:
            if ops_read_at < snap.taken + HOLD_S:
                still.append(snap)
                continue
            for user, balance, ledger in snap.gaps:
                if user in buyers or user in self._ledger_users:
                    continue
                self._ledger_users.add(user)
                self.violations.append(
                    Violation(
                        "ledger-explains-balance",
                        f"{user}: balance {balance} but completed ledger rows sum to {ledger} "
                        f"({balance - ledger:+d} unexplained), {snap.after_s:.0f} s into the "
                        "load, with no purchase of theirs that could be half-way",
                        {
                            "user": user,
                            "balance": balance,
                            "ledger_sum": ledger,
                            "during_load_s": round(snap.after_s, 1),
                        },
                    )
                )
        self._held = still

    def _negative(self, user: str, balance: int, after: float) -> None:
        if user in self._negative_users:
            return
        self._negative_users.add(user)
        self.violations.append(
            Violation(
                "no-negative-balance",
                f"{user} had balance {balance} {after:.0f} s into the load",
                {
                    "balance_row": {"user_id": user, "balance": balance},
                    "during_load_s": round(after, 1),
                },
            )
        )

    def _shared_source(self, kind: str, source: str, rows: int, after: float) -> None:
        if (kind, source) in self._shared_sources:
            return
        self._shared_sources.add((kind, source))
        self.violations.append(
            Violation(
                "unique-earning-source",
                f"{rows} creator_earnings rows share ({kind}, {source}), "
                f"{after:.0f} s into the load",
                {
                    "earning_type": kind,
                    "source_id": source,
                    "count": rows,
                    "during_load_s": round(after, 1),
                },
            )
        )

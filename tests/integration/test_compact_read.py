"""A long load run reads the final state compactly (tips, calls and unique
earnings summed in the database): the checkers must judge it exactly as they
judge every row."""

from __future__ import annotations

import asyncio

import asyncpg

from harness.checkers import check
from harness.provisioning.databases import FreshDatabase
from harness.run.collect import read_db
from harness.state import Observation, empty_observation

USERS = ("fan1", "fan2", "creator1", "creator2")


async def _rows(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        # A duplicate earning source must be possible, as in a flawed service.
        await conn.execute(
            "ALTER TABLE creator_earnings DROP CONSTRAINT creator_earnings_source_unique"
        )
        for user in USERS:
            await conn.execute(
                "INSERT INTO users (supabase_id, is_creator, total_earnings) VALUES ($1, $2, $3)",
                user,
                user.startswith("creator"),
                {"creator1": 0.60, "creator2": 0.30}.get(user, 0),  # creator2: 0.35
            )
        transfers = [  # (sender, receiver, kind, tokens, status, source)
            ("fan1", "creator1", "tip", 3, "completed", "t1"),
            ("fan1", "creator1", "tip", 4, "completed", "t2"),
            ("fan2", "creator1", "tip", 5, "completed", "t2"),  # shares t2's source
            ("fan1", "creator2", "call", 2, "completed", "c1"),
            ("fan1", "fan1", "tip", 1, "completed", "t3"),  # to themself
            ("fan2", "creator2", "tip", 9, "pending", None),
        ]
        transfers += [("fan2", "creator2", "tip", 1, "completed", f"u{n}") for n in range(5)]
        for sender, receiver, kind, tokens, status, source in transfers:
            await conn.execute(
                "INSERT INTO token_transactions (user_id, type, tokens, status, related_user_id)"
                " VALUES ($1, $3, $4, $5, $2), ($2, $3, $6, $5, $1)",
                sender,
                receiver,
                kind,
                -tokens,
                status,
                tokens,
            )
            if source is not None:
                await conn.execute(
                    "INSERT INTO creator_earnings (creator_id, earning_type, source_id,"
                    " tokens_earned, usd_value, fan_id) VALUES ($1, $2, $3, $4, $5, $6)",
                    receiver,
                    kind,
                    source,
                    tokens,
                    tokens * 0.05,
                    sender,
                )
        await conn.execute(
            "INSERT INTO token_transactions (user_id, type, tokens, status,"
            " stripe_payment_intent_id) VALUES ('fan1', 'purchase', 100, 'completed', 'pi_1'),"
            " ('fan2', 'purchase', 500, 'pending', 'pi_2'),"
            " ('fan1', 'grant', 50, 'completed', NULL), ('fan2', 'grant', 50, 'completed', NULL)"
        )
        balances = {"fan1": 141, "fan2": 40, "creator1": 12, "creator2": 8}  # fan1 is 1 over
        for user, balance in balances.items():
            await conn.execute(
                "INSERT INTO token_balances (user_id, balance, total_earned) VALUES ($1, $2, $3)",
                user,
                balance,
                {"creator1": 12, "creator2": 1}.get(user, 0),  # creator2: 2
            )
    finally:
        await conn.close()


def test_the_compact_read_is_judged_as_every_row(fresh_database: FreshDatabase) -> None:
    asyncio.run(_rows(fresh_database.dsn))
    full = asyncio.run(read_db(fresh_database.dsn, USERS))
    compact = asyncio.run(read_db(fresh_database.dsn, USERS, compact=True))
    assert len(compact.ledger) < len(full.ledger) and len(compact.earnings) < len(full.earnings)
    stripe = empty_observation().stripe

    def judged(db: object) -> list[tuple[str, str, int, list[str]]]:
        results = check(Observation([], db, stripe))  # type: ignore[arg-type]
        return [
            (r.checker, r.validity, r.checked, sorted(v.invariant for v in r.violations))
            for r in results
        ]

    expected = judged(full)
    assert judged(compact) == expected
    found = {inv for _, _, _, invariants in expected for inv in invariants}
    assert {
        "ledger-explains-balance",
        "unique-earning-source",
        "no-self-transfer",
        "total-earned",
        "total-earnings-usd",
    } <= found

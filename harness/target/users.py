"""Users for a run, created through SQL exactly as the contract says."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.dialect.model import CONTRACT, Dialect


@dataclass(frozen=True)
class UserSpec:
    supabase_id: str
    is_creator: bool = False
    grant: int = 0  # starting balance, recorded as a completed `grant` ledger row
    # False: a user the service does not know (no `users` row), who still holds a
    # validly signed token.
    exists: bool = True


async def create_users(conn: Any, users: list[UserSpec], dialect: Dialect = CONTRACT) -> None:
    """One transaction; a grant is a balance row plus the ledger row that explains it
    (in a dialect: its `create-user` and `grant` SQL). Users that should not exist
    are left out."""
    users = [u for u in users if u.exists]
    create, grant = dialect.sql("create-user"), dialect.sql("grant")
    if create is not None and grant is not None:
        async with conn.transaction():
            await conn.executemany(create, [(u.supabase_id, u.is_creator) for u in users])
            await conn.executemany(grant, [(u.supabase_id, u.grant) for u in users if u.grant])
        return
    async with conn.transaction():
        await conn.executemany(
            "INSERT INTO users (supabase_id, is_creator) VALUES ($1, $2)",
            [(u.supabase_id, u.is_creator) for u in users],
        )
        granted = [u for u in users if u.grant > 0]
        await conn.executemany(
            "INSERT INTO token_balances (user_id, balance) VALUES ($1, $2)",
            [(u.supabase_id, u.grant) for u in granted],
        )
        await conn.executemany(
            """INSERT INTO token_transactions (user_id, type, tokens, status)
               VALUES ($1, 'grant', $2, 'completed')""",
            [(u.supabase_id, u.grant) for u in granted],
        )

"""One class per defect. Each docstring says what it puts back."""

from __future__ import annotations

from reference_impl import repo
from reference_impl.amounts import TOKEN_VALUE_USD
from reference_impl.service import TokenService, Transfer


async def _patch_style_rows(conn: repo.Conn, t: Transfer) -> None:
    """Ledger rows, earning and creator total the way the patches write them."""
    usd = t.tokens * TOKEN_VALUE_USD
    for user, tokens, other in ((t.sender, -t.tokens, t.creator), (t.creator, t.tokens, t.sender)):
        await conn.execute(
            """INSERT INTO token_transactions
                   (user_id, type, tokens, amount_usd, status, related_user_id, channel)
               VALUES ($1, $2, $3, $4, 'completed', $5, $6)""",
            user,
            t.kind,
            tokens,
            usd,
            other,
            t.channel,
        )
    source = await conn.fetchval("SELECT currval('token_transactions_id_seq')")
    await conn.execute(
        """INSERT INTO creator_earnings
               (creator_id, earning_type, source_id, tokens_earned, usd_value, fan_id)
           VALUES ($1, $2, $3, $4, $5, $6)""",
        t.creator,
        t.kind,
        f"{t.kind}_{source}",
        t.tokens,
        usd,
        t.sender,
    )
    await conn.execute(
        "UPDATE users SET total_earnings = total_earnings + $2 WHERE supabase_id = $1",
        t.creator,
        usd,
    )


class LostUpdate(TokenService):
    """Reads the balances without a lock, checks in Python, writes the computed balance."""

    async def lock_parties(self, conn: repo.Conn, t: Transfer) -> dict[str, int]:
        await repo.ensure_balance_row(conn, t.creator)
        rows = await conn.fetch(
            "SELECT user_id, balance FROM token_balances WHERE user_id = ANY($1::text[])",
            [t.sender, t.creator],
        )
        return {r["user_id"]: r["balance"] for r in rows}

    async def debit_and_credit(
        self, conn: repo.Conn, t: Transfer, sender_balance: int
    ) -> tuple[repo.Balance, repo.Balance]:
        await _patch_style_rows(conn, t)
        sender = await conn.fetchrow(
            """UPDATE token_balances SET balance = $2, version = version + 1
               WHERE user_id = $1 RETURNING balance, version""",
            t.sender,
            sender_balance - t.tokens,
        )
        creator = await repo.credit(conn, t.creator, t.tokens, earned=True)
        return repo.Balance(t.sender, sender["balance"], sender["version"]), creator


FLAWS: dict[str, type[TokenService]] = {
    "lost-update": LostUpdate,
}

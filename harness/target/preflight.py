"""Preflight: before the first scenario, after the service is healthy (so a
service that creates its tables at start is judged on them), check what every
scenario depends on. Each failure is one setup error that names the fix,
within a few seconds, instead of forty scenarios failing the same way.

Only what makes the whole run meaningless stops it. A service that accepts an
exp-less token or an unsigned webhook is a finding (the security and webhooks
suites report it, exit 1), not a setup error.
"""

from __future__ import annotations

import asyncio
import secrets

import asyncpg
import httpx

from harness.dialect.model import CONTRACT
from harness.dialect.wire import auth_header
from harness.errors import SetupError
from harness.target.auth import make_token
from harness.target.dialect_check import check_dialect
from harness.target.types import WEBHOOK_PATH, Target
from harness.target.users import UserSpec, create_users

# The tables and columns the harness reads and writes (the contract's table).
CONTRACT_COLUMNS: dict[str, tuple[str, ...]] = {
    "users": ("id", "supabase_id", "is_creator", "total_earnings", "updated_at"),
    "token_balances": ("user_id", "balance", "total_earned", "updated_at"),
    "token_transactions": (
        "id",
        "user_id",
        "type",
        "tokens",
        "amount_usd",
        "bonus_tokens",
        "stripe_payment_intent_id",
        "client_idempotency_key",
        "status",
        "related_user_id",
        "channel",
        "created_at",
    ),
    "creator_earnings": (
        "creator_id",
        "earning_type",
        "source_id",
        "tokens_earned",
        "usd_value",
        "fan_id",
    ),
}
COLUMNS_SQL = """
SELECT table_name, column_name FROM information_schema.columns
WHERE table_schema = ANY (current_schemas(false)) AND table_name = ANY ($1::text[])
"""
WITHIN_S = 5.0


class PreflightFailed(SetupError):
    """The target cannot be verified as it is; the message says what to change."""


def missing_columns(found: set[tuple[str, str]]) -> list[str]:
    """`table` for a missing table, `table.column` for a missing column."""
    missing = []
    for table, columns in CONTRACT_COLUMNS.items():
        if not any(t == table for t, _ in found):
            missing.append(table)
            continue
        missing += [f"{table}.{c}" for c in columns if (table, c) not in found]
    return missing


async def preflight(target: Target, *, run_id: str) -> None:
    if not target.dialect.is_contract:
        # A service in its own words: every part of its dialect tried once.
        report = await check_dialect(target, run_id=f"{run_id}-preflight")
        if not report.usable:
            raise PreflightFailed(
                "the service does not answer as its dialect says "
                f"({target.dialect.source or target.dialect.name}):\n" + "\n".join(report.lines())
            )
        return
    try:
        async with asyncio.timeout(WITHIN_S):
            await _schema(target)
            await _auth(target, f"{run_id}-preflight")
            await _webhook_route(target)
    except TimeoutError:
        raise PreflightFailed(
            f"preflight took longer than {WITHIN_S:g} s: the service or its database "
            "does not answer promptly"
        ) from None


async def _schema(target: Target) -> None:
    conn = await asyncpg.connect(target.database_url)
    try:
        rows = await conn.fetch(COLUMNS_SQL, list(CONTRACT_COLUMNS))
    finally:
        await conn.close()
    missing = missing_columns({(r["table_name"], r["column_name"]) for r in rows})
    if missing:
        raise PreflightFailed(
            f"the service's database lacks what the contract names: {', '.join(missing)}. "
            "Give the schema with --target-schema FILE, or have the service create its "
            "tables before it answers GET /health"
        )


async def _auth(target: Target, user: str) -> None:
    conn = await asyncpg.connect(target.database_url)
    try:
        await create_users(conn, [UserSpec(user)])
    except asyncpg.PostgresError as exc:
        raise PreflightFailed(
            f"tokenproof cannot create a user as the contract says (INSERT INTO users "
            f"(supabase_id, is_creator)): {exc}. Give the other columns of users defaults"
        ) from exc
    finally:
        await conn.close()
    token = make_token(user, target.jwt_secret, ttl_s=300)
    async with httpx.AsyncClient(base_url=target.base_url, timeout=WITHIN_S) as client:
        header, value = auth_header(CONTRACT, token)
        answer = await client.get(CONTRACT.route("balance").path, headers={header: value})
    if answer.status_code == 401:
        raise PreflightFailed(
            "the service refused a valid bearer token signed with the JWT_SECRET tokenproof "
            "gave it (GET /api/tokens/balance answered 401); with --target-url, give the "
            "service's own secret as --jwt-secret"
        )


async def _webhook_route(target: Target) -> None:
    body = f'{{"id": "evt_preflight_{secrets.token_hex(4)}", "type": "ping"}}'
    async with httpx.AsyncClient(base_url=target.base_url, timeout=WITHIN_S) as client:
        answer = await client.post(
            WEBHOOK_PATH, content=body, headers={"Content-Type": "application/json"}
        )
    if answer.status_code in (404, 405):
        raise PreflightFailed(
            f"POST {WEBHOOK_PATH} answered {answer.status_code}: the service has no Stripe "
            "webhook route where the contract puts it"
        )

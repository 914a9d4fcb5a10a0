"""Ledger invariants on the final database state (pure)."""

from __future__ import annotations

from collections import Counter, defaultdict
from decimal import Decimal

from harness.checkers.result import CheckResult, Violation
from harness.state import DbState, LedgerRow

TOKEN_VALUE_USD = Decimal("0.05")
TRANSFER_TYPES = ("tip", "call")


def non_negative(db: DbState) -> CheckResult:
    violations = [
        Violation(
            "no-negative-balance",
            f"{b.user_id} has balance {b.balance}",
            {"balance_row": {"user_id": b.user_id, "balance": b.balance}},
        )
        for b in db.balances
        if b.balance < 0
    ]
    return CheckResult.of("non_negative", len(db.balances), violations)


def ledger_explains_balances(db: DbState) -> CheckResult:
    """balance == sum(tokens) of the user's completed ledger rows, for every user."""
    sums: dict[str, int] = defaultdict(int)
    for row in db.ledger:
        if row.status == "completed":
            sums[row.user_id] += row.tokens
    balances = {b.user_id: b.balance for b in db.balances}
    violations = []
    for user in sorted(set(sums) | set(balances)):
        balance, ledger = balances.get(user, 0), sums.get(user, 0)
        if balance != ledger:
            rows = [
                {"id": r.id, "type": r.type, "tokens": r.tokens, "status": r.status}
                for r in db.ledger
                if r.user_id == user
            ]
            violations.append(
                Violation(
                    "ledger-explains-balance",
                    f"{user}: balance {balance} but completed ledger rows sum to {ledger} "
                    f"({balance - ledger:+d} unexplained)",
                    {"user": user, "balance": balance, "ledger_sum": ledger, "rows": rows[-20:]},
                )
            )
    return CheckResult.of("ledger_explains_balances", len(balances), violations)


def transfers(db: DbState) -> CheckResult:
    """Tips and calls: debit = credit, one earning per credit with a unique source,
    creator totals that count every credit, nobody paying themself."""
    moved = [r for r in db.ledger if r.type in TRANSFER_TYPES and r.status == "completed"]
    violations = [
        Violation(
            "no-self-transfer",
            f"{r.user_id} sent {abs(r.tokens)} tokens to themself ({r.type} row {r.id})",
            {"row_id": r.id, "user": r.user_id},
        )
        for r in moved
        if r.related_user_id == r.user_id
    ]
    debits = sum(-r.tokens for r in moved if r.tokens < 0)
    credits = sum(r.tokens for r in moved if r.tokens > 0)
    if debits != credits:
        violations.append(
            Violation(
                "debit-equals-credit",
                f"tips and calls debited {debits} tokens but credited {credits}",
                {"debited": debits, "credited": credits},
            )
        )
    # A summed entry holds only sources the database found unique.
    sources = Counter((e.earning_type, e.source_id) for e in db.earnings if not e.summed)
    violations += [
        Violation(
            "unique-earning-source",
            f"{count} creator_earnings rows share ({kind}, {source})",
            {"earning_type": kind, "source_id": source, "count": count},
        )
        for (kind, source), count in sources.items()
        if count > 1
    ]
    violations += _creator_totals(db, moved)
    return CheckResult.of("transfers", sum(r.rows for r in moved), violations)


def _creator_totals(db: DbState, moved: list[LedgerRow]) -> list[Violation]:
    """Each creator: one earning per credit row, and both totals count every credit."""
    received: dict[str, int] = defaultdict(int)
    credit_rows: Counter[str] = Counter()
    for r in moved:
        if r.tokens > 0:
            received[r.user_id] += r.tokens
            credit_rows[r.user_id] += r.rows
    earned_rows: Counter[str] = Counter()
    for e in db.earnings:
        earned_rows[e.creator_id] += e.rows
    earned_tokens: dict[str, int] = defaultdict(int)
    for e in db.earnings:
        earned_tokens[e.creator_id] += e.tokens_earned
    totals = {b.user_id: b.total_earned for b in db.balances}
    usd = {u.supabase_id: u.total_earnings for u in db.users}
    violations = []
    for creator in sorted(set(received) | set(earned_rows)):
        got = received.get(creator, 0)
        if credit_rows[creator] != earned_rows[creator] or earned_tokens[creator] != got:
            violations.append(
                Violation(
                    "one-earning-per-credit",
                    f"{creator}: {credit_rows[creator]} credit rows ({got} tokens) but "
                    f"{earned_rows[creator]} earnings rows ({earned_tokens[creator]} tokens)",
                    {"creator": creator},
                )
            )
        if totals.get(creator, 0) != got:
            violations.append(
                Violation(
                    "total-earned",
                    f"{creator}: token_balances.total_earned {totals.get(creator, 0)} "
                    f"but received {got}",
                    {"creator": creator, "total_earned": totals.get(creator, 0), "received": got},
                )
            )
        expected_usd = TOKEN_VALUE_USD * got
        if usd.get(creator, Decimal(0)) != expected_usd:
            violations.append(
                Violation(
                    "total-earnings-usd",
                    f"{creator}: users.total_earnings {usd.get(creator)} but "
                    f"{got} tokens x {TOKEN_VALUE_USD} = {expected_usd}",
                    {"creator": creator, "total_earnings": str(usd.get(creator))},
                )
            )
    return violations

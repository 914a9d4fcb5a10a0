"""What the service answered against what it did (pure). Ops whose outcome is
unknown (`info`) may or may not have happened: they widen bounds, never guess."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from typing import Any

from harness.checkers.result import CheckResult, Violation
from harness.history import Op
from harness.state import DbState, StripeState

TRANSFER_OPS = {"tip": "tip", "deduct": "call"}


def no_server_errors(ops: list[Op]) -> CheckResult:
    completions = [op for op in ops if op.type != "invoke"]
    violations = [
        Violation(
            "no-5xx",
            f"{op.f} by {op.user} answered {op.status}",
            {"op": op.to_json()},
        )
        for op in completions
        if op.status is not None and op.status >= 500
    ]
    return CheckResult.of("no_server_errors", len(completions), violations)


def _amount(args: dict[str, Any]) -> int | None:
    value = args.get("tokenAmount")
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


Amounts = dict[tuple[str, str], int]


def _answered_amounts(
    ops: list[Op],
) -> tuple[Amounts, Amounts, dict[tuple[str, str], list[dict[str, Any]]], int]:
    """Per (sender, kind): tokens that `ok` answers promised, tokens of calls whose
    outcome is unknown (`info`, or never answered), a few example ops, and how
    many completions there were."""
    promised: Amounts = defaultdict(int)
    maybe: Amounts = defaultdict(int)
    seen_keys: set[tuple[str, str, str]] = set()
    examples: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    completions = [op for op in ops if op.type in ("ok", "info") and op.f in TRANSFER_OPS]
    # Ops that never completed are as unknown as info.
    finished = {op.process for op in ops if op.type != "invoke"}
    unfinished = [
        op
        for op in ops
        if op.type == "invoke" and op.process not in finished and op.f in TRANSFER_OPS
    ]
    for op in [*completions, *unfinished]:
        amount = _amount(op.args)
        if amount is None or op.user is None:
            continue
        group = (op.user, TRANSFER_OPS[op.f])
        key = op.args.get("clientIdempotencyKey")
        if isinstance(key, str):
            if (op.user, op.f, key) in seen_keys:
                continue
            seen_keys.add((op.user, op.f, key))
        (promised if op.type == "ok" else maybe)[group] += amount
        if len(examples[group]) < 5:
            examples[group].append(op.to_json())
    return promised, maybe, examples, len(completions)


def transfers_match_answers(ops: list[Op], db: DbState) -> CheckResult:
    """Per sender and kind: tokens debited lie between what `ok` answers promised
    and that plus every `info` op; a repeated client key counts once."""
    promised, maybe, examples, checked = _answered_amounts(ops)
    debited: dict[tuple[str, str], int] = defaultdict(int)
    for row in db.ledger:
        if row.type in TRANSFER_OPS.values() and row.tokens < 0 and row.status == "completed":
            debited[(row.user_id, row.type)] += -row.tokens
    violations = []
    for group in sorted(set(promised) | set(maybe) | set(debited)):
        low, high, actual = promised[group], promised[group] + maybe[group], debited[group]
        if not low <= actual <= high:
            user, kind = group
            violations.append(
                Violation(
                    "answers-match-ledger",
                    f"{user}: {kind} answers account for {low}..{high} tokens debited, "
                    f"the ledger debited {actual}",
                    {
                        "user": user,
                        "kind": kind,
                        "answered_ok": low,
                        "unknown": maybe[group],
                        "debited": actual,
                        "ops": examples[group],
                    },
                )
            )
    return CheckResult.of("transfers_match_answers", checked, violations)


def purchases_match_answers(ops: list[Op], stripe: StripeState) -> CheckResult:
    """An ok purchase names an intent Stripe has; a declined one charged nothing."""
    intents = {i["id"]: i for i in stripe.intents}
    violations = []
    checked = 0
    for op in ops:
        if op.f != "purchase" or op.type not in ("ok", "fail"):
            continue
        checked += 1
        body = op.body if isinstance(op.body, dict) else {}
        if op.type == "ok":
            pi = (body.get("paymentIntent") or {}).get("id")
            if pi not in intents:
                violations.append(
                    Violation(
                        "purchase-answer-real",
                        f"purchase by {op.user} answered intent {pi!r}, unknown to Stripe",
                        {"op": op.to_json()},
                    )
                )
        elif op.status == 402:
            pi = body.get("paymentIntentId")
            if pi in intents and intents[pi]["status"] == "succeeded":
                violations.append(
                    Violation(
                        "decline-charged-nothing",
                        f"purchase by {op.user} answered 402 but {pi} succeeded",
                        {"op": op.to_json()},
                    )
                )
    return CheckResult.of("purchases_match_answers", checked, violations)


# Text that only comes from inside a service, whatever its stack: what
# PostgreSQL and its drivers say, what runtimes say, what Stripe says, and the
# shape of a stack frame in the common languages.
INTERNAL_TEXT = (
    "Traceback (most recent call last)",
    "asyncpg",
    "psycopg",
    "sqlalchemy",
    "node_modules",
    "ECONNREFUSED",
    "ECONNRESET",
    "NoneType",
    "KeyError",
    "AttributeError",
    "StripeError",
    "stripe.error",
    "stripe._error",
    "APIConnectionError",
    # PostgreSQL's own messages (any driver passes them through).
    "deadlock detected",
    "could not serialize access",
    "duplicate key value",
    "violates check constraint",
    "violates unique constraint",
    "violates foreign key constraint",
    "violates not-null constraint",
    "null value in column",
    "invalid input syntax for type",
    "syntax error at or near",
    "current transaction is aborted",
    "terminating connection due to administrator command",
    "canceling statement due to",
    "connection was closed in the middle of operation",
    "server closed the connection unexpectedly",
    "the underlying connection is closed",
    "Connection terminated unexpectedly",
    "remaining connection slots are reserved",
    "division by zero",
    "out of range for type",
    "invalid byte sequence for encoding",
    'relation "',
    'column "',
    # Runtimes.
    "Cannot read properties of",
    "is not a function",
    "is not defined",
    "UnhandledPromiseRejection",
    "NullPointerException",
    "panic: runtime error",
    "NoMethodError",
    "System.NullReferenceException",
    # Stripe's own messages (the emulator speaks them as Stripe does).
    "Your card was declined",
    "Your card has insufficient funds",
    "No such PaymentMethod",
    "No such payment_intent",
    "Invalid API Key",
    "idempotency_key_in_use",
    "Keys for idempotent requests",
    "An unknown error occurred",
    "Too many requests",
)
STACK_FRAMES = re.compile(
    r'File "[^"]+", line \d+'  # Python
    r"|\bat [\w.<>$]+ \((?:file://)?/[^)]*:\d+:\d+\)"  # Node
    r"|\bat (?:async )?/[\w/.-]+\.m?js:\d+:\d+"  # Node, anonymous
    r"|\bat [\w$.]+\([\w$]+\.java:\d+\)"  # Java
    r"|\.go:\d+ \+0x[0-9a-f]+|goroutine \d+ \["  # Go
    r"|\.rb:\d+:in `"  # Ruby
    r"|\bat [\w.`<>]+\(.*\) in [^\n]+:line \d+"  # .NET
    r"|\bSQLSTATE\b|\bsqlstate\b"
    r"|\b\w+\.__\w+__\("  # a Python dunder call, only ever in an exception text
    r"|\bRequest req_\w+:"  # the Stripe SDKs' error text: "Request req_...: <Stripe's message>"
)


def internal_text(text: str) -> list[str]:
    """What in `text` could only have come from inside the service."""
    found = [marker for marker in INTERNAL_TEXT if marker in text]
    found += [m.group(0)[:80] for m in STACK_FRAMES.finditer(text)][:3]
    return found


def no_internal_text(ops: list[Op], logged: tuple[str, ...] = ()) -> CheckResult:
    """5xx answers never carry internal error text. The contract says it of 5xx
    bodies only, so a 4xx is not judged (however unwise its text). Besides the
    catalogue, `logged`: the error messages the run's database server logged,
    in whatever words the service's stack passes them on."""
    errors = [op for op in ops if op.type != "invoke" and op.status and op.status >= 500]
    violations = []
    for op in errors:
        text = op.body if isinstance(op.body, str) else json.dumps(op.body, default=str)
        found = internal_text(text) + [m[:80] for m in logged if m in text]
        if found:
            violations.append(
                Violation(
                    "no-internal-error-text",
                    f"{op.f} answered {op.status} with internal text ({', '.join(found)})",
                    {"op": op.to_json(), "markers": found},
                )
            )
    return CheckResult.of("no_internal_text", len(errors), violations)

"""What the service answered against what it did (pure). Ops whose outcome is
unknown (`info`) may or may not have happened: they widen bounds, never guess."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from harness.checkers.result import CheckResult, Violation
from harness.collect import DbState, StripeState
from harness.history import Op

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


def transfers_match_answers(ops: list[Op], db: DbState) -> CheckResult:
    """Per sender and kind: tokens debited lie between what `ok` answers promised
    and that plus every `info` op; a repeated client key counts once."""
    promised: dict[tuple[str, str], int] = defaultdict(int)
    maybe: dict[tuple[str, str], int] = defaultdict(int)
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
            ident = (op.user, op.f, key)
            if ident in seen_keys:
                continue
            seen_keys.add(ident)
        if op.type == "ok":
            promised[group] += amount
        else:
            maybe[group] += amount
        if len(examples[group]) < 5:
            examples[group].append(op.to_json())
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
    return CheckResult.of("transfers_match_answers", len(completions), violations)


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


# Text that only comes from inside a service: SQL, drivers, SDKs, stack traces.
INTERNAL_TEXT = (
    "Traceback (most recent call last)",
    'File "',
    "asyncpg",
    "psycopg",
    "sqlalchemy",
    "duplicate key value",
    "violates check constraint",
    "violates unique constraint",
    "syntax error at or near",
    "StripeError",
    "stripe.error",
    "stripe._error",
    "APIConnectionError",
    "at Object.<anonymous>",
    "node_modules",
    "ECONNREFUSED",
    'column "',
    'relation "',
    "NoneType",
    "KeyError",
    "AttributeError",
)


def no_internal_text(ops: list[Op]) -> CheckResult:
    """5xx answers never carry internal error text. The contract says it of 5xx
    bodies only, so a 4xx is not judged (however unwise its text)."""
    errors = [op for op in ops if op.type != "invoke" and op.status and op.status >= 500]
    violations = []
    for op in errors:
        text = op.body if isinstance(op.body, str) else json.dumps(op.body, default=str)
        found = [marker for marker in INTERNAL_TEXT if marker in text]
        if found:
            violations.append(
                Violation(
                    "no-internal-error-text",
                    f"{op.f} answered {op.status} with internal text ({', '.join(found)})",
                    {"op": op.to_json(), "markers": found},
                )
            )
    return CheckResult.of("no_internal_text", len(errors), violations)

"""What the service answered against what it did (pure). Ops whose outcome is
unknown (`info`) may or may not have happened: they widen bounds, never guess."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import replace
from typing import Any

from harness.checkers.fold import (
    KEPT_VIOLATIONS,
    Capped,
    InFlight,
    OpFold,
    OpsAt,
    fold_all,
    op_json,
)
from harness.checkers.result import CheckResult, Violation
from harness.history import Op
from harness.state import DbState, Observation, StripeState, empty_observation

TRANSFER_OPS = {"tip": "tip", "deduct": "call"}


class ServerErrors(OpFold):
    """No answer is a 5xx."""

    name = "no_server_errors"

    def __init__(self) -> None:
        self.completions = 0
        self.found = Capped("no-5xx")

    def feed(self, op: Op) -> None:
        if op.type == "invoke":
            return
        self.completions += 1
        if op.status is not None and op.status >= 500:
            self.found.add(
                Violation(
                    "no-5xx", f"{op.f} by {op.user} answered {op.status}", {"op": op.to_json()}
                )
            )

    def early(self) -> list[Violation]:
        return list(self.found.kept)

    def finish(self, observation: Observation, ops_at: OpsAt) -> CheckResult:
        return CheckResult.of(self.name, self.completions, self.found.all("5xx answers"))


def no_server_errors(ops: list[Op]) -> CheckResult:
    return fold_all(ServerErrors(), ops, empty_observation())


def _amount(args: dict[str, Any]) -> int | None:
    value = args.get("tokenAmount")
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


Group = tuple[str, str]  # (sender, kind)


class TransfersMatchAnswers(OpFold):
    """Per sender and kind: tokens debited lie between what `ok` answers promised
    and that plus every call whose outcome is unknown (`info`, or never
    answered); a repeated client key counts once, as `ok` if any of its answers
    was."""

    name = "transfers_match_answers"

    def __init__(self) -> None:
        self.promised: dict[Group, int] = defaultdict(int)
        self.maybe: dict[Group, int] = defaultdict(int)
        self.examples: dict[Group, list[dict[str, Any]]] = defaultdict(list)
        # hash(sender, route, key) -> (amount, answered ok): a hash, not the key,
        # keeps an hour of keyed calls in tens of MB.
        self.keyed: dict[int, tuple[int, bool]] = {}
        self.in_flight = InFlight()
        self.checked = 0

    def feed(self, op: Op) -> None:
        if op.f not in TRANSFER_OPS:
            return
        self.in_flight.note(op)
        if op.type in ("ok", "info"):
            self.checked += 1
            self._count(op, answered_ok=op.type == "ok")

    def _count(self, op: Op, *, answered_ok: bool) -> None:
        amount = _amount(op.args)
        if amount is None or op.user is None:
            return
        group = (op.user, TRANSFER_OPS[op.f])
        key = op.args.get("clientIdempotencyKey")
        if isinstance(key, str):
            slot = hash((op.user, op.f, key))
            seen = self.keyed.get(slot)
            if seen is not None:
                first_amount, first_ok = seen
                if answered_ok and not first_ok:  # the unknown first try did happen
                    self.maybe[group] -= first_amount
                    self.promised[group] += first_amount
                    self.keyed[slot] = (first_amount, True)
                return
            self.keyed[slot] = (amount, answered_ok)
        (self.promised if answered_ok else self.maybe)[group] += amount
        if len(self.examples[group]) < 5:
            self.examples[group].append(op.to_json())

    def finish(self, observation: Observation, ops_at: OpsAt) -> CheckResult:
        # Calls that never completed are as unknown as info.
        for op in self.in_flight.unfinished():
            self._count(op, answered_ok=False)
        debited: dict[Group, int] = defaultdict(int)
        for row in observation.db.ledger:
            if row.type in TRANSFER_OPS.values() and row.tokens < 0 and row.status == "completed":
                debited[(row.user_id, row.type)] += -row.tokens
        violations = []
        for group in sorted(set(self.promised) | set(self.maybe) | set(debited)):
            low = self.promised.get(group, 0)
            high, actual = low + self.maybe.get(group, 0), debited.get(group, 0)
            # Unrecorded calls may have debited more; none can undo an ok answer.
            too_much = actual > high and observation.history_complete
            if actual < low or too_much:
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
                            "unknown": self.maybe.get(group, 0),
                            "debited": actual,
                            "ops": self.examples.get(group, []),
                        },
                    )
                )
        return CheckResult.of(self.name, self.checked, violations)


def transfers_match_answers(ops: list[Op], db: DbState) -> CheckResult:
    return fold_all(TransfersMatchAnswers(), ops, replace(empty_observation(), db=db))


class PurchasesMatchAnswers(OpFold):
    """An ok purchase names an intent Stripe has; a declined one charged nothing."""

    name = "purchases_match_answers"

    def __init__(self) -> None:
        self.checked = 0
        self.answered: list[tuple[str | None, int]] = []  # (intent named, op index)
        self.declined: list[tuple[str, int]] = []

    def feed(self, op: Op) -> None:
        if op.f != "purchase" or op.type not in ("ok", "fail"):
            return
        self.checked += 1
        body = op.body if isinstance(op.body, dict) else {}
        if op.type == "ok":
            named = (body.get("paymentIntent") or {}).get("id")
            self.answered.append((named if isinstance(named, str) else None, op.index))
        elif op.status == 402:
            named = body.get("paymentIntentId")
            if isinstance(named, str):
                self.declined.append((named, op.index))

    def finish(self, observation: Observation, ops_at: OpsAt) -> CheckResult:
        intents = {i["id"]: i for i in observation.stripe.intents}
        # (op index, invariant, intent named)
        found: list[tuple[int, str, str | None]] = [
            (i, "purchase-answer-real", pi) for pi, i in self.answered if pi not in intents
        ]
        found += [
            (i, "decline-charged-nothing", pi)
            for pi, i in self.declined
            if pi in intents and intents[pi]["status"] == "succeeded"
        ]
        found.sort()
        kept = {name: Capped(name) for name in ("purchase-answer-real", "decline-charged-nothing")}
        shown = [
            i for name in kept for i in [j for j, n, _ in found if n == name][:KEPT_VIOLATIONS]
        ]
        ops = ops_at(shown)  # only the ops a kept violation shows: one pass at most
        for index, invariant, pi in found:
            op = ops.get(index)
            user = op.user if op is not None else "?"
            message = (
                f"purchase by {user} answered intent {pi!r}, unknown to Stripe"
                if invariant == "purchase-answer-real"
                else f"purchase by {user} answered 402 but {pi} succeeded"
            )
            kept[invariant].add(Violation(invariant, message, {"op": op_json(op, index)}))
        violations = [v for capped in kept.values() for v in capped.all("purchase answers")]
        return CheckResult.of(self.name, self.checked, violations)


def purchases_match_answers(ops: list[Op], stripe: StripeState) -> CheckResult:
    return fold_all(PurchasesMatchAnswers(), ops, replace(empty_observation(), stripe=stripe))


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


class InternalText(OpFold):
    """5xx answers never carry internal error text. The contract says it of 5xx
    bodies only, so a 4xx is not judged (however unwise its text). Besides the
    catalogue, the error messages the run's database server logged, in whatever
    words the service's stack passes them on (known only at the end: the 5xx
    texts are kept until then, each distinct text once)."""

    name = "no_internal_text"
    DISTINCT_TEXTS = 1000

    def __init__(self) -> None:
        self.errors = 0
        self.texts: dict[str, tuple[Op, list[str]]] = {}  # text -> first op, catalogue markers
        self.repeats = 0

    def feed(self, op: Op) -> None:
        if op.type == "invoke" or not op.status or op.status < 500:
            return
        self.errors += 1
        text = op.body if isinstance(op.body, str) else json.dumps(op.body, default=str)
        if text in self.texts:
            self.repeats += 1
        elif len(self.texts) < self.DISTINCT_TEXTS:
            self.texts[text] = (op, internal_text(text))

    def early(self) -> list[Violation]:
        return [self._violation(op, found) for op, found in self.texts.values() if found]

    def finish(self, observation: Observation, ops_at: OpsAt) -> CheckResult:
        logged = observation.logged_errors
        violations = []
        for text, (op, found) in self.texts.items():
            markers = found + [m[:80] for m in logged if m in text]
            if markers:
                violations.append(self._violation(op, markers))
        return CheckResult.of(self.name, self.errors, violations)

    @staticmethod
    def _violation(op: Op, found: list[str]) -> Violation:
        return Violation(
            "no-internal-error-text",
            f"{op.f} answered {op.status} with internal text ({', '.join(found)})",
            {"op": op.to_json(), "markers": found},
        )


def no_internal_text(ops: list[Op], logged: tuple[str, ...] = ()) -> CheckResult:
    return fold_all(InternalText(), ops, replace(empty_observation(), logged_errors=logged))
